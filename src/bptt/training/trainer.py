"""The training loop of the paper's protocol (§4.1), for an ensemble of networks.

sample a minibatch → one exact engine pass (loss, gradients, Ω, norm) → non-finite
guard → clip → SGD step → record; every ``eval_every`` updates a cheap check on a few
fresh sequences, confirmed on ``eval_sequences`` (10,000) fresh ones; a member stops
when it succeeds (error below ``success_error``, or no error at all when ``strict``)
or when the update budget is spent. Members that stop leave the ensemble, so the
rest keep training at full speed.

Every member is one run in the results store: its configuration, status, curves
(averaged over blocks of ``record_every`` updates), events and checkpoints.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bptt import tasks as task_registry
from bptt.models import ElmanRNN
from bptt.models.init import check_init
from bptt.clip import check_threshold, clip_by_global_norm, clip_elementwise
from bptt.optim.sgd import nonfinite, sgd_update
from bptt.omega import alpha_schedule, check_omega

METHODS = ("msgd", "msgd-c", "msgd-cr")
#: Settings that may differ between the members of one ensemble (see :class:`TrainConfig`).
PER_MEMBER = ("method", "lr", "threshold", "alpha")


@dataclass
class TrainConfig:
    """Everything that defines a training run (all members share it but the seed).

    ``method`` picks the paper's variants: ``msgd`` (plain SGD), ``msgd-c`` (with
    gradient clipping, Algorithm 1), ``msgd-cr`` (clipping and Ω with weight α).

    ``method``, ``lr``, ``threshold`` and ``alpha`` may each also be a list with one
    entry per seed: runs that differ only in these then train in one ensemble, each
    member with its own values (``member(seed)`` gives each run's scalar settings).
    """

    task: str = "temporal_order"
    task_options: dict = field(default_factory=dict)
    min_length: int = 50
    max_length: int = 50
    hidden: int = 50
    init: str = "smart_tanh"
    unit: str | None = None
    method: str | list = "msgd-cr"
    lr: float | list = 0.01
    threshold: float | list = 1.0
    clip: str = "norm"
    alpha: float | list = 2.0
    alpha_schedule: str = "constant"
    omega: str = "squared"
    batch_size: int = 20
    max_updates: int = 100_000
    eval_every: int = 100
    check_sequences: int = 200
    eval_sequences: int = 10_000
    eval_length: int | None = None
    success_error: float = 0.01
    strict: bool = False
    seeds: list = field(default_factory=lambda: [0])
    data_seed: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    record_every: int = 10
    checkpoint_every: int = 2000

    def validate(self) -> "TrainConfig":
        if self.task not in task_registry.names():
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(task_registry.names())}")
        check_init(self.init)
        if len(self.seeds) == 0:
            raise ValueError("seeds must be distinct and non-empty, got []")
        for name in PER_MEMBER:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and len(value) != len(self.seeds):
                raise ValueError(f"{name} has {len(value)} entries for {len(self.seeds)} seeds; "
                                 f"give one value, or one per seed")
        members = list(zip(self.seeds, *(map(repr, self.values(n)) for n in PER_MEMBER)))
        if len(set(members)) != len(members):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds} "
                             f"(a seed may repeat only for members with different settings)")
        for method, lr, threshold, alpha in zip(*(self.values(n) for n in PER_MEMBER)):
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
            if method != "msgd":
                check_threshold(threshold)
            if alpha < 0:
                raise ValueError(f"alpha must be >= 0, got {alpha}")
            if not (lr > 0 and math.isfinite(lr)):
                raise ValueError(f"learning rate must be > 0, got {lr}")
        if self.clip not in ("norm", "elementwise"):
            raise ValueError(f"unknown clipping {self.clip!r}; choose 'norm' or 'elementwise'")
        check_omega(self.omega)
        if not (1 <= self.min_length <= self.max_length):
            raise ValueError(f"need 1 <= min_length <= max_length, got {self.min_length}, {self.max_length}")
        for name in ("hidden", "batch_size", "max_updates", "eval_every", "check_sequences",
                     "eval_sequences", "record_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 <= self.success_error < 1):
            raise ValueError(f"success_error must be in [0, 1), got {self.success_error}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        task = task_registry.get(self.task, seed=0, **self.task_options)
        if self.min_length < task.min_length:
            raise ValueError(f"task {self.task} needs length >= {task.min_length}, got {self.min_length}")
        return self

    def member(self, seed: int) -> dict:
        """The configuration of the run of one member, as stored."""
        return self.member_at(list(self.seeds).index(seed))

    def member_at(self, i: int) -> dict:
        """The configuration of the run of member ``i`` (the ``i``-th seed), as stored."""
        seed = self.seeds[i]
        d = dataclasses.asdict(self)
        d.pop("seeds")
        for name in PER_MEMBER:
            d[name] = self.values(name)[i]
        d["seed"] = int(seed)
        return d

    def values(self, name: str) -> list:
        """One value of the per-member setting ``name`` for each seed."""
        value = getattr(self, name)
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value] * len(self.seeds)

    @property
    def per_member(self) -> bool:
        """Whether any of ``method``, ``lr``, ``threshold``, ``alpha`` is given per member."""
        return any(isinstance(getattr(self, n), (list, tuple)) for n in PER_MEMBER)

    @property
    def clipping(self) -> bool:
        """Whether any member clips its gradient."""
        return any(m in ("msgd-c", "msgd-cr") for m in self.values("method"))

    @property
    def regularized(self) -> bool:
        """Whether any member adds Ω."""
        return any(m == "msgd-cr" for m in self.values("method"))


@dataclass
class MemberResult:
    seed: int
    run_id: int | None
    status: str
    updates: int
    error: float
    nonfinite: int = 0
    clipped_fraction: float = 0.0


@dataclass
class TrainResult:
    members: list[MemberResult]
    updates: int
    seconds: float
    model: ElmanRNN | None

    def table(self) -> list[dict]:
        return [dataclasses.asdict(m) for m in self.members]


_RECORD_FIELDS = ("loss", "grad_norm", "clipped", "omega", "omega_fraction", "nonfinite")


class Trainer:
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

    def __init__(self, config: TrainConfig, store=None, *, progress: bool = False,
                 group: str | None = None, sweep: str | None = None,
                 run_ids: list[int] | None = None,
                 callback: Callable[["Trainer"], None] | None = None) -> None:
        self.config = config.validate()
        self.store = store
        self.progress = progress
        self.sweep = sweep
        self.callback = callback
        c = config
        self.group = group or f"g{time.time_ns():x}"
        self.task = task_registry.get(c.task, seed=self._data_seed(0), **c.task_options)
        self.eval_task = task_registry.get(c.task, seed=self._data_seed(1), **c.task_options)
        self.length_rng = np.random.default_rng(self._data_seed(2))
        dtype = getattr(torch, c.dtype)
        self.model = ElmanRNN(self.task.n_in, c.hidden, self.task.n_out, unit=c.unit, init=c.init,
                              output=self.task.output, seeds=c.seeds, dtype=dtype, device=c.device)
        if c.per_member:
            methods = c.values("method")
            clip = [m in ("msgd-c", "msgd-cr") for m in methods]
            self._member_lr = torch.tensor(c.values("lr"), dtype=dtype)
            self._member_clip = torch.tensor(clip, dtype=torch.bool)
            self._member_threshold = torch.tensor([t if k else 1.0 for t, k in zip(c.values("threshold"), clip)],
                                                  dtype=dtype)
            self._member_alpha = torch.tensor([a if m == "msgd-cr" else 0.0
                                               for a, m in zip(c.values("alpha"), methods)], dtype=dtype)
            self.alpha = alpha_schedule(c.alpha_schedule, 1.0)     # α_t = α · alpha(t) per member
        else:
            self.alpha = alpha_schedule(c.alpha_schedule, c.alpha if c.regularized else 0.0)
        # Fixed-length training replays each update as one CUDA graph on a GPU.
        self._graphed = c.min_length == c.max_length
        self.update = 0
        self.active = list(range(len(c.seeds)))            # indices into c.seeds, in model order
        self.status = ["running"] * len(c.seeds)
        self.finished_at = [0] * len(c.seeds)
        self.errors = [float("nan")] * len(c.seeds)
        self.nonfinite_count = [0] * len(c.seeds)
        self.clipped_count = [0] * len(c.seeds)
        self.run_ids: list[int | None] = [None] * len(c.seeds)
        if run_ids is not None:
            if len(run_ids) != len(c.seeds):
                raise ValueError(f"run_ids has {len(run_ids)} entries for {len(c.seeds)} seeds")
            self.run_ids = [None if r is None else int(r) for r in run_ids]
        self._buffer: dict[str, list[np.ndarray]] = {k: [] for k in _RECORD_FIELDS}
        self.final_models: dict[int, ElmanRNN] = {}
        self.last_loss = float("nan")

    def _data_seed(self, stream: int) -> int:
        base = self.config.data_seed if self.config.data_seed is not None else 1_000_003 * self.config.seeds[0]
        return int(base) * 3 + stream + 17

    # -- store -------------------------------------------------------------------------
    def _start_runs(self) -> None:
        if self.store is None:
            return
        for i, seed in enumerate(self.config.seeds):
            if self.run_ids[i] is None:
                cfg = self.config.member_at(i) | {"group": self.group}
                self.run_ids[i] = self.store.start_run(cfg, sweep=self.sweep)

    def _flush(self) -> None:
        """Write the buffered per-update records, averaged per block, to the store."""
        if not self._buffer["loss"]:
            return
        block = {k: np.stack(v) for k, v in self._buffer.items()}   # [n, E_active]
        self._buffer = {k: [] for k in _RECORD_FIELDS}
        if self.store is None:
            return
        step = self.update
        for j, m in enumerate(self.active):
            row = {"step": step,
                   "loss": float(np.mean(block["loss"][:, j])),
                   "grad_norm": float(np.max(block["grad_norm"][:, j])),
                   "grad_norm_mean": float(np.mean(block["grad_norm"][:, j])),
                   "clipped": float(np.mean(block["clipped"][:, j])),
                   "omega": float(np.mean(block["omega"][:, j])),
                   "omega_fraction": float(np.mean(block["omega_fraction"][:, j])),
                   "nonfinite": float(np.sum(block["nonfinite"][:, j]))}
            self.store.log_curve(self.run_ids[m], [row])

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "group": self.group, "update": self.update,
                "active": list(self.active), "status": list(self.status),
                "finished_at": list(self.finished_at), "errors": list(self.errors),
                "nonfinite": list(self.nonfinite_count), "clipped": list(self.clipped_count),
                "run_ids": list(self.run_ids),
                "task_rng": self.task.rng.bit_generator.state,
                "eval_rng": self.eval_task.rng.bit_generator.state,
                "length_rng": self.length_rng.bit_generator.state,
                "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "model_config": self.model.config()}

    def checkpoint_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        return buf.getvalue()

    def save_checkpoint(self) -> None:
        self._flush()
        if self.store is None:
            return
        payload = self.checkpoint_bytes()
        self.store.save_checkpoints([(self.run_ids[m], self.update, payload) for m in self.active])

    @classmethod
    def from_checkpoint(cls, payload: bytes, store=None, *, progress: bool = False,
                        callback: Callable[["Trainer"], None] | None = None) -> "Trainer":
        """Rebuild a trainer exactly as it was when ``payload`` was saved."""
        state = torch.load(io.BytesIO(payload), weights_only=False)
        config = TrainConfig(**state["config"])
        self = cls(config, store, progress=progress, group=state["group"], callback=callback)
        self.update = state["update"]
        self.active = state["active"]
        self.status = state["status"]
        self.finished_at = state["finished_at"]
        self.errors = state["errors"]
        self.nonfinite_count = state["nonfinite"]
        self.clipped_count = state["clipped"]
        self.run_ids = state["run_ids"]
        self.task.rng.bit_generator.state = state["task_rng"]
        self.eval_task.rng.bit_generator.state = state["eval_rng"]
        self.length_rng.bit_generator.state = state["length_rng"]
        self.model = ElmanRNN.from_config(state["model_config"], device=config.device)
        self.model.load_state_dict(state["model"])
        return self

    # -- the loop ----------------------------------------------------------------------------
    def _length(self) -> int:
        c = self.config
        if c.max_length == c.min_length:
            return c.min_length
        return int(self.length_rng.integers(c.min_length, c.max_length + 1))

    def step(self) -> None:
        """One update of every active member."""
        c = self.config
        E, B = len(self.active), c.batch_size
        x, y = self.task.sample(E * B, self._length())
        x = x.view(x.shape[0], E, B, -1).to(self.model.device)               # [T,E,B,I]
        if self.model.per_step:
            y = y.view(y.shape[0], E, B, *y.shape[2:]).to(self.model.device)  # [T,E,B(,O)]
        else:
            y = y.view(E, B, *y.shape[1:]).to(self.model.device)              # [E,B(,O)]
        self.update += 1
        if c.per_member:
            out, bad, grads, clipped, lr = self._per_member_step(x, y)
        else:
            alpha = self.alpha(self.update)
            out = self.model.forward_backward(x, y, alpha=alpha, omega=c.omega, cuda_graph=self._graphed)
            bad = nonfinite(out.grad_norm)
            grads = out.grads
            clipped = torch.zeros_like(bad)
            if c.clipping and c.clip == "norm":
                grads, clipped = clip_by_global_norm(grads, c.threshold, out.grad_norm)
            elif c.clipping:
                grads, clipped = clip_elementwise(grads, c.threshold)
            lr = c.lr
        sgd_update(self.model.params, grads, lr, bad)
        rec = {"loss": out.loss, "grad_norm": out.grad_norm, "clipped": clipped & ~bad, "omega": out.omega,
               "omega_fraction": out.omega_fraction, "nonfinite": bad}
        for k, v in rec.items():
            self._buffer[k].append(v.detach().to("cpu", torch.float64).numpy())
        self.last_loss = float(out.loss.mean())
        if bool(bad.any()):
            for j in torch.nonzero(bad).flatten().tolist():
                m = self.active[j]
                self.nonfinite_count[m] += 1
                if self.store is not None:
                    self.store.log_event(self.run_ids[m], self.update, "nonfinite",
                                         f"gradient norm {float(out.grad_norm[j]):.3g}: update skipped, W_rec shrunk")
        for j, m in enumerate(self.active):
            self.clipped_count[m] += int(clipped[j])

    def _per_member_step(self, x: torch.Tensor, y: torch.Tensor):
        """The engine pass and clipping when members have their own method, lr, threshold, α."""
        c = self.config
        idx = torch.as_tensor(self.active, dtype=torch.long)
        dev = self.model.device
        alpha = (self._member_alpha[idx] * self.alpha(self.update)).to(dev)
        out = self.model.forward_backward(x, y, alpha=alpha, omega=c.omega, cuda_graph=self._graphed)
        bad = nonfinite(out.grad_norm)
        grads = out.grads
        clip = self._member_clip[idx].to(dev)
        clipped = torch.zeros_like(bad)
        if bool(clip.any()):
            threshold = self._member_threshold[idx].to(dev)
            if c.clip == "norm":
                cg, clipped = clip_by_global_norm(grads, threshold, out.grad_norm)
            else:
                cg, clipped = clip_elementwise(grads, threshold)
            grads = {k: torch.where(clip.reshape(-1, *([1] * (g.dim() - 1))), cg[k], g) for k, g in grads.items()}
            clipped = clipped & clip
        return out, bad, grads, clipped, self._member_lr[idx].to(dev)

    def drop(self, members: list[int]) -> None:
        """Stop training ``members`` (indices into ``config.seeds``) without recording anything.

        Their status becomes ``stopped``; the other members train on unchanged.
        """
        positions = [j for j, m in enumerate(self.active) if m in set(members)]
        for j in positions:
            self.status[self.active[j]] = "stopped"
        if positions:
            self._drop(positions)

    def error_rate(self, n_sequences: int, length: int | None = None) -> torch.Tensor:
        """Fraction of ``n_sequences`` fresh sequences each active member gets wrong."""
        wrong = torch.zeros(len(self.active), dtype=torch.float64)
        done = 0
        while done < n_sequences:
            n = min(1000, n_sequences - done)
            L = length or self.config.eval_length or self._eval_length()
            x, y = self.eval_task.sample(n, L)
            ev = self.model.evaluate(x.to(self.model.device), y.to(self.model.device), tolerance=self.task.tolerance)
            wrong += ev.wrong.to("cpu", torch.float64).sum(1)
            done += n
        return wrong / n_sequences

    def _eval_length(self) -> int:
        c = self.config
        if c.max_length == c.min_length:
            return c.min_length
        return int(self.eval_task.rng.integers(c.min_length, c.max_length + 1))

    def _succeeded(self, err: float) -> bool:
        return err == 0.0 if self.config.strict else err < self.config.success_error

    def evaluate_and_retire(self) -> None:
        """Check every active member; confirm and retire the ones that succeeded."""
        c = self.config
        check = self.error_rate(c.check_sequences)
        rho = self.model.spectral_radius()
        done: list[int] = []
        for j, m in enumerate(self.active):
            err = float(check[j])
            if self.store is not None:
                self.store.log_curve(self.run_ids[m], [{"step": self.update, "check_error": err, "rho": float(rho[j])}])
            self.errors[m] = err
        candidates = [j for j, m in enumerate(self.active) if self._succeeded(self.errors[m])]
        if candidates:
            confirm = self.error_rate(c.eval_sequences)
            for j in candidates:
                m = self.active[j]
                err = float(confirm[j])
                self.errors[m] = err
                if self._succeeded(err):
                    done.append(j)
        if not done:
            return
        self._flush()
        for j in done:
            self._finish(j, "succeeded")
        self._drop(done)

    def _finish(self, j: int, status: str) -> None:
        m = self.active[j]
        self.status[m] = status
        self.finished_at[m] = self.update
        member = self.model.select([j])
        self.final_models[m] = member
        if self.store is not None:
            rid = self.run_ids[m]
            buf = io.BytesIO()
            torch.save({"model": member.state_dict(), "model_config": member.config()}, buf)
            self.store.save_checkpoints([(rid, self.update, buf.getvalue())])
            self.store.finish_run(rid, status, self._metrics(m))

    def _metrics(self, m: int) -> dict:
        upd = self.finished_at[m] or self.update
        return {"updates": upd, "error": self.errors[m], "nonfinite": self.nonfinite_count[m],
                "clipped_fraction": self.clipped_count[m] / max(upd, 1)}

    def _drop(self, positions: list[int]) -> None:
        keep = [j for j in range(len(self.active)) if j not in positions]
        self.active = [self.active[j] for j in keep]
        if keep:
            self.model = self.model.select(keep)

    def run(self) -> TrainResult:
        """Train until every member succeeded or the update budget is spent.

        A ``KeyboardInterrupt`` saves a checkpoint, marks the unfinished runs
        ``stopped`` (resume them with :meth:`from_checkpoint`) and is re-raised.
        """
        from tqdm.auto import tqdm

        c = self.config
        self._start_runs()
        start = time.perf_counter()
        bar = tqdm(total=c.max_updates, initial=self.update, disable=not self.progress,
                   unit="upd", dynamic_ncols=True, desc=f"{c.task} L={c.min_length}" +
                   (f"-{c.max_length}" if c.max_length > c.min_length else "") + f" {c.method}")
        try:
            while self.active and self.update < c.max_updates:
                self.step()
                if self.update % c.record_every == 0:
                    self._flush()
                    if self.callback is not None:
                        self.callback(self)
                if self.update % c.eval_every == 0:
                    self.evaluate_and_retire()
                    bar.set_postfix(active=len(self.active), loss=f"{self.last_loss:.3f}",
                                    best_err=f"{np.nanmin(self.errors):.3f}")
                if self.update % c.checkpoint_every == 0:
                    self.save_checkpoint()
                bar.update(1)
        except KeyboardInterrupt:
            self.save_checkpoint()
            for m in self.active:
                self.status[m] = "stopped"
                if self.store is not None:
                    self.store.finish_run(self.run_ids[m], "stopped", self._metrics(m))
            bar.close()
            raise
        bar.close()
        self._flush()
        if self.active:
            final = self.error_rate(c.eval_sequences)
            for j, m in enumerate(self.active):
                self.errors[m] = float(final[j])
            for j in range(len(self.active)):
                m = self.active[j]
                self._finish(j, "succeeded" if self._succeeded(self.errors[m]) else "failed")
            self.active = []
        seconds = time.perf_counter() - start
        members = [MemberResult(seed=s, run_id=self.run_ids[m], status=self.status[m],
                                updates=self.finished_at[m], error=self.errors[m],
                                nonfinite=self.nonfinite_count[m],
                                clipped_fraction=self.clipped_count[m] / max(self.finished_at[m], 1))
                   for m, s in enumerate(c.seeds)]
        order = sorted(self.final_models)
        model = _stack_members([self.final_models[m] for m in order]) if order else None
        return TrainResult(members=members, updates=self.update, seconds=seconds, model=model)


def _stack_members(models: list[ElmanRNN]) -> ElmanRNN:
    if len(models) == 1:
        return models[0]
    cfg = models[0].config()
    cfg["seeds"] = [s for m in models for s in m.seeds]
    out = ElmanRNN.from_config(cfg, device=models[0].device)
    with torch.no_grad():
        for name, p in out.params.items():
            p.copy_(torch.cat([getattr(m, name) for m in models]))
    return out


def train(config: TrainConfig, store=None, *, progress: bool = False) -> TrainResult:
    """Train an ensemble under ``config`` (see :class:`Trainer`)."""
    return Trainer(config, store, progress=progress).run()
