"""The tasks' data for the persistent kernel and for CUDA devices: per-member lengths,
batches drawn on the device, and the success screen on the device.

:class:`bptt.training.synthetic.Trainer` draws every batch on the host from one task
stream shared by the ensemble (the reference path, unchanged). Two cases take the
source here instead (:func:`needs_source`):

* **Per-member lengths** (``TrainConfig.min_length``/``max_length`` lists, which need
  ``kernel="persistent"``): member e has its own task stream, length stream and check
  stream, seeded by the ensemble's data seed, the member's seed and its lengths, so
  a member trains and is checked on the same sequences whichever members share its
  ensemble. Each batch is ``x [T_max, E, B, I]`` with member e's sequences in
  ``x[:T_e, e]`` (zeros after) and ``lengths = [T_e]``: the layout of
  :func:`bptt.engine.persistent.persistent_forward_backward`. Each member's success
  check runs at its own length (``eval_length`` when one is set).
* **CUDA devices** where the task has a device sampler (:mod:`bptt.tasks.device`) and
  no task options: batches are drawn on the device with a ``torch.Generator`` (no copy
  from the host), and the success check runs there
  (:func:`bptt.engine.screen.error_rate`): one host read of the ``[E]`` error rates per
  check. The data are the host generators' distributions, not their bits.
"""

from __future__ import annotations

import numpy as np
import torch

from bptt import tasks as task_registry
from bptt.tasks.device import DEVICE_SAMPLERS, sample_on_device
from bptt.training.config import TrainConfig
from bptt.training.loop import Batch

#: Sequences per member and forward pass of a check, and (on the device) at most this
#: many per forward pass of the whole ensemble (memory is proportional to these).
CHECK_CHUNK = 1000
CHECK_TOTAL = 65536


def _chunk(members: int) -> int:
    return max(16, min(CHECK_CHUNK, CHECK_TOTAL // max(members, 1)))


def check_runtime(config: TrainConfig) -> None:
    """Raise ``ValueError`` where ``config.kernel`` cannot run here: ``"persistent"``
    needs Triton, and a CUDA device (on the CPU only Triton's interpreter runs it,
    ``TRITON_INTERPRET=1`` set before Triton is imported)."""
    if config.kernel != "persistent":
        return
    from bptt.engine import persistent

    if not persistent.available():
        raise ValueError("kernel='persistent' needs Triton, which is not installed: install it with "
                         "`pip install 'bptt[gpu]'`, or use kernel='exact'")
    if not str(config.device).startswith("cuda") and not persistent.interpreted():
        raise ValueError(f"kernel='persistent' runs on CUDA devices, not on {config.device!r} "
                         f"(on the CPU only under Triton's interpreter, TRITON_INTERPRET=1): "
                         f"use --device cuda, or kernel='exact' on the CPU")


def device_sampling(config: TrainConfig) -> bool:
    """Whether batches and checks of ``config`` are drawn on the device: a CUDA device
    and a task with a device sampler (and no task options)."""
    return (str(config.device).startswith("cuda") and config.task in DEVICE_SAMPLERS
            and not config.task_options)


def needs_source(config: TrainConfig) -> bool:
    """Whether the trainer takes its data from :class:`TaskSource` (see the module docstring)."""
    return config.member_lengths or device_sampling(config)


def _member_seed(base: int, stream: int, seed: int, lo: int, hi: int) -> int:
    """The seed of one member's stream: fixed by the ensemble's data seed, the member's
    seed and lengths, and the stream (0 training, 1 checks, 2 lengths, 3 check lengths)."""
    return int(np.random.SeedSequence([int(base) % 2 ** 63, stream, int(seed), int(lo), int(hi)])
               .generate_state(1, np.uint32)[0])


def _pad(parts: list[torch.Tensor], T: int) -> torch.Tensor:
    """``[T_e, B, ...]`` per member → ``[T, E, B, ...]``, zeros past each member's length."""
    out = parts[0].new_zeros((T, len(parts), *parts[0].shape[1:]))
    for e, p in enumerate(parts):
        out[:p.shape[0], e] = p
    return out


class TaskSource:
    """The data of a task for :class:`bptt.training.synthetic.Trainer` (see the module
    docstring): per-member streams, device sampling, or both.

    Args:
        config: the training configuration (validated).
        base_seed: the ensemble's data seed.
        device: the model's device.
        per_step: whether the model's outputs are per step (targets ``[T, ...]``).
        tolerance: the task's tolerance for counting wrong sequences.
    """

    def __init__(self, config: TrainConfig, base_seed: int, device: torch.device, per_step: bool,
                 tolerance: float | None) -> None:
        c = self.config = config
        self.device = torch.device(device)
        self.per_step = per_step
        self.tolerance = tolerance
        self.members = c.member_lengths
        self.on_device = device_sampling(c)
        self.bounds = list(zip(c.values("min_length"), c.values("max_length")))     # per member
        if self.members:
            seeds = [_member_seed(base_seed, s, seed, lo, hi) for s in (0, 1, 2)
                     for seed, (lo, hi) in zip(c.seeds, self.bounds)]
            n = len(c.seeds)
            self.tasks = [task_registry.get(c.task, seed=k, **c.task_options) for k in seeds[:n]]
            self.eval_tasks = [task_registry.get(c.task, seed=k, **c.task_options) for k in seeds[n:2 * n]]
            self.length_rngs = [np.random.default_rng(k) for k in seeds[2 * n:]]
        else:
            self.length_rng = np.random.default_rng(_member_seed(base_seed, 2, 0, *self.bounds[0]))
            self.check_length_rng = np.random.default_rng(_member_seed(base_seed, 3, 0, *self.bounds[0]))
        if self.on_device:
            self.generator = torch.Generator(device=self.device).manual_seed(_member_seed(base_seed, 0, 0, 0, 0))
            self.eval_generator = torch.Generator(device=self.device).manual_seed(_member_seed(base_seed, 1, 0, 0, 0))

    # -- lengths ----------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator, lo: int, hi: int) -> int:
        return lo if lo == hi else int(rng.integers(lo, hi + 1))

    def lengths(self, active: list[int]) -> list[int]:
        """A length for each active member (drawn where its range is not one length)."""
        if self.members:
            return [self._draw(self.length_rngs[m], *self.bounds[m]) for m in active]
        return [self._draw(self.length_rng, *self.bounds[0])] * len(active)

    def check_lengths(self, active: list[int], length: int | None) -> list[int]:
        """The length each active member is checked at: ``length``, else ``eval_length``,
        else the member's own (drawn from its range)."""
        fixed = length or self.config.eval_length
        if fixed:
            return [int(fixed)] * len(active)
        if self.members:
            return [self._draw(self.eval_tasks[m].rng, *self.bounds[m]) for m in active]
        return [self._draw(self.check_length_rng, *self.bounds[0])] * len(active)

    # -- batches ----------------------------------------------------------------------------
    def _host(self, tasks, active: list[int], n: int, lengths: list[int]):
        """Per-member host samples, padded: ``x [T, E, n, I]``, ``y``, actual lengths."""
        xs, ys = zip(*(tasks[m].sample(n, L) for m, L in zip(active, lengths)))
        T = max(x.shape[0] for x in xs)
        x = _pad(list(xs), T)
        y = _pad(list(ys), T) if self.per_step else torch.stack(ys)
        return x, y, [x_.shape[0] for x_ in xs]

    def _device(self, generator, active: list[int], n: int, lengths: list[int]):
        if self.members:
            x, y = sample_on_device(self.config.task, n, lengths, generator, self.device)
            return x, y, lengths
        x, y = sample_on_device(self.config.task, len(active) * n, lengths[0], generator, self.device)
        return x.view(x.shape[0], len(active), n, -1), y.view(len(active), n), None

    def batch(self, active: list[int], batch_size: int) -> Batch:
        """The next minibatch of every active member (``lengths`` set per member)."""
        lengths = self.lengths(active)
        if self.on_device:
            x, y, lengths = self._device(self.generator, active, batch_size, lengths)
            return Batch(x, y, lengths=None if lengths is None else tuple(lengths))
        x, y, lengths = self._host(self.tasks, active, batch_size, lengths)
        return Batch(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True),
                     lengths=tuple(lengths))

    # -- the success check ------------------------------------------------------------------
    def error_rate(self, model, active: list[int], n_sequences: int, length: int | None = None) -> torch.Tensor:
        """Fraction of ``n_sequences`` fresh sequences each active member gets wrong,
        ``[E]`` float64 on the host; each member at its own length (see :meth:`check_lengths`)."""
        kernel = self.config.kernel
        if self.on_device:
            from bptt.engine.screen import error_rate

            lengths = self.check_lengths(active, length)
            per_member = self.members or kernel == "persistent"
            drawn = lengths if per_member else lengths[:1]
            params = {k: p.detach() for k, p in model.params.items()}
            rates = error_rate(params, lambda n: self._device(self.eval_generator, active, n, drawn)[:2],
                               n_sequences, unit=model.unit, output=model.output, tolerance=self.tolerance,
                               lengths=lengths if per_member else None, kernel=kernel, chunk=_chunk(len(active)))
            return rates.to("cpu", torch.float64)                     # the one host read of a check
        wrong = torch.zeros(len(active), dtype=torch.float64)
        done = 0
        while done < n_sequences:
            n = min(CHECK_CHUNK, n_sequences - done)          # fixed: a member's checks do not depend on E
            x, y, lengths = self._host(self.eval_tasks, active, n, self.check_lengths(active, length))
            ev = model.evaluate(x.to(model.device), y.to(model.device), tolerance=self.tolerance,
                                kernel="persistent", lengths=lengths)
            wrong += ev.wrong.to("cpu", torch.float64).sum(1)
            done += n
        return wrong / n_sequences

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict:
        """The streams' states (plain values and tensors)."""
        out: dict = {}
        if self.members:
            out["tasks"] = [t.rng.bit_generator.state for t in self.tasks]
            out["eval_tasks"] = [t.rng.bit_generator.state for t in self.eval_tasks]
            out["length_rngs"] = [r.bit_generator.state for r in self.length_rngs]
        else:
            out["length_rng"] = self.length_rng.bit_generator.state
            out["check_length_rng"] = self.check_length_rng.bit_generator.state
        if self.on_device:
            out["generator"] = self.generator.get_state()
            out["eval_generator"] = self.eval_generator.get_state()
        return out

    def load_state(self, state: dict) -> None:
        if self.members:
            for objs, key in ((self.tasks, "tasks"), (self.eval_tasks, "eval_tasks")):
                for t, s in zip(objs, state[key]):
                    t.rng.bit_generator.state = s
            for r, s in zip(self.length_rngs, state["length_rngs"]):
                r.bit_generator.state = s
        else:
            self.length_rng.bit_generator.state = state["length_rng"]
            self.check_length_rng.bit_generator.state = state["check_length_rng"]
        if self.on_device and "generator" in state:
            self.generator.set_state(state["generator"].cpu())
            self.eval_generator.set_state(state["eval_generator"].cpu())
