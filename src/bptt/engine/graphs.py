"""The engine pass replayed as one CUDA graph.

On a GPU a training update of the paper's small networks is a few hundred tiny
kernels (two per time step forward, two back), each far shorter than the time the
host needs to launch it: at E = 1 the GPU idles most of the update. A CUDA graph
records the whole pass once and replays it with a single launch, so the host cost
per update no longer grows with the length.

A :class:`GraphedPass` holds one graph for one problem shape. It reads the
parameters in place (the same tensors must be updated in place between calls, as
:func:`bptt.optim.sgd.sgd_update` does) and copies each call's inputs into
its own buffers. Its results are copies, never views of the graph's memory.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from bptt.engine.exact import StepResult, Workspace, forward_backward


def _signature(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, options: dict) -> tuple:
    return (tuple((k, v.data_ptr(), tuple(v.shape), v.dtype) for k, v in params.items()),
            tuple(x.shape), x.dtype, tuple(y.shape), y.dtype, tuple(sorted(options.items())))


class GraphedPass:
    """:func:`bptt.engine.forward_backward` for one shape, captured as a CUDA graph.

    Args:
        params: the parameters (CUDA tensors, updated in place between calls).
        x, y: an example batch; later batches must have the same shapes and dtypes.
        pass_fn: the pass to capture: :func:`bptt.engine.exact.forward_backward` (the
            default) or :func:`bptt.engine.persistent.persistent_forward_backward`.
        **options: ``unit``, ``output``, ``omega`` and ``omega_bound`` of the pass (and
            any other keyword the pass takes, e.g. ``lengths`` as a tuple).

    Calling it with a batch and Ω's weight α (a float or ``[E]``, copied into the
    graph's own buffer) replays the graph.
    """

    def __init__(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                 pass_fn=forward_backward, **options) -> None:
        if not params["W_rec"].is_cuda:
            raise ValueError("CUDA graphs need the parameters on a CUDA device")
        E = params["W_rec"].shape[0]
        self.pass_fn = pass_fn
        self.params = params
        self.options = options
        self.signature = _signature(params, x, y, options)
        self.x = x.detach().clone()
        self.y = y.detach().clone()
        self.alpha = torch.zeros(E, dtype=params["W_rec"].dtype, device=params["W_rec"].device)
        self.workspace = Workspace()
        stream = torch.cuda.Stream(device=self.x.device)
        stream.wait_stream(torch.cuda.current_stream(self.x.device))
        with torch.cuda.stream(stream):
            for _ in range(2):                       # buffers, cuBLAS handles and plans
                self._eager()
        torch.cuda.current_stream(self.x.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = self._eager()

    def _eager(self) -> StepResult:
        return self.pass_fn(self.params, self.x, self.y, alpha=self.alpha,
                            workspace=self.workspace, **self.options)

    def matches(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                options: dict) -> bool:
        return self.signature == _signature(params, x, y, options)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, alpha: torch.Tensor | float) -> StepResult:
        self.x.copy_(x, non_blocking=True)
        self.y.copy_(y, non_blocking=True)
        if torch.is_tensor(alpha):
            self.alpha.copy_(alpha.reshape(-1).expand_as(self.alpha), non_blocking=True)
        else:
            self.alpha.fill_(float(alpha))
        self.graph.replay()
        out = self.out
        return dataclasses.replace(
            out, **{f.name: getattr(out, f.name).clone() for f in dataclasses.fields(out)
                    if torch.is_tensor(getattr(out, f.name))},
            grads={k: v.clone() for k, v in out.grads.items()})


class GraphCache:
    """The graph of the latest problem shape; a new shape replaces it.

    Capture failures (an operation that cannot be captured, an old driver) are
    reported once as a warning, and the cache then falls back to the plain pass.

    Args:
        pass_fn: the pass to capture (default :func:`bptt.engine.exact.forward_backward`).
    """

    def __init__(self, pass_fn=forward_backward) -> None:
        self.pass_fn = pass_fn
        self.current: GraphedPass | None = None
        self.failed = False

    def run(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
            alpha: torch.Tensor | float, **options) -> StepResult:
        if not self.failed:
            if self.current is None or not self.current.matches(params, x, y, options):
                self.current = None
                try:
                    self.current = GraphedPass(params, x, y, pass_fn=self.pass_fn, **options)
                except RuntimeError as err:
                    self.failed = True
                    warnings.warn(f"CUDA graph capture failed, running the plain engine pass: {err}",
                                  RuntimeWarning, stacklevel=3)
            if self.current is not None:
                return self.current(x, y, alpha)
        return self.pass_fn(params, x, y, alpha=alpha, **options)
