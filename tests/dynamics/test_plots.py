"""The figures of the one-unit dynamics: files written and the plotted data."""

import csv

import numpy as np

from bptt.dynamics import (
    activation,
    basins,
    bifurcation,
    cliff_demo,
    compare_pairs,
    perturbation_pairs,
)


def _g(w, b, x, unit):
    u = activation(unit)
    return w * u.f(x) + b - x


def test_plots_write_png_svg_csv(tmp_path):
    from bptt.dynamics import plots

    written = []
    written += plots.plot_bifurcation(bifurcation(5.0, n=101), tmp_path / "bif")
    written += plots.plot_basins(basins(5.0, n_b=30, n_x0=30, steps=100), tmp_path / "bas")
    written += plots.plot_trajectories(compare_pairs(perturbation_pairs(), steps=50),
                                       tmp_path / "traj")
    written += plots.plot_cliff(cliff_demo(n_w=40, n_b=30, n_steps=40), tmp_path / "sub" / "cliff")
    suffixes = sorted(p.name for p in written)
    assert suffixes == sorted(["bif.png", "bif.svg", "bif.csv", "bas.png", "bas.svg", "bas.csv",
                               "traj.png", "traj.svg", "traj.csv", "cliff.png", "cliff.svg",
                               "cliff.csv", "cliff_paths.csv"])
    for p in written:
        assert p.exists() and p.stat().st_size > 0
    assert (tmp_path / "bif.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "bif.csv") as fh:
        rows = list(csv.DictReader(fh))
    folds = [r for r in rows if r["kind"] == "fold"]
    assert len(folds) == 2
    pts = [r for r in rows if r["kind"] == "fixed_point"]
    b = np.array([float(r["b"]) for r in pts])
    x = np.array([float(r["x"]) for r in pts])
    assert np.max(np.abs(_g(5.0, b, x, "sigmoid"))) < 1e-9
    with open(tmp_path / "sub" / "cliff_paths.csv") as fh:
        assert next(csv.reader(fh))[:4] == ["path", "iteration", "w", "b"]
