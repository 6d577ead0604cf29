"""Update rules: the paper's SGD with its non-finite guard (:mod:`bptt.optim.sgd`), ensemble
optimizers with per-member hyperparameters (:mod:`bptt.optim.ensemble`), any of them
behind any clipper (:mod:`bptt.optim.rules`), and Hessian-free optimization with
structural damping (:mod:`bptt.optim.hf`) and its update rule for the training loop
(:mod:`bptt.optim.hf_rule`)."""

from bptt.optim.ensemble import (
    OPTIMIZERS,
    EnsembleAdam,
    EnsembleNesterov,
    EnsembleOptimizer,
    EnsembleRMSprop,
    EnsembleSGD,
)
from bptt.optim.hf import HessianFree, HFRecord
from bptt.optim.hf_rule import BatchStep, HFRule
from bptt.optim.rules import CLIPPERS, CLIPS, ClippedRule, make_rule
from bptt.optim.sgd import NORM_LIMIT, SHRINK, PaperSGD, nonfinite, sgd_update
from bptt.optim.sgd import GUARDS, guarded

#: Every update rule by name: the ensemble optimizers (behind any clipper) and ``"hf"``,
#: Hessian-free optimization (:class:`HFRule`).
UPDATE_RULES = (*OPTIMIZERS, "hf")

__all__ = ["BatchStep", "HFRule", "UPDATE_RULES", "CLIPPERS", "CLIPS", "ClippedRule", "EnsembleAdam", "EnsembleNesterov", "EnsembleOptimizer",
           "EnsembleRMSprop", "EnsembleSGD", "GUARDS", "HFRecord", "HessianFree", "NORM_LIMIT", "OPTIMIZERS",
           "SHRINK", "PaperSGD", "guarded", "make_rule", "nonfinite", "sgd_update"]
