"""Gradient clipping (paper §3.2, Algorithm 1), in one place.

:mod:`bptt.clip.norm` holds the ensemble forms used by the training core: the global
norm of each member, Algorithm 1 and Mikolov's element-wise clipping.
"""

from bptt.clip.norm import check_threshold, clip_by_global_norm, clip_elementwise, global_norm

__all__ = ["check_threshold", "clip_by_global_norm", "clip_elementwise", "global_norm"]
