"""benchmarks/persistent.py: its arguments, its refusal without CUDA, and (slow) a tiny run
of every path under Triton's interpreter. No timing is asserted."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "persistent.py"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def load():
    spec = importlib.util.spec_from_file_location("bench_persistent", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_arguments():
    bench = load()
    args = bench.parse(["--ensembles", "1,4,512", "--length", "100"])
    assert args.ensembles == [1, 4, 512] and args.length == 100 and not args.tiny
    tiny = bench.parse(["--interpret", "--tiny"])
    assert tiny.ensembles == [1, 2] and tiny.length == 10 and tiny.hidden == 8
    with pytest.raises(SystemExit):
        bench.parse(["--ensembles", "1,x"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_it_says_so():
    proc = run("--json", os.devnull)
    assert proc.returncode == 2
    assert "needs a CUDA device" in proc.stdout and "--interpret --tiny" in proc.stdout


@pytest.mark.slow
def test_tiny_run_of_every_path_under_the_interpreter(tmp_path, request):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("about 90 s under the interpreter: run with -m slow")
    pytest.importorskip("triton")
    out = tmp_path / "r.json"
    proc = run("--interpret", "--tiny", "--full-ensemble", "--json", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert [r["ensemble"] for r in data["per_update"]] == [1, 2]
    assert set(data["per_update"][0]["ms_per_step"]) == {"persistent", "graph", "cudnn"}
    assert data["slice"]["members"] == 18 and data["full_ensemble"]["members"] == 36
    assert 0 <= data["slice"]["last_screen_mean_error"] <= 1
    assert len(data["targets"]) == 4 and all(t["passed"] is None for t in data["targets"])
