"""Update rules: the paper's SGD with its non-finite guard (:mod:`bptt.optim.sgd`), ensemble
optimizers with per-member hyperparameters (:mod:`bptt.optim.ensemble`), and any of them
behind any clipper (:mod:`bptt.optim.rules`)."""

from bptt.optim.ensemble import (
    OPTIMIZERS,
    EnsembleAdam,
    EnsembleNesterov,
    EnsembleOptimizer,
    EnsembleRMSprop,
    EnsembleSGD,
)
from bptt.optim.rules import CLIPPERS, CLIPS, ClippedRule, make_rule
from bptt.optim.sgd import NORM_LIMIT, SHRINK, PaperSGD, nonfinite, sgd_update

__all__ = ["CLIPPERS", "CLIPS", "ClippedRule", "EnsembleAdam", "EnsembleNesterov", "EnsembleOptimizer",
           "EnsembleRMSprop", "EnsembleSGD", "NORM_LIMIT", "OPTIMIZERS", "SHRINK", "PaperSGD", "make_rule",
           "nonfinite", "sgd_update"]
