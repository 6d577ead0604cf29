"""Figures for the one-unit dynamics (bifurcation diagram, basins, trajectories, Figure 6).

Every ``plot_*`` function takes the data computed by :mod:`bptt.dynamics`, writes
``<out_stem>.png``, ``<out_stem>.svg`` and the plotted data as
``<out_stem>.csv`` (plus ``<out_stem>_paths.csv`` for the descent paths of the
error surface) and returns the written paths.  Figures are drawn with the
object-oriented Matplotlib API, so no global backend is selected or changed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.patheffects import withStroke
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3-D projection)

from bptt.dynamics.basins import Basins, Trajectories
from bptt.dynamics.cliff import CliffDemo, DescentPath, ErrorSurface
from bptt.dynamics.fixed_points import Bifurcation
from bptt.dynamics.unit_map import activation

__all__ = [
    "plot_bifurcation",
    "plot_basins",
    "plot_trajectories",
    "plot_error_surface",
    "plot_cliff",
]

STABLE_COLOR = "#1f4e9c"
UNSTABLE_COLOR = "#c0392b"
FOLD_COLOR = "#555555"
PLAIN_COLOR = "#ff2a2a"
CLIPPED_COLOR = "#ffffff"
PAIR_COLORS = ("#1f77b4", "#ff7f0e")


# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------


def _with_suffix(out_stem: Path, suffix: str) -> Path:
    out_stem = Path(out_stem)
    return out_stem.with_name(out_stem.name + suffix)


def _save_figure(fig: Figure, out_stem: Path) -> list[Path]:
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [_with_suffix(out_stem, ".png"), _with_suffix(out_stem, ".svg")]
    fig.savefig(paths[0], dpi=150)
    # The layout computed for the PNG is kept for the SVG instead of being solved again.
    fig.set_layout_engine("none")
    fig.savefig(paths[1])
    return paths


def _write_csv(path: Path, header: Sequence[str], columns: Sequence[Iterable]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in zip(*columns):
            writer.writerow([_fmt(v) for v in row])
    return path


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.12g}"
    return str(v)


def _map_label(unit: str) -> str:
    sym = activation(unit).symbol
    return rf"$x_t = w\,{sym}(x_{{t-1}}) + b$"


# ---------------------------------------------------------------------------
# Bifurcation diagram
# ---------------------------------------------------------------------------


def _branch_series(result: Bifurcation, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(b, x, stable)`` of branch ``k`` with the folds that end it appended, sorted by b."""
    b, x, st = result.b, result.x[:, k], result.stable[:, k]
    keep = np.isfinite(x)
    bs, xs, ss = list(b[keep]), list(x[keep]), list(st[keep])
    for c, xc in enumerate(result.critical_x):
        if k in (c, c + 1):
            fold = min(result.folds, key=lambda f: abs(f.x - xc))
            if result.b[0] <= fold.b <= result.b[-1]:
                bs.append(fold.b)
                xs.append(fold.x)
                ss.append(None)
    order = np.argsort(bs, kind="stable")
    return np.asarray(bs)[order], np.asarray(xs)[order], np.asarray(ss, dtype=object)[order]


def plot_bifurcation(result: Bifurcation, out_stem: Path) -> list[Path]:
    """Fixed points against ``b``: stable solid, unstable dashed, folds marked."""
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    sym = activation(result.unit).symbol
    stable_label = rf"stable fixed point ($|w\,{sym}'(x^*)|<1$)"
    unstable_label = rf"unstable fixed point ($|w\,{sym}'(x^*)|>1$)"
    drew_stable = drew_unstable = False
    for k in range(result.n_branches):
        b, x, st = _branch_series(result, k)
        if b.size == 0:
            continue
        fold_pt = np.array([s is None for s in st])
        stable = np.array([bool(s) for s in st]) | fold_pt
        unstable = ~np.array([bool(s) for s in st]) | fold_pt
        ys = np.where(stable, x, np.nan)
        yu = np.where(unstable, x, np.nan)
        if np.any(np.isfinite(ys) & ~fold_pt):
            ax.plot(b, ys, "-", color=STABLE_COLOR, lw=2.2,
                    label=None if drew_stable else stable_label)
            drew_stable = True
        if np.any(np.isfinite(yu) & ~fold_pt):
            ax.plot(b, yu, "--", color=UNSTABLE_COLOR, lw=2.0,
                    label=None if drew_unstable else unstable_label)
            drew_unstable = True
    ylo, yhi = np.nanmin(result.x), np.nanmax(result.x)
    pad = 0.08 * (yhi - ylo if yhi > ylo else 1.0)
    ax.set_ylim(ylo - pad, yhi + pad)
    inside = [f for f in result.folds if result.b[0] <= f.b <= result.b[-1]]
    for i, f in enumerate(inside):
        ax.axvline(f.b, color=FOLD_COLOR, ls=":", lw=1.2,
                   label="fold (saddle-node) point" if i == 0 else None)
        ax.plot([f.b], [f.x], "o", ms=7, mfc="white", mec="black", zorder=5)
        right = f.vanishing == "lower"
        ax.annotate(f"fold: b = {f.b:.4f}\n{f.vanishing} attractor\nvanishes "
                    + ("for larger b" if right else "for smaller b"),
                    xy=(f.b, f.x), xytext=(18 if right else -18, -40 if right else 28),
                    textcoords="offset points", ha="left" if right else "right", fontsize=9,
                    arrowprops=dict(arrowstyle="->", color="black", lw=0.8),
                    bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.7"))
    if len(inside) == 2:
        ax.axvspan(inside[0].b, inside[1].b, color="0.85", alpha=0.5, lw=0,
                   label="bistable window (3 fixed points)")
    ax.set_xlabel(r"bias $b$")
    ax.set_ylabel(r"fixed point $x^*$")
    ax.set_title(f"Bifurcation diagram of {_map_label(result.unit)}, $w = {result.w:g}$")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9, framealpha=0.9)
    paths = _save_figure(fig, out_stem)
    bp, xp, kp, sp = result.points()
    mult = result.multiplier[np.isfinite(result.x)]
    kinds = ["fixed_point"] * bp.size + ["fold"] * len(result.folds)
    fb = [f.b for f in result.folds]
    fx = [f.x for f in result.folds]
    paths.append(_write_csv(
        _with_suffix(out_stem, ".csv"),
        ["kind", "b", "x", "branch", "stable", "multiplier"],
        [kinds, list(bp) + fb, list(xp) + fx, list(kp) + [""] * len(fb),
         list(sp) + [""] * len(fb), list(mult) + [1.0] * len(fb)]))
    return paths


# ---------------------------------------------------------------------------
# Basins of attraction and trajectories
# ---------------------------------------------------------------------------


def plot_basins(result: Basins, out_stem: Path) -> list[Path]:
    """Attractor reached from each ``(b, x0)``, with the fixed-point curves on top."""
    names = result.label_names()
    labels = sorted(names)
    palette = {-1: "#9e9e9e"}
    base = ["#9ecae1", "#e5e5e5", "#fdae6b"] if result.fixed.n_branches == 3 else ["#9ecae1"]
    for k in range(result.fixed.n_branches):
        palette[k] = base[k % len(base)]
    cmap = ListedColormap([palette[v] for v in labels])
    norm = BoundaryNorm(np.arange(labels[0] - 0.5, labels[-1] + 1.0), cmap.N)

    fig = Figure(figsize=(7.5, 5.6), layout="constrained")
    ax = fig.add_subplot()
    db = (result.b[1] - result.b[0]) / 2
    dx = (result.x0[1] - result.x0[0]) / 2
    ax.imshow(result.label, origin="lower", aspect="auto", cmap=cmap, norm=norm,
              interpolation="nearest",
              extent=(result.b[0] - db, result.b[-1] + db, result.x0[0] - dx, result.x0[-1] + dx))
    fx = result.fixed
    for k in range(fx.n_branches):
        b, x, st = _branch_series(fx, k)
        fold_pt = np.array([s is None for s in st], dtype=bool)
        sb = np.array([bool(s) for s in st], dtype=bool)
        ax.plot(b, np.where(sb | fold_pt, x, np.nan), "-", color="black", lw=1.6)
        ax.plot(b, np.where(~sb | fold_pt, x, np.nan), "--", color=UNSTABLE_COLOR, lw=1.8)
    for f in fx.folds:
        if result.b[0] <= f.b <= result.b[-1]:
            ax.axvline(f.b, color=FOLD_COLOR, ls=":", lw=1.2)
    present = set(np.unique(result.label).tolist())
    handles = []
    for v in sorted(labels, key=lambda v: (v < 0, v)):
        if v not in present:
            continue
        text = f"not settled after {result.steps} steps" if v == -1 else f"→ {names[v]} attractor"
        handles.append(Patch(facecolor=palette[v], edgecolor="0.4", label=text))
    handles += [
        ax.plot([], [], "-", color="black", lw=1.6, label="stable fixed point")[0],
        ax.plot([], [], "--", color=UNSTABLE_COLOR, lw=1.8,
                label="unstable fixed point = basin boundary")[0],
        ax.plot([], [], ":", color=FOLD_COLOR, lw=1.2, label="fold points")[0],
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=9, framealpha=0.92)
    ax.set_xlim(result.b[0] - db, result.b[-1] + db)
    ax.set_ylim(result.x0[0] - dx, result.x0[-1] + dx)
    ax.set_xlabel(r"bias $b$")
    ax.set_ylabel(r"initial state $x_0$")
    ax.set_title(f"Basins of attraction of {_map_label(result.unit)}, $w = {result.w:g}$")
    paths = _save_figure(fig, out_stem)
    B, X0 = np.meshgrid(result.b, result.x0)
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"), ["b", "x0", "x_final", "label"],
                            [B.ravel(), X0.ravel(), result.x_final.ravel(), result.label.ravel()]))
    return paths


def plot_trajectories(result: Trajectories, out_stem: Path) -> list[Path]:
    """One panel per group of orbits, ``x_t`` against ``t``, with the final gap quoted."""
    groups = np.unique(result.group)
    n = groups.size
    ncols = 1 if n == 1 else 2
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(6.2 * ncols, 3.7 * nrows + 0.5), layout="constrained")
    t = np.arange(result.x.shape[1])
    for i, g in enumerate(groups):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        rows = np.flatnonzero(result.group == g)
        for j, r in enumerate(rows):
            ax.plot(t, result.x[r], color=PAIR_COLORS[j % 2] if len(rows) <= 2 else None,
                    lw=1.8, ls="-" if j % 2 == 0 else "--", label=result.labels[r])
            ax.plot([0], [result.x[r, 0]], "o", ms=5,
                    color=PAIR_COLORS[j % 2] if len(rows) <= 2 else "black")
        title = result.titles[g] if g < len(result.titles) else ""
        gap = result.final_gap(int(g))
        what = r"$|\Delta x_T|$" if len(rows) == 2 else r"spread of $x_T$"
        ax.set_title(f"{title}\n{what} = {gap:.3g} at $T = {result.steps}$", fontsize=10)
        ax.set_xlabel(r"time step $t$")
        ax.set_ylabel(r"state $x_t$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Orbits of {_map_label(result.unit)}, $w = {result.w:g}$")
    paths = _save_figure(fig, out_stem)
    k, T = result.x.shape
    rows = np.repeat(np.arange(k), T)
    paths.append(_write_csv(
        _with_suffix(out_stem, ".csv"), ["group", "row", "b", "x0", "t", "x"],
        [result.group[rows], rows, result.b[rows], result.x0[rows], np.tile(t, k),
         result.x.ravel()]))
    return paths


# ---------------------------------------------------------------------------
# Error surface (Figure 6)
# ---------------------------------------------------------------------------


def _inside(p: np.ndarray, surface: ErrorSurface) -> np.ndarray:
    return ((p[:, 0] >= surface.w[0]) & (p[:, 0] <= surface.w[-1])
            & (p[:, 1] >= surface.b[0]) & (p[:, 1] <= surface.b[-1]))


def _in_window_part(p: DescentPath, surface: ErrorSurface) -> tuple[np.ndarray, int | None]:
    """The path up to its first point off the surface window, and that point's index."""
    out = np.flatnonzero(~_inside(p.params, surface))
    if out.size == 0:
        return p.params, None
    return p.params[: out[0]], int(out[0])


def _path_style(path: DescentPath) -> dict:
    if path.clip_threshold is None:
        return dict(color=PLAIN_COLOR, line_color=PLAIN_COLOR, marker="o", lw=1.5, z=5,
                    effects=None)
    return dict(color=CLIPPED_COLOR, line_color="black", marker=".", lw=1.4, z=4,
                effects=[withStroke(linewidth=3.4, foreground="black")])


def _zoom_box(surface: ErrorSurface, paths: Sequence[DescentPath]):
    """A window around the in-range parts of the paths, or None if nothing is in range."""
    pts = [_in_window_part(p, surface)[0] for p in paths]
    pts = np.concatenate(pts) if pts else np.empty((0, 2))
    if pts.shape[0] < 2:
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    full = np.array([surface.w[-1] - surface.w[0], surface.b[-1] - surface.b[0]])
    span = np.maximum(hi - lo, 0.05 * full)
    lo, hi = lo - 0.15 * span, hi + 0.15 * span
    return lo[0], hi[0], lo[1], hi[1]


def _heatmap(ax, surface: ErrorSurface):
    """``E`` on a log colour scale; returns the image."""
    positive = surface.E[surface.E > 0]
    vmax = float(surface.E.max()) if surface.E.max() > 0 else 1.0
    vmin = max(float(positive.min()) if positive.size else vmax * 1e-6, vmax * 1e-6)
    dw = (surface.w[1] - surface.w[0]) / 2
    db = (surface.b[1] - surface.b[0]) / 2
    extent = (surface.w[0] - dw, surface.w[-1] + dw, surface.b[0] - db, surface.b[-1] + db)
    im = ax.imshow(np.clip(surface.E, vmin, None), origin="lower", aspect="auto",
                   extent=extent, cmap="viridis", norm=LogNorm(vmin=vmin, vmax=vmax),
                   interpolation="nearest")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(r"recurrent weight $w$")
    ax.set_ylabel(r"bias $b$")
    return im


def _draw_wall(ax, surface: ErrorSurface, label: bool) -> None:
    """Where ``x0`` is the unstable fixed point: ``b = x0 - w u(x0)`` with ``w u'(x0) > 1``.

    Across this basin boundary ``x_T`` jumps from one attractor to the other,
    which is where the wall of the error surface stands.
    """
    u = activation(surface.unit)
    w_wall = 1.0 / float(u.df(surface.x0))
    ww = np.linspace(max(w_wall, surface.w[0]), surface.w[-1], 400)
    bw = surface.x0 - ww * float(u.f(surface.x0))
    ok = (bw >= surface.b[0]) & (bw <= surface.b[-1]) & (ww > w_wall)
    if np.any(ok):
        text = rf"wall: $x_0$ is the unstable fixed point, $b = x_0 - w\,{u.symbol}(x_0)$"
        ax.plot(ww[ok], bw[ok], ls=(0, (1, 2)), color="black", lw=1.1, zorder=3,
                label=text if label else None)


def _draw_paths(ax, surface: ErrorSurface, paths: Sequence[DescentPath], detailed: bool,
                arrow_frac: float) -> None:
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    span = np.array([xlim[1] - xlim[0], ylim[1] - ylim[0]])
    for i, p in enumerate(paths):
        st = _path_style(p)
        seg, off = _in_window_part(p, surface)
        ax.plot(seg[:, 0], seg[:, 1], "-", color=st["color"], lw=st["lw"], marker=st["marker"],
                ms=3.5, zorder=st["z"], path_effects=st["effects"],
                label=p.label if detailed else None)
        if i == 0:
            start = p.params[0]
            ax.plot(*start, marker="*", ms=17 if detailed else 13, color="yellow", mec="black",
                    ls="none", zorder=7,
                    label=f"start $(w_0, b_0) = ({start[0]:g}, {start[1]:g})$" if detailed
                    else None)
        if off is None:
            ax.plot(*p.params[-1], marker="X", ms=11 if detailed else 9, color=st["color"],
                    mec="black", ls="none", zorder=7,
                    label=f"end of {p.label}: $E = {p.losses[-1]:.2g}$" if detailed else None)
            continue
        k = off - 1
        land = p.params[off]
        direction = (land - p.params[k]) / np.linalg.norm(land - p.params[k])
        tip = p.params[k] + direction * arrow_frac * span
        ax.annotate("", xy=tip, xytext=p.params[k], zorder=6,
                    arrowprops=dict(arrowstyle="-|>", color=st["color"], lw=2.4))
        if detailed:
            ax.annotate(f"{p.label}, iteration {k}:\n"
                        f"hits the wall, $\\|\\nabla E\\| = {p.grad_norms[k]:.3g}$;\n"
                        f"a step of length {p.step_sizes[k]:.3g} throws it\n"
                        f"to $(w, b) = ({land[0]:.4g}, {land[1]:.4g})$, off the plot",
                        xy=tip, xytext=(-12, 4), textcoords="offset points", ha="right",
                        va="bottom", fontsize=9, zorder=8,
                        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=st["color"]))


def _surface_3d(ax3, surface: ErrorSurface, paths: Sequence[DescentPath]) -> None:
    """``E`` itself as a height (a linear scale shows the wall as a cliff)."""
    stride = max(1, int(np.ceil(max(surface.w.size, surface.b.size) / 120)))
    W, B = np.meshgrid(surface.w[::stride], surface.b[::stride])
    ax3.plot_surface(W, B, surface.E[::stride, ::stride], cmap="viridis", linewidth=0,
                     antialiased=False, alpha=0.85, rasterized=True)
    for i, p in enumerate(paths):
        st = _path_style(p)
        seg, _ = _in_window_part(p, surface)
        z = p.losses[: seg.shape[0]] + 0.005
        ax3.plot(seg[:, 0], seg[:, 1], z, color=st["line_color"], lw=1.3, zorder=10)
        if i == 0:
            ax3.scatter([seg[0, 0]], [seg[0, 1]], [z[0]], marker="*", s=140, color="yellow",
                        edgecolor="black", depthshade=False, zorder=11)
    ax3.set_xlim(surface.w[0], surface.w[-1])
    ax3.set_ylim(surface.b[0], surface.b[-1])
    ax3.set_xlabel(r"$w$")
    ax3.set_ylabel(r"$b$")
    ax3.set_zlabel(r"$E$")
    ax3.view_init(elev=35, azim=-125)
    ax3.set_title("3-D view: the cliff along the basin boundary")


def plot_error_surface(surface: ErrorSurface, out_stem: Path,
                       paths: Sequence[DescentPath] = ()) -> list[Path]:
    """Figure 6: heat map of ``E`` (log colour scale) and a 3-D view, with descent paths.

    With paths, a zoom on them and their gradient norms and errors per
    iteration are added; a path thrown off the window is drawn up to the
    throw, with an arrow in the direction of the step.
    """
    paths = list(paths)
    sym = activation(surface.unit).symbol
    e_label = rf"$E = ({sym}(x_{{{surface.steps}}}) - {surface.target:g})^2$"
    box = _zoom_box(surface, paths) if paths else None
    if paths:
        fig = Figure(figsize=(20, 11.5), layout="constrained")
        grid = fig.add_gridspec(2, 6)
        ax = fig.add_subplot(grid[0, 0:2])
        axz = fig.add_subplot(grid[0, 2:4]) if box is not None else None
        ax3 = fig.add_subplot(grid[0, 4:6], projection="3d")
    else:
        fig = Figure(figsize=(14, 5.8), layout="constrained")
        grid = fig.add_gridspec(1, 2)
        ax = fig.add_subplot(grid[0, 0])
        axz = None
        ax3 = fig.add_subplot(grid[0, 1], projection="3d")

    im = _heatmap(ax, surface)
    _draw_wall(ax, surface, label=True)
    _draw_paths(ax, surface, paths, detailed=True, arrow_frac=0.2)
    ax.set_title(f"{e_label}, $x_0 = {surface.x0:g}$ (log colour scale)")
    if paths:
        ax.legend(loc="lower left", fontsize=8.5, framealpha=0.92)
    cb = fig.colorbar(im, ax=ax if axz is None else [ax, axz], shrink=0.9, extend="min",
                      location="right" if axz is None else "bottom", aspect=40)
    cb.set_label(f"{e_label} (log scale)")
    if axz is not None:
        _heatmap(axz, surface)
        axz.set_xlim(box[0], box[1])
        axz.set_ylim(box[2], box[3])
        _draw_wall(axz, surface, label=False)
        _draw_paths(axz, surface, paths, detailed=False, arrow_frac=0.25)
        axz.set_title("zoom on the paths: the valley runs along the wall")
        ax.indicate_inset([box[0], box[2], box[1] - box[0], box[3] - box[2]],
                          edgecolor="white", alpha=0.9, lw=1.2)
    _surface_3d(ax3, surface, paths)

    if paths:
        axg = fig.add_subplot(grid[1, 0:3])
        axl = fig.add_subplot(grid[1, 3:6])
        for p in paths:
            st = _path_style(p)
            it = np.arange(p.grad_norms.size)
            g = np.where(p.grad_norms > 0, p.grad_norms, np.nan)
            axg.semilogy(it, g, "-", marker=st["marker"], ms=3, color=st["line_color"],
                         label=p.label)
            axl.semilogy(np.arange(p.losses.size), np.clip(p.losses, 1e-16, None), "-",
                         color=st["line_color"], lw=1.6,
                         label=f"{p.label} (final E = {p.losses[-1]:.2g})")
            zero = np.flatnonzero(p.grad_norms == 0)
            if zero.size:
                axg.axvspan(zero[0] - 0.5, it[-1] + 0.5, color=st["line_color"], alpha=0.08,
                            lw=0, label=f"{p.label}: " + r"$\nabla E = 0$ exactly "
                            "(saturated unit)")
        for thr in sorted({p.clip_threshold for p in paths if p.clip_threshold is not None}):
            axg.axhline(thr, color="0.3", ls=":", lw=1.2, label=f"clipping threshold {thr:g}")
        axg.set_xlabel("gradient descent iteration")
        axg.set_ylabel(r"$\|\nabla_{(w,b)} E\|$ (log scale)")
        axg.set_title("Gradient norm along each path")
        axg.grid(alpha=0.3, which="both")
        axg.legend(fontsize=9, loc="upper right")
        axl.set_xlabel("gradient descent iteration")
        axl.set_ylabel(r"$E$ (log scale)")
        axl.set_title("Error along each path")
        axl.grid(alpha=0.3, which="both")
        axl.legend(fontsize=9, loc="lower left")
    title = (f"Error surface of {_map_label(surface.unit)} after {surface.steps} steps "
             f"(cf. Figure 6)")
    if paths:
        title += ": plain vs norm-clipped gradient descent"
    fig.suptitle(title, fontsize=14)
    out = _save_figure(fig, out_stem)
    Wg, Bg = np.meshgrid(surface.w, surface.b)
    out.append(_write_csv(_with_suffix(out_stem, ".csv"), ["w", "b", "E", "dE_dw", "dE_db"],
                          [Wg.ravel(), Bg.ravel(), surface.E.ravel(), surface.grad_w.ravel(),
                           surface.grad_b.ravel()]))
    if paths:
        cols: list[list] = [[] for _ in range(8)]
        for p in paths:
            n = p.params.shape[0]
            for k in range(n):
                last = k == n - 1
                cols[0].append(p.label)
                cols[1].append(k)
                cols[2].append(p.params[k, 0])
                cols[3].append(p.params[k, 1])
                cols[4].append(p.losses[k])
                cols[5].append("" if last else p.grad_norms[k])
                cols[6].append("" if last else p.step_sizes[k])
                cols[7].append("" if last else p.clipped[k])
        out.append(_write_csv(_with_suffix(out_stem, "_paths.csv"),
                              ["path", "iteration", "w", "b", "E", "grad_norm", "step_size",
                               "clipped"], cols))
    return out


def plot_cliff(result: CliffDemo, out_stem: Path) -> list[Path]:
    """Figure 6 with the plain and the norm-clipped descent paths from the same start."""
    return plot_error_surface(result.surface, out_stem, (result.unclipped, result.clipped))
