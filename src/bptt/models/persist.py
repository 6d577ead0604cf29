"""The saved form of a network: the library's version-2 checkpoint of one model.

The lowest layer of the checkpoint format (:mod:`bptt.training.checkpoint` reads every
kind and version, and writes the training checkpoints on top of this): what
``model.save(path)`` writes, and the plain-types rule every checkpoint follows, so that
it loads with ``torch.load(..., weights_only=True)``::

    {"format": "bptt-checkpoint", "version": 2, "kind": "member", "model": state dict,
     "model_config": model.config(), "model_kind": name}    # model_kind only if not "elman"
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
import torch

FORMAT = "bptt-checkpoint"
VERSION = 2


def plain(value):
    """``value`` with numpy scalars as Python numbers, numpy arrays as tensors, enums of
    strings as strings and tuples as lists; ``TypeError`` for anything else that
    ``torch.load(..., weights_only=True)`` would refuse."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor) or value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, str):                      # StrEnum members: Method, Status
        return str(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a checkpoint holds only tensors, numbers, strings, lists and dicts, not {type(value)}")


def kind_entry(model) -> dict:
    """``{"model_kind": name}`` for models other than the Elman network (a checkpoint
    without the key holds an :class:`bptt.models.ElmanRNN`)."""
    name = getattr(type(model), "KIND", "")
    if not name:
        raise ValueError(f"{type(model).__name__} is not one of bptt's models; save its state_dict instead")
    return {} if name == "elman" else {"model_kind": name}


def member(model, **extra) -> dict:
    """A version-2 checkpoint of one finished member's network (``extra``: e.g. ``epoch``)."""
    return plain({"format": FORMAT, "version": VERSION, "kind": "member", "model": _cpu(model.state_dict()),
                  "model_config": model.config(), **kind_entry(model), **extra})


def dumps(checkpoint: dict) -> bytes:
    """The bytes stored in the results store for ``checkpoint``."""
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    return buf.getvalue()


def save_model(model, path) -> None:
    """Write ``model`` (any of :data:`bptt.models.MODELS`) to the file ``path`` as a
    version-2 member checkpoint."""
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no directory {path.parent} to save the model in; create it first")
    path.write_bytes(dumps(member(model)))


def _cpu(tensors: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in tensors.items()}

