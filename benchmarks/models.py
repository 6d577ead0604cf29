#!/usr/bin/env python
"""Training throughput of the ensemble LSTM and GRU against ``torch.nn.LSTM`` / ``nn.GRU``.

The reference workload is the paper's temporal order problem: sequences of length
T = 200, minibatches of B = 20, H = 50 hidden units, I = 6 one-hot inputs and O = 4
classes (softmax at the last step), plain SGD (learning rate 0.01) with gradient-norm
clipping at threshold 1. One *network update* is one full training step of one
network: forward, loss, backward, clipping, SGD step.

Contenders, each timed per network update:

* ``torch_lstm`` / ``torch_gru``: ``torch.nn.LSTM(6, 50)`` (or ``nn.GRU``) +
  ``nn.Linear(50, 4)``, cross-entropy, autograd backward,
  ``torch.nn.utils.clip_grad_norm_`` and ``torch.optim.SGD``, one network (E = 1):
  what a PyTorch user writes today (on the CPU, ``nn.LSTM`` runs oneDNN's fused
  kernels forward and backward).
* ``lstm_E{E}`` / ``gru_E{E}``: :class:`bptt.models.LSTM` / :class:`bptt.models.GRU`
  with E members: ``forward_backward``, :func:`bptt.clip.clip_by_global_norm` and
  :func:`bptt.optim.sgd.sgd_update`; time per network update = step time / E.
* ``lstm_autograd_E{E}``: the same LSTM step with its gradients from
  ``torch.autograd`` (:meth:`bptt.models.base.AutogradEnsemble.forward_backward`),
  to show what the hand-derived pass gains.
* ``lstm_products_E{E}``: the batched products of the hand-derived LSTM pass alone, in
  its shapes and order (per step r_t [W_rec; W_in; b] forward and ε_t W_recᵀ backward,
  the weight gradients every few steps), on random data, with every element-wise
  operation, the readout, clipping and the update left out: a floor for any pass built
  on these products (not an update; no gradient is right).

All contenders are warmed up, then timed in interleaved rounds (each round times a
block of at least ``--min-time`` seconds of every contender, in alternating order, so
that a change of machine load affects all alike); the figure is the median over
``--repeats`` rounds and every ratio is a ratio of medians from this one process.
``--clock cpu`` times the process's CPU time instead of the wall clock: on a machine
shared with other jobs and with ``--threads 1`` it leaves out the time the process
waits for a core.

:func:`rival_steps` and :func:`rival_report` are also what ``throughput.py --rivals``
runs, in the same interleaved rounds as its other contenders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from bptt.clip import clip_by_global_norm
from bptt.models import GRU, LSTM, lstm_bptt
from bptt.models.base import AutogradEnsemble
from bptt.optim.sgd import sgd_update
from bptt.tasks import get as get_task

LR, THRESHOLD = 0.01, 1.0
TARGET_SPEEDUP = 3.0   # per network, the ensemble model against its torch module at E = 1
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def torch_step(cls, x, y, hidden: int, device: torch.device | str = "cpu"):
    """One update of ``cls`` (``torch.nn.LSTM`` or ``nn.GRU``) + ``nn.Linear``: forward,
    cross-entropy at the last step, autograd backward, ``clip_grad_norm_``, SGD."""
    rnn, lin = cls(x.shape[-1], hidden).to(device), torch.nn.Linear(hidden, 4).to(device)
    x, y = x.to(device), y.to(device)
    params = list(rnn.parameters()) + list(lin.parameters())
    opt = torch.optim.SGD(params, lr=LR)

    def step() -> None:
        out, _ = rnn(x)
        loss = torch.nn.functional.cross_entropy(lin(out[-1]), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, THRESHOLD)
        opt.step()
    return step


def ensemble_step(cls, x, y, hidden: int, E: int, autograd: bool = False, device: torch.device | str = "cpu"):
    """One update of all E members of ``cls`` (:class:`bptt.models.LSTM` or ``GRU``):
    ``forward_backward``, :func:`clip_by_global_norm`, :func:`sgd_update`."""
    model = cls(x.shape[-1], hidden, 4, ensemble=E, seed=0, device=device)
    xe = x.unsqueeze(1).expand(x.shape[0], E, *x.shape[1:]).contiguous().to(device)
    ye = y.expand(E, -1).contiguous().to(device)

    def step() -> None:
        if autograd:
            out = AutogradEnsemble.forward_backward(model, xe, ye, alpha=0.0, omega=None)
        else:
            out = model.forward_backward(xe, ye, alpha=0.0, omega=None)
        grads, _ = clip_by_global_norm(out.grads, THRESHOLD, out.grad_norm)
        sgd_update(model.params, grads, LR)
    return step


def lstm_products_step(T: int, B: int, hidden: int, n_in: int, E: int, device: torch.device | str = "cpu"):
    """The products of :func:`bptt.models.lstm_bptt.forward_backward` alone (see the
    module docstring), for ``E`` members."""
    H, K, block = hidden, hidden + n_in + 1, min(T, lstm_bptt._BLOCK)
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(E, T + 1, B, K, generator=g).to(device)
    W_all = (torch.randn(E, K, 4 * H, generator=g) * 0.1).to(device)
    W_back = (torch.randn(E, 4 * H, H, generator=g) * 0.1).to(device)
    act = torch.empty(T, E, B, 4 * H, device=device)
    eps = torch.randn(E, block, B, 4 * H, generator=g).to(device)
    full = torch.empty(E, K, 4 * H, device=device)
    dh = torch.empty(E, B, H, device=device)

    @torch.inference_mode()
    def step() -> None:
        for t in range(T):
            torch.bmm(rows[:, t], W_all, out=act[t])
        full.zero_()
        for t in range(T - 1, -1, -1):
            t0 = t - t % block
            if t == t0:
                n = min(block, T - t0)
                full.baddbmm_(rows[:, t0:t0 + n].reshape(E, n * B, K).transpose(1, 2),
                              eps[:, :n].reshape(E, n * B, 4 * H))
            if t:
                torch.bmm(eps[:, t - t0], W_back, out=dh)
    return step


def rival_steps(x, y, hidden: int, ensembles: list[int], device: torch.device | str = "cpu"):
    """The contenders of the speed target: ``[(key, label, E, step)]`` for
    ``torch.nn.LSTM`` (E = 1), the ensemble LSTM at each E, ``nn.GRU`` and the ensemble
    GRU; ``x [T, B, I]``, ``y [B]``. ``step()`` updates all E members once."""
    out = [("torch_lstm", "torch.nn.LSTM + autograd + clip_grad_norm_, E=1", 1,
            torch_step(torch.nn.LSTM, x, y, hidden, device))]
    out += [(f"lstm_E{E}", f"bptt LSTM (hand-derived BPTT), E={E}", E,
             ensemble_step(LSTM, x, y, hidden, E, device=device)) for E in ensembles]
    out += [(f"lstm_products_E{E}", f"  its batched products alone (a floor), E={E}", E,
             lstm_products_step(x.shape[0], x.shape[1], hidden, x.shape[-1], E, device)) for E in ensembles]
    out += [("torch_gru", "torch.nn.GRU + autograd + clip_grad_norm_, E=1", 1,
             torch_step(torch.nn.GRU, x, y, hidden, device))]
    out += [(f"gru_E{E}", f"bptt GRU (hand-derived BPTT), E={E}", E,
             ensemble_step(GRU, x, y, hidden, E, device=device)) for E in ensembles]
    return out


def rival_report(ms: dict[str, float], ensembles: list[int]) -> tuple[list[dict], list[dict]]:
    """Rows (ms per network update and the speed-up over the torch module) and the
    targets (speed-up ≥ :data:`TARGET_SPEEDUP` at each E) from the medians ``ms``
    keyed as in :func:`rival_steps`."""
    rows, targets = [], []
    for model, base in (("lstm", "torch_lstm"), ("gru", "torch_gru")):
        rows.append({"key": base, "ms_per_update": ms[base], "speedup": 1.0})
        for E in ensembles:
            floor = f"{model}_products_E{E}"
            if floor in ms:
                rows.append({"key": floor, "ms_per_update": ms[floor], "speedup": ms[base] / ms[floor]})
            key = f"{model}_E{E}"
            speedup = ms[base] / ms[key]
            rows.append({"key": key, "ms_per_update": ms[key], "speedup": speedup})
            targets.append({"name": f"{model.upper()} E={E} ≥ {TARGET_SPEEDUP:g}× faster than {base}",
                            "passed": speedup >= TARGET_SPEEDUP,
                            "detail": f"{ms[key]:.4g} ms vs {ms[base]:.4g} ms ({speedup:.2f}×)"})
    return rows, targets


def time_block(step, min_time: float, clock=time.perf_counter) -> float:
    """Seconds per call of ``step`` by ``clock``, over a block of at least ``min_time`` seconds."""
    n, start = 0, clock()
    while True:
        step()
        n += 1
        elapsed = clock() - start
        if elapsed >= min_time:
            return elapsed / n


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--ensemble", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall clock (default) or the process's CPU time")
    ap.add_argument("--no-autograd", action="store_true", help="skip the autograd LSTM contender")
    ap.add_argument("--json", type=str, default=None, help="write the figures to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = get_task("temporal_order", seed=0).sample(args.batch, args.length)
    E = args.ensemble
    contenders = {
        "torch_lstm": (torch_step(torch.nn.LSTM, x, y, args.hidden), 1),
        f"lstm_E{E}": (ensemble_step(LSTM, x, y, args.hidden, E), E),
        "torch_gru": (torch_step(torch.nn.GRU, x, y, args.hidden), 1),
        f"gru_E{E}": (ensemble_step(GRU, x, y, args.hidden, E), E),
    }
    if not args.no_autograd:
        contenders[f"lstm_autograd_E{E}"] = (ensemble_step(LSTM, x, y, args.hidden, E, autograd=True), E)
    contenders[f"lstm_products_E{E}"] = (lstm_products_step(x.shape[0], args.batch, args.hidden, x.shape[-1], E), E)
    for step, _ in contenders.values():
        step()
        step()
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            step, per = contenders[name]
            samples[name].append(time_block(step, args.min_time, CLOCKS[args.clock]) / per * 1e3)
    ms = {k: statistics.median(v) for k, v in samples.items()}
    ratios = {f"lstm_E{E}": ms["torch_lstm"] / ms[f"lstm_E{E}"],
              f"gru_E{E}": ms["torch_gru"] / ms[f"gru_E{E}"]}
    if not args.no_autograd:
        ratios[f"lstm_autograd_E{E}"] = ms["torch_lstm"] / ms[f"lstm_autograd_E{E}"]
    ratios[f"lstm_products_E{E}"] = ms["torch_lstm"] / ms[f"lstm_products_E{E}"]
    print(f"T={x.shape[0]} B={args.batch} H={args.hidden} E={E} threads={torch.get_num_threads()} "
          f"repeats={args.repeats} (median ms per network update)")
    for name in names:
        line = f"  {name:<22s} {ms[name]:9.3f} ms"
        if name in ratios:
            base = "torch_lstm" if name.startswith("lstm") else "torch_gru"
            line += f"   speed-up over {base}: {ratios[name]:5.2f}x"
        print(line)
    result = {"config": vars(args) | {"threads": torch.get_num_threads()}, "ms_per_update": ms,
              "samples": samples, "ratios": ratios}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
