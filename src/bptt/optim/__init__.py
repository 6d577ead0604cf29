"""Update rules: the paper's SGD with its non-finite guard (:mod:`bptt.optim.sgd`) and
Hessian-free optimization with structural damping (:mod:`bptt.optim.hf`)."""

from bptt.optim.hf import HessianFree, HFRecord
from bptt.optim.sgd import NORM_LIMIT, SHRINK, PaperSGD, nonfinite, sgd_update
from bptt.optim.sgd import GUARDS, guarded

__all__ = ["GUARDS", "HFRecord", "HessianFree", "NORM_LIMIT", "SHRINK", "PaperSGD", "guarded", "nonfinite",
           "sgd_update"]
