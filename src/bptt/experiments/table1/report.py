"""Table 1's report: our figures beside the paper's, the timings, the runs, the protocol
and the learning curves (``table1.md``, ``table1.json``, ``table1.png``/``.svg``)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from bptt.methods import METHOD_COLOR, METHODS, Method

from .protocol import DATASET_LABEL, PAPER_TABLE1, NaturalConfig, protocol
from .results import DatasetResult

__all__ = ["table_markdown", "timing_markdown", "write_report", "plot_curves"]


def _fmt(pair: tuple[float, float] | None) -> str:
    if pair is None:
        return "—"
    a, b = pair
    return f"{a:.2f} / {b:.2f}" if math.isfinite(a) and math.isfinite(b) else "n/a"


def table_markdown(results: dict[str, DatasetResult]) -> str:
    """Our train / test figures beside the paper's, one row per data set."""
    head = "| data set (measure) | " + " | ".join(
        f"{m.label} ours | {m.label} paper" for m in METHODS) + " |"
    lines = [head, "|" + " --- |" * (1 + 2 * len(METHODS))]
    for name, res in results.items():
        unit = "bits/char" if name.startswith("ptb") else "NLL"
        cells = []
        for m in METHODS:
            mem = res.member(m)
            ours = None if mem is None else (mem.train, mem.test)
            cells += [_fmt(ours), _fmt(PAPER_TABLE1[name][m])]
        lines.append(f"| {DATASET_LABEL[name]} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_markdown(results: dict[str, DatasetResult]) -> str:
    """The time per epoch of each data set's ensemble (from :func:`bptt.experiments.table1.training.timing_summary`), one row each."""
    lines = ["| data set | hidden | minibatch | updates / epoch | ms / update (3 members) | "
             "training s / epoch | evaluation s / epoch | epochs | total |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        t, c = res.timing, res.config
        if not t:
            continue
        lines.append(f"| {DATASET_LABEL[name]} | {c['hidden']} | {c['batch_size']} | {t['updates_per_epoch']:.0f} | "
                     f"{t['ms_per_update']:.0f} | {t['train_seconds_per_epoch']:.1f} | "
                     f"{t['eval_seconds_per_epoch']:.1f} | {t['epochs']} | {t['total_seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def _details_markdown(results: dict[str, DatasetResult]) -> str:
    """One row per run: status, best epoch, clipping, non-finite updates, why it stopped."""
    lines = ["| data set | method | run | status | best epoch / epochs | valid at best | "
             "updates clipped | non-finite | final lr | stopped because |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        for mem in res.members:
            lines.append(f"| {DATASET_LABEL[name]} | {Method(mem.method).label} | {mem.run_id} | {mem.status} | "
                         f"{mem.best_epoch} / {mem.epochs} | {mem.valid:.3f} | "
                         f"{100 * mem.clipped_fraction:.1f}% | {mem.nonfinite} | {mem.lr_final:g} | "
                         f"{mem.stop_reason} |")
    return "\n".join(lines)


SMOKE_BANNER = ("**Smoke budget: a test of the machinery, not a result.** A few updates on a 16-unit network, "
                "evaluated on a few windows: nothing here is comparable with the paper at this budget.")


def trained_on_lines(results: dict[str, DatasetResult]) -> list[str]:
    """Where each data set's runs were trained, as they recorded it (host, CPU, PyTorch
    build, thread count of the process that finished them), one line per distinct record."""
    def describe(f: dict | None) -> str:
        if not f:
            return "a machine not recorded (runs from before it was)"
        return f"{f.get('host')}, {f.get('cpu') or 'unknown CPU'}, torch {f.get('torch')}, {f.get('threads')} thread(s)"

    where: dict[str, list[str]] = {}
    for name, res in results.items():
        for desc in dict.fromkeys(describe(m.finished_on) for m in res.members):
            where.setdefault(desc, []).append(DATASET_LABEL[name])
    return [f"Trained on {desc}: {', '.join(names)}." for desc, names in where.items()]


def write_report(results: dict[str, DatasetResult], store, out_dir: Path, *, budget: str,
                 seconds: float | None = None) -> list[Path]:
    """Write ``table1.md``, ``table1.json`` and ``table1.png``/``.svg`` into ``out_dir``.

    The report records what produced it (the commit, or the package version, and the
    command line: :func:`bptt.experiments.manifest.provenance`) and every setting of
    every data set with its source (:func:`bptt.experiments.protocol_table.table1_rows`).
    At the smoke budget it opens with a banner saying that nothing in it is comparable.
    """
    from bptt.experiments.manifest import provenance, provenance_line
    from bptt.experiments.protocol_table import markdown, table1_rows

    out_dir.mkdir(parents=True, exist_ok=True)
    made_by = provenance()
    settings = table1_rows(budget, configs={n: NaturalConfig(**r.config) for n, r in results.items()})
    caps = sorted({res.config["max_epochs"] for name, res in results.items()
                   if res.config["max_epochs"] < protocol(name, budget).max_epochs})
    label = f"{budget} budget" + (f", capped at {'/'.join(map(str, caps))} epochs: not the paper's protocol"
                                  if caps else "")
    protocol_lines = []
    for name, res in results.items():
        c = res.config
        lr = c["lr"] if not isinstance(c["lr"], dict) else ", ".join(f"{Method(k).label} {v:g}" for k, v in c["lr"].items())
        protocol_lines.append(
            f"* **{DATASET_LABEL[name]}**: {c['hidden']} {c['unit']} units{'' if c['bias'] else ' without biases'}, "
            f"'{c['init']}' initialization (seed {c['seed']}, the same for the three methods), windows of "
            f"{c['window']} steps, minibatch {c['batch_size']}, lr {lr}"
            f"{' (halved when the validation figure rises)' if c['halve_lr_on_rise'] else ''}, threshold "
            f"{c['threshold']:g}, α_t = {c['alpha0']:g}/t for {Method.MSGD_CR.label} "
            f"(t counted in {c.get('alpha_time', 'updates')}), non-finite guard: {c.get('guard', 'always')}"
            f"{', cost summed over each window' if c['summed_cost'] else ''}; at most {c['max_epochs']} epochs, "
            f"patience {c['patience']}"
            + (f", at most {c['max_updates_per_epoch']} updates per epoch" if c['max_updates_per_epoch'] else "")
            + (f"; evaluated on the first {c['eval_windows']} windows of each split only"
               if c['eval_windows'] else "; evaluated on every step of every split") + ".")
    reused = [DATASET_LABEL[n] for n, r in results.items() if r.reused]
    text = [
        f"# Table 1: natural problems ({label})",
        "",
        *([f"> {SMOKE_BANNER}", ""] if budget == "smoke" else []),
        "Train / test figure of each method at its best validation epoch, beside the paper's "
        "(Pascanu, Mikolov & Bengio 2013, Table 1). Music: negative log-likelihood per time step "
        "(nats, summed over the 88 keys, averaged over every predicted step of the split). PTB: bits "
        "per character over every symbol of the split (spaces dropped, `_` and line ends kept). The "
        "paper does not report JSB Chorales, nor MSGD on PTB 5 steps.",
        "",
        table_markdown(results),
        "",
        *(["On PTB the methods also differ in learning rate (the paper's: MSGD 0.001, MSGD-C 0.01, MSGD-CR 0.05): "
           "a gap between MSGD and the others measures the learning rate as much as clipping.", ""]
          if any(n.startswith("ptb") for n in results) else []),
        "![learning curves](table1.png)",
        "",
        "The training loss along the updates (a running mean over 50 recorded blocks), with the validation "
        "figure at each epoch's end:",
        "",
        "![training loss along the updates](table1-updates.png)",
        "",
        "## Time",
        "",
        timing_markdown(results) if any(r.timing for r in results.values()) else "(no timings recorded)",
        "",
        (f"Wall time of this command: {seconds / 60:.1f} min." if seconds is not None else "")
        + (f" Read back from the store without training: {', '.join(reused)}." if reused else ""),
        "",
        "## Runs",
        "",
        _details_markdown(results),
        "",
        "## Protocol",
        "",
        *protocol_lines,
        "",
        "Every setting, its value and its source:",
        "",
        markdown(settings),
        "",
        "## Provenance",
        "",
        provenance_line(made_by),
        "",
        *trained_on_lines(results),
        "The clipping methods' figures depend at the bit level on the thread count and the PyTorch build, "
        "and the differences grow over the epochs (the project's docs/table1.md measures them on Nottingham).",
        "",
    ]
    paths = [out_dir / "table1.md", out_dir / "table1.json"]
    paths[0].write_text("\n".join(text))
    payload = {"budget": budget, "seconds": seconds, "provenance": made_by,
               "protocol": [list(r) for r in settings],
               "datasets": {n: {"config": r.config, "timing": r.timing, "reused": r.reused,
                                "members": [dataclasses.asdict(m) for m in r.members],
                                "paper": PAPER_TABLE1[n]} for n, r in results.items()}}
    paths[1].write_text(json.dumps(payload, indent=2, default=lambda o: None if o is None else str(o)))
    paths += plot_curves(results, store, out_dir / "table1", title=f"Table 1 learning curves ({label})")
    paths += plot_update_curves(results, store, out_dir / "table1-updates",
                                title=f"Training loss along the updates ({label})")
    return paths


def _panels(n: int):
    """``(pyplot, figure, axes [rows, cols], rows, cols)``: one panel per data set, three a row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, max(n, 1))
    rows = -(-max(n, 1) // cols)
    # one panel gets the width of two, so that the title and the legend fit
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * max(cols, 2), 3.3 * rows + 0.9), squeeze=False)
    return plt, fig, axes, rows, cols


def plot_curves(results: dict[str, DatasetResult], store, stem: Path, title: str = "") -> list[Path]:
    """Train (dotted), validation (solid) and test (dashed) figure per epoch, one panel per
    data set, with the paper's test figures as thin horizontal lines."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    plt, fig, axes, rows, cols = _panels(len(results))
    for ax, (name, res) in zip(axes.flat, results.items()):
        for mem in res.members:
            color = METHOD_COLOR[mem.method]
            curve = store.get_curve(mem.run_id, ["train_nll", "valid_nll", "test_nll"])
            for key, style in (("train_nll", ":"), ("valid_nll", "-"), ("test_nll", "--")):
                s, v = curve[key]
                if len(s):
                    ax.plot(s, v, style, color=color, lw=1.3, marker="o" if len(s) < 4 else None, ms=3)
            paper = PAPER_TABLE1[name][mem.method]
            if paper is not None:
                ax.axhline(paper[1], color=color, lw=0.7, alpha=0.6)
        unit = "bits per character" if name.startswith("ptb") else "NLL per step (nats)"
        ax.set_title(DATASET_LABEL[name], fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(unit, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=METHOD_COLOR[m], lw=2, label=m.label) for m in METHODS]
    handles += [Line2D([], [], color="0.3", ls=ls, label=lab) for ls, lab in
                ((":", "train"), ("-", "validation"), ("--", "test"))]
    handles.append(Line2D([], [], color="0.3", lw=0.7, alpha=0.6, label="paper's test figure"))
    ncol = len(handles) if cols > 1 else 4                  # one narrow panel: the legend wraps
    legend_rows = -(-len(handles) // ncol)
    if legend_rows > 1:
        fig.set_figheight(fig.get_figheight() + 0.2 * (legend_rows - 1))
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    top = 1.0 - 0.45 / fig.get_figheight()
    fig.subplots_adjust(left=0.07 if cols > 1 else 0.15, right=0.98,
                        bottom=(0.75 + 0.2 * (legend_rows - 1)) / fig.get_figheight() + 0.06 / rows,
                        top=top - 0.25 / fig.get_figheight(), wspace=0.28, hspace=0.45)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def update_curve(store, run_id: int, measure_of_nats, window: int = 50) -> tuple[list[float], list[float]]:
    """The training loss of a run along its updates (the ``loss`` curve, recorded per
    block of updates), in the data set's measure (``measure_of_nats``: nats per step → the
    measure), as a running mean over ``window`` recorded points (fewer at the start)."""
    import numpy as np

    s, v = store.get_curve(run_id, ["loss"])["loss"]
    if len(s) == 0:
        return [], []
    v = np.asarray([measure_of_nats(x) for x in v], dtype=float)
    ok = np.isfinite(v)
    s, v = np.asarray(s, dtype=float)[ok], v[ok]
    c = np.concatenate([[0.0], np.cumsum(v)])
    k = np.arange(1, len(v) + 1)
    lo = np.maximum(0, k - window)
    return s.tolist(), ((c[k] - c[lo]) / (k - lo)).tolist()


def plot_update_curves(results: dict[str, DatasetResult], store, stem: Path, title: str = "") -> list[Path]:
    """The training loss along the updates (running mean, one line per method), one panel
    per data set, with the validation figure of each epoch's end as dots and the paper's
    test figures as thin horizontal lines."""
    from matplotlib.lines import Line2D

    plt, fig, axes, rows, cols = _panels(len(results))
    for ax, (name, res) in zip(axes.flat, results.items()):
        text = name.startswith("ptb")
        to_measure = (lambda x: x / math.log(2)) if text else (lambda x: x)
        shown: list[float] = []            # what the y-axis must hold: all but the first tenth's descent
        for mem in res.members:
            color = METHOD_COLOR[mem.method]
            s, v = update_curve(store, mem.run_id, to_measure)
            ax.plot(s, v, color=color, lw=1.0)
            shown += [x for x in v[len(v) // 10:] if math.isfinite(x)]
            ep = store.get_curve(mem.run_id, ["valid_nll", "epoch_updates"])
            epochs, valid = ep["valid_nll"]
            per_epoch = ep["epoch_updates"][1]
            if len(epochs) and len(per_epoch):
                ends = [float(sum(per_epoch[:i + 1])) for i in range(len(epochs))]
                ax.plot(ends, valid, "o", color=color, ms=4, mfc="white")
                shown += [float(x) for x in valid if math.isfinite(x)]
            paper = PAPER_TABLE1[name][mem.method]
            if paper is not None:
                ax.axhline(paper[1], color=color, lw=0.7, alpha=0.6)
                shown.append(float(paper[1]))
        if shown:
            lo, hi = min(shown), max(shown)
            pad = 0.08 * (hi - lo) or 0.1
            ax.set_ylim(lo - pad, hi + 3 * pad)
        ax.set_title(DATASET_LABEL[name], fontsize=10)
        ax.set_xlabel("update", fontsize=9)
        ax.set_ylabel("bits per character" if text else "NLL per step (nats)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=METHOD_COLOR[m], lw=2, label=m.label) for m in METHODS]
    handles += [Line2D([], [], color="0.3", lw=1, label="training loss (running mean)"),
                Line2D([], [], color="0.3", ls="", marker="o", mfc="white", label="validation, epoch's end"),
                Line2D([], [], color="0.3", lw=0.7, alpha=0.6, label="paper's test figure")]
    fig.legend(handles=handles, loc="lower center", ncol=3 if cols == 1 else len(handles), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.07 if cols > 1 else 0.15, right=0.98,
                        bottom=(1.0 if cols == 1 else 0.75) / fig.get_figheight() + 0.06 / rows,
                        top=1.0 - 0.7 / fig.get_figheight(), wspace=0.28, hspace=0.45)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
