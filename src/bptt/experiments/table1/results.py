"""What one data set's training leaves: a summary per member (method) read from its run in
the store, and the ensemble's timings read from its epoch curves."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .protocol import NaturalConfig

__all__ = ["MemberSummary", "DatasetResult", "summaries", "timing_summary"]


@dataclass
class MemberSummary:
    """One method's result on one data set, read from its run."""

    method: str
    run_id: int
    status: str
    best_epoch: int
    train: float
    valid: float
    test: float
    epochs: int
    updates: int
    clipped_fraction: float
    nonfinite: int
    lr_final: float
    stop_reason: str
    finished_on: dict | None = None       # host, CPU, torch and thread count of the last training process


@dataclass
class DatasetResult:
    """The three methods on one data set, with the ensemble's timings."""

    dataset: str
    config: dict
    members: list[MemberSummary]
    timing: dict
    reused: bool = False

    def member(self, method: str) -> MemberSummary | None:
        return next((m for m in self.members if m.method == method), None)


def summaries(store, config: NaturalConfig, runs: dict[str, dict]) -> list[MemberSummary]:
    """Each member's :class:`MemberSummary`, from the runs ``runs`` (method → ``{"id": …}``)."""
    out = []
    for method in config.methods:
        r = store.get_run(runs[method]["id"])
        mt = r["metrics"]
        out.append(MemberSummary(
            method=method, run_id=r["id"], status=r["status"], best_epoch=int(mt.get("best_epoch", 0)),
            train=float(mt.get("train", math.nan)), valid=float(mt.get("valid", math.nan)),
            test=float(mt.get("test", math.nan)), epochs=int(mt.get("epochs", 0)),
            updates=int(mt.get("updates", 0)), clipped_fraction=float(mt.get("clipped_fraction", 0.0)),
            nonfinite=int(mt.get("nonfinite", 0)), lr_final=float(mt.get("lr_final", math.nan)),
            stop_reason=str(mt.get("stop_reason", "")), finished_on=mt.get("finished_on")))
    return out


def timing_summary(store, run_ids: list[int]) -> dict:
    """Time per epoch of an ensemble, from the epoch curves of its longest-lived run.

    Returns the mean over the epochs trained with the whole ensemble (all three
    members) of the training time, the evaluation time and ms per update, the
    updates per epoch, the number of epochs and the total wall time of the ensemble.
    """
    names = ["epoch_seconds", "eval_seconds", "ms_per_update", "epoch_updates", "ensemble_size"]
    curves = [store.get_curve(r, names) for r in run_ids]
    longest = max(curves, key=lambda c: len(c["epoch_seconds"][0]))
    if len(longest["epoch_seconds"][0]) == 0:
        return {}
    size = longest["ensemble_size"][1]
    full = size == size.max()
    return {"epochs": int(len(size)),
            "ensemble_size": int(size.max()),
            "train_seconds_per_epoch": float(longest["epoch_seconds"][1][full].mean()),
            "eval_seconds_per_epoch": float(longest["eval_seconds"][1][full].mean()),
            "ms_per_update": float(longest["ms_per_update"][1][full].mean()),
            "updates_per_epoch": float(longest["epoch_updates"][1][full].mean()),
            "total_seconds": float(longest["epoch_seconds"][1].sum() + longest["eval_seconds"][1].sum())}
