#!/usr/bin/env python
"""Cost of one clipping call: bptt.clip against torch.nn.utils.clip_grad_norm_.

The workload is the parameters of an ``nn.LSTM(50, 50)`` with an ``nn.Linear(50, 50)``
head (6 tensors, 22,950 numbers), each with a gradient. One call clips all of them
in place. The contenders:

* ``torch``: ``torch.nn.utils.clip_grad_norm_(params, 1.0)`` — the baseline;
* ``bptt ignore``: ``bptt.clip.clip_grad_norm_(params, 1.0, nonfinite="ignore")`` — the
  fast path, no host synchronisation;
* ``bptt error``: the default policy, which reads one boolean back to the host;
* ``ClipNorm``, ``AverageNorm``, ``AutoClip(history=1000)``, ``ZClip``, ``AGC``: the
  clipper objects (``nonfinite="ignore"``), for their overhead.

Gradients are not restored between calls: after the first call every contender sees a
norm at or below the threshold and still does all its work (PyTorch and bptt both
multiply by the factor, 1 or not). Timing: after a warm-up, all contenders are timed
in interleaved rounds (each round times ``--calls`` consecutive calls of every
contender, in alternating order, so that a change of load affects all alike); the
reported time is the median over ``--repeats`` rounds, and every ratio is a ratio of
medians taken in this process.

    python benchmarks/clipping.py [--device cuda] [--repeats 15] [--calls 2000]
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

from bptt.clip import AGC, AutoClip, AverageNorm, ClipNorm, ZClip, clip_grad_norm_  # noqa: E402


def workload(device: str) -> list[torch.Tensor]:
    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(50, 50).to(device), torch.nn.Linear(50, 50).to(device)
    params = list(lstm.parameters()) + list(head.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 0.1
    return params


def contenders(params):
    clippers = {"ClipNorm": ClipNorm(1.0, nonfinite="ignore"),
                "AverageNorm": AverageNorm(1.0, window=100, warmup=10, nonfinite="ignore"),
                "AutoClip(history=1000)": AutoClip(10, history=1000, nonfinite="ignore"),
                "ZClip": ZClip(warmup=10, nonfinite="ignore"),
                "AGC": AGC(0.01, nonfinite="ignore")}
    out = {"torch": lambda: torch.nn.utils.clip_grad_norm_(params, 1.0),
           "bptt ignore": lambda: clip_grad_norm_(params, 1.0, nonfinite="ignore"),
           "bptt error": lambda: clip_grad_norm_(params, 1.0)}
    for name, c in clippers.items():
        out[name] = (lambda c=c: c(params))
    return out


def timed(fn, calls: int, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="3 repeats of 200 calls")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.calls = 3, 200
    if args.threads:
        torch.set_num_threads(args.threads)
    params = workload(args.device)
    fns = contenders(params)
    for fn in fns.values():                    # warm-up (and the adaptive clippers' warm-up)
        timed(fn, 50, args.device)
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(timed(fns[name], args.calls, args.device))
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["torch"]
    print(f"clipping an nn.LSTM(50, 50) + Linear(50, 50) ({sum(p.numel() for p in params):,} numbers) "
          f"on {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"median of {args.repeats} rounds of {args.calls} calls\n")
    print(f"| {'contender':<24} | µs per call | ratio to torch |")
    print(f"| {'-' * 24} | ----------- | -------------- |")
    for name in names:
        print(f"| {name:<24} | {median[name] * 1e6:11.1f} | {median[name] / base:14.2f} |")
    result = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "repeats": args.repeats,
              "calls": args.calls, "seconds_per_call": median,
              "ratio_to_torch": {n: median[n] / base for n in names}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
