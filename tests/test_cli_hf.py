"""``bptt train --optimizer hf``: a smoke run that learns temporal order, what it records
and prints, and its bad settings as clean command-line errors."""

import pytest
from click.testing import CliRunner

from bptt.cli import main
from bptt.store import Store


pytestmark = pytest.mark.usefixtures("one_thread")


HF = ["--optimizer", "hf", "--task", "temporal_order", "--length", "20", "--hidden", "20", "--gradient-batch",
      "300", "--curvature-batch", "60", "--damping", "0.1", "--cg-max-iters", "50", "--eval-every", "2",
      "--eval-sequences", "1000", "--max-updates", "40", "--seeds", "0,1", "--no-progress"]


def run(args):
    return CliRunner().invoke(main, ["train", *args])


def test_hf_learns_temporal_order_from_the_command_line(tmp_path):
    """Smoke: the error on 1,000 fresh sequences falls far below chance (3/4) within 40 HF iterations."""
    path = tmp_path / "runs.sqlite"
    result = run([*HF, "--store", str(path)])
    assert result.exit_code == 0, result.output
    assert "GN products" in result.output                     # HF's cost per run is printed
    runs = Store(path).list_runs()
    assert len(runs) == 2
    for r in runs:
        m = r["metrics"]
        assert r["status"] == "succeeded" and m["error"] < 0.05 and m["updates"] <= 40
        assert r["config"]["optimizer"] == "hf" and r["config"]["method"] == "msgd"   # hf's default method
        assert r["config"]["damping"] == 0.1 and r["config"]["curvature_batch"] == 60
        assert m["hf_iterations"] == m["updates"] and m["hf_curvature_products"] > m["hf_cg_iterations"] > 0
        assert f"{r['id']:>5}  {m['hf_iterations']:>8.0f}" in result.output


@pytest.mark.parametrize("args,match", [
    (["--damping", "-1"], "damping"), (["--damping", "nan"], "damping"),
    (["--structural-damping", "-0.5"], "structural_damping"), (["--structural-damping", "nan"], "structural_damping"),
    (["--gradient-batch", "0"], "gradient_batch"), (["--curvature-batch", "-3"], "curvature_batch"),
    (["--cg-max-iters", "0"], "cg_max_iters"), (["--cg-max-iters", "-5"], "cg_max_iters"),
    (["--cg-decay", "1.5"], "cg_decay"), (["--cg-tolerance", "0"], "cg_tolerance"),
    (["--gradient-batch", "50", "--curvature-batch", "100"], "must not exceed"),
    (["--method", "msgd-c"], "neither clips nor adds"),
    (["--model", "gru", "--structural-damping", "0.1"], "only the elman"),
    (["--cg-max-iters", "ten"], "not a valid integer"),
])
def test_bad_hf_settings_are_clean_errors(tmp_path, args, match):
    result = run(["--optimizer", "hf", "--length", "10", *args, "--no-progress", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and match in result.output, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (ValueError, TypeError))


def test_hf_options_belong_to_optimizer_hf(tmp_path):
    result = run(["--damping", "0.1", "--no-progress", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--damping is an option of --optimizer hf" in result.output
