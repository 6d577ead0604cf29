"""Training Table 1's ensembles: the three methods of one data set as one ensemble (§4.2).

The paper trains the same sigmoid RNN with plain minibatch SGD (MSGD), with
gradient-norm clipping (MSGD-C) and with clipping and the regularizer Ω (MSGD-CR)
on four piano-roll data sets and on character-level Penn Treebank, and reports the
training and test figure at the best validation point. Here the three methods of one
data set are one ensemble of E = 3 members with identical initial weights, fed the
same windows; learning rate, clipping threshold and α are per-member ``[E]`` tensors
(MSGD does not clip: :class:`bptt.optim.PaperSGD` clips only the members whose method
does; α is 0 for the members without Ω).

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

**The loop.** :class:`NaturalTrainer` is the schedule of the corpora on the one training
loop (:class:`bptt.training.loop.TrainingLoop`): the loop does the update (the model
pass, guard, clipping, SGD with :class:`bptt.optim.PaperSGD`), the records, the
checkpoints (:mod:`bptt.training.checkpoint`) and the interrupts; this module feeds it
windows and does what happens at each epoch's end.
"""


from __future__ import annotations

import dataclasses
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from bptt.experiments.manifest import machine
from bptt.methods import Method
from bptt.models import ElmanRNN
from bptt.omega import alpha_schedule
from bptt.optim import PaperSGD, guarded
from bptt.store import OUTCOME_STATUSES, Status
from bptt.training import checkpoint
from bptt.training import loop as core
from bptt.training.build import build_model, build_rule
from bptt.training.loop import Schedule, TrainingLoop

from .protocol import NaturalConfig
from .results import DatasetResult, summaries, timing_summary
from .sources import Batch, evaluate_split, load_source

__all__ = ["NaturalTrainer", "train_natural", "check_time_budget", "sweep_of"]

#: A ``running`` run not written to for this long counts as abandoned (its process is
#: presumed dead, wherever it ran) and is resumed here; see :meth:`bptt.store.Store.is_live`.
STALE_AFTER_S = 1800.0


@dataclass
class _Member:
    """What Table 1 keeps about one member (one method) beyond the loop's bookkeeping."""

    method: str
    lr: float
    threshold: float | None
    alpha0: float
    stop_reason: str = ""
    best_epoch: int = 0
    best: dict = field(default_factory=lambda: {"train": math.nan, "valid": math.inf, "test": math.nan})
    prev_valid: float = math.nan
    bad_epochs: int = 0
    halvings: int = 0
    epochs: int = 0

    @classmethod
    def from_state(cls, d: dict) -> "_Member":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class _EpochStats:
    """Per-member sums over one epoch's updates."""

    ARRAYS = ("loss_nats", "norm_sum", "norm_max", "clipped", "nonfinite", "omega_sum")

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

    def add(self, block: dict[str, np.ndarray], counts: list[float]) -> None:
        """Add a block of per-update records (``[n, E]``), update by update."""
        for i, count in enumerate(counts):
            loss, norm = block["loss"][i], block["grad_norm"][i]
            self.loss_nats += loss * count
            self.count += count
            self.updates += 1
            finite_norm = np.where(np.isfinite(norm), norm, 0.0)
            self.norm_sum += finite_norm
            self.norm_max = np.maximum(self.norm_max, finite_norm)
            self.clipped += block["clipped"][i]
            self.nonfinite += block["nonfinite"][i]
            self.omega_sum += block["omega"][i]

    def keep(self, rows: list[int]) -> None:
        """Keep the sums of the members at ``rows`` only (the others left the ensemble)."""
        for k in self.ARRAYS:
            setattr(self, k, getattr(self, k)[rows])

    def state(self) -> dict:
        return {k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict) -> "_EpochStats":
        self = cls(0)
        for k, v in state.items():
            setattr(self, k, v.numpy().astype(np.float64) if isinstance(v, torch.Tensor) else v)
        return self


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


def sweep_of(config: NaturalConfig) -> str:
    """The sweep a configuration's runs are recorded under: ``table1-BUDGET`` for the
    paper's three methods, ``table1-BUDGET-remedies`` for a rival remedy's row (so that
    Table 1's report never takes a row's network for one of the paper's)."""
    return f"table1-{config.budget}" + ("" if config.row is None else "-remedies")


class NaturalTrainer(Schedule):
    """The schedule of one data set's ensemble on the training loop (see the module
    docstring): epochs of windows with the state carried, evaluation at each epoch's
    end, learning-rate halving, patience, and the best parameters of each member.

    Args:
        config: a validated :class:`NaturalConfig` (see :func:`protocol`).
        source: the data (:func:`load_source`).
        store: a :class:`bptt.store.Store`; one run per member is recorded in it.
        progress: show a progress bar per epoch.
        echo: called with one line per epoch.
    """

    problem = "table1"

    def __init__(self, config: NaturalConfig, source, store, *, progress: bool = False,
                 echo: Callable[[str], None] | None = None, time_budget: float | None = None) -> None:
        self.config = c = config.validate()
        self.source = source
        self.store = store
        self.time_budget = check_time_budget(time_budget)
        self.progress = progress
        self.echo = echo or (lambda s: None)
        self.finished_on: dict | None = None         # the machine and threads of the training process
        E = len(c.methods)
        self.members = [_Member(Method(m).value, c.method_lr(m), c.method_threshold(m), c.method_alpha0(m))
                        for m in c.methods]
        if c.row is None:
            model = ElmanRNN(source.n_in, c.hidden, source.n_out, unit=c.unit, init=c.init, output=source.output,
                             seeds=[c.seed] * E, dtype=getattr(torch, c.dtype), device=c.device)
            rule = self._rule(model, self.members, c.guard)
        else:                        # a rival remedy: its own network and update rule
            tc = c.train_config()
            model = build_model(tc, source)
            rule = build_rule(tc, model)
        self.loop = TrainingLoop(
            model, rule, alpha=[alpha_schedule(c.alpha_schedule, m.alpha0)
                                                          for m in self.members],
            omega=c.omega, omega_when_unweighted=False, frozen=() if c.bias else ("b",), store=store,
            record_every=c.record_every, checkpoint_every=c.checkpoint_every,
            alpha_clock=(lambda t: self.epoch + 1) if c.alpha_time == "epochs" else None)
        self.dropout_rng = None
        if c.dropout:                # masks drawn on the CPU from the ensemble's own stream
            self.dropout_rng = torch.Generator().manual_seed(int(np.random.SeedSequence([c.seed, 104729])
                                                                 .generate_state(1)[0]))
            self.loop.pass_options = {"dropout": c.dropout, "generator": self.dropout_rng}
        self.epoch = 0               # completed epochs
        self.position = 0            # windows done in the current epoch
        self.h: torch.Tensor | None = None
        self.stats = _EpochStats(E)
        self.best_params: dict[int, dict[str, torch.Tensor]] = {}
        self._windows: Iterator[Batch] | None = None
        self._n_windows = 0
        self._bar = None
        self._started = 0.0

    @staticmethod
    def _rule(model: ElmanRNN, members: list[_Member], guard: str = "always") -> PaperSGD:
        return PaperSGD([m.lr for m in members], threshold=[m.threshold or 1.0 for m in members],
                        clip=[Method(m.method).clips for m in members], kind="norm",
                        dtype=model.dtype, device=model.device,
                        guard=[guarded(guard, Method(m.method).clips) for m in members])

    @property
    def model(self) -> ElmanRNN:
        return self.loop.model

    @property
    def active(self) -> list[int]:
        return self.loop.active

    @property
    def update(self) -> int:
        return self.loop.update

    def run_key(self, method: str) -> str:
        return f"table1:{self.config.group}:{method}"

    # -- the windows of an epoch -----------------------------------------------------------------
    def _epoch_seed(self) -> int:
        return int(np.random.SeedSequence([self.config.seed, 7919, self.epoch]).generate_state(1)[0])

    def _open_epoch(self) -> None:
        from bptt.progress import progress_bar

        c = self.config
        seed = self._epoch_seed()
        n = self.source.n_windows("train", c.batch_size, c.window, rng=seed)
        self._n_windows = n if c.max_updates_per_epoch is None else min(n, c.max_updates_per_epoch)
        if self.position == 0:
            self.h = None
        windows = self.source.batches("train", c.batch_size, c.window, rng=seed, device="cpu")
        for _ in range(self.position):                 # a resumed epoch
            next(windows)
        self._windows = windows
        self._bar = progress_bar(total=self._n_windows, initial=self.position, disable=not self.progress,
                                 unit="upd", dynamic_ncols=True, leave=False,
                                 desc=f"{c.dataset} epoch {self.epoch + 1}")

    def next_batch(self, loop: TrainingLoop) -> core.Batch:
        if self._windows is None:
            self._open_epoch()
        self._started = time.perf_counter()
        x, y, mask, reset = next(self._windows)                  # on the CPU: no wait for the device
        dev = self.model.device
        B = x.shape[1]
        if self.h is None or self.h.shape[1] != B:
            self.h = torch.zeros(len(loop.active), B, self.model.state_size, dtype=self.model.dtype, device=dev)
        elif reset is not None and bool(reset.any()):                # lanes that start a new sequence
            keep = ~reset.to(dev, non_blocking=True).reshape(1, B, 1)
            self.h = torch.where(keep, self.h, torch.zeros((), dtype=self.h.dtype, device=dev))
        count = float(mask.sum())
        scale = count / B if self.config.summed_cost else 1.0     # steps per lane: the summed cost
        return core.Batch(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True), h0=self.h,
                          mask=mask.to(dev, non_blocking=True), scale=scale, count=count)

    def after_update(self, loop: TrainingLoop, out) -> None:
        self.h = out.h_last
        self.position += 1
        self.stats.seconds += time.perf_counter() - self._started
        if self._bar is not None:
            self._bar.update(1)
        if self.position < self._n_windows:
            return
        self._close_epoch()
        loop.flush(self)
        self.end_epoch()
        if loop.active:
            loop.save_checkpoint(self)

    def _close_epoch(self) -> None:
        self._windows = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_block(self, loop: TrainingLoop, block: dict[str, np.ndarray], counts: list[float]) -> None:
        self.stats.add(block, counts)

    def on_retire(self, loop: TrainingLoop, keep: list[int]) -> None:
        # a member that leaves within an epoch (diverged) takes its carried state and sums along
        if self.h is not None and self.h.shape[0] == len(loop.active):
            self.h = self.h[torch.as_tensor(keep, dtype=torch.long, device=self.h.device)]
        if len(self.stats.loss_nats) == len(loop.active):
            self.stats.keep(keep)

    # -- the end of an epoch ------------------------------------------------------------------------
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
        c, loop = self.config, self.loop
        t0 = time.perf_counter()
        figures = {split: self.evaluate(split) for split in (["train"] if c.eval_train else []) + ["valid", "test"]}
        eval_seconds = time.perf_counter() - t0
        self.epoch += 1
        s = self.stats
        E = len(self.active)
        running = s.loss_nats / max(s.count, 1.0)
        retire: list[int] = []
        lines = []
        for j, m in enumerate(self.active):
            mem, run_id = self.members[m], loop.members[m].run_id
            mem.epochs = self.epoch
            valid = float(figures["valid"][j])
            train = float(figures["train"][j]) if c.eval_train else self.source.to_measure(running[j], 1.0)
            test = float(figures["test"][j])
            self.store.log_curve(run_id, [{
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
                loop.rule.lr[j] = mem.lr
                self.store.log_event(run_id, self.update, "lr_halved",
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
        over = self._over_budget(eval_seconds)
        if over:
            for j, m in enumerate(self.active):
                if j not in retire:
                    self.members[m].stop_reason = over
                    retire.append(j)
        for j in retire:
            self._finish(self.active[j])
        loop.retire(retire, self)
        self.stats = _EpochStats(len(self.active))
        self.position = 0
        self.h = None

    def _over_budget(self, eval_seconds: float) -> str:
        """Why the members stop for the time budget ("" while another epoch fits): the
        training and evaluation time of the epochs so far (from the runs' epoch curves, so
        that resumed runs count what they did before), plus the epoch just ended's again
        (the estimate of the next), would exceed :attr:`time_budget`."""
        if self.time_budget is None or not self.active:
            return ""
        run_id = self.loop.members[self.active[0]].run_id
        curves = self.store.get_curve(run_id, ["epoch_seconds", "eval_seconds"])
        spent = float(np.sum(curves["epoch_seconds"][1]) + np.sum(curves["eval_seconds"][1]))
        last = float(self.stats.seconds + eval_seconds)
        if spent + last <= self.time_budget:
            return ""
        return (f"time budget ({self.time_budget / 60:g} min) would not hold another epoch: {self.epoch} epochs "
                f"took {spent / 60:.1f} min, the last {last / 60:.1f} min")

    def diverged(self, loop: TrainingLoop, m: int, update: int) -> None:
        """Member ``m`` (not guarded) applied a non-finite update at ``update``: it ends
        ``diverged``, keeping the figures and the network of its best epoch so far."""
        self.members[m].stop_reason = (f"parameters or loss non-finite at update {update} "
                                       f"(the non-finite guard does not protect it)")
        self._finish(m, Status.DIVERGED, diverged_at=int(update))

    def _finish(self, m: int, status: Status | None = None, **extra) -> None:
        mem = self.members[m]
        if status is None:
            status = Status.SUCCEEDED if math.isfinite(mem.best["valid"]) else Status.DIVERGED
        params = self.best_params.get(m)
        network = None
        if params is not None:
            network = type(self.model).from_config(self.model.config() | {"seeds": [self.config.seed]},
                                                   device=self.model.device)
            with torch.no_grad():
                for k, p in network.params.items():
                    p.copy_(params[k])
        self.loop.finish(m, status, self.metrics(self.loop, m) | extra, network=network, epoch=mem.best_epoch)

    def metrics(self, loop: TrainingLoop, m: int) -> dict:
        mem, core_mem = self.members[m], loop.members[m]
        return {"best_epoch": mem.best_epoch, "train": mem.best["train"], "valid": mem.best["valid"],
                "test": mem.best["test"], "epochs": mem.epochs, "updates": core_mem.updates,
                "clipped_fraction": core_mem.clipped / max(core_mem.updates, 1), "nonfinite": core_mem.nonfinite,
                "lr_final": mem.lr, "lr_halvings": mem.halvings, "stop_reason": mem.stop_reason,
                "measure": self.config.measure, "finished_on": self.finished_on}

    # -- checkpoints --------------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return self.config.as_dict()

    def schedule_state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position,
                "h": None if self.h is None else self.h.detach().cpu().clone(),
                "stats": self.stats.state(), "members": [dataclasses.asdict(m) for m in self.members],
                "best_params": {m: {k: v.detach().cpu().clone() for k, v in p.items()}
                                for m, p in self.best_params.items()},
                **({"dropout_rng": self.dropout_rng.get_state()} if self.dropout_rng is not None else {})}

    @classmethod
    def from_state(cls, state: dict, source, store, *, progress: bool = False,
                   echo: Callable[[str], None] | None = None, time_budget: float | None = None) -> "NaturalTrainer":
        """Rebuild a trainer exactly as it was when the checkpoint ``state`` was taken."""
        if state.get("kind") != "training" or state.get("problem") != cls.problem:
            raise ValueError(f"not a training checkpoint of Table 1 (kind {state.get('kind')!r}, "
                             f"problem {state.get('problem')!r})")
        # checkpoints written before these were settings counted α's t in updates and guarded every member
        config = {"alpha_time": "updates", "guard": "always"} | dict(state["config"])
        self = cls(NaturalConfig(**config), source, store, progress=progress, echo=echo, time_budget=time_budget)
        sched, loop = state["schedule"], self.loop
        device = self.config.device
        self.epoch, self.position = int(sched["epoch"]), int(sched["position"])
        self.members = [_Member.from_state(d) for d in sched["members"]]
        loop.model = type(loop.model).from_config(state["model_config"], device=device)
        loop.model.load_state_dict(state["model"])
        loop.load_loop_state(state["loop"])
        if state["rule"] is None:                    # version 1: the rule follows from the members
            loop.rule = cls._rule(loop.model, self.members, self.config.guard)
            loop.rule.select(loop.active, loop.model.params)
        else:
            loop.rule.load_state_dict(state["rule"])
        self.h = None if sched["h"] is None else sched["h"].to(device)
        self.stats = _EpochStats.from_state(sched["stats"])
        if self.dropout_rng is not None:
            self.dropout_rng.set_state(sched["dropout_rng"])
        self.best_params = {int(m): {k: v.to(device) for k, v in p.items()} for m, p in sched["best_params"].items()}
        return self

    # -- the run -------------------------------------------------------------------------------------
    def run(self, threads: int | None = None) -> None:
        """Train until every member stopped.

        An interrupt (SIGINT, SIGTERM, ``KeyboardInterrupt``) stops after the update in
        progress, saves a checkpoint, marks the unfinished runs ``stopped`` and is
        re-raised; training the same configuration again resumes from there.
        """
        c = self.config
        self.loop.start_runs([c.member(m.method) for m in self.members], sweep=sweep_of(c),
                             keys=[self.run_key(m.method) for m in self.members])
        with _num_threads(threads):
            # MSGD-CR's figures (and MSGD-C's) depend at the bit level on the thread count
            # and the PyTorch build, so the runs record those of the process that trained them.
            self.finished_on = machine() | {"threads": torch.get_num_threads()}
            try:
                self.loop.run(self)
            finally:
                self._close_epoch()


def check_time_budget(seconds) -> float | None:
    """``seconds`` as a float, or ``None``; ``ValueError`` unless finite and > 0."""
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"time budget must be a number of seconds, got {seconds!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"time budget must be finite and > 0 seconds, got {seconds!r}")
    return value


def train_natural(config: NaturalConfig, store, *, source=None, data_dir=None, progress: bool = False,
                  echo: Callable[[str], None] | None = None, threads: int | None = None,
                  restart: bool = False, cache: dict | None = None,
                  time_budget: float | None = None) -> DatasetResult:
    """Train (or resume, or read back) the ensemble of one data set.

    When every member of ``config`` already has a finished run in ``store``, its
    results are read back and nothing is trained (unless ``restart``). When runs of
    it were stopped or their process died, training resumes from the newest
    checkpoint (:func:`bptt.training.checkpoint.latest_training`). Otherwise it starts
    afresh. ``time_budget`` (seconds of training and evaluation, summed over the epochs
    of the runs, resumed ones included; not part of the configuration) ends every member
    after the first epoch past which another epoch as long as the last would exceed it:
    "as many epochs as the time allows", each member with the figures of its best epoch
    and the reason in its ``stop_reason``. A run of it still live in another process (:meth:`bptt.store.Store.is_live`:
    written to within :data:`STALE_AFTER_S` seconds by a process not known to be dead)
    raises ``RuntimeError``.
    """
    echo = echo or (lambda s: None)
    config = config.validate()
    time_budget = check_time_budget(time_budget)
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
        return DatasetResult(config.dataset, config.as_dict(), summaries(store, config, latest),
                             timing_summary(store, ids), reused=True)
    for r in latest.values():
        if store.is_live(r, stale_after=STALE_AFTER_S) and not store.owns(r):
            raise RuntimeError(f"run {r['id']} of {config.dataset} is being trained by process {r['pid']} "
                               f"on {r['host']}; wait for it or use another store")
    if source is None:
        source = load_source(config.dataset, data_dir, cache=cache)
    trainer = None
    unfinished = [r for r in latest.values() if r["status"] in (Status.RUNNING, Status.STOPPED)]
    found = checkpoint.latest_training(store, [r["id"] for r in unfinished])
    if found is not None and found[1]["problem"] == NaturalTrainer.problem:
        trainer = NaturalTrainer.from_state(found[1], source, store, progress=progress, echo=echo,
                                            time_budget=time_budget)
        for m in trainer.active:
            trainer.loop.members[m].status = Status.RUNNING.value
            store.update_run(trainer.loop.members[m].run_id, status=Status.RUNNING)
        echo(f"{config.dataset}: resuming at epoch {trainer.epoch + 1}, update {trainer.update}")
    if trainer is None:
        for r in unfinished:
            if r["status"] == Status.RUNNING:
                store.finish_run(r["id"], Status.STOPPED, {"stop_reason": "abandoned before its first checkpoint"})
        trainer = NaturalTrainer(config, source, store, progress=progress, echo=echo, time_budget=time_budget)
    trainer.run(threads=threads)
    runs = {mem.method: {"id": core_mem.run_id} for mem, core_mem in zip(trainer.members, trainer.loop.members)}
    ids = [core_mem.run_id for core_mem in trainer.loop.members]
    return DatasetResult(config.dataset, config.as_dict(), summaries(store, config, runs),
                         timing_summary(store, ids))
