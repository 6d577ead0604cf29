"""The public entry points of training on the pathological tasks (§4.1), in one import:
:class:`TrainConfig`, :class:`Trainer`, :func:`train` and their results."""

from bptt.training.config import METHODS, PER_MEMBER, MemberResult, TrainConfig, TrainResult
from bptt.training.synthetic import Trainer, train

__all__ = ["METHODS", "PER_MEMBER", "MemberResult", "TrainConfig", "TrainResult", "Trainer", "train"]
