#!/usr/bin/env python
"""What Ω costs on a PyTorch module, through :class:`bptt.omega.Omega`.

For each model the script times, in the same process and in interleaved rounds,

* ``plain``: the module's forward, the loss, and ``loss.backward()``;
* ``omega``: the wrapper's forward, the loss, ``wrapper.penalty(loss)`` and
  ``(loss + alpha * omega).backward()``,

and prints the ratio of their medians. Models: ``nn.RNN`` (tanh), ``nn.LSTM``,
``nn.GRU`` (each one layer, fused PyTorch kernels), and a user cell (a GRU-like cell
written in Python, unrolled with autograd in both contenders). The workload is the
temporal order problem's shape: T = 200, B = 20, H = 50, I = 6, a linear readout of
the last step into 4 classes and cross-entropy; float32 on the CPU.

    python benchmarks/omega_cost.py [--repeats 7] [--min-time 0.3] [--threads N]
                                    [--semantics full|reference] [--form squared|plain]
                                    [--length 200] [--batch 20] [--hidden 50] [--layers 1]
                                    [--clock wall|cpu] [--stages] [--models LIST] [--json PATH]

``--semantics reference`` applies to nn.RNN only (the others use ``full``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

from bptt.omega import Omega


class UserGRUCell(nn.Module):
    """A minimal gated cell in plain PyTorch, standing for any user's cell."""

    def __init__(self, n_in: int, n_hidden: int) -> None:
        super().__init__()
        self.lin_in = nn.Linear(n_in, 2 * n_hidden)
        self.lin_rec = nn.Linear(n_hidden, 2 * n_hidden, bias=False)

    def forward(self, u, h):
        z, n = (self.lin_in(u) + self.lin_rec(h)).chunk(2, -1)
        z = torch.sigmoid(z)
        return (1 - z) * h + z * torch.tanh(n)


def unroll(cell, x, h):
    outs = []
    for t in range(x.shape[0]):
        h = cell(x[t], h)
        outs.append(h)
    return torch.stack(outs), h


def contenders(args):
    T, B, I, H, O = args.length, args.batch, 6, args.hidden, 4
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, I, generator=g)
    y = torch.randint(O, (B,), generator=g)
    readout = nn.Linear(H, O)
    out = {}
    for name, module in (("nn.RNN", nn.RNN(I, H, num_layers=args.layers)),
                         ("nn.LSTM", nn.LSTM(I, H, num_layers=args.layers)),
                         ("nn.GRU", nn.GRU(I, H, num_layers=args.layers)),
                         ("user cell", UserGRUCell(I, H))):
        semantics = args.semantics if name == "nn.RNN" else "full"
        wrapper = Omega(module)
        params = list(module.parameters()) + list(readout.parameters())
        h0 = torch.zeros(B, H)

        def plain(module=module, params=params, h0=h0):
            hs, _ = unroll(module, x, h0) if isinstance(module, UserGRUCell) else module(x)
            loss = F.cross_entropy(readout(hs[-1]), y)
            loss.backward()
            for p in params:
                p.grad = None

        def with_omega(module=module, wrapper=wrapper, params=params, h0=h0, semantics=semantics):
            hs, _ = wrapper(x, h0) if isinstance(module, UserGRUCell) else wrapper(x)
            loss = F.cross_entropy(readout(hs[-1]), y)
            omega = wrapper.penalty(loss, form=args.form, semantics=semantics)
            (loss + 2.0 * omega).backward()
            for p in params:
                p.grad = None

        out[name] = (plain, with_omega, semantics)
    return out


def stages(args, clock, repeats: int = 9) -> dict[str, float]:
    """Milliseconds per update of each stage of Ω on the nn.LSTM (medians)."""
    from bptt.omega.lstm_penalty import lstm_layer_omega
    from bptt.omega.lstm_tape import signals, tape_from_states

    T, B, I, H, O = args.length, args.batch, 6, args.hidden, 4
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, I, generator=g)
    y = torch.randint(O, (B,), generator=g)
    readout = nn.Linear(H, O)
    wrapper = Omega(nn.LSTM(I, H))
    acc: dict[str, list[float]] = {}

    def timed(name, fn):
        start = clock()
        out = fn()
        acc.setdefault(name, []).append(clock() - start)
        return out

    for _ in range(repeats):
        hs, _ = timed("forward (fused)", lambda: wrapper(x))
        loss = F.cross_entropy(readout(hs[-1]), y)
        layer = wrapper.record.layers[0]
        w = layer.map.w
        grads = timed("dE/d(outputs)", lambda: wrapper._loss_grads(loss))
        h = torch.cat([layer.first[0][None], layer.outputs])
        tape = timed("gates and cells", lambda: tape_from_states(layer.inputs, h, layer.first[1][None],
                                                                  w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh))
        timed("Jacobian factors", tape.factors)
        direct = grads[0]
        sig = timed("backward recursion for delta", lambda: signals(tape, direct, (None, None)))
        omega = timed("v_k and Omega", lambda: lstm_layer_omega(w, tape, direct, (None, None), args.form,
                                                                 1e-20, sig=sig)[0])
        timed("backward of loss + 2 Omega", lambda: (loss + 2.0 * omega).backward())
        hs, _ = wrapper.module(x)
        loss = F.cross_entropy(readout(hs[-1]), y)
        timed("plain backward (for comparison)", loss.backward)
    return {k: 1e3 * statistics.median(v) for k, v in acc.items()}


def block(fn, min_time: float, clock=time.perf_counter) -> float:
    """Seconds per call over a block of calls lasting at least ``min_time`` on ``clock``."""
    n, start = 0, clock()
    while True:
        fn()
        n += 1
        elapsed = clock() - start
        if elapsed >= min_time:
            return elapsed / n


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--semantics", choices=("full", "reference"), default="full")
    ap.add_argument("--form", choices=("squared", "plain"), default="squared")
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter; cpu: time.process_time, the CPU time of this "
                         "process, steadier on a machine shared with other jobs")
    ap.add_argument("--stages", action="store_true",
                    help="also time each stage of Ω on the nn.LSTM")
    ap.add_argument("--models", default="nn.RNN,nn.LSTM,nn.GRU,user cell",
                    help="comma-separated subset of: nn.RNN, nn.LSTM, nn.GRU, user cell")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)       # as the engine does: vanishing signals stay fast
    torch.manual_seed(0)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    cons = {k: v for k, v in contenders(args).items() if k in wanted}
    if not cons:
        ap.error(f"--models: none of {wanted} is one of nn.RNN, nn.LSTM, nn.GRU, user cell")
    for plain, with_omega, _ in cons.values():       # warm-up
        for _ in range(2):
            plain()
            with_omega()
    times = {name: {"plain": [], "omega": []} for name in cons}
    for r in range(args.repeats):
        for name, (plain, with_omega, _) in cons.items():
            pair = [("plain", plain), ("omega", with_omega)]
            for key, fn in (pair if r % 2 == 0 else pair[::-1]):
                times[name][key].append(block(fn, args.min_time, clock))
    rows = []
    print(f"T={args.length} B={args.batch} H={args.hidden} layers={args.layers} form={args.form}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock, torch {torch.__version__}")
    print(f"{'model':<10} {'semantics':<10} {'plain ms':>9} {'with Ω ms':>10} {'ratio':>7}")
    for name, t in times.items():
        p, o = statistics.median(t["plain"]), statistics.median(t["omega"])
        rows.append({"model": name, "semantics": cons[name][2], "plain_ms": 1e3 * p,
                     "omega_ms": 1e3 * o, "ratio": o / p})
        print(f"{name:<10} {cons[name][2]:<10} {1e3 * p:9.2f} {1e3 * o:10.2f} {o / p:6.2f}×")
    if args.stages:
        result_stages = stages(args, clock)
        print("nn.LSTM, ms per update by stage:")
        for k, v in result_stages.items():
            print(f"  {k:<34} {v:7.2f}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"config": vars(args), "machine": {"platform": platform.platform(), "load_average": load,
                                                 "torch": torch.__version__,
                                                 "threads": torch.get_num_threads()},
              "rows": rows, "lstm_stages_ms": result_stages if args.stages else None}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
