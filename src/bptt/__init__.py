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
__all__ = ["ElmanRNN", "tasks", "__version__"]


def __getattr__(name: str):
    if name == "ElmanRNN":
        from bptt.models.elman import ElmanRNN
        return ElmanRNN
    if name in ("tasks", "models", "engine", "training", "dynamics", "diagnostics", "experiments", "store"):
        return importlib.import_module(f"bptt.{name}")
    raise AttributeError(f"module 'bptt' has no attribute {name!r}")
