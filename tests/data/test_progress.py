"""The progress display of a download when the output is not a terminal."""

from __future__ import annotations

import io

from bptt.data.fetch import ByteProgress, mirror_url


def test_lines_when_not_a_terminal():
    out = io.StringIO()
    with ByteProgress("x.mat", 4_000_000, initial=1_000_000, stream=out, interval=0.0) as bar:
        bar.update(1_000_000)
        bar.update(2_000_000)
    lines = out.getvalue().splitlines()
    assert lines == ["x.mat: 2.0 MB of 4.0 MB (50%)", "x.mat: 4.0 MB of 4.0 MB (100%)"]


def test_one_line_at_the_end_within_the_interval_and_none_when_disabled():
    out = io.StringIO()
    with ByteProgress("y.tgz", None, stream=out, interval=3600) as bar:
        for _ in range(100):
            bar.update(10_000)
    assert out.getvalue() == "y.tgz: 1.0 MB\n"
    quiet = io.StringIO()
    with ByteProgress("z", 10, stream=quiet, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_mirror_url_keeps_the_original_layout():
    url = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
    assert mirror_url(url, None) == url
    assert mirror_url(url, "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/~imikolov/rnnlm/simple-examples.tgz"
    assert mirror_url("http://h/~boulanni/JSB%20Chorales.mat", "https://m.org/data") == \
        "https://m.org/data/~boulanni/JSB%20Chorales.mat"


def test_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    with ByteProgress("x.mat", 2048, stream=out) as bar:
        bar.update(2048)
    assert "x.mat" in out.getvalue() and "100%" in out.getvalue() and "\r" in out.getvalue()
