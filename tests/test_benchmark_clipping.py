"""Smoke test of benchmarks/clipping.py: a tiny run measures every contender (no timing asserted)."""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "clipping.py"


def test_tiny_run_reports_every_contender(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("clipping_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "clipping.json"
    result = module.main(["--repeats", "1", "--calls", "5", "--json", str(out)])
    assert "ratio to torch" in capsys.readouterr().out
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    names = {"torch", "bptt ignore", "bptt error", "ClipNorm", "AverageNorm", "AutoClip(history=1000)",
             "ZClip", "AGC"}
    assert set(result["ratio_to_torch"]) == names
    assert result["ratio_to_torch"]["torch"] == 1.0
    for value in result["seconds_per_call"].values():
        assert math.isfinite(value) and value > 0
