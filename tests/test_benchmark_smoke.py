"""Smoke test of benchmarks/throughput.py: a tiny run completes and writes a full report.

No timing is asserted: only that every contender was measured and every number is a
positive, finite value.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
ENSEMBLES = (1, 8)


def positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_benchmark_writes_complete_json(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--quiet", "--json", str(out),
           "--repeats", "2", "--length", "50", "--ensembles", ",".join(map(str, ENSEMBLES)),
           "--min-time", "0.02", "--warmup", "1", "--pool", "2", "--threads", "1",
           "--peak-size", "512", "--eval-lengths", "50", "--eval-sequences", "1000",
           "--eval-chunk", "500", "--memory-ensemble", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "ms per network-update" in proc.stdout

    data = json.loads(out.read_text())
    for key in ("cpu_model", "cpu_count", "torch_version", "torch_num_threads", "date"):
        assert key in data["machine"]
    assert data["config"]["length"] == 50
    assert data["config"]["ensembles"] == list(ENSEMBLES)
    assert positive_finite(data["peak"]["flops_per_second"])
    assert positive_finite(data["flops_per_update"]["with_omega"]["total"])
    assert data["flops_per_update"]["with_omega"]["total"] > data["flops_per_update"]["without_omega"]["total"]

    rows = {r["key"]: r for r in data["contenders"]}
    expected = {"baseline", "reference"} | {f"engine_E{E}" for E in ENSEMBLES}
    if data["jax"]["available"]:
        expected |= {f"jax_E{E}" for E in ENSEMBLES}
    else:
        assert "pip install 'bptt[jax]'" in data["jax"]["message"]
        assert "JAX not installed" in proc.stdout
    assert set(rows) == expected
    for row in rows.values():
        for name in ("ms_per_update", "ms_per_step", "ratio_to_baseline", "fraction_of_peak", "gflops"):
            assert positive_finite(row[name]), (row["key"], name, row[name])
        assert len(row["ms_per_update_samples"]) == 2
        assert all(positive_finite(s) for s in row["ms_per_update_samples"])
    assert math.isclose(rows["baseline"]["ratio_to_baseline"], 1.0)
    for E in ENSEMBLES:
        row = rows[f"engine_E{E}"]
        assert row["ensemble"] == E and row["omega"] is True
        assert math.isclose(row["ms_per_step"], row["ms_per_update"] * E, rel_tol=1e-9)
    assert data["best_engine"]["ensemble"] in ENSEMBLES

    (ev,) = data["evaluation"]
    assert ev["length"] == 50 and ev["sequences"] == 1000
    assert positive_finite(ev["sequences_per_second"])
    assert 0.0 <= ev["error"] <= 1.0

    (mem,) = data["memory"]
    assert "error" not in mem, mem.get("error")
    assert mem["kind"] == "engine" and mem["ensemble"] == 8
    assert math.isfinite(mem["peak_mb"]) and mem["peak_mb"] >= 0

    names = [t["name"] for t in data["targets"]]
    assert len(names) == 4
    assert all(t["passed"] in (True, False, None) for t in data["targets"])


def test_rivals_are_timed_in_the_same_run(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--quiet", "--json", str(out), "--no-jax",
           "--repeats", "2", "--length", "20", "--ensembles", "1", "--min-time", "0.01", "--warmup", "1",
           "--pool", "1", "--threads", "1", "--peak-size", "256", "--eval-lengths", "20",
           "--eval-sequences", "100", "--eval-chunk", "100", "--memory-ensemble", "2",
           "--rivals", "--rival-ensembles", "2,3", "--clock", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["config"]["clock"] == "cpu" and data["config"]["rival_ensembles"] == [2, 3]
    rows = {r["key"]: r for r in data["rivals"]}
    assert set(rows) == {"torch_lstm", "lstm_E2", "lstm_E3", "lstm_products_E2", "lstm_products_E3",
                         "torch_gru", "gru_E2", "gru_E3"}
    assert not any(t["name"].startswith("LSTM_PRODUCTS") for t in data["targets"])
    for model, base in (("lstm", "torch_lstm"), ("gru", "torch_gru")):
        assert rows[base]["speedup"] == 1.0
        for E in (2, 3):
            row = rows[f"{model}_E{E}"]
            assert positive_finite(row["ms_per_update"]) and len(row["ms_per_update_samples"]) == 2
            assert math.isclose(row["speedup"], rows[base]["ms_per_update"] / row["ms_per_update"])
            target = next(t for t in data["targets"] if t["name"].startswith(f"{model.upper()} E={E} "))
            assert target["passed"] == (row["speedup"] >= 3.0)
    assert "rivals (H=50" in proc.stdout
    # the main contenders are not mixed with the rivals
    assert {r["key"] for r in data["contenders"]} == {"baseline", "reference", "engine_E1"}
