"""The engine: exact BPTT for an ensemble of the paper's RNNs, and its autograd oracle."""

from bptt.engine.exact import PARAM_NAMES, Evaluation, StepResult, evaluate, forward_backward
from bptt.engine.reference import reference_forward_backward

__all__ = ["PARAM_NAMES", "Evaluation", "StepResult", "evaluate", "forward_backward",
           "reference_forward_backward"]
