"""The training numbers of the four reproductions at the smoke budget, read from a store.

A record maps each run, named by what it is (experiment, data set or task, method,
initialization, length, seed), to its status, its final metrics and its loss curve.
``tests/experiments/data/smoke-record.json`` holds the record taken before the
training core was rebuilt; ``test_smoke_record.py`` compares today's numbers with it.

Regenerate (only when a change is meant to alter the numbers)::

    python tests/experiments/smoke_record.py tests/experiments/data/smoke-record.json
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BPTT_DATA", REPO.parent / "shared" / "data"))

SWEEPS = ("figure7", "synthetic", "generalization")
TABLE1_DATASETS = ("nottingham", "ptb_1step")
CURVES = ("loss", "grad_norm", "omega", "check_error", "train_nll", "valid_nll", "test_nll", "lr")
METRICS = ("updates", "error", "nonfinite", "clipped_fraction", "train", "valid", "test", "best_epoch",
           "epochs", "lr_final")


def _number(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else str(v)


def _name(config: dict) -> str:
    labels = config.get("labels") or {}
    if config.get("experiment") == "table1":
        parts = ["table1", config["dataset"], config["method"]]
    else:
        parts = [labels.get("experiment", config.get("task")), config.get("task"), str(config.get("method")),
                 str(config.get("init")), f"L{config.get('min_length')}-{config.get('max_length')}",
                 f"s{config.get('seed')}"]
    return "/".join(str(p) for p in parts)


def record_store(store) -> dict:
    """``{run name: {"status", "metrics", "curves"}}`` for every run in ``store``."""
    out = {}
    for run in store.list_runs(limit=100_000):
        name = _name(run["config"])
        curves = store.get_curve(run["id"])
        entry = {"status": str(run["status"]),
                 "metrics": {k: _number(run["metrics"][k]) for k in METRICS if k in run["metrics"]},
                 "curves": {k: [[int(s), _number(v)] for s, v in zip(*curves[k])] for k in CURVES if k in curves}}
        ev = run["metrics"].get("evaluation")
        if ev:
            entry["evaluation"] = [_number(e) for e in ev["errors"]]
        assert name not in out, f"two runs named {name}"
        out[name] = entry
    return out


def take(table1: bool = True) -> dict:
    """Run the smoke budgets in a temporary store and return their record."""
    from bptt.experiments.reproduce import reproduce
    from bptt.store import Store

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "s.sqlite")
            for name in SWEEPS:
                reproduce(name, "smoke", store=store, out_dir=Path(tmp) / name, progress=False, report=False,
                          echo=lambda s: None)
            if table1:
                _table1(store, Path(tmp))
            out = record_store(store)
            for k, args in enumerate(TRAIN_COMMANDS):
                out.update(_train(args, Path(tmp) / f"train{k}.sqlite", prefix=f"train{k}"))
            return out
    finally:
        torch.set_num_threads(saved)


#: ``bptt train`` command lines: clipping that bites, per-update lengths, element-wise
#: clipping, Ω's plain form with α/t, successes that retire members, non-finite updates.
TRAIN_COMMANDS = (
    ["--task", "temporal_order", "--length", "12", "--seeds", "0-2", "--method", "msgd-cr", "--threshold", "0.05",
     "--lr", "0.05", "--hidden", "20", "--max-updates", "400", "--eval-every", "50", "--eval-sequences", "500",
     "--record-every", "5", "--checkpoint-every", "100"],
    ["--task", "adding", "--min-length", "10", "--max-length", "20", "--method", "msgd-c", "--clip", "elementwise",
     "--threshold", "0.01", "--seeds", "0-1", "--max-updates", "100", "--eval-every", "40", "--hidden", "16",
     "--eval-sequences", "200"],
    ["--task", "multiplication", "--length", "15", "--method", "msgd-cr", "--omega", "plain", "--alpha-schedule",
     "inverse", "--alpha", "3", "--seeds", "4", "--max-updates", "60", "--hidden", "16", "--eval-sequences", "200",
     "--eval-every", "30"],
    ["--task", "temporal_order", "--length", "10", "--method", "msgd", "--lr", "10", "--init", "identity",
     "--unit", "linear", "--seeds", "0-1", "--max-updates", "40", "--hidden", "16", "--eval-sequences", "100",
     "--eval-every", "20"],
    ["--task", "temporal_order", "--length", "10", "--seeds", "0-2", "--method", "msgd-c", "--lr", "0.1",
     "--hidden", "20", "--max-updates", "1500", "--eval-every", "50", "--eval-sequences", "500"],
)


def _train(args: list[str], store_path: Path, prefix: str) -> dict:
    from click.testing import CliRunner

    from bptt.cli import main
    from bptt.store import Store

    result = CliRunner().invoke(main, ["train", *args, "--store", str(store_path), "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {f"{prefix}/{k}": v for k, v in record_store(Store(store_path)).items()}


def _table1(store, tmp: Path) -> None:
    from bptt.experiments.table1 import run_table1

    run_table1(store=store, datasets=list(TABLE1_DATASETS), budget="smoke", data_dir=DATA_DIR,
               out_dir=tmp / "table1", threads=1, progress=False, echo=lambda s: None)


if __name__ == "__main__":
    path = Path(sys.argv[1])
    path.write_text(json.dumps(take(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")
