"""Gradient clipping (paper §3.2, Algorithm 1) and its adaptive successors.

* :mod:`bptt.clip.norm` — the ensemble forms used by the training core: the global
  norm of each member, Algorithm 1 and Mikolov's element-wise clipping on a mapping of
  ``[E, ...]`` gradients (returning copies).
* :mod:`bptt.clip.functional` — :func:`clip_grad_norm_` (Algorithm 1) and
  :func:`clip_grad_value_` (element-wise) for any PyTorch network, in place on
  ``.grad``, with PyTorch's calling convention; ensembles too.
* :mod:`bptt.clip.clipper`, :mod:`bptt.clip.adaptive`, :mod:`bptt.clip.agc` — clipper
  objects with state: :class:`ClipNorm` (a fixed threshold), :class:`AverageNorm` (the
  paper's heuristic), :class:`AutoClip`, :class:`ZClip`, :class:`AGC`.
* :mod:`bptt.clip.optimizer` — :class:`ClippedOptimizer`, a clipper in front of a
  ``torch.optim`` optimizer.
"""

from bptt.clip.adaptive import AutoClip, AverageNorm, ZClip
from bptt.clip.agc import AGC
from bptt.clip.clipper import ClipNorm, Clipper
from bptt.clip.functional import NONFINITE_POLICIES, clip_grad_norm_, clip_grad_value_
from bptt.clip.norm import check_threshold, clip_by_global_norm, clip_elementwise, global_norm
from bptt.clip.optimizer import ClippedOptimizer

__all__ = ["AGC", "AutoClip", "AverageNorm", "ClipNorm", "ClippedOptimizer", "Clipper",
           "NONFINITE_POLICIES", "ZClip", "check_threshold", "clip_by_global_norm",
           "clip_elementwise", "clip_grad_norm_", "clip_grad_value_", "global_norm"]
