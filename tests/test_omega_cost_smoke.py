"""Smoke test of benchmarks/omega_cost.py: a tiny run measures every model and stage.

No timing is asserted: only that every contender was measured and every number is a
positive, finite value.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "omega_cost.py"


def test_quick_run_writes_every_model_and_stage(tmp_path):
    out = tmp_path / "omega.json"
    cmd = [sys.executable, str(SCRIPT), "--repeats", "1", "--min-time", "0.01", "--length", "12",
           "--batch", "3", "--hidden", "8", "--threads", "1", "--clock", "cpu", "--stages",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    rows = {r["model"]: r for r in data["rows"]}
    assert set(rows) == {"nn.RNN", "nn.LSTM", "nn.GRU", "user cell"}
    for r in rows.values():
        for key in ("plain_ms", "omega_ms", "ratio"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["model"], key, r[key])
        assert math.isclose(r["ratio"], r["omega_ms"] / r["plain_ms"], rel_tol=1e-12)
    assert len(data["lstm_stages_ms"]) == 8
    assert all(math.isfinite(v) and v >= 0 for v in data["lstm_stages_ms"].values())
