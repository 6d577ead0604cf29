"""Update rules: the paper's SGD with its non-finite guard (:mod:`bptt.optim.sgd`)."""

from bptt.optim.sgd import NORM_LIMIT, SHRINK, PaperSGD, nonfinite, sgd_update
from bptt.optim.sgd import GUARDS, guarded

__all__ = ["NORM_LIMIT", "SHRINK", "PaperSGD", "nonfinite", "sgd_update", "GUARDS", "guarded"]
