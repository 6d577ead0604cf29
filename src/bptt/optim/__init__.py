"""Update rules: the paper's SGD with its non-finite guard (:mod:`bptt.optim.sgd`) and
Hessian-free optimization with structural damping (:mod:`bptt.optim.hf`)."""

from bptt.optim.hf import HessianFree, HFRecord
from bptt.optim.sgd import NORM_LIMIT, SHRINK, PaperSGD, nonfinite, sgd_update

__all__ = ["HFRecord", "HessianFree", "NORM_LIMIT", "SHRINK", "PaperSGD", "nonfinite", "sgd_update"]
