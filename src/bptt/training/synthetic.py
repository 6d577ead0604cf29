"""Training on the pathological tasks (§4.1): the tasks' data source and schedule.

Every update samples a fresh minibatch per member (fixed length, or a length drawn per
update from ``[min_length, max_length]``) and runs the one training loop
(:class:`bptt.training.loop.TrainingLoop`: exact pass → guard → clip → SGD → records).
Every ``eval_every`` updates a screen on ``check_sequences`` fresh sequences, passed
with at most k wrong (k derived so that a network whose true error is at
``success_error`` passes with probability ≥ 99%, :mod:`bptt.training.screen`), is
confirmed on ``eval_sequences`` (10,000) fresh ones, stopped as soon as the failure is
certain; a member stops when it succeeds (error below ``success_error``, or no error
at all when ``strict``: the reference code's rule), when the update budget is spent,
or when its parameters became non-finite without the guard (``diverged``). Members
that stop leave the ensemble, so the rest keep training at full speed.

Every member is one run in the results store: its configuration, status, curves
(averaged over blocks of ``record_every`` updates), events and checkpoints.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch

from bptt import tasks as task_registry
from bptt.methods import Method
from bptt.models import ElmanRNN, mixed
from bptt.omega import alpha_schedule
from bptt.models import MODELS
from bptt.store import Status
from bptt.training import checkpoint as ckpt
from bptt.training import kernel_data
from bptt.training.build import build_model, build_rule
from bptt.training.config import MemberResult, TrainConfig, TrainResult, per_member_fields
from bptt.training.loop import Batch, Schedule, TrainingLoop
from bptt.training.screen import ScreenRule, screen_rule


class Trainer(Schedule):
    """Trains one ensemble (one member per seed) under a :class:`TrainConfig`.

    Args:
        config: the run configuration.
        store: a :class:`bptt.store.Store` to record runs in, or ``None``.
        progress: show a progress bar.
        group: a name tying the members' runs together (for resuming).
        sweep: the sweep name the runs are recorded under.
        run_ids: runs already recorded in ``store`` (e.g. claimed by a sweep), one per
            seed; the trainer then writes to them instead of starting new runs.
        callback: called as ``callback(trainer)`` after every block of
            ``record_every`` updates (for progress displays and heartbeats).
    """

    problem = "synthetic"
    #: Whether :func:`resume` started this training again from scratch (no checkpoint).
    restarted = False

    def __init__(self, config: TrainConfig, store=None, *, progress: bool = False,
                 group: str | None = None, sweep: str | None = None,
                 run_ids: list[int] | None = None,
                 callback: Callable[["Trainer"], None] | None = None) -> None:
        self.config = c = config.validate()
        kernel_data.check_runtime(c)
        if run_ids is not None and len(run_ids) != len(c.seeds):
            raise ValueError(f"run_ids has {len(run_ids)} entries for {len(c.seeds)} seeds")
        self.store = store
        self.progress = progress
        self.sweep = sweep
        self.group = group or f"g{time.time_ns():x}"
        self.task = task_registry.get(c.task, seed=self._data_seed(0), **c.task_options)
        self.eval_task = task_registry.get(c.task, seed=self._data_seed(1), **c.task_options)
        self.length_rng = np.random.default_rng(self._data_seed(2))
        model = build_model(c, self.task)                  # ElmanRNN by default; any of bptt.models.MODELS
        methods = [Method.parse(m) for m in c.values("method")]
        rule = build_rule(c, model)                        # PaperSGD by default (see bptt.training.build)
        alpha = [alpha_schedule(c.alpha_schedule, a if m.regularizes else 0.0)
                 for a, m in zip(c.values("alpha"), methods)]
        self.loop = TrainingLoop(
            model, rule, alpha=alpha, omega=c.omega, store=store,
            run_ids=None if run_ids is None else [None if r is None else int(r) for r in run_ids],
            record_every=c.record_every, checkpoint_every=c.checkpoint_every,
            cuda_graph=c.values("min_length") == c.values("max_length"),   # one CUDA graph per update on a GPU
            callback=None if callback is None else (lambda: callback(self)), kernel=c.kernel)
        self.screen: ScreenRule = screen_rule(c.check_sequences, c.eval_sequences, c.success_error,
                                              strict=c.strict)
        self.source = kernel_data.TaskSource(c, self._data_seed(3), model.device, model.per_step,
                                             self.task.tolerance) if kernel_data.needs_source(c) else None
        self.errors = [float("nan")] * len(c.seeds)
        self.finished_at = [0] * len(c.seeds)
        self.final_models: dict[int, ElmanRNN] = {}

    def _data_seed(self, stream: int) -> int:
        base = self.config.data_seed if self.config.data_seed is not None else 1_000_003 * self.config.seeds[0]
        return int(base) * 3 + stream + 17

    # -- views of the loop's bookkeeping -------------------------------------------------------
    @property
    def model(self) -> ElmanRNN:
        return self.loop.model

    @property
    def update(self) -> int:
        return self.loop.update

    @property
    def active(self) -> list[int]:
        return self.loop.active

    @property
    def run_ids(self) -> list[int | None]:
        return [m.run_id for m in self.loop.members]

    @property
    def status(self) -> list[str]:
        return [m.status for m in self.loop.members]

    def set_run_id(self, m: int, run_id: int) -> None:
        """Record member ``m`` in run ``run_id`` from now on (a sweep's new claim)."""
        self.loop.members[m].run_id = int(run_id)

    def drop(self, members: list[int]) -> None:
        """Stop training ``members`` (indices into ``config.seeds``) without recording
        anything; their status becomes ``stopped``, the others train on unchanged."""
        self.loop.drop(members)

    # -- the schedule -------------------------------------------------------------------------------
    def _length(self) -> int:
        c = self.config
        if c.max_length == c.min_length:
            return c.min_length
        return int(self.length_rng.integers(c.min_length, c.max_length + 1))

    def next_batch(self, loop: TrainingLoop) -> Batch:
        if self.source is not None:
            return self.source.batch(loop.active, self.config.update_batch)
        E, B = len(loop.active), self.config.update_batch            # batch_size, or HF's gradient batch
        dev = loop.model.device
        x, y = self.task.sample(E * B, self._length())                # on the host
        x = x.view(x.shape[0], E, B, -1)                                  # [T,E,B,I]
        if loop.model.per_step:
            y = y.view(y.shape[0], E, B, *y.shape[2:])                     # [T,E,B(,O)]
        else:
            y = y.view(E, B, *y.shape[1:])                                 # [E,B(,O)]
        # copied without waiting for the device (pageable memory is staged at once)
        return Batch(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))

    def after_update(self, loop: TrainingLoop, out) -> None:
        if loop.update % self.config.eval_every == 0:
            self.evaluate_and_retire()

    def done(self, loop: TrainingLoop) -> bool:
        return loop.update >= self.config.max_updates

    def error_rate(self, n_sequences: int, length: int | None = None) -> torch.Tensor:
        """Fraction of ``n_sequences`` fresh sequences each active member gets wrong, ``[E]``."""
        wrong, done = self.wrong_counts(n_sequences, length=length)
        return wrong / done

    def wrong_counts(self, n_sequences: int, *, positions: list[int] | None = None, length: int | None = None,
                     reject_at: int | None = None) -> tuple[torch.Tensor, int]:
        """Fresh sequences each member at ``positions`` of the active ensemble (default:
        every one) gets wrong, ``[E]``, and how many sequences were drawn, in chunks of 1,000.

        With ``reject_at``, drawing stops after the first chunk at which every member has
        at least ``reject_at`` wrong (their verdict cannot change any more). Checks on the
        device (:mod:`bptt.training.kernel_data`) draw all ``n_sequences`` at once.
        """
        everyone = positions is None or len(positions) == len(self.active)
        model = self.loop.model if everyone else self.loop.model.select(positions)
        if self.source is not None:
            active = self.active if everyone else [self.active[j] for j in positions]
            rates = self.source.error_rate(model, active, n_sequences, length)
            return torch.round(rates * n_sequences), n_sequences
        wrong = torch.zeros(model.ensemble, dtype=torch.float64)
        done = 0
        while done < n_sequences:
            n = min(1000, n_sequences - done)
            L = length or self.config.eval_length or self._eval_length()
            x, y = self.eval_task.sample(n, L)
            ev = model.evaluate(x.to(model.device), y.to(model.device), tolerance=self.task.tolerance,
                                **({} if self.config.kernel == "exact" else {"kernel": self.config.kernel}))
            wrong += ev.wrong.to("cpu", torch.float64).sum(1)
            done += n
            if reject_at is not None and bool((wrong >= reject_at).all()):
                break
        return wrong, done

    def _eval_length(self) -> int:
        c = self.config
        if c.max_length == c.min_length:
            return c.min_length
        return int(self.eval_task.rng.integers(c.min_length, c.max_length + 1))

    def _succeeded(self, err: float) -> bool:
        return err == 0.0 if self.config.strict else err < self.config.success_error

    def evaluate_and_retire(self) -> None:
        """Screen every active member; confirm and retire the ones that succeeded (see
        :attr:`screen`: the screen's threshold, the confirmation's early rejection)."""
        c, loop, rule = self.config, self.loop, self.screen
        wrong, n = self.wrong_counts(c.check_sequences)
        rho = loop.model.spectral_radius()
        for j, m in enumerate(self.active):
            self.errors[m] = float(wrong[j]) / n
            if self.store is not None:
                self.store.log_curve(self.run_ids[m], [{"step": self.update, "check_error": self.errors[m],
                                                        "rho": float(rho[j])}])
        candidates = [j for j in range(len(self.active)) if rule.passes_screen(int(wrong[j]))]
        done: list[int] = []
        if candidates:
            confirm, n = self.wrong_counts(c.eval_sequences, positions=candidates, reject_at=rule.reject_at)
            for i, j in enumerate(candidates):
                m = self.active[j]
                self.errors[m] = float(confirm[i]) / n
                if n == c.eval_sequences and rule.passes(int(confirm[i]), n):
                    done.append(j)
        if not done:
            return
        loop.flush(self)
        for j in done:
            self._finish(j, Status.SUCCEEDED)
        loop.retire(done, self)

    def _finish(self, j: int, status: Status) -> None:
        m = self.active[j]
        self.finished_at[m] = self.update
        member = self.loop.model.select([j])
        self.final_models[m] = member
        self.loop.finish(m, status, self.metrics(self.loop, m), network=member)

    def diverged(self, loop: TrainingLoop, m: int, update: int) -> None:
        """Member ``m``'s parameters or loss became non-finite at ``update``: it ends ``diverged``."""
        self.finished_at[m] = int(update)
        loop.finish(m, Status.DIVERGED, {**self.metrics(loop, m), "diverged_at": int(update)})

    def metrics(self, loop: TrainingLoop, m: int) -> dict:
        mem = loop.members[m]
        return {"updates": mem.updates, "error": self.errors[m], "nonfinite": mem.nonfinite,
                "clipped_fraction": mem.clipped / max(mem.updates, 1), **mem.totals}

    def finish(self, loop: TrainingLoop) -> None:
        """The final evaluation of the members still training, on ``eval_sequences``."""
        if not loop.active:
            return
        final = self.error_rate(self.config.eval_sequences)
        for j, m in enumerate(loop.active):
            self.errors[m] = float(final[j])
        for j, m in enumerate(loop.active):
            self._finish(j, Status.SUCCEEDED if self._succeeded(self.errors[m]) else Status.FAILED)
        loop.active = []

    # -- checkpoints -----------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    def schedule_state(self) -> dict:
        return {"group": self.group, "errors": list(self.errors), "finished_at": list(self.finished_at),
                "task_rng": self.task.rng.bit_generator.state, "eval_rng": self.eval_task.rng.bit_generator.state,
                "length_rng": self.length_rng.bit_generator.state} | (
                    {} if self.source is None else {"source": self.source.state()})

    def state(self) -> dict:
        """The training checkpoint of this trainer (see :mod:`bptt.training.checkpoint`)."""
        return self.loop.checkpoint(self)

    def save_checkpoint(self) -> None:
        self.loop.save_checkpoint(self)

    @classmethod
    def from_state(cls, state: dict, store=None, *, progress: bool = False,
                   callback: Callable[["Trainer"], None] | None = None) -> "Trainer":
        """Rebuild a trainer exactly as it was when the checkpoint ``state`` was taken."""
        if state.get("kind") != "training" or state.get("problem") != cls.problem:
            raise ValueError(f"not a training checkpoint of the tasks (kind {state.get('kind')!r}, "
                             f"problem {state.get('problem')!r})")
        config = TrainConfig(**state["config"])
        sched = state["schedule"]
        self = cls(config, store, progress=progress, group=sched["group"], callback=callback)
        loop = self.loop
        loop.load_loop_state(state["loop"])
        cls = MODELS[config.model]
        loop.model = (mixed.from_config if cls is ElmanRNN else cls.from_config)(state["model_config"],
                                                                                 device=config.device)
        loop.model.load_state_dict(state["model"])
        if state["rule"] is None:                   # version 1: the rule follows from the config
            loop.rule.select(loop.active, loop.model.params)
        else:
            loop.rule.load_state_dict(state["rule"])
        self.errors = [float(e) for e in sched["errors"]]
        self.finished_at = [int(u) for u in sched["finished_at"]]
        self.task.rng.bit_generator.state = sched["task_rng"]
        self.eval_task.rng.bit_generator.state = sched["eval_rng"]
        self.length_rng.bit_generator.state = sched["length_rng"]
        if self.source is not None:
            self.source.load_state(sched["source"])
        return self

    @classmethod
    def from_checkpoint(cls, payload: bytes, store=None, *, progress: bool = False,
                        callback: Callable[["Trainer"], None] | None = None) -> "Trainer":
        """Rebuild a trainer from a stored checkpoint (any version)."""
        return cls.from_state(ckpt.loads(payload), store, progress=progress, callback=callback)

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train until every member succeeded or the update budget is spent.

        An interrupt (SIGINT, SIGTERM, ``KeyboardInterrupt``) stops after the update in
        progress, saves a checkpoint, marks the unfinished runs ``stopped`` (resume them
        with :func:`resume` or :meth:`from_checkpoint`) and
        is re-raised.
        """
        from bptt.progress import progress_bar

        c = self.config
        self.loop.start_runs([c.member_at(i) | {"group": self.group} for i in range(len(c.seeds))],
                             sweep=self.sweep)
        start = time.perf_counter()
        bar = progress_bar(total=c.max_updates, initial=self.update, disable=not self.progress,
                           unit="upd", dynamic_ncols=True, desc=f"{c.task} L={c.min_length}" +
                           (f"-{c.max_length}" if c.max_length > c.min_length else "") + f" {c.method}")

        def tick() -> None:
            bar.update(1)
            if self.update % c.eval_every == 0:
                bar.set_postfix(active=len(self.active), loss=f"{self.loop.last_loss:.3f}",
                                best_err=f"{np.nanmin(self.errors):.3f}")
        try:
            self.loop.run(self, tick=tick if self.progress else None)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        members = [MemberResult(seed=s, run_id=mem.run_id, status=mem.status, updates=self.finished_at[m],
                                error=self.errors[m], nonfinite=mem.nonfinite,
                                clipped_fraction=mem.clipped / max(self.finished_at[m], 1))
                   for m, (s, mem) in enumerate(zip(c.seeds, self.loop.members))]
        order = sorted(self.final_models)
        model = _stack_members([self.final_models[m] for m in order]) if order else None
        return TrainResult(members=members, updates=self.update, seconds=seconds, model=model)


def _stack_members(models: list[ElmanRNN]) -> ElmanRNN:
    if len(models) == 1:
        return models[0]
    if isinstance(models[0], ElmanRNN):
        return mixed.stack([m.config() for m in models], [m.params for m in models], device=models[0].device)
    cfg = models[0].config()
    cfg["seeds"] = [s for m in models for s in m.seeds]
    out = type(models[0]).from_config(cfg, device=models[0].device)
    with torch.no_grad():
        for name, p in list(out.named_parameters()) + list(out.named_buffers()):
            p.copy_(torch.cat([dict(m.named_parameters()).get(name, dict(m.named_buffers()).get(name))
                               for m in models]))
    return out


def train(config: TrainConfig, store=None, *, progress: bool = False) -> TrainResult:
    """Train an ensemble under ``config`` (see :class:`Trainer`)."""
    return Trainer(config, store, progress=progress).run()


def resume(store, run_id: int, *, progress: bool = False,
           callback: Callable[[Trainer], None] | None = None) -> Trainer:
    """The stopped training that run ``run_id`` belongs to, rebuilt from its newest checkpoint.

    Its unfinished runs (``stopped``, or ``running`` in a process that is gone) are
    taken over by this process (:meth:`bptt.store.Store.adopt`) and marked ``running``
    again; call :meth:`Trainer.run` to go on. A group killed before its first checkpoint
    starts again from scratch with its stored configuration, recording into the same
    runs (``trainer.restarted`` is then ``True``).

    Raises:
        KeyError: no run ``run_id`` in ``store``.
        ValueError: the run's group has no unfinished run, or another live process is
            training it.
    """
    run = store.get_run(run_id)
    group = run["config"].get("group")
    members = sorted((r for r in store.list_runs() if r["config"].get("group") == group), key=lambda r: r["id"])
    unfinished = [r["id"] for r in members if r["status"] in (Status.STOPPED, Status.RUNNING)]
    if group is None or not unfinished:
        raise ValueError(f"run {run_id} and its group have no stopped run to resume")
    store.adopt(unfinished)
    try:
        found = ckpt.latest_training(store, unfinished)
        if found is None:
            trainer = _restarted(store, members, unfinished, group, progress, callback)
        else:
            trainer = Trainer.from_state(found[1], store, progress=progress, callback=callback)
    except BaseException:
        for rid in unfinished:
            store.update_run(rid, status=Status.STOPPED)
        raise
    for m in trainer.active:
        trainer.loop.members[m].status = Status.RUNNING.value
    training = {trainer.run_ids[m] for m in trainer.active}
    for rid in unfinished:
        if rid not in training:
            store.update_run(rid, status=Status.STOPPED)
    return trainer


def _restarted(store, members: list[dict], unfinished: list[int], group: str, progress: bool,
               callback: Callable[[Trainer], None] | None) -> Trainer:
    """A trainer that trains the unfinished runs of ``group`` again from their first update."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seeds"}
    configs = [r["config"] for r in members]
    settings = {k: v for k, v in configs[0].items() if k in fields}
    for name in fields:
        values = [c.get(name) for c in configs]
        if any(v != values[0] for v in values):
            settings[name] = values
    base = TrainConfig(**settings, seeds=[c["seed"] for c in configs])
    keep = [i for i, r in enumerate(members) if r["id"] in unfinished]
    settings = {k: ([v[i] for i in keep] if isinstance(v, list) and k in per_member_fields(base.kernel) else v)
                for k, v in settings.items()}
    if base.data_seed is None:           # the data stream of the whole group, as first drawn
        settings["data_seed"] = 1_000_003 * base.seeds[0]
    config = TrainConfig(**settings, seeds=[base.seeds[i] for i in keep])
    trainer = Trainer(config, store, progress=progress, group=group, callback=callback,
                      run_ids=[members[i]["id"] for i in keep])
    trainer.restarted = True
    return trainer
