"""Smoke test of benchmarks/models.py: a tiny run completes and reports every contender.

No timing is asserted: only that every contender was measured and every number is a
positive, finite value.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "models.py"


def test_tiny_run_reports_every_contender(tmp_path):
    out = tmp_path / "models.json"
    cmd = [sys.executable, str(SCRIPT), "--length", "10", "--batch", "4", "--hidden", "8", "--ensemble", "3",
           "--repeats", "2", "--min-time", "0.01", "--threads", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert set(data["ms_per_update"]) == {"torch_lstm", "lstm_E3", "torch_gru", "gru_E3", "lstm_autograd_E3",
                                          "lstm_products_E3"}
    for name, ms in data["ms_per_update"].items():
        assert math.isfinite(ms) and ms > 0, name
        assert len(data["samples"][name]) == 2
    for name, ratio in data["ratios"].items():
        assert math.isfinite(ratio) and ratio > 0, name
    assert "speed-up over torch_lstm" in proc.stdout and "speed-up over torch_gru" in proc.stdout
