"""bptt: training recurrent networks across long time lags, and seeing why that is hard.

The system of Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
neural networks" (ICML 2013)::

    import bptt
    task = bptt.tasks.get("temporal_order", seed=0)
    x, y = task.sample(batch_size=20, length=100)
    model = bptt.ElmanRNN(task.n_in, 50, task.n_out, ensemble=4, init="smart_tanh",
                          output=task.output, seed=0)
    out = model.forward_backward(x, y, alpha=2.0, omega="squared")

Submodules load on first use, so that ``import bptt.store`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["ElmanRNN", "load", "load_run", "tasks", "__version__"]


def load(path, device="cpu"):
    """The network saved at ``path`` by ``model.save(path)`` (any model of
    :data:`bptt.models.MODELS`), on ``device``; read with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a bptt checkpoint.
    """
    from bptt.training.checkpoint import load_file

    return load_file(path, device=device)


def load_run(store, run_id: int, device="cpu"):
    """The trained network of run ``run_id`` in the results store ``store`` (a
    :class:`bptt.store.Store`, or the path of one): the network it finished with, or its
    member of the newest checkpoint when it was stopped.

    Raises:
        FileNotFoundError: ``store`` is a path where no results store exists.
        KeyError: no run ``run_id``.
        ValueError: the run has no saved network.
    """
    import os

    from bptt.store import Store
    from bptt.training.checkpoint import run_network

    if isinstance(store, (str, os.PathLike)):
        if not os.path.isfile(store):
            raise FileNotFoundError(f"no results store at {store}")
        store = Store(store)
    return run_network(store, int(run_id), device=device)


def __getattr__(name: str):
    if name == "ElmanRNN":
        from bptt.models.elman import ElmanRNN
        return ElmanRNN
    if name in ("tasks", "models", "engine", "training", "dynamics", "diagnostics", "experiments", "store"):
        return importlib.import_module(f"bptt.{name}")
    raise AttributeError(f"module 'bptt' has no attribute {name!r}")
