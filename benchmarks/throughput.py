#!/usr/bin/env python
"""Training and evaluation throughput of bptt's exact-BPTT engine against the alternatives.

The reference workload is the paper's temporal order problem: sequences of length
T = 200, minibatches of B = 20, an Elman network with H = 50 tanh units, I = 6 one-hot
inputs and O = 4 classes (softmax at the last step), plain SGD with learning rate 0.01
and gradient-norm clipping at threshold 1. Where the contender supports it, the
regularizer Ω is on (α = 2, the reference code's squared form).

One *network update* is one full training step of one network: forward pass, loss,
gradient, clipping, parameter update. Batches are drawn before timing from a small
pool, so data generation is excluded for every contender. The contenders:

(1) ``baseline``: ``torch.nn.RNN(6, 50, nonlinearity="tanh")`` + ``nn.Linear(50, 4)``,
    cross-entropy, autograd backward, ``torch.nn.utils.clip_grad_norm_`` and
    ``torch.optim.SGD``: what a PyTorch user writes today. No Ω.
(2) ``reference``: a step-by-step autograd loop that also computes Ω and its gradient
    (:func:`bptt.engine.reference.reference_forward_backward` at E = 1), then the
    non-finite guard, clipping and an SGD step.
(3) ``jax``: ``lax.scan`` under ``jit`` (one network at E = 1, ``vmap`` over E
    networks otherwise): forward, ``value_and_grad``, global-norm clipping, SGD.
    No Ω. Only when ``import jax`` works.
(4) ``engine``: :class:`bptt.ElmanRNN` with E members, a step being
    ``forward_backward(x[T,E,B,I], y[E,B], alpha=2.0, omega="squared")``,
    ``nonfinite``, ``clip_by_global_norm`` and ``sgd_update``; time per network
    update = step time / E. On CUDA the engine pass replays as one CUDA graph
    (``cuda_graph=True``, as the trainer does for fixed-length training), and rows
    (4') time the same steps launched kernel by kernel.

Timing. Every contender is warmed up (compilation and first-call allocations are
excluded), then all contenders are timed in interleaved rounds: each round times a
block of consecutive updates of every contender, in alternating order, so that a
change of machine load affects all of them alike. A block lasts at least
``--min-time`` seconds; the reported time is the median over ``--repeats`` rounds,
and every ratio is a ratio of medians taken in this one process.

FLOPs of one network update (2 per multiply-add; 1 per elementwise operation):

    forward    input projection     2·T·B·I·H
               recurrence           2·T·B·H²
               bias, add, tanh      3·T·B·H
    output     forward, ∂W_out, ∂h_T  3·(2·B·H·O),   softmax + cross-entropy  4·B·O
    backward   recurrence           2·T'·B·H²     (T' = T with Ω, T − 1 without)
               σ' = 1 − h², δ = σ'·g  3·T·B·H
    weight gradients  ∂W_rec 2·T·B·H², ∂W_in 2·T·B·I·H, ∂b T·B·H
    Ω extra    ‖∂E/∂h_k‖², ‖v_k‖² (v_k = δ_{k+1} W_recᵀ, shared with the backward
               recurrence), ∂Ω/∂v_k, and h_{k−1} + α ∂Ω/∂v_k (Ω's gradient then rides in
               the ∂W_rec product)   ≈ 8·T·B·H
    clipping and SGD   5·P   (P parameters: norm 2P, scale P, update 2P)

With the reference workload this is ≈ 67.8 MFLOP with Ω and ≈ 66.1 MFLOP without. A
contender's fraction of peak is its workload's FLOPs (with Ω for (2) and (4), without
for (1) and (3)) per second over the machine's peak float32 matmul rate, measured here
as the median rate of a large square ``torch.mm`` (taken before and after the
contenders; the larger median is used).

Evaluation: forward-only error of an untrained network on 10,000 sequences at lengths
200 and 5000 through ``ElmanRNN.evaluate`` in chunks of 1,000 sequences, in
sequences per second. Memory: the peak resident-set growth of one training update at
E = 64, measured in a fresh subprocess after a five-step call has initialised the
libraries (the kernel's high-water mark ``VmHWM`` is reset through
``/proc/self/clear_refs`` just before the update; with ``--device cuda``,
``torch.cuda.max_memory_allocated``).

Rivals (``--rivals``): the speed target of the ensemble LSTM and GRU, per trained network
at E = ``--rival-ensembles`` (default 32) at least 3× faster than ``torch.nn.LSTM`` /
``nn.GRU`` + autograd + ``clip_grad_norm_`` + SGD at E = 1, on the same workload
(H = 50, no Ω); the contenders are those of ``benchmarks/models.py``, timed in the same
interleaved rounds as the others and reported with their speed-up over their own torch
module. ``--clock cpu`` times every contender by the process's CPU time instead of the
wall clock (meaningful with ``--threads 1`` on a machine shared with other jobs).

Run ``python benchmarks/throughput.py --help`` for the options; ``--quick`` is a short
run (fewer repeats, E up to 32, length 5000 skipped).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import bptt
import bptt.tasks as tasks
from bptt.engine.reference import reference_forward_backward
from bptt.models.elman import ElmanRNN
from bptt.clip import clip_by_global_norm
from bptt.optim.sgd import nonfinite, sgd_update

TASK = "temporal_order"
N_IN, N_HIDDEN, N_OUT = 6, 50, 4
LR, THRESHOLD, ALPHA, OMEGA = 0.01, 1.0, 2.0, "squared"
UNIT, INIT = "tanh", "smart_tanh"
JAX_MISSING = "JAX not installed (pip install 'bptt[jax]')"

# Targets of the engine (checked and printed; see --strict).
TARGET_SPEEDUP_BEST = 20.0       # best E: ≤ 1/20 of the baseline's time per network update
TARGET_PEAK_FRACTION = 0.40      # best E: ≥ 40 % of the peak float32 matmul rate
TARGET_SPEEDUP_E1 = 3.0          # E = 1: ≥ 3× faster than the baseline

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter    # what Contender.run times with (--clock)


# ---------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------
def n_parameters(H: int = N_HIDDEN, I: int = N_IN, O: int = N_OUT) -> int:
    return H * H + I * H + H + H * O + O


def flops_per_update(T: int, B: int, *, omega: bool, H: int = N_HIDDEN, I: int = N_IN,
                     O: int = N_OUT) -> dict[str, int]:
    """The analytic FLOP count of one network update, by part (see the module docstring)."""
    parts = {
        "forward_input_projection": 2 * T * B * I * H,
        "forward_recurrence": 2 * T * B * H * H,
        "forward_elementwise": 3 * T * B * H,
        "output_layer": 3 * (2 * B * H * O) + 4 * B * O,
        "backward_recurrence": 2 * (T if omega else T - 1) * B * H * H,
        "backward_elementwise": 3 * T * B * H,
        "weight_gradients": 2 * T * B * H * H + 2 * T * B * I * H + T * B * H,
        "omega_extra": 8 * T * B * H if omega else 0,
        "clip_and_sgd": 5 * n_parameters(H, I, O),
    }
    parts["total"] = sum(parts.values())
    return parts


# ---------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "numpy_version": np.__version__,
        "bptt_version": getattr(bptt, "__version__", "unknown"),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average_start"] = list(os.getloadavg())
    except OSError:
        pass
    return info


def busy_warning(info: dict) -> str | None:
    """A warning when other work occupies the CPUs that torch's thread pool relies on."""
    load = info.get("load_average_start")
    cpus = info.get("cpus_usable") or 1
    if info.get("device", "cpu") != "cpu" or not load or load[0] < 0.5 or info["torch_num_threads"] < 2:
        return None
    return (f"warning: load average {load[0]:.2f} on {cpus} CPUs before the start; torch's "
            f"{info['torch_num_threads']} threads share them with other work, which can slow "
            f"multi-threaded small products by large factors (compare --threads 1)")


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def measure_peak(device: torch.device, size: int, repeats: int) -> list[float]:
    """Rates (FLOP/s) of a square float32 ``torch.mm`` of side ``size``."""
    sync = synchronizer(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device)
    b = torch.randn(size, size, generator=g).to(device)
    c = torch.empty(size, size, device=device)
    for _ in range(2):
        torch.mm(a, b, out=c)
    sync()
    rates = []
    for _ in range(repeats):
        sync()
        t0 = clock()
        torch.mm(a, b, out=c)
        sync()
        rates.append(2.0 * size ** 3 / (clock() - t0))
    return rates


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------
def batch_pool(task, E: int, B: int, T: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches ``(x [T,E,B,I] float32, y [E,B] int64)``, on the CPU."""
    pool = []
    for _ in range(n):
        x, y = task.sample(E * B, T)
        pool.append((x.reshape(T, E, B, N_IN).contiguous(), y.reshape(E, B).contiguous()))
    return pool


def to_device(pool, device):
    return [(x.to(device), y.to(device)) for x, y in pool]


# ---------------------------------------------------------------------------------------
# Contenders: each exposes step(i) (one update on batch i of its pool) and sync()
# ---------------------------------------------------------------------------------------
@dataclass
class Contender:
    key: str
    label: str
    kind: str                    # baseline | reference | jax | engine
    ensemble: int
    omega: bool
    step: Callable[[int], None]
    sync: Callable[[], None]
    steps_per_sample: int = 1
    counter: int = 0
    samples: list[float] = field(default_factory=list)   # seconds per network update
    extra: dict = field(default_factory=dict)

    def run(self, n: int) -> float:
        """Seconds for ``n`` consecutive updates (synchronised at both ends)."""
        self.sync()
        t0 = clock()
        for _ in range(n):
            self.step(self.counter)
            self.counter += 1
        self.sync()
        return clock() - t0


def make_baseline(pool, device) -> Contender:
    torch.manual_seed(0)
    rnn = torch.nn.RNN(N_IN, N_HIDDEN, nonlinearity="tanh").to(device)
    lin = torch.nn.Linear(N_HIDDEN, N_OUT).to(device)
    params = list(rnn.parameters()) + list(lin.parameters())
    opt = torch.optim.SGD(params, lr=LR)
    data = [(x[:, 0], y[0]) for x, y in pool]               # [T,B,I], [B]

    def step(i: int) -> None:
        x, y = data[i % len(data)]
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = F.cross_entropy(lin(out[-1]), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, THRESHOLD)
        opt.step()

    return Contender("baseline", "(1) torch.nn.RNN + autograd, no Ω", "baseline", 1, False,
                     step, synchronizer(device))


def engine_update(model: ElmanRNN, x: torch.Tensor, y: torch.Tensor, omega: str | None,
                  graph: bool = False) -> None:
    """One training step of every member: exact BPTT (+Ω), guard, clipping, SGD."""
    res = model.forward_backward(x, y, alpha=ALPHA, omega=omega, cuda_graph=graph)
    bad = nonfinite(res.grad_norm)
    grads, _ = clip_by_global_norm(res.grads, THRESHOLD, norm=res.grad_norm)
    sgd_update(model.params, grads, LR, bad)


def make_reference(pool, device) -> Contender:
    model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=1, unit=UNIT, init=INIT, device=device)
    params = model.params

    def step(i: int) -> None:
        x, y = pool[i % len(pool)]
        res = reference_forward_backward(params, x, y, unit=model.unit, output=model.output,
                                         alpha=ALPHA, omega=OMEGA)
        bad = nonfinite(res.grad_norm)
        grads, _ = clip_by_global_norm(res.grads, THRESHOLD, norm=res.grad_norm)
        sgd_update(params, grads, LR, bad)

    return Contender("reference", "(2) autograd step loop + Ω, E=1", "reference", 1, True,
                     step, synchronizer(device))


def make_engine(E: int, pool, device, graph: bool | None = None) -> Contender:
    """(4); on CUDA the pass replays as a CUDA graph unless ``graph`` is False."""
    model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=E, unit=UNIT, init=INIT, device=device)
    graph = device.type == "cuda" if graph is None else graph

    def step(i: int) -> None:
        x, y = pool[i % len(pool)]
        engine_update(model, x, y, OMEGA, graph)

    if device.type == "cuda" and not graph:
        return Contender(f"engine_plain_E{E}", f"(4') bptt engine + Ω, no graph, E={E}", "engine_plain",
                         E, True, step, synchronizer(device))
    how = ", CUDA graph" if graph else ""
    return Contender(f"engine_E{E}", f"(4) bptt engine + Ω{how}, E={E}", "engine", E, True,
                     step, synchronizer(device))


def make_rivals(pool, device, ensembles: list[int]):
    """``(contenders, module)``: the ensemble LSTM and GRU and their torch modules, from
    ``benchmarks/models.py`` (the module, for its report)."""
    spec = importlib.util.spec_from_file_location("bptt_benchmark_models", Path(__file__).with_name("models.py"))
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    x, y = pool[0][0][:, 0].cpu(), pool[0][1][0].cpu()
    sync = synchronizer(device)
    return [Contender(key, label, "rival", E, False, lambda i, step=step: step(), sync)
            for key, label, E, step in models.rival_steps(x, y, N_HIDDEN, ensembles, device)], models


def import_jax():
    try:
        import jax  # noqa: F401
        import jax.numpy  # noqa: F401
    except ImportError:
        return None
    return jax


def make_jax(jax, E: int, pool) -> Contender:
    """(3): lax.scan under jit; vmap over E networks for E > 1. No Ω."""
    jnp = jax.numpy

    def loss_fn(p, x, y):
        xw = jnp.einsum("tbi,ih->tbh", x, p["W_in"]) + p["b"]

        def cell(h, a):
            return jnp.tanh(a + h @ p["W_rec"]), None

        h0 = jnp.zeros((x.shape[1], p["W_rec"].shape[0]), x.dtype)
        h, _ = jax.lax.scan(cell, h0, xw)
        logp = jax.nn.log_softmax(h @ p["W_out"] + p["b_out"])
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def step(p, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        norm = jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree_util.tree_leaves(g)))
        scale = jnp.where(norm >= THRESHOLD, THRESHOLD / norm, 1.0)
        ok = jnp.isfinite(norm)
        new = jax.tree_util.tree_map(lambda w, d: jnp.where(ok, w - LR * scale * d, w), p, g)
        return new, loss

    init = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=E, unit=UNIT, init=INIT)
    params = {k: v.detach().cpu().numpy() for k, v in init.params.items()}
    if E == 1:
        fn = jax.jit(step)
        params = {k: jnp.asarray(v[0]) for k, v in params.items()}
        data = [(jnp.asarray(x[:, 0].numpy()), jnp.asarray(y[0].numpy().astype(np.int32)))
                for x, y in pool]
        label = "(3) JAX lax.scan jit, no Ω, E=1"
    else:
        fn = jax.jit(jax.vmap(step, in_axes=(0, 1, 0)))
        params = {k: jnp.asarray(v) for k, v in params.items()}
        data = [(jnp.asarray(x.numpy()), jnp.asarray(y.numpy().astype(np.int32))) for x, y in pool]
        label = f"(3) JAX lax.scan jit vmap, no Ω, E={E}"
    state = {"p": params}

    def run_step(i: int) -> None:
        x, y = data[i % len(data)]
        state["p"], _ = fn(state["p"], x, y)

    def sync() -> None:
        for leaf in jax.tree_util.tree_leaves(state["p"]):
            leaf.block_until_ready()

    return Contender(f"jax_E{E}", label, "jax", E, False, run_step, sync,
                     extra={"backend": jax.default_backend()})


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------
def calibrate(c: Contender, warmup: int, min_time: float) -> None:
    """Warm up, then choose how many updates one timed block holds."""
    c.run(max(1, warmup))
    one = c.run(1)
    if one < min_time / 4:
        one = c.run(3) / 3
    c.steps_per_sample = max(1, math.ceil(min_time / max(one, 1e-9)))


def time_rounds(contenders: list[Contender], repeats: int, progress: bool) -> None:
    for r in range(repeats):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for c in order:
            dt = c.run(c.steps_per_sample)
            c.samples.append(dt / c.steps_per_sample / c.ensemble)
        if progress:
            print(f"  round {r + 1}/{repeats} done", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------
def measure_evaluation(length: int, n_sequences: int, chunk: int, device: torch.device,
                       repeats: int, seed: int) -> dict:
    """Sequences per second of ``ElmanRNN.evaluate`` (E = 1), ``chunk`` sequences at a time."""
    sync = synchronizer(device)
    model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=1, unit=UNIT, init=INIT, device=device)
    task = tasks.get(TASK, seed=seed + 1000 + length)
    sizes = [min(chunk, n_sequences - s) for s in range(0, n_sequences, chunk)]
    input_bytes = n_sequences * length * N_IN * 4
    keep = input_bytes <= 512 * 2 ** 20          # small enough: sample once, repeat passes
    chunks = [task.sample(n, length) for n in sizes] if keep else None
    passes = max(1, repeats) if keep else 1

    def evaluate(x, y) -> int:
        x, y = x.to(device), y.to(device)
        sync()
        t0 = time.perf_counter()
        ev = model.evaluate(x, y)
        wrong = int(ev.wrong.sum())
        sync()
        evaluate.elapsed += time.perf_counter() - t0
        return wrong

    # warm-up on a short piece of the first chunk
    xw, yw = chunks[0] if keep else task.sample(sizes[0], min(length, 20))
    evaluate.elapsed = 0.0
    evaluate(xw[: min(length, 20)], yw)

    times, wrong = [], 0
    for _ in range(passes):
        evaluate.elapsed, wrong = 0.0, 0
        for k, n in enumerate(sizes):
            x, y = chunks[k] if keep else task.sample(n, length)
            wrong += evaluate(x, y)
        times.append(evaluate.elapsed)
    t = statistics.median(times)
    return {"length": length, "sequences": n_sequences, "chunk_sequences": chunk,
            "passes": passes, "seconds": t, "seconds_samples": times,
            "sequences_per_second": n_sequences / t, "error": wrong / n_sequences}


# ---------------------------------------------------------------------------------------
# Memory (subprocess on the CPU; allocator statistics on CUDA)
# ---------------------------------------------------------------------------------------
def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_growth_kb(fn: Callable[[], None]) -> tuple[int, int, str]:
    """``(peak RSS growth, RSS retained afterwards, method)`` of running ``fn``, in kB."""
    gc.collect()
    if _reset_hwm() and _status_kb("VmHWM") is not None:
        before = _status_kb("VmRSS")
        fn()
        peak, after = _status_kb("VmHWM"), _status_kb("VmRSS")
        return max(0, peak - before), max(0, after - before), "VmHWM after clear_refs"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(0, after - before), 0, "ru_maxrss (lower bound)"


def memory_probe(kind: str, E: int, T: int, B: int, device: torch.device, seed: int) -> dict:
    """Peak memory growth of one training update (``kind``: engine, reference, baseline)
    or of one evaluation call (``kind``: eval, with ``B`` sequences).

    A first call on a short piece of the data (5 steps) initialises the libraries, so
    their one-time allocations are not counted; buffers that the call keeps for later
    calls, sized by the full length, are.
    """
    task = tasks.get(TASK, seed=seed)
    short = min(T, 5)
    if kind == "eval":
        model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=1, unit=UNIT, init=INIT, device=device)
        x, y = (t.to(device) for t in task.sample(B, T))
        run = lambda: model.evaluate(x, y)                       # noqa: E731
        run_warm = lambda: model.evaluate(x[:short], y)          # noqa: E731
    else:
        (x, y), = to_device(batch_pool(task, E, B, T, 1), device)
        pool = [(x, y), (x[:short].clone(), y)]
        maker = {"engine": lambda: make_engine(E, pool, device),
                 "reference": lambda: make_reference(pool, device),
                 "baseline": lambda: make_baseline(pool, device)}[kind]
        c = maker()
        run = lambda: c.step(0)                                  # noqa: E731
        run_warm = lambda: c.step(1)                             # noqa: E731
    out = {"kind": kind, "ensemble": E, "length": T, "batch": B}
    if device.type == "cuda":
        run_warm()
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize(device)
        out["peak_mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        out["retained_mb"] = (torch.cuda.memory_allocated(device) - base) / 2 ** 20
        out["method"] = "torch.cuda.max_memory_allocated"
        return out
    run_warm()
    peak, retained, method = _rss_growth_kb(run)
    again, _, _ = _rss_growth_kb(run)
    out.update({"peak_mb": peak / 1024, "retained_mb": retained / 1024,
                "repeat_call_mb": again / 1024, "method": method})
    return out


def run_memory_probe(kind: str, E: int, T: int, B: int, device: torch.device, seed: int,
                     threads: int | None) -> dict:
    if device.type == "cuda":
        return memory_probe(kind, E, T, B, device, seed)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", kind,
           "--probe-ensemble", str(E), "--length", str(T), "--batch", str(B), "--seed", str(seed)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ)
    # A fixed mmap threshold returns freed buffers to the kernel, so RSS follows live memory.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return {"kind": kind, "ensemble": E, "length": T, "batch": B,
                "error": proc.stderr.strip()[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------
def summarise(c: Contender, baseline_s: float, flops: int, peak: float) -> dict:
    t = statistics.median(c.samples)
    return {
        "key": c.key, "label": c.label, "kind": c.kind, "ensemble": c.ensemble, "omega": c.omega,
        "ms_per_update": t * 1e3,
        "ms_per_step": t * c.ensemble * 1e3,
        "ms_per_update_min": min(c.samples) * 1e3,
        "ms_per_update_samples": [s * 1e3 for s in c.samples],
        "steps_per_sample": c.steps_per_sample,
        "ratio_to_baseline": baseline_s / t,
        "flops_per_update": flops,
        "gflops": flops / t / 1e9,
        "fraction_of_peak": flops / t / peak,
        **c.extra,
    }


def check_targets(rows: dict[str, dict], ensembles: list[int], jax_ok: bool) -> list[dict]:
    targets = []
    base = rows["baseline"]["ms_per_update"]
    engines = [rows[f"engine_E{E}"] for E in ensembles]
    best = min(engines, key=lambda r: r["ms_per_update"])
    targets.append({
        "name": f"best E ≤ 1/{TARGET_SPEEDUP_BEST:g} of (1)",
        "passed": best["ratio_to_baseline"] >= TARGET_SPEEDUP_BEST,
        "detail": (f"E={best['ensemble']}: {best['ms_per_update']:.4g} ms vs (1)/{TARGET_SPEEDUP_BEST:g} = "
                   f"{base / TARGET_SPEEDUP_BEST:.4g} ms ({best['ratio_to_baseline']:.1f}× faster)")})
    targets.append({
        "name": f"best E ≥ {TARGET_PEAK_FRACTION:.0%} of peak",
        "passed": best["fraction_of_peak"] >= TARGET_PEAK_FRACTION,
        "detail": f"E={best['ensemble']}: {best['fraction_of_peak']:.1%} of peak ({best['gflops']:.2f} GFLOP/s)"})
    if 1 in ensembles:
        e1 = rows["engine_E1"]
        targets.append({
            "name": f"E=1 ≥ {TARGET_SPEEDUP_E1:g}× faster than (1)",
            "passed": e1["ratio_to_baseline"] >= TARGET_SPEEDUP_E1,
            "detail": f"{e1['ms_per_update']:.4g} ms vs {base:.4g} ms ({e1['ratio_to_baseline']:.2f}×)"})
    else:
        targets.append({"name": f"E=1 ≥ {TARGET_SPEEDUP_E1:g}× faster than (1)", "passed": None,
                        "detail": "E=1 not measured"})
    if jax_ok:
        parts, ok = [], True
        for E in ensembles:
            mine, theirs = rows[f"engine_E{E}"]["ms_per_update"], rows[f"jax_E{E}"]["ms_per_update"]
            ok &= mine < theirs
            parts.append(f"E={E}: {mine:.4g} vs {theirs:.4g} ms ({theirs / mine:.2f}×)")
        targets.append({"name": "faster than JAX at every E", "passed": ok, "detail": "; ".join(parts)})
    else:
        targets.append({"name": "faster than JAX at every E", "passed": None, "detail": JAX_MISSING})
    return targets


def print_table(rows: list[dict]) -> None:
    w = max(len(r["label"]) for r in rows)
    head = f"{'contender':<{w}} | {'ms per network-update':>21} | {'ratio to (1)':>12} | {'fraction of peak':>16}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['label']:<{w}} | {r['ms_per_update']:>21.4g} | {r['ratio_to_baseline']:>11.2f}× | "
              f"{r['fraction_of_peak']:>15.2%}")


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------
def parse_ints(text: str) -> list[int]:
    values = [int(v) for v in text.replace(" ", "").split(",") if v]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short run: 3 repeats, E in 1,8,32, evaluation at length 200 only")
    p.add_argument("--repeats", type=int, help="timed rounds per contender (default 7; quick 3)")
    p.add_argument("--ensembles", type=parse_ints,
                   help="engine (and JAX) ensemble sizes (default 1,8,32,64,128; quick 1,8,32)")
    p.add_argument("--length", type=int, default=200, help="training sequence length T (default 200)")
    p.add_argument("--batch", type=int, default=20, help="minibatch size B (default 20)")
    p.add_argument("--min-time", type=float,
                   help="seconds one timed block lasts at least (default 0.3; quick 0.05)")
    p.add_argument("--warmup", type=int, default=2, help="untimed updates per contender (default 2)")
    p.add_argument("--pool", type=int, default=4, help="pre-generated batches per contender (default 4)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    p.add_argument("--peak-size", type=int, help="side of the peak matmul (default 2048 CPU, 8192 CUDA)")
    p.add_argument("--eval-lengths", type=parse_ints,
                   help="evaluation lengths (default 200,5000; quick 200)")
    p.add_argument("--eval-sequences", type=int, default=10_000, help="evaluated sequences (default 10000)")
    p.add_argument("--eval-chunk", type=int, default=1_000, help="sequences per evaluate call (default 1000)")
    p.add_argument("--memory-ensemble", type=int, default=64,
                   help="E of the training update whose memory is measured (default 64)")
    p.add_argument("--no-jax", action="store_true", help="skip the JAX contenders even if JAX imports")
    p.add_argument("--rivals", action="store_true",
                   help="also time the ensemble LSTM and GRU against torch.nn.LSTM / nn.GRU")
    p.add_argument("--rival-ensembles", type=parse_ints, default=[32],
                   help="E of the ensemble LSTM and GRU with --rivals (default 32)")
    p.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                   help="wall clock (default) or the process's CPU time (with --threads 1 on a shared machine)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help="where to write the results (default benchmarks/results.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--memory-probe", choices=["engine", "reference", "baseline", "eval"],
                   help=argparse.SUPPRESS)
    p.add_argument("--probe-ensemble", type=int, default=64, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    global clock
    args = build_parser().parse_args(argv)
    clock = CLOCK[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    # The engine turns flush-to-zero of denormals on, process-wide, on its first call;
    # turning it on here gives every torch contender the same floating-point mode.
    torch.set_flush_denormal(True)

    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.probe_ensemble, args.length,
                                      args.batch, device, args.seed)))
        return 0

    repeats = args.repeats or (3 if args.quick else 7)
    ensembles = args.ensembles or ([1, 8, 32] if args.quick else [1, 8, 32, 64, 128])
    ensembles = sorted(set(ensembles))
    min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else 0.3)
    eval_lengths = args.eval_lengths or ([200] if args.quick else [200, 5000])
    peak_size = args.peak_size or (8192 if device.type == "cuda" else 2048)
    peak_repeats = 3 if args.quick else 7
    T, B = args.length, args.batch
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    info = machine_info(device)
    print(f"machine: {info['cpu_model']}, {info['cpus_usable']} usable CPUs, torch {info['torch_version']}, "
          f"torch threads {info['torch_num_threads']} (interop {info['torch_num_interop_threads']}), "
          f"device {device}" + (f" ({info['gpu']})" if "gpu" in info else ""))
    print(f"workload: {TASK}, T={T}, B={B}, H={N_HIDDEN}, I={N_IN}, O={N_OUT}, tanh, SGD lr={LR}, "
          f"clip {THRESHOLD:g}, Ω α={ALPHA:g} ({OMEGA}) where supported; "
          f"{repeats} repeats, blocks ≥ {min_time:g} s")

    busy = busy_warning(info)
    if busy:
        info["warning"] = busy
        print(busy)

    log("measuring peak matmul rate ...")
    peak_before = measure_peak(device, peak_size, peak_repeats)

    jax = None if args.no_jax else import_jax()
    if jax is None and not args.no_jax:
        print(JAX_MISSING)

    log("preparing data and contenders ...")
    task = tasks.get(TASK, seed=args.seed)
    pools = {E: batch_pool(task, E, B, T, args.pool) for E in sorted(set(ensembles) | {1})}
    dev_pools = {E: to_device(p, device) for E, p in pools.items()}
    contenders = [make_baseline(dev_pools[1], device), make_reference(dev_pools[1], device)]
    if jax is not None:
        contenders += [make_jax(jax, E, pools[E]) for E in ensembles]
    contenders += [make_engine(E, dev_pools[E], device) for E in ensembles]
    if device.type == "cuda":
        contenders += [make_engine(E, dev_pools[E], device, graph=False) for E in ensembles]
    rivals, rival_models = make_rivals(dev_pools[1], device, args.rival_ensembles) if args.rivals else ([], None)

    for c in contenders + rivals:
        log(f"warming up {c.label} ...")
        calibrate(c, args.warmup, min_time)
    log(f"timing {len(contenders) + len(rivals)} contenders in {repeats} interleaved rounds ...")
    time_rounds(contenders + rivals, repeats, not args.quiet)

    log("measuring peak matmul rate again ...")
    peak_after = measure_peak(device, peak_size, peak_repeats)
    peak = max(statistics.median(peak_before), statistics.median(peak_after))

    flops = {True: flops_per_update(T, B, omega=True), False: flops_per_update(T, B, omega=False)}
    base_s = statistics.median(contenders[0].samples)
    rows = [summarise(c, base_s, flops[c.omega]["total"], peak) for c in contenders]
    by_key = {r["key"]: r for r in rows}
    engine_rows = [by_key[f"engine_E{E}"] for E in ensembles]
    best = min(engine_rows, key=lambda r: r["ms_per_update"])

    print()
    print(f"peak float32 matmul ({peak_size}²): {peak / 1e9:.1f} GFLOP/s; "
          f"FLOPs per network update: {flops[True]['total'] / 1e6:.2f} M with Ω, "
          f"{flops[False]['total'] / 1e6:.2f} M without")
    print()
    print_table(rows)
    print(f"\nbest E: {best['ensemble']} ({best['ms_per_update']:.4g} ms per network update, "
          f"{best['ratio_to_baseline']:.1f}× faster than (1))")

    rival_rows, rival_targets = [], []
    if rivals:
        ms = {c.key: statistics.median(c.samples) * 1e3 for c in rivals}
        rival_rows, rival_targets = rival_models.rival_report(ms, args.rival_ensembles)
        labels = {c.key: c.label for c in rivals}
        w = max(len(v) for v in labels.values())
        print(f"\nrivals (H={N_HIDDEN}, no Ω; speed-up over the torch module at E=1):")
        for r in rival_rows:
            r["label"] = labels[r["key"]]
            r["ms_per_update_samples"] = [s * 1e3 for c in rivals if c.key == r["key"] for s in c.samples]
            print(f"  {r['label']:<{w}} | {r['ms_per_update']:>9.4g} ms | {r['speedup']:>6.2f}×")

    del contenders, rivals, dev_pools, pools
    gc.collect()

    evaluation = []
    for L in eval_lengths:
        log(f"evaluating {args.eval_sequences} sequences at length {L} ...")
        evaluation.append(measure_evaluation(L, args.eval_sequences, args.eval_chunk, device,
                                             repeats=1 if args.quick else 3, seed=args.seed))
    print("\nevaluation (forward only, E=1, ElmanRNN.evaluate):")
    for ev in evaluation:
        print(f"  length {ev['length']:>5}: {ev['sequences_per_second']:>10.1f} sequences/s "
              f"({ev['sequences']} sequences in chunks of {ev['chunk_sequences']}, "
              f"{ev['seconds']:.3g} s, error {ev['error']:.1%})")

    log("measuring memory ...")
    probes = [("engine", args.memory_ensemble, T, B)]
    if not args.quick:
        probes += [("engine", 1, T, B), ("reference", 1, T, B), ("baseline", 1, T, B)]
        probes += [("eval", 1, L, args.eval_chunk) for L in eval_lengths]
    memory = [run_memory_probe(k, E, L, n, device, args.seed, args.threads) for k, E, L, n in probes]
    print("\nmemory (peak growth during one full-length call; libraries initialised beforehand):")
    for m in memory:
        what = (f"evaluate, {m['batch']} sequences, length {m['length']}" if m["kind"] == "eval"
                else f"training update, {m['kind']}, E={m['ensemble']}, length {m['length']}")
        if "error" in m:
            print(f"  {what}: failed ({m['error'].splitlines()[-1] if m['error'] else 'no output'})")
        else:
            again = f", a repeated call {m['repeat_call_mb']:.1f} MB" if "repeat_call_mb" in m else ""
            print(f"  {what}: {m['peak_mb']:.1f} MB (kept after the call {m['retained_mb']:.1f} MB"
                  f"{again}) [{m['method']}]")

    targets = check_targets(by_key, ensembles, jax is not None) + rival_targets
    print("\ntargets:")
    for t in targets:
        status = "SKIP" if t["passed"] is None else ("PASS" if t["passed"] else "FAIL")
        print(f"  {status}  {t['name']}: {t['detail']}")

    try:
        info["load_average_end"] = list(os.getloadavg())
    except OSError:
        pass
    result = {
        "machine": info,
        "config": {"task": TASK, "length": T, "batch": B, "n_in": N_IN, "n_hidden": N_HIDDEN,
                   "n_out": N_OUT, "unit": UNIT, "init": INIT, "lr": LR, "clip_threshold": THRESHOLD,
                   "alpha": ALPHA, "omega": OMEGA, "ensembles": ensembles, "repeats": repeats,
                   "min_time_s": min_time, "warmup": args.warmup, "pool": args.pool,
                   "quick": args.quick, "device": str(device), "clock": args.clock,
                   "rival_ensembles": args.rival_ensembles if args.rivals else []},
        "peak": {"size": peak_size, "flops_per_second": peak,
                 "gflops_samples_before": [r / 1e9 for r in peak_before],
                 "gflops_samples_after": [r / 1e9 for r in peak_after]},
        "flops_per_update": {"with_omega": flops[True], "without_omega": flops[False]},
        "jax": {"available": jax is not None,
                "version": getattr(jax, "__version__", None),
                "message": None if jax is not None else ("skipped (--no-jax)" if args.no_jax else JAX_MISSING)},
        "contenders": rows,
        "best_engine": {"ensemble": best["ensemble"], "ms_per_update": best["ms_per_update"],
                        "ratio_to_baseline": best["ratio_to_baseline"],
                        "fraction_of_peak": best["fraction_of_peak"]},
        "evaluation": evaluation,
        "memory": memory,
        "rivals": rival_rows,
        "targets": targets,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    failed = any(t["passed"] is False for t in targets)
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
