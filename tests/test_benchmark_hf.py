"""Smoke test of benchmarks/hf.py: a tiny run measures every contender (no timing asserted)."""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "hf.py"


def test_tiny_run_reports_every_contender(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("hf_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "hf.json"
    result = module.main(["--lengths", "10", "--batches", "3", "--hidden", "4", "--repeats", "1",
                          "--calls", "1", "--json", str(out)])
    assert "ratio to" in capsys.readouterr().out
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    (row,) = result["rows"]
    assert row["ratio_to_autograd_grad"]["grad (autograd)"] == 1.0
    assert {"G·v", "fast G·v", "grad (engine)"} <= set(row["seconds"])
    for value in row["seconds"].values():
        assert math.isfinite(value) and value > 0
