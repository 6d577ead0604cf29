"""Figures for the diagnostics of §2: gradient flow, Jacobian norms, spectra, Lyapunov
exponents, and shared versus untied weights over depth.

Every ``plot_*`` function writes ``<out_stem>.png``, ``<out_stem>.svg`` and the plotted
data as ``<out_stem>.csv`` (plus a second CSV where a figure shows two kinds of data)
and returns the written paths. Figures use the object-oriented Matplotlib API, so no
global backend is selected or changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from bptt.diagnostics.depth import DepthExperiment
from bptt.diagnostics.figure_style import (
    NONFINITE_COLOR,
    PARAM_COLORS,
    PARAM_LABELS,
    for_log,
    log_limits,
    positive,
    spans_decades,
)
from bptt.diagnostics.gradient_flow import GradientFlow, JacobianNorms
from bptt.diagnostics.lyapunov import LyapunovSpectrum
from bptt.diagnostics.spectra import Spectrum
from bptt.dynamics.plots import _save_figure, _with_suffix, _write_csv

__all__ = [
    "plot_gradient_flow",
    "plot_jacobian_norms",
    "plot_spectra",
    "plot_lyapunov",
    "plot_depth",
]


# ---------------------------------------------------------------------------
# Gradient flow through time
# ---------------------------------------------------------------------------


def plot_gradient_flow(flow: GradientFlow, out_stem: Path, param: str = "W_rec") -> list[Path]:
    """Heat map of ‖component (t, k)‖ (log colours) and the profile over the lag t − k."""
    if param not in flow.params:
        raise ValueError(f"param {param!r} was not taken apart; have {', '.join(flow.params)}")
    C = flow.component_norms[param]
    T = flow.T
    sym = PARAM_LABELS[param]
    fig = Figure(figsize=(13.5, 5.4), layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=(1.1, 1.0))
    ax = fig.add_subplot(grid[0, 0])
    vals = positive(C)
    if flow.sources.size > 1 and vals.size:
        vmax = float(vals.max())
        vmin = max(float(vals.min()), vmax * 1e-24)
        shown = np.where(np.isfinite(C) & (C > 0), np.clip(C, vmin, None), np.nan)
        im = ax.imshow(shown, origin="lower", aspect="auto", cmap="viridis",
                       norm=LogNorm(vmin=vmin, vmax=vmax), interpolation="nearest",
                       extent=(0.5, T + 0.5, 0.5, T + 0.5))
        ax.set_facecolor("0.92")
        label = rf"$\|\partial E_t/\partial x_t\;\partial x_t/\partial x_k\;\partial^+ x_k/\partial {sym}\|_F$"
        if vmin > vals.min():
            label += "\n(values below the colour range drawn at its bottom)"
        fig.colorbar(im, ax=ax, label=label)
        ax.set_xlabel(rf"$k$: step at which ${sym}$ is used")
        ax.set_ylabel(r"$t$: step of the error $E_t$")
        ax.set_title("Temporal components (t, k); grey: k > t (no component)")
    else:
        t = int(flow.sources[-1]) if flow.sources.size else T
        row = C[t - 1, :t]
        ax.semilogy(np.arange(1, t + 1), for_log(row), "-o", ms=2.5, color=PARAM_COLORS[param])
        log_limits(ax, row, note=True)
        ax.set_xlabel(rf"$k$: step at which ${sym}$ is used")
        ax.set_ylabel(rf"$\|$component $(T, k)\|_F$ (log scale)")
        ax.set_title(f"Components of the error at the last step, t = T = {t}")
        ax.grid(alpha=0.3, which="both")
    ax2 = fig.add_subplot(grid[0, 1])
    lags = flow.lags
    shown_vals = []
    for name in flow.params:
        color = PARAM_COLORS[name]
        s = PARAM_LABELS[name]
        ax2.semilogy(lags, for_log(flow.lag_norm[name]), "-", color=color, lw=1.8,
                     label=rf"$\|\sum_{{t-k=\mathrm{{lag}}}}$ component$\|_F$, ${s}$")
        if flow.sources.size > 1:
            ax2.semilogy(lags, for_log(flow.lag_mean[name]), "--", color=color, lw=1.3,
                         label=rf"mean of $\|$component$\|_F$ over pairs, ${s}$")
        shown_vals += [flow.lag_norm[name], flow.lag_mean[name]]
    log_limits(ax2, np.concatenate(shown_vals), note=True)
    ax2.set_xlabel(r"lag $t - k$ (steps the error travelled back)")
    ax2.set_ylabel("norm (log scale)")
    ax2.set_title("Profile over the lag: short-term vs long-term components")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=9, loc="best")
    fig.suptitle(rf"Gradient flow through time (eq. 5): $\partial E/\partial {sym}$ of a {flow.unit} "
                 f"network, {flow.output} outputs, T = {T}, E = {flow.loss:.4g}", fontsize=13)
    paths = _save_figure(fig, out_stem)
    cols: list[list] = [[] for _ in range(5)]
    for name in flow.params:
        Cn = flow.component_norms[name]
        tt, kk = np.nonzero(np.isfinite(Cn))
        cols[0] += [name] * tt.size
        cols[1] += list(tt + 1)
        cols[2] += list(kk + 1)
        cols[3] += list(tt - kk)
        cols[4] += list(Cn[tt, kk])
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"), ["param", "t", "k", "lag", "norm"], cols))
    lag_cols: list[list] = [[] for _ in range(5)]
    for name in flow.params:
        lag_cols[0] += [name] * T
        lag_cols[1] += list(lags)
        lag_cols[2] += list(flow.lag_count)
        lag_cols[3] += list(flow.lag_norm[name])
        lag_cols[4] += list(flow.lag_mean[name])
    paths.append(_write_csv(_with_suffix(out_stem, "_lag.csv"),
                            ["param", "lag", "pairs", "norm_of_sum", "mean_norm"], lag_cols))
    return paths


def plot_jacobian_norms(jac: JacobianNorms, out_stem: Path, title: str = "") -> list[Path]:
    """‖∂h_t/∂h_k‖₂ over the lag t − k, per sequence, with the bound (γλ₁)^(t−k) of eq. 7."""
    fig = Figure(figsize=(8.5, 5.4), layout="constrained")
    ax = fig.add_subplot()
    lag = jac.lag
    show = jac.norms[:20]
    for i, row in enumerate(show):
        ax.semilogy(lag, for_log(row), "-", color="0.6", lw=0.8,
                    label="one sequence each" if i == 0 else None)
    gm = jac.geometric_mean()
    ax.semilogy(lag, for_log(gm), "-", color="#1f4e9c", lw=2.4,
                label=f"geometric mean over {jac.norms.shape[0]} sequences")
    ax.semilogy(lag, for_log(jac.bound), "--", color=NONFINITE_COLOR, lw=1.6,
                label=rf"bound $\eta^{{t-k}}$, $\eta = \gamma\lambda_1 = {jac.gamma:g}\times{jac.lambda1:.3g}$")
    log_limits(ax, jac.norms, note=True)
    ax.set_xlabel(r"lag $t - k$")
    ax.set_ylabel(r"$\|\partial h_t/\partial h_k\|_2$ (log scale)")
    head = rf"Jacobian norms $\|\partial h_t/\partial h_k\|_2$ for $t = {jac.t}$ (paper eq. 7)"
    ax.set_title(head + (f"\n{title}" if title else ""), fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="best")
    paths = _save_figure(fig, out_stem)
    header = ["lag", "k", "bound", "geometric_mean"] + [f"sequence_{i}" for i in range(jac.norms.shape[0])]
    cols = [lag, jac.k, jac.bound, gm] + [jac.norms[i] for i in range(jac.norms.shape[0])]
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"), header, cols))
    return paths


# ---------------------------------------------------------------------------
# Spectra
# ---------------------------------------------------------------------------


def plot_spectra(spectra: Spectrum | Sequence[Spectrum], out_stem: Path, title: str = "") -> list[Path]:
    """Singular values with 1/γ marked, and eigenvalues in the complex plane with the
    unit circle and the circle of radius 1/γ."""
    specs = [spectra] if isinstance(spectra, Spectrum) else list(spectra)
    if not specs:
        raise ValueError("need at least one spectrum")
    colors = ["#1f4e9c", "#d35400", "#27864a", "#8e44ad"]
    fig = Figure(figsize=(13, 5.6), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    all_sv = np.concatenate([s.singular_values for s in specs])
    log_sv = spans_decades(all_sv, 1.5)
    thresholds = sorted({s.conditions.threshold for s in specs})
    for i, s in enumerate(specs):
        c = colors[i % len(colors)]
        cond = s.conditions
        name = s.label or f"W_rec ({cond.unit})"
        idx = np.arange(1, s.singular_values.size + 1)
        ax1.plot(idx, s.singular_values, "o-", ms=3.5, color=c, lw=1.2,
                 label=rf"{name}: $\lambda_1 = {cond.lambda1:.3g}$, {cond.verdict}")
        ev = s.eigenvalues
        ax2.plot(ev.real, ev.imag, "o", ms=4.5, color=c, alpha=0.8, mec="none",
                 label=rf"{name}: $\rho = {cond.spectral_radius:.3g}$")
    if log_sv:
        ax1.set_yscale("log")
    for thr in thresholds:
        gamma = 1.0 / thr
        ax1.axhline(thr, color=NONFINITE_COLOR, ls="--", lw=1.4,
                    label=rf"$1/\gamma = {thr:g}$ ($\gamma = {gamma:g}$): $\lambda_1$ below it "
                          "guarantees vanishing")
    if 1.0 not in thresholds:
        ax1.axhline(1.0, color="0.4", ls=":", lw=1.0, label="1")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("index $i$ (sorted)")
    ax1.set_ylabel(r"singular value $\sigma_i(W_{rec})$" + (" (log scale)" if log_sv else ""))
    ax1.set_title("Singular values (§2.1: vanishing when $\\lambda_1 < 1/\\gamma$)")
    ax1.grid(alpha=0.3, which="both")
    ax1.legend(fontsize=8.5, loc="best")
    th = np.linspace(0, 2 * np.pi, 400)
    ax2.plot(np.cos(th), np.sin(th), "-", color="black", lw=1.2, label="unit circle $|\\lambda| = 1$")
    for thr in thresholds:
        if thr != 1.0:
            ax2.plot(thr * np.cos(th), thr * np.sin(th), "--", color=NONFINITE_COLOR, lw=1.2,
                     label=rf"$|\lambda| = 1/\gamma = {thr:g}$")
    for i, s in enumerate(specs):
        r = s.conditions.spectral_radius
        ax2.plot(r * np.cos(th), r * np.sin(th), ":", color=colors[i % len(colors)], lw=1.0)
    lim = 1.08 * max(1.0, max(max(np.abs(s.eigenvalues).max(), s.conditions.spectral_radius)
                              for s in specs))
    if any(t != 1.0 for t in thresholds):
        lim = max(lim, 1.08 * max(thresholds))
    ax2.set_xlim(-lim, lim)
    ax2.set_ylim(-lim, lim)
    reach = max(float(np.abs(s.eigenvalues).max()) for s in specs)
    if 0 < reach < 0.2 * lim:
        # the eigenvalues crowd the origin: show them again, magnified
        ins = ax2.inset_axes([0.66, 0.6, 0.31, 0.31])
        for i, s in enumerate(specs):
            ins.plot(s.eigenvalues.real, s.eigenvalues.imag, "o", ms=3, color=colors[i % len(colors)],
                     alpha=0.8, mec="none")
        zoom = 1.15 * reach
        ins.set_xlim(-zoom, zoom)
        ins.set_ylim(-zoom, zoom)
        ins.set_aspect("equal")
        ins.tick_params(labelsize=7)
        ins.locator_params(nbins=3)
        ins.grid(alpha=0.3)
        ins.set_title(f"zoom: |λ| ≤ {zoom:.2g}", fontsize=8)
    ax2.set_aspect("equal")
    ax2.axhline(0, color="0.7", lw=0.6)
    ax2.axvline(0, color="0.7", lw=0.6)
    ax2.set_xlabel(r"Re $\lambda$")
    ax2.set_ylabel(r"Im $\lambda$")
    ax2.set_title("Eigenvalues (dotted: spectral radius)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    fig.suptitle(title or "Spectrum of the recurrent weights", fontsize=13)
    paths = _save_figure(fig, out_stem)
    cols: list[list] = [[] for _ in range(6)]
    for i, s in enumerate(specs):
        name = s.label or f"spectrum_{i}"
        n = s.singular_values.size
        cols[0] += [name] * (2 * n)
        cols[1] += ["singular"] * n + ["eigen"] * n
        cols[2] += list(range(1, n + 1)) * 2
        cols[3] += list(s.singular_values) + list(s.eigenvalues.real)
        cols[4] += [0.0] * n + list(s.eigenvalues.imag)
        cols[5] += list(s.singular_values) + list(np.abs(s.eigenvalues))
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"),
                            ["matrix", "kind", "index", "real", "imag", "abs"], cols))
    return paths


# ---------------------------------------------------------------------------
# Lyapunov exponents
# ---------------------------------------------------------------------------


def plot_lyapunov(spectra: LyapunovSpectrum | Sequence[LyapunovSpectrum], out_stem: Path,
                  reference: np.ndarray | None = None, title: str = "",
                  reference_label: str = r"$\log|\lambda_i(W_{rec})|$") -> list[Path]:
    """The exponents by index (0 marked) and the convergence of the leading ones.

    ``reference`` (e.g. log(γ |λ_i(W_rec)|), the exponents of a constant Jacobian with
    σ' at its largest value γ) is drawn for comparison when given, as ``reference_label``.
    """
    specs = [spectra] if isinstance(spectra, LyapunovSpectrum) else list(spectra)
    if not specs:
        raise ValueError("need at least one Lyapunov spectrum")
    colors = ["#1f4e9c", "#d35400", "#27864a", "#8e44ad"]
    fig = Figure(figsize=(13, 5.4), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, s in enumerate(specs):
        c = colors[i % len(colors)]
        idx = np.arange(1, s.exponents.size + 1)
        name = s.label or s.mode
        ax1.plot(idx, s.exponents, "o-", ms=4, lw=1.2, color=c,
                 label=rf"{name}: $\mu_1 = {s.leading:.4g}$ per step")
        n_show = min(3, s.exponents.size)
        steps = np.arange(s.transient + 1, s.steps + 1)
        for j in range(n_show):
            ax2.plot(steps, s.history[:, j], "-", color=c, lw=1.6 if j == 0 else 0.9,
                     alpha=1.0 if j == 0 else 0.6,
                     label=(f"{name}: running estimates of $\\mu_1, \\ldots, \\mu_{n_show}$"
                            if n_show > 1 else f"{name}: running estimate of $\\mu_1$") if j == 0 else None)
    if reference is not None:
        ref = np.sort(np.asarray(reference, dtype=np.float64))[::-1]
        ax1.plot(np.arange(1, ref.size + 1), ref, "x", color="0.35", ms=6, label=reference_label)
    ax1.axhline(0.0, color="black", lw=1.0, ls="--", label="0: perturbations neither grow nor shrink")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("index $i$")
    ax1.set_ylabel(r"Lyapunov exponent $\mu_i$ (per step, natural log)")
    ax1.set_title("Spectrum (negative: the state forgets; positive: nearby states separate)",
                  fontsize=10.5)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8.5, loc="best")
    shown = np.concatenate([s.history[:, : min(3, s.exponents.size)].ravel() for s in specs])
    shown = shown[np.isfinite(shown)]
    if shown.size:
        lo, hi = float(shown.min()), float(shown.max())
        pad = 0.08 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 1e-3)
        ax2.set_ylim(lo - pad, hi + pad)
        if lo - pad <= 0.0 <= hi + pad:
            ax2.axhline(0.0, color="black", lw=1.0, ls="--")
    ax2.set_xlabel("step (after the transient)")
    ax2.set_ylabel(r"running average of $\log|R_{ii}|$")
    ax2.set_title("Convergence of the leading exponents", fontsize=10.5)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8.5, loc="best")
    fig.suptitle(title or "Lyapunov exponents of the recurrent network (QR method)", fontsize=13)
    paths = _save_figure(fig, out_stem)
    cols: list[list] = [[] for _ in range(5)]
    for i, s in enumerate(specs):
        n = s.exponents.size
        cols[0] += [s.label or s.mode] * n
        cols[1] += [s.mode] * n
        cols[2] += list(range(1, n + 1))
        cols[3] += list(s.exponents)
        cols[4] += [s.steps - s.transient] * n
    if reference is not None:
        n = ref.size
        cols[0] += ["reference"] * n
        cols[1] += ["reference"] * n
        cols[2] += list(range(1, n + 1))
        cols[3] += list(ref)
        cols[4] += [""] * n
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"),
                            ["spectrum", "mode", "index", "exponent", "steps_averaged"], cols))
    return paths


# ---------------------------------------------------------------------------
# Tied versus untied weights
# ---------------------------------------------------------------------------


def _gain_colors(gains: np.ndarray) -> list:
    from matplotlib import colormaps

    cmap = colormaps["coolwarm"]
    lo, hi = float(np.min(gains)), float(np.max(gains))
    out = []
    for g in gains:
        if np.isclose(g, 1.0):
            out.append("black")
        elif hi == lo:
            out.append(cmap(0.5))
        else:
            out.append(cmap(0.05 + 0.9 * (g - lo) / (hi - lo)))
    return out


def plot_depth(result: DepthExperiment, out_stem: Path) -> list[Path]:
    """One panel per unit: tied weights (solid, typical draw) vs untied (dashed, RMS)."""
    U = len(result.units)
    fig = Figure(figsize=(6.4 * U + 0.4, 5.6), layout="constrained")
    s = result.steps
    tied_gm = result.geometric_mean("tied")
    untied_rms = result.rms("untied")
    colors = _gain_colors(result.gains)
    axes = [fig.add_subplot(1, U, i + 1) for i in range(U)]
    for ui, (ax, unit) in enumerate(zip(axes, result.units)):
        for gi, g in enumerate(result.gains):
            c = colors[gi]
            ax.semilogy(s, for_log(tied_gm[ui, gi]), "-", color=c, lw=2.0)
            ax.semilogy(s, for_log(untied_rms[ui, gi]), "--", color=c, lw=1.6)
            if unit == "linear":
                ax.semilogy(s, g ** s.astype(float), ":", color=c, lw=1.0, alpha=0.8)
        log_limits(ax, np.concatenate([tied_gm[ui].ravel(), untied_rms[ui].ravel()]), 30)
        ax.set_xlabel("steps backpropagated through $s$")
        ax.set_ylabel(r"$\|v_{D-s}\|$ (log scale)")
        ax.set_title(f"{unit} units", fontsize=11)
        ax.grid(alpha=0.3, which="both")
    gain_handles = [Line2D([], [], color=colors[gi], lw=2.5, label=f"g = {g:g}")
                    for gi, g in enumerate(result.gains)]
    style = [Line2D([], [], color="0.3", lw=2.0, ls="-",
                    label="tied (recurrent): one W at every step; geometric mean over draws"),
             Line2D([], [], color="0.3", lw=1.6, ls="--",
                    label=r"untied (deep net): independent $W_t$; $\sqrt{\mathrm{mean}\,\|v\|^2}$ over draws")]
    if "linear" in result.units:
        style.append(Line2D([], [], color="0.3", lw=1.0, ls=":",
                            label=r"$g^s$: untied expectation (linear)"))
    axes[0].legend(handles=gain_handles, title="gain", fontsize=8.5, loc="upper left", framealpha=0.9)
    fig.legend(handles=style, fontsize=9, loc="outside lower center", ncol=len(style), framealpha=0.9)
    fig.suptitle(f"Shared vs untied weights: a signal backpropagated through D = {result.depth} steps, "
                 f"H = {result.hidden}, weights N(0, g²/H), {result.draws} draws", fontsize=12)
    paths = _save_figure(fig, out_stem)
    cols: list[list] = [[] for _ in range(7)]
    for ui, unit in enumerate(result.units):
        for gi, g in enumerate(result.gains):
            n = s.size
            cols[0] += [unit] * n
            cols[1] += [g] * n
            cols[2] += list(s)
            cols[3] += list(tied_gm[ui, gi])
            cols[4] += list(result.rms("tied")[ui, gi])
            cols[5] += list(result.geometric_mean("untied")[ui, gi])
            cols[6] += list(untied_rms[ui, gi])
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"),
                            ["unit", "gain", "steps", "tied_geometric_mean", "tied_rms",
                             "untied_geometric_mean", "untied_rms"], cols))
    return paths
