"""The engine: exact BPTT for an ensemble of the paper's RNNs, and its autograd oracle.

Two implementations of the same pass, chosen by name with :func:`get_pass`:
``"exact"`` (:func:`forward_backward`, batched PyTorch products, any device; the
default everywhere) and ``"persistent"``
(:func:`bptt.engine.persistent.persistent_forward_backward`, both sweeps in one
Triton kernel; CUDA, and the CPU under Triton's interpreter; needs ``bptt[gpu]``).
"""

from bptt.engine.exact import PARAM_NAMES, Evaluation, StepResult, evaluate, forward_backward
from bptt.engine.reference import reference_forward_backward

#: The names :func:`get_pass` knows.
KERNELS = ("exact", "persistent")


def check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    return kernel


def get_pass(kernel: str = "exact"):
    """The engine pass called ``kernel``: a function with :func:`forward_backward`'s
    signature and result (the persistent one also takes ``lengths``).

    Raises:
        ValueError: an unknown name, or ``"persistent"`` where Triton is not installed.
    """
    if check_kernel(kernel) == "exact":
        return forward_backward
    from bptt.engine import persistent
    if not persistent.available():
        raise ValueError("kernel='persistent' needs Triton; install it with `pip install 'bptt[gpu]'`")
    return persistent.persistent_forward_backward


__all__ = ["KERNELS", "PARAM_NAMES", "Evaluation", "StepResult", "check_kernel", "evaluate",
           "forward_backward", "get_pass", "reference_forward_backward"]
