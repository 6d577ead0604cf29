"""The README's "Your own network" example runs as printed (at a small size), with bptt's
Algorithm 1 and with the adaptive clipper, and writes its diagnostic figure."""

import math
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- example: your-own-network -->"


def example() -> str:
    text = README.read_text()
    assert MARKER in text
    code = re.search(r"```python\n(.*?)```", text[text.index(MARKER):], re.S).group(1)
    for size in ("STEPS, LENGTH, ALPHA = 300, 50", "ADAPTIVE = True"):
        assert size in code, size
    return code.replace("STEPS, LENGTH, ALPHA = 300, 50", "STEPS, LENGTH, ALPHA = 4, 12")


@pytest.mark.parametrize("adaptive", [True, False])
def test_the_example_trains_and_draws_its_figure(tmp_path, adaptive, capsys):
    code = example().replace("ADAPTIVE = True", f"ADAPTIVE = {adaptive}")
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope = {"__name__": "__main__"}
        exec(compile(code, str(README), "exec"), scope)
    finally:
        os.chdir(here)
    png = tmp_path / "lstm_error_signals.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert scope["signals"].norms.shape == (13,) and all(math.isfinite(v) for v in scope["signals"].norms)
    assert math.isfinite(scope["omega"].item()) and scope["omega"].item() >= 0
    assert "step 0: loss" in capsys.readouterr().out
    if adaptive:
        assert scope["clipped_adam"].clipper.steps == 4
