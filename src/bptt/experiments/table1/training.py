"""Training Table 1's ensembles: the three methods of one data set as one ensemble (§4.2).

The paper trains the same sigmoid RNN with plain minibatch SGD (MSGD), with
gradient-norm clipping (MSGD-C) and with clipping and the regularizer Ω (MSGD-CR)
on four piano-roll data sets and on character-level Penn Treebank, and reports the
training and test figure at the best validation point. Here the three methods of one
data set are one ensemble of E = 3 members with identical initial weights, fed the
same windows; learning rate, clipping threshold and α are per-member ``[E]`` tensors
(MSGD's threshold lies above the non-finite guard's limit, so it never clips; α is 0
for the members without Ω).

The loop, for one data set::

    for epoch in 1..max_epochs:
        h ← 0
        for (x, y, mask, reset) in windows of the training split (200 steps):
            h[:, reset] ← 0                         # a lane starts a new sequence
            one exact engine pass from h (BPTT inside the window) → loss, grads, Ω, norm
            [PTB] b's gradient ← 0 (no biases); grads ← grads · steps per lane (summed cost)
            non-finite guard → clip (Algorithm 1) → SGD step, each member with its lr
            h ← last state of the window (carried forward, no gradient through it)
        evaluate every step of train, valid and test (forward only, state carried)
        per member: halve lr if the validation figure rose; remember the best epoch;
                    stop after ``patience`` epochs without improvement

The windows and the measures are those of :mod:`bptt.experiments.table1.sources`.

**Minibatch.** One window of one sequence (or one lane of text) per update, as the
paper's per-window costs suggest; the windows of an epoch follow each other in one
lane, so the state flows from one window of a sequence into the next. ``batch_size``
runs several lanes side by side instead (averaging their gradients).

**Summed cost (PTB).** The engine averages the loss over steps × lanes. The paper's
PTB cost is summed over each 200-step window, so the gradient is multiplied by the
number of steps per lane of the window (T, or fewer in the last window); the
clipping threshold 45 and the learning rates apply to that summed-cost gradient. α
weighs Ω against the summed cost: the gradient is ∇(Σ_t cost_t) + α_t ∇Ω.

**Records.** One run per member in the results store, with key
``table1:<group>:<method>`` (``group``: a hash of the whole configuration). Curves with
``step`` = epoch: ``train_nll``, ``valid_nll``, ``test_nll``, ``train_running`` (the
mean training loss over the epoch, in the same unit), ``lr``, ``epoch_updates``,
``epoch_seconds`` (training), ``eval_seconds``, ``ms_per_update``, ``ensemble_size``,
``epoch_clipped`` (fraction of updates clipped), ``epoch_grad_norm_mean``,
``epoch_grad_norm_max``, ``epoch_nonfinite``, ``epoch_omega``. Curves with ``step`` =
update, averaged over blocks of ``record_every`` updates: ``loss`` (the engine's,
nats per step), ``grad_norm``
(block max), ``grad_norm_mean``, ``clipped``, ``omega``, ``nonfinite``. Events:
``nonfinite`` and ``lr_halved``. Checkpoints of the whole ensemble every
``checkpoint_every`` updates and at every epoch's end; a killed or interrupted run
resumes exactly where it stopped when the same command runs again; a finished one is
read back from the store instead of trained again.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from bptt.clip import clip_by_global_norm, global_norm
from bptt.methods import Method
from bptt.models import ElmanRNN
from bptt.omega import alpha_schedule
from bptt.optim.sgd import NORM_LIMIT, nonfinite, sgd_update
from bptt.store import OUTCOME_STATUSES, Status

from .protocol import NaturalConfig
from .sources import Batch, evaluate_split, load_source

__all__ = ["NaturalTrainer", "DatasetResult", "MemberSummary", "train_natural", "timing_summary"]

#: A ``running`` run not written to for this long counts as abandoned (its process is
#: presumed dead, wherever it ran) and is resumed here; see :meth:`bptt.store.Store.is_live`.
STALE_AFTER_S = 1800.0


@dataclass
class _Member:
    """The bookkeeping of one ensemble member (one method)."""

    method: str
    lr: float
    threshold: float | None
    alpha0: float
    run_id: int | None = None
    status: str = Status.RUNNING.value
    stop_reason: str = ""
    best_epoch: int = 0
    best: dict = field(default_factory=lambda: {"train": math.nan, "valid": math.inf, "test": math.nan})
    prev_valid: float = math.nan
    bad_epochs: int = 0
    halvings: int = 0
    updates: int = 0
    clipped: int = 0
    nonfinite: int = 0
    epochs: int = 0


@dataclass
class MemberSummary:
    """One method's result on one data set, read from its run."""

    method: str
    run_id: int
    status: str
    best_epoch: int
    train: float
    valid: float
    test: float
    epochs: int
    updates: int
    clipped_fraction: float
    nonfinite: int
    lr_final: float
    stop_reason: str


@dataclass
class DatasetResult:
    """The three methods on one data set, with the ensemble's timings."""

    dataset: str
    config: dict
    members: list[MemberSummary]
    timing: dict
    reused: bool = False

    def member(self, method: str) -> MemberSummary | None:
        return next((m for m in self.members if m.method == method), None)


class _EpochStats:
    """Per-member sums over one epoch's updates."""

    def __init__(self, E: int) -> None:
        self.loss_nats = np.zeros(E)
        self.count = 0.0
        self.updates = 0
        self.norm_sum = np.zeros(E)
        self.norm_max = np.zeros(E)
        self.clipped = np.zeros(E)
        self.nonfinite = np.zeros(E)
        self.omega_sum = np.zeros(E)
        self.seconds = 0.0


_BLOCK_FIELDS = ("loss", "grad_norm", "clipped", "omega", "nonfinite")


@contextmanager
def _num_threads(n: int | None):
    if n is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class NaturalTrainer:
    """Trains the methods of one data set as one ensemble (see the module docstring).

    Members keep plain strings (the method's name, the status) so that checkpoints hold
    no enum.

    Args:
        config: a validated :class:`NaturalConfig` (see :func:`protocol`).
        source: the data (:func:`load_source`).
        store: a :class:`bptt.store.Store`; one run per member is recorded in it.
        progress: show a progress bar per epoch.
        echo: called with one line per epoch.
    """

    def __init__(self, config: NaturalConfig, source, store, *, progress: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        self.config = config.validate()
        c = config
        self.source = source
        self.store = store
        self.progress = progress
        self.echo = echo or (lambda s: None)
        dtype = getattr(torch, c.dtype)
        E = len(c.methods)
        self.model = ElmanRNN(source.n_in, c.hidden, source.n_out, unit=c.unit, init=c.init,
                              output=source.output, seeds=[c.seed] * E, dtype=dtype, device=c.device)
        self.members = [_Member(m.value, c.method_lr(m), c.method_threshold(m), c.method_alpha0(m))
                        for m in c.methods]
        self.active = list(range(E))
        self.epoch = 0               # completed epochs
        self.position = 0            # windows done in the current epoch
        self.update = 0
        self.h: torch.Tensor | None = None
        self.stats = _EpochStats(E)
        self.best_params: dict[int, dict[str, torch.Tensor]] = {}
        self._block: dict[str, list[np.ndarray]] = {k: [] for k in _BLOCK_FIELDS}
        self._schedules = [alpha_schedule(c.alpha_schedule, mem.alpha0) for mem in self.members]
        self._consistent = True

    # -- per-member tensors over the active members ------------------------------------------
    def _tensor(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.model.dtype, device=self.model.device)

    def _lr(self) -> torch.Tensor:
        return self._tensor([self.members[m].lr for m in self.active])

    def _threshold(self) -> torch.Tensor:
        # MSGD's "threshold" lies above the guard's limit: a norm that large is never
        # clipped, it is caught by the guard instead.
        return self._tensor([self.members[m].threshold or 10.0 * NORM_LIMIT for m in self.active])

    def _alpha(self, t: int) -> torch.Tensor:
        return self._tensor([self._schedules[m](t) for m in self.active])

    # -- store --------------------------------------------------------------------------------
    def run_key(self, method: str) -> str:
        return f"table1:{self.config.group}:{method}"

    def _start_runs(self) -> None:
        for mem in self.members:
            if mem.run_id is None:
                mem.run_id = self.store.start_run(self.config.member(mem.method), sweep="table1",
                                                  key=self.run_key(mem.method))

    def _flush_block(self) -> None:
        if not self._block["loss"]:
            return
        block = {k: np.stack(v) for k, v in self._block.items()}
        self._block = {k: [] for k in _BLOCK_FIELDS}
        for j, m in enumerate(self.active):
            self.store.log_curve(self.members[m].run_id, [{
                "step": self.update,
                "loss": float(np.mean(block["loss"][:, j])),
                "grad_norm": float(np.max(block["grad_norm"][:, j])),
                "grad_norm_mean": float(np.mean(block["grad_norm"][:, j])),
                "clipped": float(np.mean(block["clipped"][:, j])),
                "omega": float(np.mean(block["omega"][:, j])),
                "nonfinite": float(np.sum(block["nonfinite"][:, j]))}])

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict:
        s = self.stats
        return {"kind": "table1-ensemble", "config": self.config.as_dict(), "epoch": self.epoch,
                "position": self.position, "update": self.update, "active": list(self.active),
                "members": [dataclasses.asdict(m) for m in self.members],
                "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "model_config": self.model.config(),
                "h": None if self.h is None else self.h.detach().cpu().clone(),
                "stats": {k: getattr(s, k) for k in vars(s)},
                "best_params": {m: {k: v.cpu() for k, v in p.items()} for m, p in self.best_params.items()}}

    def save_checkpoint(self) -> None:
        self._flush_block()
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        payload = buf.getvalue()
        self.store.save_checkpoints([(self.members[m].run_id, self.update, payload) for m in self.active])

    @classmethod
    def from_state(cls, state: dict, source, store, *, progress: bool = False,
                   echo: Callable[[str], None] | None = None) -> "NaturalTrainer":
        """Rebuild a trainer exactly as it was when ``state`` was saved."""
        cfg = dict(state["config"])
        cfg["methods"] = tuple(cfg["methods"])
        self = cls(NaturalConfig(**cfg), source, store, progress=progress, echo=echo)
        self.epoch, self.position, self.update = state["epoch"], state["position"], state["update"]
        self.active = list(state["active"])
        self.members = [_Member(**m) for m in state["members"]]
        device = self.config.device
        self.model = ElmanRNN.from_config(state["model_config"], device=device)
        self.model.load_state_dict(state["model"])
        self.h = None if state["h"] is None else state["h"].to(device)
        stats = _EpochStats(len(self.active))
        for k, v in state["stats"].items():
            setattr(stats, k, v)
        self.stats = stats
        self.best_params = {int(m): {k: v.to(device) for k, v in p.items()}
                            for m, p in state["best_params"].items()}
        return self

    # -- one update -----------------------------------------------------------------------------
    def step(self, batch: Batch) -> None:
        """One update of every active member on one window."""
        c = self.config
        x, y, mask, reset = batch
        B = x.shape[1]
        if self.h is None or self.h.shape[1] != B:
            self.h = torch.zeros(len(self.active), B, c.hidden, dtype=self.model.dtype, device=self.model.device)
        elif reset is not None and bool(reset.any()):
            self.h[:, reset] = 0.0
        t = self.update + 1
        count = float(mask.sum())
        scale = count / B if c.summed_cost else 1.0           # steps per lane: summed cost
        alpha = self._alpha(t)
        use_omega = bool((alpha > 0).any())
        out = self.model.forward_backward(x, y, alpha=alpha / scale, omega=c.omega if use_omega else None,
                                          h0=self.h, mask=mask)
        grads, norm = out.grads, out.grad_norm
        if not c.bias:
            grads["b"] = torch.zeros_like(grads["b"])
            norm = global_norm(grads)
        if scale != 1.0:
            grads = {k: g * scale for k, g in grads.items()}
            norm = norm * scale
        bad = nonfinite(norm)
        grads, clipped = clip_by_global_norm(grads, self._threshold(), norm)
        # From here on the state changes; an interrupt before the caller has advanced
        # ``position`` leaves it inconsistent, and the last checkpoint is kept instead.
        self._consistent = False
        sgd_update(self.model.params, grads, self._lr(), bad)
        self.h = out.h_last
        self.update = t

        loss = out.loss.detach().to("cpu", torch.float64).numpy()
        norm_np = norm.detach().to("cpu", torch.float64).numpy()
        clipped_np = (clipped & ~bad).cpu().numpy().astype(np.float64)
        bad_np = bad.cpu().numpy().astype(np.float64)
        omega_np = out.omega.detach().to("cpu", torch.float64).numpy()
        for k, v in zip(_BLOCK_FIELDS, (loss, norm_np, clipped_np, omega_np, bad_np)):
            self._block[k].append(v)
        s = self.stats
        s.loss_nats += loss * count
        s.count += count
        s.updates += 1
        finite_norm = np.where(np.isfinite(norm_np), norm_np, 0.0)
        s.norm_sum += finite_norm
        s.norm_max = np.maximum(s.norm_max, finite_norm)
        s.clipped += clipped_np
        s.nonfinite += bad_np
        s.omega_sum += omega_np
        for j, m in enumerate(self.active):
            mem = self.members[m]
            mem.updates += 1
            mem.clipped += int(clipped_np[j])
            if bad_np[j]:
                mem.nonfinite += 1
                self.store.log_event(mem.run_id, self.update, "nonfinite",
                                     f"gradient norm {norm_np[j]:.3g}: update skipped, W_rec shrunk")

    # -- one epoch ----------------------------------------------------------------------------
    def _epoch_seed(self) -> int:
        return int(np.random.SeedSequence([self.config.seed, 7919, self.epoch]).generate_state(1)[0])

    def train_epoch(self) -> None:
        """Train over the windows of the epoch, from ``position`` on (a resumed epoch)."""
        from tqdm.auto import tqdm

        c = self.config
        seed = self._epoch_seed()
        n_windows = self.source.n_windows("train", c.batch_size, c.window, rng=seed)
        if c.max_updates_per_epoch is not None:
            n_windows = min(n_windows, c.max_updates_per_epoch)
        if self.position == 0:
            self.h = None
        bar = tqdm(total=n_windows, initial=self.position, disable=not self.progress, unit="upd",
                   dynamic_ncols=True, leave=False, desc=f"{c.dataset} epoch {self.epoch + 1}")
        started = time.perf_counter()
        try:
            for k, batch in enumerate(self.source.batches("train", c.batch_size, c.window, rng=seed,
                                                          device=self.model.device)):
                if k >= n_windows:
                    break
                if k < self.position:
                    continue
                self.step(batch)
                self.position = k + 1
                self._consistent = True
                if self.update % c.record_every == 0:
                    self._flush_block()
                if self.update % c.checkpoint_every == 0:
                    self.stats.seconds += time.perf_counter() - started
                    self.save_checkpoint()
                    started = time.perf_counter()
                bar.update(1)
                if self.stats.updates and self.stats.count:
                    run = self.stats.loss_nats / self.stats.count
                    bar.set_postfix(loss=" ".join(f"{self.source.to_measure(v, 1.0):.3f}" for v in run))
        finally:
            self.stats.seconds += time.perf_counter() - started
            bar.close()
        self._flush_block()

    def evaluate(self, split: str) -> np.ndarray:
        """The data set's measure for every active member over ``split``."""
        c = self.config
        nats, count = evaluate_split(self.model, self.source, split, batch_size=c.eval_batch_size,
                                     window=c.eval_window, max_windows=c.eval_windows)
        if c.eval_windows is None and count != self.source.n_steps(split):
            raise RuntimeError(f"evaluation of {split} covered {count} steps, expected "
                               f"{self.source.n_steps(split)}")
        return np.array([self.source.to_measure(v, count) for v in nats])

    def end_epoch(self) -> None:
        """Evaluate, record, halve learning rates, remember the best, retire members."""
        c = self.config
        t0 = time.perf_counter()
        figures = {split: self.evaluate(split) for split in (["train"] if c.eval_train else []) + ["valid", "test"]}
        eval_seconds = time.perf_counter() - t0
        self._consistent = False            # until the bookkeeping below is complete
        self.epoch += 1
        s = self.stats
        E = len(self.active)
        running = s.loss_nats / max(s.count, 1.0)
        retire: list[int] = []
        lines = []
        for j, m in enumerate(self.active):
            mem = self.members[m]
            mem.epochs = self.epoch
            valid = float(figures["valid"][j])
            train = float(figures["train"][j]) if c.eval_train else self.source.to_measure(running[j], 1.0)
            test = float(figures["test"][j])
            self.store.log_curve(mem.run_id, [{
                "step": self.epoch, "train_nll": train, "valid_nll": valid, "test_nll": test,
                "train_running": self.source.to_measure(running[j], 1.0), "lr": mem.lr,
                "epoch_updates": s.updates, "epoch_seconds": s.seconds, "eval_seconds": eval_seconds,
                "ms_per_update": 1000.0 * s.seconds / max(s.updates, 1), "ensemble_size": E,
                "epoch_clipped": s.clipped[j] / max(s.updates, 1),
                "epoch_grad_norm_mean": s.norm_sum[j] / max(s.updates, 1),
                "epoch_grad_norm_max": s.norm_max[j], "epoch_nonfinite": s.nonfinite[j],
                "epoch_omega": s.omega_sum[j] / max(s.updates, 1)}])
            if math.isfinite(valid) and valid < mem.best["valid"]:
                if valid < mem.best["valid"] - c.rel_tol * abs(mem.best["valid"]) or not math.isfinite(mem.best["valid"]):
                    mem.bad_epochs = 0
                else:
                    mem.bad_epochs += 1
                mem.best = {"train": train, "valid": valid, "test": test}
                mem.best_epoch = self.epoch
                self.best_params[m] = {k: v[j:j + 1].detach().clone() for k, v in self.model.params.items()}
            else:
                mem.bad_epochs += 1
            rose = not math.isfinite(valid) or (math.isfinite(mem.prev_valid) and valid > mem.prev_valid)
            if c.halve_lr_on_rise and rose:
                mem.lr /= 2.0
                mem.halvings += 1
                self.store.log_event(mem.run_id, self.update, "lr_halved",
                                     f"epoch {self.epoch}: validation {valid:.4f} after {mem.prev_valid:.4f}; "
                                     f"learning rate now {mem.lr:g}")
            mem.prev_valid = valid
            if mem.bad_epochs >= c.patience:
                mem.stop_reason = (f"no improvement of the validation figure by more than {c.rel_tol:g} "
                                   f"(relative) for {c.patience} epochs")
                retire.append(j)
            elif self.epoch >= c.max_epochs:
                mem.stop_reason = f"epoch budget ({c.max_epochs}) spent"
                retire.append(j)
            lines.append(f"{Method(mem.method).label} {train:.3f}/{valid:.3f}/{test:.3f}")
        self.echo(f"{c.dataset} epoch {self.epoch}: train/valid/test  " + "   ".join(lines)
                  + f"   [{s.updates} updates, {s.seconds:.1f} s + eval {eval_seconds:.1f} s]")
        for j in retire:
            self._finish(self.active[j])
        keep = [j for j in range(E) if j not in retire]
        self.active = [self.active[j] for j in keep]
        if retire and keep:
            self.model = self.model.select(keep)
        self.stats = _EpochStats(len(self.active))
        self.position = 0
        self.h = None
        self._consistent = True

    def _finish(self, m: int, status: Status | None = None) -> None:
        mem = self.members[m]
        if status is None:
            status = Status.SUCCEEDED if math.isfinite(mem.best["valid"]) else Status.DIVERGED
        mem.status = status.value
        if status != Status.STOPPED:
            params = self.best_params.get(m)
            if params is not None:
                member = ElmanRNN.from_config(self.model.config() | {"seeds": [self.config.seed]},
                                              device=self.model.device)
                with torch.no_grad():
                    for k, p in member.params.items():
                        p.copy_(params[k])
                buf = io.BytesIO()
                torch.save({"kind": "table1-best", "model": member.state_dict(),
                            "model_config": member.config(), "epoch": mem.best_epoch}, buf)
                self.store.save_checkpoints([(mem.run_id, self.update, buf.getvalue())])
        self.store.finish_run(mem.run_id, status, self.metrics(m))

    def metrics(self, m: int) -> dict:
        mem = self.members[m]
        return {"best_epoch": mem.best_epoch, "train": mem.best["train"], "valid": mem.best["valid"],
                "test": mem.best["test"], "epochs": mem.epochs, "updates": mem.updates,
                "clipped_fraction": mem.clipped / max(mem.updates, 1), "nonfinite": mem.nonfinite,
                "lr_final": mem.lr, "lr_halvings": mem.halvings, "stop_reason": mem.stop_reason,
                "measure": self.config.measure}

    # -- the loop -------------------------------------------------------------------------------
    def run(self, threads: int | None = None) -> None:
        """Train until every member stopped.

        A ``KeyboardInterrupt`` saves a checkpoint, marks the unfinished runs ``stopped``
        and is re-raised; training the same configuration again resumes from there.
        """
        self._start_runs()
        with _num_threads(threads):
            try:
                while self.active:
                    self.train_epoch()
                    self.end_epoch()
                    if self.active:
                        self.save_checkpoint()
            except KeyboardInterrupt:
                if self._consistent:
                    self.save_checkpoint()
                for m in self.active:
                    self.members[m].status = Status.STOPPED.value
                    self.store.finish_run(self.members[m].run_id, Status.STOPPED, self.metrics(m))
                raise


def _summaries(store, config: NaturalConfig, runs: dict[str, dict]) -> list[MemberSummary]:
    out = []
    for method in config.methods:
        r = store.get_run(runs[method]["id"])
        mt = r["metrics"]
        out.append(MemberSummary(
            method=method, run_id=r["id"], status=r["status"], best_epoch=int(mt.get("best_epoch", 0)),
            train=float(mt.get("train", math.nan)), valid=float(mt.get("valid", math.nan)),
            test=float(mt.get("test", math.nan)), epochs=int(mt.get("epochs", 0)),
            updates=int(mt.get("updates", 0)), clipped_fraction=float(mt.get("clipped_fraction", 0.0)),
            nonfinite=int(mt.get("nonfinite", 0)), lr_final=float(mt.get("lr_final", math.nan)),
            stop_reason=str(mt.get("stop_reason", ""))))
    return out


def timing_summary(store, run_ids: list[int]) -> dict:
    """Time per epoch of an ensemble, from the epoch curves of its longest-lived run.

    Returns the mean over the epochs trained with the whole ensemble (all three
    members) of the training time, the evaluation time and ms per update, the
    updates per epoch, the number of epochs and the total wall time of the ensemble.
    """
    names = ["epoch_seconds", "eval_seconds", "ms_per_update", "epoch_updates", "ensemble_size"]
    curves = [store.get_curve(r, names) for r in run_ids]
    longest = max(curves, key=lambda c: len(c["epoch_seconds"][0]))
    if len(longest["epoch_seconds"][0]) == 0:
        return {}
    size = longest["ensemble_size"][1]
    full = size == size.max()
    return {"epochs": int(len(size)),
            "ensemble_size": int(size.max()),
            "train_seconds_per_epoch": float(longest["epoch_seconds"][1][full].mean()),
            "eval_seconds_per_epoch": float(longest["eval_seconds"][1][full].mean()),
            "ms_per_update": float(longest["ms_per_update"][1][full].mean()),
            "updates_per_epoch": float(longest["epoch_updates"][1][full].mean()),
            "total_seconds": float(longest["epoch_seconds"][1].sum() + longest["eval_seconds"][1].sum())}


def train_natural(config: NaturalConfig, store, *, source=None, data_dir=None, progress: bool = False,
                  echo: Callable[[str], None] | None = None, threads: int | None = None,
                  restart: bool = False, cache: dict | None = None) -> DatasetResult:
    """Train (or resume, or read back) the ensemble of one data set.

    When every member of ``config`` already has a finished run in ``store``, its
    results are read back and nothing is trained (unless ``restart``). When runs of
    it were stopped or their process died, training resumes from the latest
    checkpoint. Otherwise it starts afresh. A run of it still live in another process
    (:meth:`bptt.store.Store.is_live`: written to within :data:`STALE_AFTER_S` seconds by a
    process not known to be dead) raises ``RuntimeError``.
    """
    echo = echo or (lambda s: None)
    config = config.validate()
    group = config.group
    latest: dict[str, dict] = {}
    if not restart:
        for method in config.methods:
            runs = store.list_runs(key=f"table1:{group}:{method}", limit=1)
            if runs:
                latest[method] = runs[0]
    if len(latest) == len(config.methods) and all(r["status"] in OUTCOME_STATUSES for r in latest.values()):
        ids = [r["id"] for r in latest.values()]
        echo(f"{config.dataset}: finished runs {', '.join(map(str, ids))} found in the store; not trained again")
        return DatasetResult(config.dataset, config.as_dict(), _summaries(store, config, latest),
                             timing_summary(store, ids), reused=True)
    for r in latest.values():
        if store.is_live(r, stale_after=STALE_AFTER_S) and not store.owns(r):
            raise RuntimeError(f"run {r['id']} of {config.dataset} is being trained by process {r['pid']} "
                               f"on {r['host']}; wait for it or use another store")
    if source is None:
        source = load_source(config.dataset, data_dir, cache=cache)
    trainer = None
    unfinished = [r for r in latest.values() if r["status"] in (Status.RUNNING, Status.STOPPED)]
    checkpoints = [store.load_checkpoint(r["id"]) for r in unfinished]
    checkpoints = [ck for ck in checkpoints if ck is not None]
    if checkpoints:
        step, payload = max(checkpoints, key=lambda sp: sp[0])
        state = torch.load(io.BytesIO(payload), weights_only=False)
        if state.get("kind") == "table1-ensemble":
            trainer = NaturalTrainer.from_state(state, source, store, progress=progress, echo=echo)
            for m in trainer.active:
                store.update_run(trainer.members[m].run_id, status=Status.RUNNING)
            echo(f"{config.dataset}: resuming at epoch {trainer.epoch + 1}, update {trainer.update}")
    if trainer is None:
        for r in unfinished:
            if r["status"] == Status.RUNNING:
                store.finish_run(r["id"], Status.STOPPED, {"stop_reason": "abandoned before its first checkpoint"})
        trainer = NaturalTrainer(config, source, store, progress=progress, echo=echo)
    trainer.run(threads=threads)
    runs = {mem.method: {"id": mem.run_id} for mem in trainer.members}
    ids = [mem.run_id for mem in trainer.members]
    return DatasetResult(config.dataset, config.as_dict(), _summaries(store, config, runs),
                         timing_summary(store, ids))
