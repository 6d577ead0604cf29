"""The complete example of docs/omega.md runs as written, and trains with Ω."""

import contextlib
import io
import math
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "omega.md"


def test_lstm_example_runs_and_reports_omega():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    example = next(b for b in blocks if "bptt.tasks.get" in b)
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(DOC), "exec"), namespace)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("step ") for line in lines)
    omega = float(namespace["omega"].detach())
    assert math.isfinite(omega) and omega >= 0
    assert 0 < float(namespace["model"].last.fraction) <= 1
    # every parameter received a gradient of loss + α·Ω
    assert all(p.grad is not None for p in namespace["params"])
