"""Which engine trains a reproduction's runs: the device and the kernel.

The CPU and the exact engine (:func:`bptt.engine.forward_backward`) are the reference
and the default. On a CUDA device a reproduction trains with the persistent Triton
kernel (:mod:`bptt.engine.persistent`) when Triton imports, so that runs of different
lengths share one ensemble (see :func:`bptt.experiments.grid.pack`), and otherwise with
the exact engine replayed as CUDA graphs (:mod:`bptt.engine.graphs`).
"""

from __future__ import annotations

import torch

from bptt.engine import check_kernel

#: Runs per ensemble with the persistent kernel: its launch grid grows with the
#: ensemble, so a whole Figure 7 initialization (5 lengths x 3 methods x 5 seeds) fits.
PERSISTENT_ENSEMBLE = 256


def check_device(device: str) -> str:
    """``device`` if torch knows it and it is present here; ``ValueError`` otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r} ({exc}); use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use cpu or cuda")
    return str(device)


def choose_kernel(device: str, kernel: str | None = None) -> tuple[str, str | None]:
    """The kernel that trains a reproduction on ``device``, and a note where the choice fell back.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        kernel: ``"exact"``, ``"persistent"``, or ``None`` for the default: the persistent
            kernel on CUDA when Triton imports, else the exact engine.

    Returns:
        ``(kernel, note)``; ``note`` says why the exact engine was chosen on CUDA, else ``None``.

    Raises:
        ValueError: an unknown kernel, or ``"persistent"`` without Triton or on the CPU
            (where only Triton's interpreter runs it, ``TRITON_INTERPRET=1``).
    """
    cuda = torch.device(device).type == "cuda"
    if not cuda and kernel in (None, "exact"):
        return "exact", None                                     # the reference: Triton not even imported
    from bptt.engine import persistent

    if kernel is None:
        if cuda and persistent.available():
            return "persistent", None
        if cuda:
            return "exact", ("Triton is not installed: the runs train with the exact engine and CUDA graphs, one "
                             "ensemble per length (`pip install 'bptt[gpu]'` for the persistent kernel)")
        return "exact", None
    if check_kernel(kernel) == "persistent":
        if not persistent.available():
            raise ValueError("kernel 'persistent' needs Triton, which is not installed: "
                             "`pip install 'bptt[gpu]'`, or use --kernel exact")
        if not cuda and not persistent.interpreted():
            raise ValueError("kernel 'persistent' runs on CUDA devices: use --device cuda, "
                             "or --kernel exact on the CPU")
    return kernel, None


def engine_fields(device: str, kernel: str) -> dict:
    """The training fields that select the engine, where they differ from the defaults."""
    return {k: v for k, v in (("device", device), ("kernel", kernel)) if v != {"device": "cpu", "kernel": "exact"}[k]}
