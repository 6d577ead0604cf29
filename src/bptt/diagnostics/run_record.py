"""The training record of a stored run: read back from the results store, and drawn
(gradient norm with the clipped and non-finite updates, loss and error, ρ(W_rec), Ω)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bptt.diagnostics.figure_style import CLIP_COLOR, NONFINITE_COLOR, for_log, log_limits, spans_decades
from bptt.dynamics.plots import _save_figure, _with_suffix, _write_csv
from bptt.methods import Method

__all__ = ["RunRecord", "load_run_record", "load_run_model", "plot_training_record", "training_record_figure"]


@dataclass(frozen=True)
class RunRecord:
    """What the results store holds about one run, for plotting.

    Attributes:
        run_id: the run's id.
        status: its status.
        config: its configuration (task, method, init, seed, ...).
        metrics: its final metrics.
        curves: ``{name: (steps, values)}`` as :meth:`bptt.store.Store.get_curve` returns.
        nonfinite_steps: the updates at which a non-finite gradient was met.
    """

    run_id: int
    status: str
    config: dict
    metrics: dict
    curves: dict
    nonfinite_steps: np.ndarray

    def title(self) -> str:
        c = self.config
        L = f"{c.get('min_length')}"
        if c.get("max_length") not in (None, c.get("min_length")):
            L += f"–{c.get('max_length')}"
        return (f"run {self.run_id}: {c.get('task', '?')} (L = {L}), method {c.get('method', '?')}, "
                f"init {c.get('init', '?')}, seed {c.get('seed', '?')}; {self.status}")


def load_run_record(store, run_id: int) -> RunRecord:
    """Read a run's configuration, curves and non-finite events from a results store.

    Raises:
        KeyError: no run with that id.
        ValueError: the run recorded no curves.
    """
    run = store.get_run(run_id)
    curves = store.get_curve(run_id)
    if not curves:
        raise ValueError(f"run {run_id} has no recorded curves yet")
    steps = [e["step"] for e in store.events(run_id, kind="nonfinite") if e["step"] is not None]
    return RunRecord(run_id=int(run_id), status=run["status"], config=run["config"],
                     metrics=run["metrics"], curves=curves,
                     nonfinite_steps=np.asarray(sorted(steps), dtype=np.int64))


def load_run_model(store, run_id: int):
    """The network a run ended (or was last checkpointed) with, and its member index.

    Returns ``(model, member, step)``: an :class:`bptt.models.ElmanRNN` (for an
    in-progress checkpoint, the whole ensemble that was training), the index of the
    run's network in it, and the update the checkpoint was saved at.

    Raises:
        KeyError: no run with that id.
        ValueError: the run has no checkpoint, or it cannot be read.
    """
    from bptt.training import checkpoint

    store.get_run(run_id)
    ck = store.load_checkpoint(run_id)
    if ck is None:
        raise ValueError(f"run {run_id} has no saved checkpoint")
    step, payload = ck
    try:
        state = checkpoint.loads(payload)
        model = checkpoint.load_model(state)
    except Exception as exc:  # a damaged or foreign payload
        raise ValueError(f"the checkpoint of run {run_id} cannot be read: {exc}") from exc
    member = 0
    if state["kind"] == "training":
        m = [mem["run_id"] for mem in state["loop"]["members"]].index(int(run_id))
        member = list(state["loop"]["active"]).index(m)
    return model, member, int(step)


def plot_training_record(record: RunRecord, out_stem: Path) -> list[Path]:
    """Draw :func:`training_record_figure` into ``<out_stem>.png``/``.svg`` and write the
    curves to ``<out_stem>.csv`` and the non-finite events to ``<out_stem>_events.csv``.

    Returns:
        The four paths written.
    """
    paths = _save_figure(training_record_figure(record), out_stem)
    cv = record.curves
    names = sorted(cv)
    all_steps = np.unique(np.concatenate([cv[n][0] for n in names] + [np.zeros(0, dtype=np.int64)]))
    cols: list[list] = [list(all_steps)]
    for n in names:
        lookup = dict(zip(cv[n][0].tolist(), cv[n][1].tolist()))
        cols.append([lookup.get(int(s), "") for s in all_steps])
    paths.append(_write_csv(_with_suffix(out_stem, ".csv"), ["step"] + names, cols))
    paths.append(_write_csv(_with_suffix(out_stem, "_events.csv"), ["step", "kind"],
                            [list(record.nonfinite_steps), ["nonfinite"] * record.nonfinite_steps.size]))
    return paths


def training_record_figure(record: RunRecord):
    """The training record as a matplotlib ``Figure`` with four axes sharing the update
    axis: the gradient norm (log; blocks with clipped updates marked, the threshold drawn
    for the clipping methods), the loss and check error, ρ(W_rec), and Ω; non-finite
    updates are vertical lines on every axis."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    try:
        method = Method(record.config.get("method"))
    except ValueError:
        method = None
    cv = record.curves
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
    fig = Figure(figsize=(11, 11), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    a_g, a_l, a_r, a_o = axes

    gs, gv = cv.get("grad_norm", empty)
    ms, mv = cv.get("grad_norm_mean", empty)
    cs, cvv = cv.get("clipped", empty)
    a_g.semilogy(gs, for_log(gv), "-", color="#1f4e9c", lw=1.2, label="max over the block")
    if ms.size:
        a_g.semilogy(ms, for_log(mv), "-", color="#7fa7d9", lw=1.0, label="mean over the block")
    if cs.size and np.any(cvv > 0):
        at = {int(s): v for s, v in zip(gs, gv)}
        sel = cvv > 0
        ys = np.array([at.get(int(s), np.nan) for s in cs[sel]])
        sc = a_g.scatter(cs[sel], for_log(ys), c=cvv[sel], cmap="Oranges", vmin=0, vmax=1,
                         marker="v", s=22, edgecolors="0.3", linewidths=0.4, zorder=4,
                         label="block with clipped updates (colour: fraction clipped)")
        fig.colorbar(sc, ax=a_g, label="fraction clipped", pad=0.01, aspect=12)
    thr = record.config.get("threshold")
    if method is not None and method.clips and thr is not None:
        a_g.axhline(float(thr), color=CLIP_COLOR, ls="--", lw=1.2,
                    label=f"clipping threshold {float(thr):g}"
                          + (" (element-wise)" if record.config.get("clip") == "elementwise" else ""))
    log_limits(a_g, np.concatenate([gv, mv]))
    a_g.set_ylabel(r"$\|\nabla E\|$ per update" + "\n(log scale)")
    a_g.set_title("Gradient norm (each point summarises a block of updates)", fontsize=10.5)

    ls_, lv = cv.get("loss", empty)
    if spans_decades(lv):
        a_l.semilogy(ls_, for_log(lv), "-", color="#27864a", lw=1.3, label="training loss")
        a_l.set_ylabel("loss $E$ (log scale)")
    else:
        a_l.plot(ls_, lv, "-", color="#27864a", lw=1.3, label="training loss")
        a_l.ticklabel_format(axis="y", useOffset=False)
        a_l.set_ylabel("loss $E$")
    es, ev = cv.get("check_error", empty)
    if es.size:
        a_e = a_l.twinx()
        a_e.plot(es, ev, "o-", color="#8e44ad", ms=3, lw=1.0, label="error on check sequences")
        a_e.set_ylabel("check error", color="#8e44ad")
        a_e.set_ylim(-0.03, max(1.0, float(np.nanmax(ev)) if np.any(np.isfinite(ev)) else 1.0) + 0.03)
        a_e.tick_params(axis="y", colors="#8e44ad")
        h1, l1 = a_l.get_legend_handles_labels()
        h2, l2 = a_e.get_legend_handles_labels()
        a_l.legend(h1 + h2, l1 + l2, fontsize=8.5, loc="upper right")
    else:
        a_l.legend(fontsize=8.5, loc="upper right")
    a_l.set_title("Loss (block means) and error rate at the evaluation points", fontsize=10.5)

    rs, rv = cv.get("rho", empty)
    a_r.plot(rs, rv, "o-", color="#d35400", ms=3, lw=1.2, label=r"$\rho(W_{rec})$")
    a_r.axhline(1.0, color="0.3", ls=":", lw=1.0, label=r"$\rho = 1$")
    a_r.ticklabel_format(axis="y", useOffset=False)
    a_r.set_ylabel(r"spectral radius $\rho(W_{rec})$")
    a_r.set_title("Spectral radius of the recurrent weights at the evaluation points", fontsize=10.5)
    a_r.legend(fontsize=8.5, loc="best")

    os_, ov = cv.get("omega", empty)
    if spans_decades(ov):
        a_o.semilogy(os_, for_log(ov), "-", color="#16a085", lw=1.2, label=r"$\Omega$")
        a_o.set_ylabel(r"$\Omega$ (log scale)")
    else:
        a_o.plot(os_, ov, "-", color="#16a085", lw=1.2, label=r"$\Omega$")
        a_o.ticklabel_format(axis="y", useOffset=False)
        a_o.set_ylabel(r"$\Omega$")
    alpha = record.config.get("alpha")
    regularised = method is not None and method.regularizes
    a_o.set_title(r"The regulariser $\Omega$ (eq. 9)"
                  + (f", weight α = {alpha:g}" if regularised and alpha is not None
                     else " (measured, not trained on)"), fontsize=10.5)
    a_o.legend(fontsize=8.5, loc="best")
    a_o.set_xlabel("update")
    a_o.xaxis.set_major_locator(MaxNLocator(integer=True))

    for i, s in enumerate(record.nonfinite_steps):
        for ax in axes:
            ax.axvline(int(s), color=NONFINITE_COLOR, lw=1.0, alpha=0.7,
                       label=("non-finite gradient: update skipped" if (i == 0 and ax is a_g) else None))
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    a_g.legend(fontsize=8.5, loc="best")
    note = f"{record.nonfinite_steps.size} non-finite updates" if record.nonfinite_steps.size else ""
    fig.suptitle(record.title() + (f"\n{note}" if note else ""), fontsize=12)
    return fig
