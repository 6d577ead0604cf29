"""The figures and the `bptt plot` commands, on small sizes."""

import functools
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bptt import ElmanRNN
from bptt.cli.plot import plot
from bptt.diagnostics import gradient_flow
from bptt.diagnostics.plots import plot_gradient_flow
from bptt.store import Store
from bptt.training.trainer import TrainConfig, Trainer


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "runs.sqlite"
    store = Store(path)
    Trainer(TrainConfig(task="temporal_order", min_length=20, max_length=20, hidden=8, seeds=[0],
                        max_updates=30, eval_every=10, check_sequences=20, eval_sequences=50),
            store).run()
    store.log_event(1, 17, "nonfinite", "gradient norm inf: update skipped")
    empty = store.start_run({"task": "temporal_order"})
    assert empty == 2
    store.close()
    return path


def written(output: str) -> list[Path]:
    paths = [Path(line) for line in output.splitlines() if line.strip()]
    assert paths
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p
    return paths


def names(paths) -> set[str]:
    return {p.name for p in paths}


def invoke(args):
    result = CliRunner().invoke(plot, args, catch_exceptions=False)
    return result


def test_plot_run(store_path, tmp_path):
    r = invoke(["run", "1", "--store", str(store_path), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {"training-run1.png", "training-run1.svg", "training-run1.csv",
            "training-run1_events.csv"} <= names(written(r.output))
    header = (tmp_path / "training-run1.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss", "grad_norm", "clipped", "rho", "check_error", "omega"} <= set(header)
    assert "17,nonfinite" in (tmp_path / "training-run1_events.csv").read_text()


def test_plot_run_errors(store_path, tmp_path):
    r = invoke(["run", "99", "--store", str(store_path), "--out", str(tmp_path)])
    assert r.exit_code != 0 and "no run with id 99" in r.output
    r = invoke(["run", "2", "--store", str(store_path), "--out", str(tmp_path)])
    assert r.exit_code != 0 and "no recorded curves" in r.output
    r = invoke(["run", "1", "--store", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path)])
    assert r.exit_code != 0 and "no results store" in r.output
    r = invoke(["gradient-flow", "--run", "2", "--store", str(store_path), "--out", str(tmp_path)])
    assert r.exit_code != 0 and "no saved checkpoint" in r.output


def test_plot_gradient_flow(store_path, tmp_path):
    r = invoke(["gradient-flow", "--run", "1", "--store", str(store_path), "--batch", "4",
                "--params", "W_rec,b", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert {"gradient-flow-run1-B4-W_rec+b.png", "gradient-flow-run1-B4-W_rec+b.csv",
            "gradient-flow-run1-B4-W_rec+b_lag.csv", "jacobian-norms-run1-B4.png",
            "jacobian-norms-run1-B4.svg"} <= names(written(r.output))
    r = invoke(["gradient-flow", "--hidden", "6", "--length", "2", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "length" in r.output
    r = invoke(["gradient-flow", "--params", "W_out", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "W_rec" in r.output


def test_plot_spectra_and_lyapunov(store_path, tmp_path):
    r = invoke(["spectra", "--run", "1", "--store", str(store_path), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {"spectra-run1.png", "spectra-run1.svg", "spectra-run1.csv"} <= names(written(r.output))
    csv = (tmp_path / "spectra-run1.csv").read_text()
    assert "at initialisation" in csv and "trained" in csv
    r = invoke(["lyapunov", "--init", "basic_tanh", "--hidden", "6", "--steps", "150",
                "--transient", "20", "--k", "3", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    stem = "lyapunov-init-basic_tanh-h6-steps150-transient20-k3"
    assert {f"{stem}.png", f"{stem}.svg", f"{stem}.csv"} <= names(written(r.output))
    csv = (tmp_path / f"{stem}.csv").read_text()
    assert "autonomous" in csv and "driven" in csv and "reference" in csv
    r = invoke(["lyapunov", "--steps", "50", "--transient", "50", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--transient" in r.output


def test_plot_depth(tmp_path):
    r = invoke(["depth", "--hidden", "8", "--depth", "12", "--draws", "3", "--gains", "0.9,1,1.1",
                "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    stem = "depth-h8-T12-g0.9_1_1.1-draws3"
    assert {f"{stem}.png", f"{stem}.svg", f"{stem}.csv"} <= names(written(r.output))
    r = invoke(["depth", "--gains", "1,x", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--gains" in r.output
    r = invoke(["depth", "--units", "tanh,softplus", "--out", str(tmp_path)])
    assert r.exit_code == 2


def test_plot_one_unit_dynamics(tmp_path, monkeypatch):
    import bptt.dynamics as dyn

    # coarse grids: the commands call these functions by module attribute
    monkeypatch.setattr(dyn, "basins", functools.partial(dyn.basins, n_b=41, n_x0=41, steps=100))
    monkeypatch.setattr(dyn, "bifurcation", functools.partial(dyn.bifurcation, n=101, n_grid=401))
    monkeypatch.setattr(dyn, "cliff_demo", functools.partial(dyn.cliff_demo, n_w=41, n_b=41,
                                                             n_steps=40))
    r = invoke(["bifurcation", "--w", "5.0", "--unit", "sigmoid", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {"bifurcation-sigmoid-w5.png", "bifurcation-sigmoid-w5.svg",
            "bifurcation-sigmoid-w5.csv"} <= names(written(r.output))
    r = invoke(["basins", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {"basins-sigmoid-w5.png", "trajectories-sigmoid-w5.png",
            "trajectories-sigmoid-w5.csv"} <= names(written(r.output))
    r = invoke(["cliff", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {"cliff.png", "cliff.svg", "cliff.csv"} <= names(written(r.output))
    r = invoke(["bifurcation", "--w", "nan", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_main_cli_has_the_plot_group():
    from bptt.cli import main

    r = CliRunner().invoke(main, ["plot", "--help"])
    assert r.exit_code == 0
    for cmd in ("run", "gradient-flow", "spectra", "lyapunov", "depth", "bifurcation", "basins", "cliff"):
        assert cmd in r.output


def test_plot_functions_directly(tmp_path):
    m = ElmanRNN(3, 5, 4, init="basic_tanh", output="softmax", dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 2, 3, generator=g, dtype=torch.float64)
    y = torch.randint(4, (12, 2), generator=g)
    flow = gradient_flow(m, x, y, params=("W_rec", "W_in"))
    paths = plot_gradient_flow(flow, tmp_path / "gf", param="W_in")
    assert [p.name for p in paths] == ["gf.png", "gf.svg", "gf.csv", "gf_lag.csv"]
    rows = (tmp_path / "gf.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 12 * 13 // 2
    with pytest.raises(ValueError, match="not taken apart"):
        plot_gradient_flow(flow, tmp_path / "gf2", param="b")


def test_figures_of_different_networks_keep_their_own_files(store_path, tmp_path):
    """Each figure is named after what it shows: no invocation replaces another's figure."""
    seen = {}
    for args in (["spectra", "--run", "1", "--store", str(store_path)], ["spectra", "--init", "basic_tanh"],
                 ["spectra"], ["spectra", "--hidden", "6"], ["gradient-flow", "--init", "basic_tanh", "--hidden", "6"],
                 ["gradient-flow", "--init", "basic_tanh", "--hidden", "6", "--length", "30"]):
        r = invoke([*args, "--out", str(tmp_path)])
        assert r.exit_code == 0, r.output
        for p in written(r.output):
            assert p.name not in seen, f"{args} replaced the figure of {seen.get(p.name)}"
            seen[p.name] = args
    assert {"spectra-run1.png", "spectra-init-basic_tanh.png", "spectra-init-smart_tanh.png",
            "gradient-flow-init-basic_tanh-h6.png", "gradient-flow-init-basic_tanh-h6-L30.png"} <= set(seen)
