"""The natural problems of §4.2: polyphonic music and Penn Treebank characters (Table 1).

MSGD, MSGD-C and MSGD-CR (:class:`bptt.methods.Method`) are trained as one ensemble
per data set and compared with the paper's Table 1. One concept a module:

* :mod:`.protocol` — the data sets, the paper's figures, the protocol per data set and
  budget, :class:`NaturalConfig` and :func:`protocol`;
* :mod:`.sources` — the windows of the music and text corpora, :func:`load_source`, and
  :func:`evaluate_split` (forward only, the state carried);
* :mod:`.training` — :class:`NaturalTrainer` (the loop, the per-member bookkeeping,
  checkpoints) and :func:`train_natural` (train, resume or read back one data set);
* :mod:`.results` — :class:`DatasetResult` and :class:`MemberSummary` (what training
  leaves, read from the store) and :func:`timing_summary`;
* :mod:`.report` — the table, the timings, the runs and the learning curves;
* :mod:`.run` — :func:`run_table1`, all of it for a list of data sets.
"""

from bptt.methods import METHODS, Method

from .protocol import (
    BUDGET_SETTINGS, BUDGETS, DATASET_LABEL, DATASETS, PAPER_TABLE1, PROTOCOL, NaturalConfig, protocol,
)
from .report import plot_curves, table_markdown, timing_markdown, write_report
from .run import run_table1
from .sources import Batch, MusicSource, TextSource, evaluate_split, load_source
from .results import DatasetResult, MemberSummary, timing_summary
from .training import NaturalTrainer, train_natural

__all__ = [
    "DATASETS", "METHODS", "Method", "BUDGETS", "PAPER_TABLE1", "PROTOCOL", "BUDGET_SETTINGS", "DATASET_LABEL",
    "NaturalConfig", "NaturalTrainer", "DatasetResult", "MemberSummary",
    "Batch", "MusicSource", "TextSource", "load_source", "evaluate_split",
    "protocol", "train_natural", "run_table1", "write_report", "timing_summary", "table_markdown",
    "timing_markdown", "plot_curves",
]
