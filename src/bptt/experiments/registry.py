"""The reproductions of §4.1, and the remedies comparison, by name: the one module that
imports every experiment.

Nothing in :mod:`bptt.experiments` below this module imports it; the report, the
``reproduce`` driver and the command line look experiments up here.
"""

from __future__ import annotations

from bptt.experiments.experiment import Experiment
from bptt.experiments.figure7 import Figure7
from bptt.experiments.generalization import Generalization
from bptt.experiments.remedies import Remedies
from bptt.experiments.synthetic import Synthetic

#: Every reproduction, in the order the paper presents them.
EXPERIMENTS: tuple[Experiment, ...] = (Figure7(), Synthetic(), Generalization(), Remedies())


def experiments() -> dict[str, Experiment]:
    """The reproductions by name."""
    return {e.name: e for e in EXPERIMENTS}


def get(name: str) -> Experiment:
    """The reproduction called ``name``.

    Raises:
        ValueError: no reproduction has that name (the message lists the names).
    """
    table = experiments()
    if name not in table:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(table)}")
    return table[name]
