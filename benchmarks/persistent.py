#!/usr/bin/env python
"""The persistent Triton kernel against the CUDA-graph pass and cuDNN, per network update.

Two measurements, all in one process on one CUDA device:

1. **Per update, E = 1, 2, 4, …, 512**: one full training step of an ensemble of E
   Elman networks on the temporal order problem (length ``--length``, minibatches of
   ``--batch``, ``--hidden`` tanh units, Ω squared with α = 2, clipping at 1, SGD):
   the persistent kernel's pass (rows ``persistent``, launched directly, and
   ``persistent_graph``, replayed as a CUDA graph with the torch work around it, as
   ``cuda_graph=True`` does) against today's CUDA-graph
   pass (``cuda_graph=True``, :mod:`bptt.engine.graphs`); and at E = 1 against cuDNN:
   ``torch.nn.RNN`` + ``nn.Linear``, cross-entropy, autograd, ``clip_grad_norm_``,
   ``torch.optim.SGD`` (no Ω). Contenders are timed in interleaved rounds; every
   ratio is a ratio of medians measured in this run.
2. **A slice of Figure 7's protocol**: the 45 configurations of one length (3
   initializations × 3 methods × 5 seeds at L = ``--slice-length``, 250 by default)
   trained together for ``--slice-updates`` updates with per-member thresholds and α
   (MSGD: no clipping, α = 0; MSGD-C: threshold 1; MSGD-CR: threshold 1, α = 4),
   batches drawn on the device (:mod:`bptt.tasks.device`) and a success screen every
   ``--screen-every`` updates (:mod:`bptt.engine.screen`, one host read per screen).
   All members train in one launch per update: the sigmoid initialization's members
   have sigmoid units, the others tanh units (``unit=`` one name per member). With
   ``--full-ensemble`` the same is timed for all 225 runs of Figure 7 in one
   ensemble, members of the five lengths together (``lengths=``).
   From the measured rate the script estimates the wall time of the full budget
   (every run to the paper's 5,000,000-update cap, none leaving early).

``--interpret --tiny`` runs every code path on the CPU under Triton's interpreter at
toy sizes (no timing is meaningful there); without it the script needs CUDA and exits
with a message otherwise. Results go to ``--json`` (default
``benchmarks/results-persistent.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ensembles", default="1,2,4,8,16,32,64,128,256,512",
                   help="ensemble sizes E of the per-update comparison")
    p.add_argument("--length", type=int, default=250, help="sequence length of the per-update comparison")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--hidden", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (medians are reported)")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds each timed block lasts at least")
    p.add_argument("--warmup", type=int, default=3, help="untimed updates before timing")
    p.add_argument("--precision", default="ieee", help="tl.dot precision of the kernel: ieee, tf32, tf32x3")
    p.add_argument("--block-b", type=int, default=None, help="sequences per program (default: the kernel's)")
    p.add_argument("--num-warps", type=int, default=None, help="warps per program (default: the kernel's)")
    p.add_argument("--no-graph-persistent", dest="graph_persistent", action="store_false",
                   help="do not time the persistent pass replayed as a CUDA graph")
    p.add_argument("--slice-length", type=int, default=250)
    p.add_argument("--slice-updates", type=int, default=2000)
    p.add_argument("--screen-every", type=int, default=1000)
    p.add_argument("--screen-sequences", type=int, default=200)
    p.add_argument("--full-ensemble", action="store_true",
                   help="also time all 225 runs of Figure 7 in one ensemble (five lengths, two units)")
    p.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results-persistent.json"))
    p.add_argument("--interpret", action="store_true",
                   help="run on the CPU under Triton's interpreter (checks the script, measures nothing)")
    p.add_argument("--tiny", action="store_true", help="toy sizes (with --interpret)")
    args = p.parse_args(argv)
    try:
        args.ensembles = [int(v) for v in args.ensembles.split(",") if v]
    except ValueError:
        p.error(f"--ensembles must be a comma-separated list of integers, got {args.ensembles!r}")
    if not args.ensembles or min(args.ensembles) < 1:
        p.error("--ensembles must hold positive integers")
    if args.tiny:
        args.ensembles = [e for e in args.ensembles if e <= 2] or [1]
        args.length = args.slice_length = 10
        args.batch, args.hidden = 4, 8
        args.repeats, args.min_time, args.warmup = 1, 0.0, 1
        args.slice_updates, args.screen_every, args.screen_sequences = 2, 2, 8
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.interpret:
        os.environ["TRITON_INTERPRET"] = "1"            # before Triton is imported
    import torch
    if not args.interpret and not torch.cuda.is_available():
        print("benchmarks/persistent.py needs a CUDA device (none found); "
              "use --interpret --tiny to check the script on the CPU")
        return 2
    from bptt.engine import persistent
    if not persistent.available():
        print("Triton is not installed: pip install 'bptt[gpu]'")
        return 2
    device = torch.device("cpu" if args.interpret else "cuda")
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (Triton interpreter)",
              "torch": torch.__version__, "config": {k: v for k, v in vars(args).items() if k != "json"},
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.interpret:
        print("Interpreter mode: every path runs, no number below is a measurement.")
    report["per_update"] = per_update(args, device)
    report["slice"] = protocol_slice(args, device, full=False)
    if args.full_ensemble:
        report["full_ensemble"] = protocol_slice(args, device, full=True)
    report["targets"] = targets(report, measured=not args.interpret)
    for t in report["targets"]:
        print(f"target {t['name']}: {t['value']}  ({'met' if t['passed'] else 'NOT met' if t['passed'] is False else 'not measured'})")
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.json}")
    return 0


# -- timing -------------------------------------------------------------------------------


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(steps: dict, args, device) -> dict[str, list[float]]:
    """Seconds per call of every contender, one block per contender and round, in turn."""
    for fn in steps.values():
        for _ in range(args.warmup):
            fn()
    _sync(device)
    samples = {k: [] for k in steps}
    for r in range(args.repeats):
        order = list(steps) if r % 2 == 0 else list(reversed(steps))
        for key in order:
            fn, n = steps[key], 0
            _sync(device)
            start = time.perf_counter()
            while True:
                fn()
                n += 1
                _sync(device)
                if time.perf_counter() - start >= args.min_time:
                    break
            samples[key].append((time.perf_counter() - start) / n)
    return samples


# -- 1. per update --------------------------------------------------------------------------


def engine_step(model, x, y, *, kernel: str, graph: bool, precision: str, block_b=None, num_warps=None):
    """One training update of the whole ensemble: pass, guard, clipping, SGD.

    ``kernel="exact"`` runs the model's own pass (``cuda_graph=graph``); ``"persistent"``
    calls the kernel's pass with ``precision``, through a CUDA graph when ``graph``.
    """
    import functools

    import torch
    from bptt.clip import clip_by_global_norm
    from bptt.engine.graphs import GraphCache
    from bptt.engine.persistent import persistent_forward_backward
    from bptt.optim.sgd import nonfinite, sgd_update

    params = {k: p.detach() for k, p in model.params.items()}
    fn = functools.partial(persistent_forward_backward, precision=precision, block_b=block_b,
                           num_warps=num_warps)
    cache = GraphCache(fn) if graph and kernel == "persistent" and x.is_cuda else None
    options = {"unit": model.unit, "output": model.output, "omega": "squared"}

    def step():
        if kernel == "exact":
            out = model.forward_backward(x, y, alpha=2.0, omega="squared", cuda_graph=graph)
        elif cache is not None:
            out = cache.run(params, x, y, 2.0, **options)
        else:
            with torch.no_grad():
                out = fn(params, x, y, alpha=2.0, **options)
        grads, _ = clip_by_global_norm(out.grads, 1.0, norm=out.grad_norm)
        sgd_update(model.params, grads, lr=0.01, bad=nonfinite(out.grad_norm))
    return step


def cudnn_step(x, y, hidden: int, device):
    """cuDNN's ``nn.RNN`` + autograd + ``clip_grad_norm_`` + SGD, one network (no Ω)."""
    import torch
    torch.manual_seed(0)
    rnn = torch.nn.RNN(x.shape[-1], hidden, nonlinearity="tanh").to(device)
    head = torch.nn.Linear(hidden, 4).to(device)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = torch.nn.functional.cross_entropy(head(out[-1]), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return step


def per_update(args, device) -> list[dict]:
    import torch
    from bptt import ElmanRNN
    from bptt.tasks.device import sample_on_device

    rows = []
    g = torch.Generator(device=device).manual_seed(0)
    for E in args.ensembles:
        x, y = sample_on_device("temporal_order", args.batch, [args.length] * E, g, device)
        models = {k: ElmanRNN(6, args.hidden, 4, ensemble=E, init="smart_tanh", seed=0, device=device)
                  for k in ("persistent", "graph", "persistent_graph")}
        kw = {"precision": args.precision, "block_b": args.block_b, "num_warps": args.num_warps}
        steps = {"persistent": engine_step(models["persistent"], x, y, kernel="persistent", graph=False, **kw),
                 "graph": engine_step(models["graph"], x, y, kernel="exact", graph=True, **kw)}
        if args.graph_persistent and device.type == "cuda":
            steps["persistent_graph"] = engine_step(models["persistent_graph"], x, y, kernel="persistent",
                                                    graph=True, **kw)
        if E == 1:
            steps["cudnn"] = cudnn_step(x[:, 0], y[0], args.hidden, device)
        samples = time_interleaved(steps, args, device)
        med = {k: statistics.median(v) for k, v in samples.items()}
        row = {"ensemble": E, "length": args.length, "ms_per_step": {k: 1e3 * v for k, v in med.items()},
               "ms_per_network_update": {k: 1e3 * v / (1 if k == "cudnn" else E) for k, v in med.items()},
               "samples_ms": {k: [1e3 * s for s in v] for k, v in samples.items()}}
        best = min((k for k in med if k.startswith("persistent")), key=med.get)
        row["persistent_over_graph"] = med["graph"] / med[best]
        if "cudnn" in med:
            row["persistent_over_cudnn"] = med["cudnn"] / (med[best] / E)
        rows.append(row)
        extra = f", {row['persistent_over_cudnn']:.2f}x cuDNN" if "cudnn" in med else ""
        print(f"E={E:4d}  " + "  ".join(f"{k} {1e3 * v:.3f} ms" for k, v in med.items())
              + f"  -> {row['persistent_over_graph']:.2f}x the CUDA-graph pass{extra}")
    return rows


# -- 2. the protocol slice ----------------------------------------------------------------------


def protocol_slice(args, device, full: bool) -> dict:
    """Train Figure 7's configurations (one length, or all five with ``full``) for N updates."""
    import torch
    from bptt import ElmanRNN
    from bptt.clip import clip_by_global_norm
    from bptt.engine.graphs import GraphCache
    from bptt.engine.persistent import persistent_forward_backward
    from bptt.engine.screen import error_rate
    from bptt.experiments import paper
    from bptt.models.init import DEFAULT_UNIT
    from bptt.optim.sgd import nonfinite, sgd_update
    from bptt.tasks.device import sample_on_device

    if args.tiny:
        lengths = [10, 12] if full else [args.slice_length]
    else:
        lengths = list(paper.FIGURE7_LENGTHS) if full else [args.slice_length]
    seeds = 2 if args.tiny else paper.FIGURE7_SEEDS
    members = [(init, method, L, seed) for init in paper.FIGURE7_INITS for method in paper.FIGURE7_METHODS
               for L in lengths for seed in range(seeds)]
    units = tuple(DEFAULT_UNIT[m[0]] for m in members)       # sigmoid init: sigmoid units; else tanh
    member_lengths = tuple(m[2] for m in members)
    model = ElmanRNN(6, args.hidden, 4, seeds=[m[3] for m in members], init="smart_tanh", device=device)
    with torch.no_grad():                                    # each member's own initialization
        for i, (init, _, _, seed) in enumerate(members):
            one = ElmanRNN(6, args.hidden, 4, seeds=[seed], init=init, device=device)
            for k, p in model.params.items():
                p[i].copy_(one.params[k][0])
    params = {k: p.detach() for k, p in model.params.items()}
    thr = torch.tensor([paper.THRESHOLD if m[1] != "msgd" else float("inf") for m in members], device=device)
    alpha = torch.tensor([paper.ALPHA if m[1] == "msgd-cr" else 0.0 for m in members], device=device)
    g = torch.Generator(device=device).manual_seed(0)
    batch = args.batch if args.tiny else paper.BATCH_SIZE
    options = {"unit": units, "output": "last_softmax", "omega": "squared", "lengths": member_lengths}
    graphs = GraphCache(persistent_forward_backward) if device.type == "cuda" else None

    def update():
        """One update of every member: a batch drawn on the device, one kernel launch for all."""
        x, y = sample_on_device("temporal_order", batch, member_lengths, g, device)
        if graphs is not None:
            out = graphs.run(params, x, y, alpha, **options)
        else:
            out = persistent_forward_backward(params, x, y, alpha=alpha, **options)
        grads, _ = clip_by_global_norm(out.grads, thr, norm=out.grad_norm)
        sgd_update(params, grads, lr=paper.LEARNING_RATE, bad=nonfinite(out.grad_norm))

    def screen():
        sample = lambda n: sample_on_device("temporal_order", n, member_lengths, g, device)  # noqa: E731
        rates = error_rate(params, sample, args.screen_sequences, unit=units, output="last_softmax",
                           lengths=member_lengths, kernel="persistent")
        return rates.tolist()                                # the one host read per screen

    for _ in range(args.warmup):
        update()
    screen()
    _sync(device)
    start = time.perf_counter()
    errors = None
    for n in range(1, args.slice_updates + 1):
        update()
        if n % args.screen_every == 0:
            errors = screen()
    _sync(device)
    seconds = time.perf_counter() - start
    E = len(members)
    rate = args.slice_updates / seconds              # ensemble updates per second (every member advances)
    out = {"members": E, "lengths": lengths, "updates": args.slice_updates, "seconds": seconds,
           "ensemble_updates_per_second": rate, "network_updates_per_second": rate * E,
           "last_screen_mean_error": None if errors is None else
           sum(errors) / len(errors)}
    cap = paper.MAX_UPDATES
    if full:
        out["full_budget_hours"] = cap / rate / 3600
    else:
        # the other lengths cost at most L/L_slice of this one each, if run one after another
        scale = sum(paper.FIGURE7_LENGTHS) / args.slice_length if not args.tiny else 1.0
        out["full_budget_hours_sequential"] = cap / rate * scale / 3600
    label = f"all {E} runs" if full else f"{E} configurations at L = {args.slice_length}"
    print(f"{label}: {E} members, {rate:.1f} ensemble updates/s ({rate * E:.0f} network updates/s); "
          + (f"full budget (5,000,000 updates, one ensemble): {out['full_budget_hours']:.2f} h"
             if full else f"full budget, the five lengths one after another: "
             f"{out['full_budget_hours_sequential']:.2f} h"))
    return out


def targets(report: dict, measured: bool = True) -> list[dict]:
    """The issue's targets, each with its value and whether it is met (``None``: not measured)."""
    rows = {r["ensemble"]: r for r in report["per_update"]}
    out = []

    def add(name, value, passed):
        out.append({"name": name, "value": None if value is None else round(value, 3),
                    "passed": None if value is None or not measured else bool(passed(value))})
    add("persistent / CUDA-graph pass at E = 1, >= 5", rows.get(1, {}).get("persistent_over_graph"),
        lambda v: v >= 5)
    add("persistent / CUDA-graph pass at E = 512, >= 3", rows.get(512, {}).get("persistent_over_graph"),
        lambda v: v >= 3)
    add("persistent / cuDNN at E = 1, >= 3", rows.get(1, {}).get("persistent_over_cudnn"), lambda v: v >= 3)
    hours = report.get("full_ensemble", {}).get("full_budget_hours",
                                                report["slice"].get("full_budget_hours_sequential"))
    add("hours for the full Figure 7 budget, <= 3", hours, lambda v: v <= 3)
    return out


if __name__ == "__main__":
    sys.exit(main())
