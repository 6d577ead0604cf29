"""The progress bar of every command: in a file or a pipe, a line every few seconds."""

import io

from bptt.progress import progress_bar


def test_not_a_terminal_writes_few_whole_lines():
    out = io.StringIO()
    bar = progress_bar(total=5000, file=out, interval=3600.0, desc="work", unit="upd")
    for i in range(5000):
        bar.update(1)
        bar.set_postfix(loss=f"{i:.3f}")            # a postfix set every update forces no redraw
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines
    assert lines[-1].startswith("work") and "5000/5000" in lines[-1]


def test_not_a_terminal_writes_again_after_the_interval(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("bptt.progress.time.monotonic", lambda: clock[0])
    out = io.StringIO()
    bar = progress_bar(total=100, file=out, interval=5.0, desc="work")
    shown = len(out.getvalue().splitlines())
    for i in range(10):
        clock[0] += 6.0
        bar.set_postfix(step=i)
    assert len(out.getvalue().splitlines()) - shown == 10
    bar.close()


def test_disabled_writes_nothing():
    out = io.StringIO()
    bar = progress_bar(total=10, file=out, disable=True)
    bar.update(10)
    bar.set_postfix(step=10)
    bar.refresh()
    bar.close()
    assert out.getvalue() == ""
