"""The figure of teacher forcing on the one-unit network (Doya 1993; the paper's §2.2).

Three panels: where the parameters go, drawn over the bifurcation diagram (the
free-running state ``x_T`` against ``b`` over the fixed points of ``x -> w u(x) + b``
when only ``b`` trains; the path in the ``(w, b)`` plane over the fold curves when ``w``
trains too), the gradient norm along training with the fold crossings marked, and the
free-running loss along training.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bptt.dynamics.fixed_points import bifurcation, fold_points
from bptt.dynamics.teacher_forcing import TeacherForcingDemo, TrainingPath, fold_crossings

__all__ = ["plot_teacher_forcing"]

COLORS = {False: "#c0392b", True: "#1f4e9c"}


def _over_bifurcation(ax, demo: TeacherForcingDemo) -> None:
    w = float(demo.free.params[0, 0])
    b_all = np.concatenate([demo.free.params[:, 1], demo.forced.params[:, 1]])
    lo, hi = float(b_all.min()), float(b_all.max())
    folds = fold_points(w, demo.free.unit)
    if folds:
        lo, hi = min(lo, folds[0].b), max(hi, folds[-1].b)
    pad = 0.15 * (hi - lo) + 0.05
    bif = bifurcation(w=w, b_range=(lo - pad, hi + pad), n=401, unit=demo.free.unit)
    for k in range(bif.n_branches):
        x = bif.x[:, k]
        st = bif.stable[:, k]
        ax.plot(bif.b, np.where(st, x, np.nan), color="#777777", lw=2.5, alpha=0.6)
        ax.plot(bif.b, np.where(~st & np.isfinite(x), x, np.nan), "--", color="#777777", lw=1.2, alpha=0.6)
    for f in folds:
        ax.axvline(f.b, color="#999999", lw=0.8, ls=":")
    for p in (demo.free, demo.forced):
        ax.plot(p.params[:, 1], p.x_final, ".-", ms=2.5, lw=0.7, color=COLORS[p.forcing], label=p.label)
    ax.plot([demo.free.params[0, 1]], [demo.free.x_final[0]], "ko", ms=4)
    ax.set_xlabel("b")
    ax.set_ylabel(r"free-running state $x_T$ (grey: fixed points)")
    ax.set_title(f"path over the bifurcation diagram, w = {w:g}")
    ax.legend(fontsize=7, loc="upper left")


def _over_folds(ax, demo: TeacherForcingDemo) -> None:
    ws = np.concatenate([demo.free.params[:, 0], demo.forced.params[:, 0]])
    wgrid = np.linspace(max(float(ws.min()) - 0.5, 1e-3), float(ws.max()) + 0.5, 200)
    lower, upper = [], []
    for w in wgrid:
        f = fold_points(float(w), demo.free.unit)
        lower.append(f[0].b if len(f) == 2 else np.nan)
        upper.append(f[1].b if len(f) == 2 else np.nan)
    ax.fill_between(wgrid, lower, upper, color="#dddddd", label="bistable (between the folds)")
    ax.plot(wgrid, lower, color="#777777", lw=1)
    ax.plot(wgrid, upper, color="#777777", lw=1)
    for p in (demo.free, demo.forced):
        ax.plot(p.params[:, 0], p.params[:, 1], ".-", ms=2.5, lw=0.7, color=COLORS[p.forcing], label=p.label)
    ax.plot(*demo.free.params[0], "ko", ms=4)
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.set_title("parameter path over the fold curves")
    ax.legend(fontsize=7)


def plot_teacher_forcing(demo: TeacherForcingDemo, out_stem: Path) -> list[Path]:
    """Draw :class:`TeacherForcingDemo`; writes ``<out_stem>.png``, ``.svg`` and ``.csv``
    (per iteration and path: w, b, loss, free loss, gradient norm, x_T) and returns them."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(13, 4.0), layout="constrained")
    ax_path, ax_norm, ax_loss = fig.subplots(1, 3)
    if "w" in demo.free.train:
        _over_folds(ax_path, demo)
    else:
        _over_bifurcation(ax_path, demo)
    for p in (demo.free, demo.forced):
        it = np.arange(len(p.grad_norm))
        ax_norm.semilogy(it, p.grad_norm, color=COLORS[p.forcing], lw=1.2, label=p.label)
        ax_loss.semilogy(it, p.free_loss, color=COLORS[p.forcing], lw=1.2, label=p.label)
        for k in fold_crossings(p.params, p.unit):
            for ax in (ax_norm, ax_loss):
                ax.axvline(k + 0.5, color=COLORS[p.forcing], lw=0.8, ls=":")
    ax_norm.set_title("gradient norm of the loss trained (dotted: fold crossings)")
    ax_norm.set_xlabel("gradient descent iteration")
    ax_norm.set_ylabel(r"$\|\partial L / \partial \theta\|$")
    ax_norm.legend(fontsize=7)
    ax_loss.set_title("free-running loss (what the network does)")
    ax_loss.set_xlabel("gradient descent iteration")
    ax_loss.set_ylabel(r"mean$_t\,(x_t - y_t)^2$")
    png = out_stem.with_name(out_stem.name + ".png")
    fig.savefig(png, dpi=100)
    svg = out_stem.with_name(out_stem.name + ".svg")
    fig.savefig(svg)
    path = out_stem.with_name(out_stem.name + ".csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "iteration", "w", "b", "loss", "free_loss", "grad_norm", "x_T"])
        for p in (demo.free, demo.forced):
            name = "forced" if p.forcing else "free"
            for k in range(len(p.loss)):
                w.writerow([name, k, *(f"{v:.10g}" for v in (p.params[k, 0], p.params[k, 1], p.loss[k],
                                                              p.free_loss[k], p.grad_norm[k], p.x_final[k]))])
    return [png, svg, path]
