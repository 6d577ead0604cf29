"""L2 on W_rec pins the network to the origin's attractor: the paper's claim shown.

Pascanu, Mikolov & Bengio (2013, §3.3) argue that L1/L2 penalties on the recurrent
weights push ρ(W_rec) below 1, where the origin is the single point attractor of the
(near-linear) network and gradients vanish: the penalty "limits the model to the regime
where gradients vanish", and the network forgets. :func:`penalty_study` trains, on the
temporal order problem, one ensemble per sequence length whose members differ only in
the L2 weight (and the seed), and records ρ(W_rec) and the error at the training length
along training; :func:`plot_penalty_study` draws both.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bptt.training.trainer import TrainConfig, Trainer

#: The L2 weights compared by default (0: no penalty).
DEFAULT_L2 = (0.0, 1e-4, 1e-3, 1e-2)


@dataclass
class PenaltyCurve:
    """One member: its L2 weight, seed and training length, and ``step``, ``rho``,
    ``error`` (fraction of check sequences wrong) at each check; ``succeeded_at`` the
    update at which it reached the success criterion (``None``: it did not), where its
    curve ends with the confirmed error (on 1,000 sequences)."""

    l2: float
    seed: int
    length: int
    step: list = field(default_factory=list)
    rho: list = field(default_factory=list)
    error: list = field(default_factory=list)
    succeeded_at: int | None = None


@dataclass
class PenaltyStudy:
    """Every member's curves, and the settings they were trained with."""

    curves: list[PenaltyCurve]
    lengths: tuple[int, ...]
    l2: tuple[float, ...]
    seeds: tuple[int, ...]
    lr: float
    updates: int


def penalty_study(*, l2: Sequence[float] = DEFAULT_L2, lengths: Sequence[int] = (20,),
                  seeds: Sequence[int] = (0, 1), updates: int = 3000, check_every: int = 100,
                  check_sequences: int = 200, lr: float = 0.05, threshold: float = 1.0,
                  hidden: int = 50, task: str = "temporal_order", data_seed: int = 1234,
                  progress: Callable[[str], None] | None = None) -> PenaltyStudy:
    """Train one ensemble per length (members: every L2 weight × every seed) with MSGD-C.

    Args:
        l2: the L2 weights λ₂ on W_rec compared (the penalty (λ₂/2)‖W_rec‖²).
        lengths: the training sequence lengths (one ensemble each).
        seeds: the network seeds (the same initial networks for every λ₂).
        updates: the update budget.
        check_every: updates between two records of ρ(W_rec) and the error.
        check_sequences: fresh sequences per error check.
        lr, threshold: SGD's learning rate and the clipping threshold (Algorithm 1).
        hidden, task, data_seed: the network size, the task and the data stream's seed.
        progress: called with a line after each ensemble.

    Returns:
        :class:`PenaltyStudy`. A member that succeeds (error < 1% on 1,000 sequences)
        leaves the ensemble; its curve ends there.
    """
    weights = [float(v) for v in l2]
    if not weights or any(not (v >= 0 and np.isfinite(v)) for v in weights):
        raise ValueError(f"l2 must be a non-empty list of finite weights >= 0, got {list(l2)}")
    if not lengths or not seeds:
        raise ValueError("give at least one length and one seed")
    curves: list[PenaltyCurve] = []
    for length in lengths:
        members = [(w, int(s)) for s in seeds for w in weights]
        config = TrainConfig(task=task, min_length=int(length), max_length=int(length), hidden=hidden,
                             method="msgd-c", lr=lr, threshold=threshold, seeds=[s for _, s in members],
                             l2=[w for w, _ in members], max_updates=updates, eval_every=check_every,
                             check_sequences=check_sequences, eval_sequences=1000,
                             record_every=check_every, data_seed=data_seed)
        mine = [PenaltyCurve(l2=w, seed=s, length=int(length)) for w, s in members]

        def record(trainer: Trainer, mine=mine, length=int(length)) -> None:
            rho = trainer.model.spectral_radius().tolist()
            err = trainer.error_rate(check_sequences, length=length).tolist()
            for j, m in enumerate(trainer.active):
                mine[m].step.append(trainer.update)
                mine[m].rho.append(rho[j])
                mine[m].error.append(err[j])

        trainer = Trainer(config, callback=record)
        trainer.run()
        for m, c in enumerate(mine):
            if trainer.status[m] == "succeeded":       # its last point: the confirmed success
                c.succeeded_at = trainer.finished_at[m]
                c.step.append(c.succeeded_at)
                c.rho.append(float(trainer.final_models[m].spectral_radius()[0]))
                c.error.append(trainer.errors[m])
        curves += mine
        if progress is not None:
            progress(f"length {length}: " + ", ".join(
                f"λ₂={c.l2:g}/seed {c.seed}: ρ={c.rho[-1]:.2f}" if c.rho else "-" for c in mine))
    return PenaltyStudy(curves=curves, lengths=tuple(int(x) for x in lengths), l2=tuple(weights),
                        seeds=tuple(int(s) for s in seeds), lr=lr, updates=updates)


def plot_penalty_study(study: PenaltyStudy, out_stem: Path) -> list[Path]:
    """ρ(W_rec) (top row) and the error (bottom row) along training, one column per
    length, one colour per L2 weight; a dot marks a member that succeeded. Writes
    ``<out_stem>.png``, ``<out_stem>.svg`` and ``<out_stem>.csv``; returns their paths."""
    from matplotlib.figure import Figure

    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    cols = len(study.lengths)
    fig = Figure(figsize=(max(6.4, 4.2 * cols), 5.6), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False, sharex=True)
    colours = dict(zip(study.l2, ("#222222", "#1f77b4", "#ff7f0e", "#c0392b", "#2ca02c", "#9467bd")))
    styles = ("-", "--", ":", "-.")
    for col, length in enumerate(study.lengths):
        top, bottom = axes[0, col], axes[1, col]
        for c in study.curves:
            if c.length != length or not c.step:
                continue
            ls = styles[study.seeds.index(c.seed) % len(styles)]
            label = f"λ₂ = {c.l2:g}" if c.seed == study.seeds[0] else None
            top.plot(c.step, c.rho, ls, color=colours.get(c.l2), label=label, lw=1.4)
            bottom.plot(c.step, c.error, ls, color=colours.get(c.l2), lw=1.4)
            if c.succeeded_at is not None:
                bottom.plot([c.step[-1]], [c.error[-1]], "o", color=colours.get(c.l2), ms=5)
        top.axhline(1.0, color="#888888", lw=0.8)
        top.set_title(f"temporal order, T = {length}")
        top.set_ylabel("ρ(W_rec)")
        bottom.set_ylabel("error (fraction wrong)")
        bottom.set_xlabel("updates")
        bottom.set_ylim(-0.02, 1.0)
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(f"L2 penalty on W_rec (MSGD-C, lr {study.lr:g})\nline style: seed; dot: solved "
                 f"(error < 1% on 1,000 sequences)", fontsize=9)
    png = out_stem.with_name(out_stem.name + ".png")
    fig.savefig(png, dpi=110)
    svg = out_stem.with_name(out_stem.name + ".svg")
    fig.savefig(svg)
    path = out_stem.with_name(out_stem.name + ".csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["length", "l2", "seed", "step", "rho", "error"])
        for c in study.curves:
            for s, r, e in zip(c.step, c.rho, c.error):
                w.writerow([c.length, c.l2, c.seed, s, f"{r:.6g}", f"{e:.6g}"])
    return [png, svg, path]
