"""The one training loop: data source → model pass → guard → clip → update → record.

Every problem (the pathological tasks of §4.1, the corpora of §4.2) trains through
:class:`TrainingLoop`; a problem differs only by its :class:`Schedule`, which hands the
loop its batches and decides, between updates, what else happens (evaluations, epoch
ends, retirements). The loop owns what every problem shares:

* one update (:meth:`TrainingLoop.step`): the model's pass with each member's α, the
  cost scale and frozen parameters of the problem, then the update rule (for the
  paper's methods :class:`bptt.optim.PaperSGD`: non-finite guard → clipping → SGD). The
  per-update records stay on the device until a block of ``record_every`` updates is
  written to the store (:meth:`TrainingLoop.flush`): no host sync per update;
* a rule that needs the batch itself rather than a gradient (Hessian-free
  optimization, :class:`bptt.optim.HFRule`) says so with ``takes_batches = True``: the
  update is then ``rule.step(model, batch)``, which evaluates the loss itself and
  returns a :class:`bptt.optim.hf_rule.BatchStep`, and members retire with
  ``rule.select(keep, model)``. Such a rule's ``RECORDS`` are written as curves with
  one point per update, and its ``TOTALS`` are summed into each member's
  :attr:`Member.totals` (its run's metrics). Everything else (records, retirement,
  checkpoints, interrupts) is the same update for every rule;
* per-member bookkeeping (:class:`Member`: run id, status, updates, clipped and
  non-finite counts), retirement of finished members (:meth:`TrainingLoop.retire`) with
  a checkpoint of each finished network;
* divergence: a member whose update was applied with a non-finite gradient norm or
  loss (one the non-finite guard does not protect, see :class:`bptt.optim.PaperSGD`)
  has non-finite parameters from then on. Each update records this as a flag on the
  device; each block flush reads the flags (no extra host sync), and the loop then
  ends such members as ``diverged`` at the update where it happened
  (:meth:`Schedule.diverged`) and retires them;
* one checkpoint (:mod:`bptt.training.checkpoint`, ``kind="training"``) every
  ``checkpoint_every`` updates (the records of the block in progress are written with
  it), from which each problem's ``from_state`` rebuilds the whole training exactly;
* interrupts at a consistent point: SIGINT and SIGTERM only set a flag while training
  (:func:`deferred_interrupts`); the loop stops after the update in progress, saves a
  checkpoint, marks the unfinished runs ``stopped`` and raises ``KeyboardInterrupt``.
  A ``KeyboardInterrupt`` raised some other way inside an update leaves the last
  checkpoint in place (the state is then not consistent).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from bptt.clip import global_norm
from bptt.omega import AlphaSchedule
from bptt.store import Status
from bptt.training import checkpoint as ckpt

#: The per-update records kept on the device and written per block.
RECORDS = ("loss", "grad_norm", "clipped", "omega", "omega_fraction", "nonfinite", "diverged")


@dataclass
class Batch:
    """The data of one update.

    Attributes:
        x: inputs ``[T, E, B, I]`` (one minibatch per member) or ``[T, B, I]`` (shared).
        y: targets, with or without the ensemble axis (see :mod:`bptt.engine.outputs`).
        h0: initial state ``[E, B, H]`` (carried from the previous window), or ``None``.
        mask: ``[T, B]`` for padded windows, or ``None``.
        scale: the cost is multiplied by this (PTB's cost summed over a window's steps
            rather than averaged: scale = predicted steps per lane); α is divided by it.
        count: predicted steps in the batch (weights the running loss of an epoch).
        lengths: each member's length ``[E]`` (its sequences are ``x[:lengths[e], e]``;
            needs the persistent kernel), or ``None`` (every member trains on all of ``x``).
    """

    x: torch.Tensor
    y: torch.Tensor
    h0: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    scale: float = 1.0
    count: float = 1.0
    lengths: tuple[int, ...] | None = None


@dataclass
class Member:
    """What the loop keeps about one member (one run); ``totals``: the sums of the
    update rule's ``TOTALS`` (empty for the gradient rules)."""

    run_id: int | None = None
    status: str = Status.RUNNING.value
    updates: int = 0
    clipped: int = 0
    nonfinite: int = 0
    totals: dict = field(default_factory=dict)

    def state(self) -> dict:
        return asdict(self)


class Schedule:
    """What a problem plugs into the loop: its data source and what happens between updates.

    The problems: the pathological tasks (:class:`bptt.training.synthetic.Trainer`) and
    the corpora of Table 1 (:class:`bptt.experiments.table1.training.NaturalTrainer`).
    Each also rebuilds itself from a training checkpoint (its ``from_state``).
    """

    #: The problem's name in checkpoints (``"synthetic"``, ``"table1"``).
    problem = "?"

    def next_batch(self, loop: "TrainingLoop") -> Batch:  # pragma: no cover - interface
        """The data of the next update of the members ``loop.active``."""
        raise NotImplementedError

    def after_update(self, loop: "TrainingLoop", out) -> None:
        """What follows update ``loop.update`` (``out``: the model's pass): evaluations,
        epoch ends, retirements (:meth:`TrainingLoop.retire`)."""

    def done(self, loop: "TrainingLoop") -> bool:
        """Whether the budget is spent (the loop also stops when no member is left)."""
        return False

    def finish(self, loop: "TrainingLoop") -> None:
        """End the members still training once the budget is spent (a final evaluation)."""

    def on_retire(self, loop: "TrainingLoop", keep: list[int]) -> None:
        """Members leave the ensemble: only the active positions ``keep`` remain (the
        schedule drops its per-member state of the others, e.g. a carried hidden state)."""

    def diverged(self, loop: "TrainingLoop", m: int, update: int) -> None:
        """Record the end of member ``m``, whose parameters or loss became non-finite at
        update ``update`` (the loop retires it afterwards). By default: status
        ``diverged`` with the schedule's :meth:`metrics` and ``diverged_at``, no network."""
        loop.finish(m, Status.DIVERGED, {**self.metrics(loop, m), "diverged_at": int(update)})

    def on_block(self, loop: "TrainingLoop", block: dict[str, np.ndarray], counts: list[float]) -> None:
        """Called with each block of records (name → ``[n, E_active]`` float64 arrays,
        see :data:`RECORDS`) and the predicted-step count of each of its batches."""

    def metrics(self, loop: "TrainingLoop", m: int) -> dict:  # pragma: no cover - interface
        """Member ``m``'s figures, as recorded with its run."""
        raise NotImplementedError

    def config_dict(self) -> dict:  # pragma: no cover - interface
        """The problem's configuration, as plain values (kept in checkpoints)."""
        raise NotImplementedError

    def schedule_state(self) -> dict:
        """The source's and the schedule's state (random streams, carried state, epoch
        figures): tensors, numbers, strings, lists and dicts only."""
        return {}


class TrainingLoop:
    """Trains one ensemble: the shared half of every problem's training.

    Args:
        model: the ensemble (e.g. :class:`bptt.models.ElmanRNN`); must offer
            ``forward_backward``, ``params``, ``select``, ``state_dict`` and ``config``.
        rule: the update rule, e.g. :class:`bptt.optim.PaperSGD`: ``step(params, grads,
            norm) -> (bad [E], clipped [E])`` updating ``params`` in place,
            ``select(keep, params)`` (members left, and their parameters),
            ``state_dict()`` and ``load_state_dict()`` (plain types and tensors only);
            or a rule with ``takes_batches = True`` (see the module docstring).
        alpha: Ω's weight schedule of each member (α_t for update t).
        omega: Ω's form, ``"squared"`` or ``"plain"``.
        omega_when_unweighted: compute (and record) Ω even when no member weighs it.
        frozen: names of parameters that do not train (their gradient is zero).
        store: the results store, or ``None``.
        run_ids: each member's run.
        record_every, checkpoint_every: updates per record block and per checkpoint.
        cuda_graph: replay each model pass as a CUDA graph (fixed shapes on a GPU).
        callback: called as ``callback()`` after every record block.
        kernel: the engine's pass, ``"exact"`` or ``"persistent"`` (see
            :func:`bptt.engine.get_pass`); passed to the model's pass when not the default.
        alpha_clock: maps the update number t to the time at which α is read (e.g. the
            epoch, for Table 1's α_t = α₀/t counted in epochs); ``None``: t itself.

    ``pass_options`` (a dict, empty by default) holds extra keyword arguments of the
    model's pass, e.g. ``dropout`` and its ``generator``.
    """

    def __init__(self, model, rule, *, alpha: Sequence[AlphaSchedule], omega: str, store=None,
                 run_ids: Sequence[int | None] | None = None, record_every: int = 10,
                 checkpoint_every: int = 1000, omega_when_unweighted: bool = True,
                 frozen: Sequence[str] = (), cuda_graph: bool = False,
                 callback: Callable[[], None] | None = None, kernel: str = "exact",
                 alpha_clock: Callable[[int], int] | None = None) -> None:
        E = model.ensemble
        self.model = model
        self.rule = rule
        self.alpha = list(alpha)
        self.omega = omega
        self.omega_when_unweighted = omega_when_unweighted
        self.frozen = tuple(frozen)
        self.store = store
        self.record_every = int(record_every)
        self.checkpoint_every = int(checkpoint_every)
        self.cuda_graph = cuda_graph
        self.callback = callback
        self.kernel = kernel
        self.alpha_clock = alpha_clock
        self.members = [Member(run_id=None if run_ids is None else run_ids[m]) for m in range(E)]
        self.active = list(range(E))            # member indices, in model order
        self.update = 0
        self.last_loss = float("nan")
        self._block: list[dict[str, torch.Tensor]] = []
        self._counts: list[float] = []
        self._alpha_cache: tuple[tuple, torch.Tensor] | None = None
        self.diverging: list[tuple[int, int]] = []   # (member, update) read from flushed blocks
        self.consistent = True
        self.pass_options: dict = {}
        self.takes_batches = bool(getattr(rule, "takes_batches", False))

    # -- one update --------------------------------------------------------------------------
    def _alpha_values(self, t: int) -> list[float]:
        return [self.alpha[m](t) for m in self.active]

    def _alpha_tensor(self, values: list[float]) -> torch.Tensor:
        key = tuple(values)
        if self._alpha_cache is None or self._alpha_cache[0] != key:
            # built on the host and copied without waiting (pageable memory is staged at once)
            alpha = torch.tensor(values, dtype=self.model.dtype).to(self.model.device, non_blocking=True)
            self._alpha_cache = (key, alpha)
        return self._alpha_cache[1]

    def step(self, batch: Batch):
        """One update of every active member on ``batch``; returns the model's pass (or,
        for a rule that takes batches, its :class:`bptt.optim.hf_rule.BatchStep`)."""
        if self.takes_batches:
            return self._batch_step(batch)
        t = self.update + 1
        values = self._alpha_values(t if self.alpha_clock is None else self.alpha_clock(t))
        alpha = self._alpha_tensor(values)
        if batch.scale != 1.0:
            alpha = alpha / batch.scale
        omega = self.omega if (self.omega_when_unweighted or any(v > 0 for v in values)) else None
        engine = {} if self.kernel == "exact" else {"kernel": self.kernel}
        if batch.lengths is not None:
            engine["lengths"] = batch.lengths
        out = self.model.forward_backward(batch.x, batch.y, alpha=alpha, omega=omega, h0=batch.h0,
                                          mask=batch.mask, cuda_graph=self.cuda_graph, **engine,
                                          **self.pass_options)
        grads, norm = out.grads, out.grad_norm
        if self.frozen:
            grads = {k: torch.zeros_like(g) if k in self.frozen else g for k, g in grads.items()}
            norm = global_norm(grads)
        if batch.scale != 1.0:
            grads = {k: g * batch.scale for k, g in grads.items()}
            norm = norm * batch.scale
        bad, clipped = self.rule.step(self.model.params, grads, norm)
        loss = out.loss.detach()
        # applied with a non-finite norm or loss: the parameters are no longer finite
        diverged = ~bad & ~(torch.isfinite(norm) & torch.isfinite(loss))
        self.update = t
        for m in self.active:
            self.members[m].updates += 1
        self._block.append({"loss": loss, "grad_norm": norm.detach(), "clipped": clipped,
                            "omega": out.omega.detach(), "omega_fraction": out.omega_fraction.detach(),
                            "nonfinite": bad, "diverged": diverged})
        self._counts.append(float(batch.count))
        return out

    def _batch_step(self, batch: Batch):
        """The update of a rule that takes batches: it evaluates the loss itself and never
        writes a non-finite step (no clipping, no Ω, no divergence)."""
        res = self.rule.step(self.model, batch)
        dev = self.model.device                        # the loop's records live on the device
        none = torch.zeros_like(res.nonfinite, device=dev)
        zero = torch.zeros_like(res.loss, device=dev)
        self.update += 1
        for m in self.active:
            self.members[m].updates += 1
        self._block.append({"loss": res.loss.detach().to(dev), "grad_norm": res.grad_norm.detach().to(dev),
                            "clipped": none, "omega": zero, "omega_fraction": zero,
                            "nonfinite": res.nonfinite.to(dev), "diverged": none, **res.values})
        self._counts.append(float(batch.count))
        return res

    # -- records ------------------------------------------------------------------------------
    def _take_block(self) -> tuple[dict[str, np.ndarray], list[float]]:
        rows, counts = self._block, self._counts
        self._block, self._counts = [], []
        return {k: torch.stack([r[k] for r in rows]).to("cpu", torch.float64).numpy() for k in rows[0]}, counts

    def _count(self, block: dict[str, np.ndarray], first: int) -> None:
        known = {m for m, _ in self.diverging}
        totals = getattr(self.rule, "TOTALS", ())
        for j, m in enumerate(self.active):
            self.members[m].clipped += int(np.sum(block["clipped"][:, j]))
            self.members[m].nonfinite += int(np.sum(block["nonfinite"][:, j]))
            for name in totals:
                self.members[m].totals[name] = self.members[m].totals.get(name, 0.0) + float(np.sum(block[name][:, j]))
            hit = np.flatnonzero(block["diverged"][:, j])
            if hit.size and m not in known:
                self.diverging.append((m, first + int(hit[0])))

    def flush(self, schedule: Schedule | None = None) -> None:
        """Write the block of records (means per block; the norm's max and mean; the
        sum of non-finite updates, each also an event; a batch rule's ``RECORDS`` one
        point per update) to the store, and count clipped and refused updates."""
        if not self._block:
            return
        n = len(self._block)
        block, counts = self._take_block()                               # [n, E] each
        first = self.update - n + 1
        self._count(block, first)
        self.last_loss = float(np.mean(block["loss"][-1]))
        if self.store is not None:
            loss_mean = np.mean(block["loss"], axis=0)
            norm_max = np.max(block["grad_norm"], axis=0)
            means = {k: np.mean(block[k], axis=0) for k in ("grad_norm", "clipped", "omega", "omega_fraction")}
            bad_sum = np.sum(block["nonfinite"], axis=0)
            per_update = [k for k in getattr(self.rule, "RECORDS", ()) if k in block]
            detail = getattr(self.rule, "NONFINITE_EVENT", None)
            for j, m in enumerate(self.active):
                rid = self.members[m].run_id
                self.store.log_curve(rid, [{
                    "step": self.update, "loss": float(loss_mean[j]), "grad_norm": float(norm_max[j]),
                    "grad_norm_mean": float(means["grad_norm"][j]), "clipped": float(means["clipped"][j]),
                    "omega": float(means["omega"][j]), "omega_fraction": float(means["omega_fraction"][j]),
                    "nonfinite": float(bad_sum[j])}])
                if per_update:
                    self.store.log_curve(rid, [{"step": first + i, **{k: float(block[k][i, j]) for k in per_update}}
                                               for i in range(n)])
                for i in np.flatnonzero(block["nonfinite"][:, j]).tolist():
                    self.store.log_event(rid, first + i, "nonfinite", detail or
                                         f"gradient norm {float(block['grad_norm'][i, j]):.3g}: "
                                         f"update skipped, W_rec shrunk")
        if schedule is not None:
            schedule.on_block(self, block, counts)

    def end_diverged(self, schedule: Schedule) -> None:
        """End and retire the members found diverged by the flushed blocks (see the module
        docstring): each gets a ``diverged`` event at the update it happened, and its
        schedule records its end (:meth:`Schedule.diverged`)."""
        pending, self.diverging = self.diverging, []
        positions = []
        for m, update in pending:
            if m not in self.active:
                continue
            self.members[m].status = Status.DIVERGED.value
            if self.store is not None:
                self.store.log_event(self.members[m].run_id, update, "diverged",
                                     "the parameters or the loss became non-finite (no guard): run ended")
            schedule.diverged(self, m, update)
            positions.append(self.active.index(m))
        self.retire(sorted(positions), schedule)

    # -- members --------------------------------------------------------------------------------
    def start_runs(self, configs: Sequence[dict], *, sweep: str | None = None,
                   keys: Sequence[str | None] | None = None) -> None:
        """Record a run for every member that has none yet."""
        if self.store is None:
            return
        for m, mem in enumerate(self.members):
            if mem.run_id is None:
                mem.run_id = self.store.start_run(configs[m], sweep=sweep, key=None if keys is None else keys[m])

    def finish(self, m: int, status: str, metrics: dict, network=None, **extra) -> None:
        """Record the end of member ``m``: its status, metrics and final network."""
        mem = self.members[m]
        mem.status = str(status)
        if self.store is None:
            return
        if network is not None:
            self.store.save_checkpoints([(mem.run_id, self.update, ckpt.dumps(ckpt.member(network, **extra)))])
        self.store.finish_run(mem.run_id, str(status), metrics)

    def retire(self, positions: Sequence[int], schedule: Schedule | None = None) -> None:
        """Members at ``positions`` (of the active ones) leave the ensemble."""
        if not positions:
            return
        self.flush(schedule)
        keep = [j for j in range(len(self.active)) if j not in set(positions)]
        if schedule is not None:
            schedule.on_retire(self, keep)
        self.active = [self.active[j] for j in keep]
        if keep:
            self.model = self.model.select(keep)
            self.rule.select(keep, self.model if self.takes_batches else self.model.params)

    def drop(self, members: Sequence[int]) -> None:
        """Stop training ``members`` (member indices) without recording anything: their
        status becomes ``stopped``; the others train on unchanged."""
        wanted = set(members)
        positions = [j for j, m in enumerate(self.active) if m in wanted]
        for j in positions:
            self.members[self.active[j]].status = Status.STOPPED.value
        self.retire(positions)

    # -- checkpoints -------------------------------------------------------------------------
    def loop_state(self) -> dict:
        """The loop's part of a checkpoint, with the records of the block in progress (so
        that the curves do not depend on where checkpoints or interrupts fall)."""
        block = {k: torch.stack([r[k] for r in self._block]).cpu() for k in self._block[0]} if self._block else {}
        return {"update": self.update, "active": list(self.active), "members": [m.state() for m in self.members],
                "block": block, "block_counts": list(self._counts),
                "diverging": [list(d) for d in self.diverging]}

    def load_loop_state(self, state: dict) -> None:
        self.update = int(state["update"])
        self.active = [int(m) for m in state["active"]]
        self.members = [Member(run_id=d.get("run_id"), status=str(d.get("status", Status.RUNNING.value)),
                               updates=int(d.get("updates", 0)), clipped=int(d.get("clipped", 0)),
                               nonfinite=int(d.get("nonfinite", 0)),
                               totals={str(k): float(v) for k, v in (d.get("totals") or {}).items()})
                        for d in state["members"]]
        self.diverging = [(int(m), int(u)) for m, u in state.get("diverging", [])]
        block = state.get("block") or {}
        n = len(next(iter(block.values()))) if block else 0
        dev = self.model.device
        if n and "diverged" not in block:           # checkpoints written before the flag existed
            block = {**block, "diverged": torch.zeros_like(block["nonfinite"])}
        self._block = [{k: v[i].to(dev) if k in RECORDS else v[i] for k, v in block.items()} for i in range(n)]
        self._counts = [float(c) for c in state.get("block_counts", [1.0] * n)]

    def checkpoint(self, schedule: Schedule) -> dict:
        return ckpt.training(schedule.problem, schedule.config_dict(), self.loop_state(),
                             self.rule.state_dict(), self.model, schedule.schedule_state())

    def save_checkpoint(self, schedule: Schedule, *, flush: bool = True) -> None:
        """Checkpoint every active member (one transaction).

        The records of the block in progress are written first (``flush``), as at every
        scheduled checkpoint, or travel inside the checkpoint (an interrupt's: the
        curves then come out as if training had not stopped).
        """
        if flush:
            self.flush(schedule)
        if self.store is None or not self.active:
            return
        payload = ckpt.dumps(self.checkpoint(schedule))
        self.store.save_checkpoints([(self.members[m].run_id, self.update, payload) for m in self.active])

    # -- the loop --------------------------------------------------------------------------------
    def run(self, schedule: Schedule, *, tick: Callable[[], None] | None = None) -> None:
        """Train until the schedule is done or every member has left.

        On an interrupt (see the module docstring) the checkpoint is saved, the members
        still training are marked ``stopped`` and ``KeyboardInterrupt`` is raised.
        """
        with deferred_interrupts() as stop:
            try:
                while self.active and not schedule.done(self):
                    if stop.requested:
                        raise KeyboardInterrupt
                    self.consistent = False
                    out = self.step(schedule.next_batch(self))
                    schedule.after_update(self, out)
                    if self.update % self.record_every == 0:
                        self.flush(schedule)
                    if self.diverging:
                        self.end_diverged(schedule)
                    self.consistent = True
                    if self.update % self.record_every == 0 and self.callback is not None:
                        self.callback()
                    if tick is not None:
                        tick()
                    if self.update % self.checkpoint_every == 0:
                        self.save_checkpoint(schedule)
                if stop.requested and self.active:
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                if self.consistent:
                    self.save_checkpoint(schedule, flush=False)
                if self._block:                 # counted for the metrics, written on resumption
                    n = len(self._block)
                    self._count(self._take_block()[0], self.update - n + 1)
                for m in self.active:
                    self.members[m].status = Status.STOPPED.value
                    if self.store is not None:
                        self.store.finish_run(self.members[m].run_id, Status.STOPPED.value,
                                              schedule.metrics(self, m))
                raise
        self.flush(schedule)
        if self.diverging:
            self.end_diverged(schedule)
        schedule.finish(self)


class _Stop:
    requested = False
    signum: int | None = None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[_Stop]:
    """While inside, SIGINT and SIGTERM only set ``requested`` on the object yielded.

    On leaving, the previous handlers come back and a signal that arrived is delivered
    to the handler it was meant for: Python's SIGINT handler raises
    ``KeyboardInterrupt``, a handler installed by the caller runs (the command line's
    turns SIGTERM into ``KeyboardInterrupt``; a sweep worker's stops taking tasks), and
    the default action of SIGTERM ends the process. Outside the main thread (where
    handlers cannot be installed) nothing changes.
    """
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):  # noqa: ARG001
        stop.requested = True
        stop.signum = signum

    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            saved[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:
        yield stop
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
        if stop.signum is not None:
            old = saved.get(stop.signum)
            if callable(old):
                old(stop.signum, None)
            elif old == signal.SIG_DFL:
                signal.raise_signal(stop.signum)
