#!/usr/bin/env python
"""Cost of one Gauss–Newton product against one gradient evaluation on the same batch.

Hessian-free optimization spends its time in conjugate gradient, one curvature-vector
product per iteration, so the price of a product relative to a gradient decides what an
HF update costs in gradient evaluations. The workload: ``ElmanRNN(6, 50, 4)`` (tanh,
``smart_tanh``, a softmax read at the last step: the temporal order network), E = 1,
lengths T and minibatches B as given. The contenders, each on the same batch:

* ``grad (autograd)``: f and ∇f by ``torch.func.grad_and_value`` over the same model
  function the products use (the baseline the ratios are taken against);
* ``grad (engine)``: f and ∇f by the exact engine (``ElmanRNN.forward_backward``, no Ω),
  the fast path the trainer uses for SGD;
* ``G·v``: one product with the Gauss–Newton matrix, as CG runs it (the reverse-mode
  pass recorded once per HF step and reused; each product is one ``jvp`` and one
  ``vjp`` call);
* ``(G + λI + μλG_S)·v``: the damped product with structural damping, as CG calls it;
* ``G·v incl. setup``: recording the reverse-mode pass plus one product (the cost of
  the first product of a step);
* ``fast ...``: the same three by the Elman fast path
  (:class:`bptt.optim.elman_curvature.ElmanGaussNewton`: hand-derived forward and
  backward sweeps, no autograd), which ``HessianFree`` uses for ``ElmanRNN``.

The fast products are compared with the engine's gradient, the general ones with the
autograd gradient: each product against the gradient of the same machinery.

Timing: after a warm-up, contenders are timed in interleaved rounds (alternating order);
a reported time is the median over ``--repeats`` rounds, every ratio a ratio of medians
taken in this process.

    python benchmarks/hf.py [--lengths 50,200] [--batches 20,50,100] [--repeats 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import bptt.tasks as tasks  # noqa: E402
from bptt.models import ElmanRNN  # noqa: E402
from bptt.optim.curvature import GaussNewton, Layout, case_losses, elman_function  # noqa: E402
from bptt.optim.elman_curvature import ElmanGaussNewton  # noqa: E402

BASELINE = "grad (autograd)"


def contenders(T: int, B: int, hidden: int, device: str) -> dict:
    model = ElmanRNN(6, hidden, 4, unit="tanh", init="smart_tanh", seed=0, device=device)
    x, y = tasks.get("temporal_order", seed=0).sample(B, T)
    x, y = x.to(device), y.to(device)
    params = {k: p.detach() for k, p in model.named_parameters()}
    fn = elman_function("tanh", "last_softmax")
    v = torch.randn(1, Layout(params).size, device=device)
    lam = torch.ones(1, device=device)

    def loss(p):
        f = case_losses(fn(p, x)[0], y, "last_softmax").mean(-1)
        return f.sum(), f

    grad = torch.func.grad_and_value(loss, has_aux=True)
    gn = GaussNewton(fn, params, x, "last_softmax", "tanh", structural=True)
    fast = ElmanGaussNewton(params, x, "last_softmax", "tanh", structural=True)
    return {
        BASELINE: lambda: grad(params),
        "grad (engine)": lambda: model.forward_backward(x, y, omega=None),
        "G·v": lambda: gn.gv(v),
        "(G + λI + μλG_S)·v": lambda: gn.damped(v, lam, 1 / 30),
        "G·v incl. setup": lambda: GaussNewton(fn, params, x, "last_softmax", "tanh", structural=True).gv(v),
        "fast G·v": lambda: fast.gv(v),
        "fast (G + λI + μλG_S)·v": lambda: fast.damped(v, lam, 1 / 30),
        "fast G·v incl. setup": lambda: ElmanGaussNewton(params, x, "last_softmax", "tanh", structural=True).gv(v),
    }


def timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure(T: int, B: int, hidden: int, repeats: int, calls: int, device: str) -> dict:
    funcs = contenders(T, B, hidden, device)
    names = list(funcs)
    for f in funcs.values():            # warm-up
        f()
    rounds = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            rounds[n].append(timed(funcs[n], calls))
    seconds = {n: statistics.median(ts) for n, ts in rounds.items()}
    return {"T": T, "B": B, "seconds": seconds,
            "ratio_to_autograd_grad": {n: seconds[n] / seconds[BASELINE] for n in names},
            "ratio_to_engine_grad": {n: seconds[n] / seconds["grad (engine)"] for n in names}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="50,200")
    ap.add_argument("--batches", default="20,50,100")
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the engine and HessianFree run small problems on one)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure(T, B, args.hidden, args.repeats, args.calls, args.device)
            for T in map(int, args.lengths.split(",")) for B in map(int, args.batches.split(","))]
    names = list(rows[0]["seconds"])
    print(f"H = {args.hidden}, E = 1, median of {args.repeats} rounds; ratio to {BASELINE!r} "
          f"(and to 'grad (engine)')")
    for row in rows:
        print(f"\nT = {row['T']}, B = {row['B']}")
        for n in names:
            print(f"  {n:28s} {row['seconds'][n] * 1e3:9.2f} ms   ×{row['ratio_to_autograd_grad'][n]:5.2f}"
                  f"   (×{row['ratio_to_engine_grad'][n]:5.2f})")
    result = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": os.cpu_count(), "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "device": args.device,
                          "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                          "load": os.getloadavg() if hasattr(os, "getloadavg") else None},
              "hidden": args.hidden, "rows": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
