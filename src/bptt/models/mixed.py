"""An ensemble of the paper's RNNs whose members differ in initialization and unit.

:class:`ElmanRNN` holds one unit and one initialization for all its members. The
persistent Triton kernel (:mod:`bptt.engine.persistent`) takes one unit per member,
so the three initializations of Figure 7 (§4.1: ``sigmoid`` with sigmoid units,
``basic_tanh`` and ``smart_tanh`` with tanh units) can train in one launch:
:class:`MixedElmanRNN` is that ensemble. Member e is drawn by its own initialization
from its own seed, exactly as a one-member :class:`ElmanRNN` would be.

Its passes run with ``kernel="persistent"`` only (the exact engine applies one unit
to the whole ensemble) unless every member has the same unit. A selection of members
that share one initialization and unit comes back as a plain :class:`ElmanRNN`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from bptt.engine import exact
from bptt.engine.units import check_unit
from bptt.models.elman import ElmanRNN
from bptt.models.init import DEFAULT_UNIT, check_init, check_init_options, ensemble_init


class MixedElmanRNN(ElmanRNN):
    """E Elman networks (eq. 2, see :class:`ElmanRNN`), each with its own initialization and unit.

    Args:
        n_in, n_hidden, n_out, output, dtype, device, init_options: as :class:`ElmanRNN`.
        init: one initialization name per member.
        unit: ``None`` (each member's initialization's unit), one unit name, or one name
            (or ``None``) per member.
        seeds: one seed per member (member e is drawn from ``seeds[e]``).

    Attributes:
        inits: the members' initializations; ``units``: their units; ``unit``: the one
            unit name where all members share it, else the tuple of names (what the
            persistent kernel takes).
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, init: Sequence[str],
                 unit: str | Sequence[str | None] | None = None, output: str = "last_softmax",
                 seeds: Sequence[int], dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu", init_options: dict | None = None, **_ignored) -> None:
        inits = [check_init(i) for i in ([init] * len(seeds) if isinstance(init, str) else list(init))]
        units = list(unit) if isinstance(unit, (list, tuple)) else [unit] * len(inits)
        if len(inits) != len(seeds) or len(units) != len(seeds):
            raise ValueError(f"init and unit need one entry per seed ({len(seeds)}), "
                             f"got {len(inits)} and {len(units)}")
        units = [u if u is not None else DEFAULT_UNIT[i] for i, u in zip(inits, units)]
        for i in set(inits):
            check_init_options(i, dict(init_options or {}))
        super().__init__(n_in, n_hidden, n_out, unit=units[0], init=inits[0], output=output, seeds=seeds,
                         dtype=dtype, device=device, init_options=init_options)
        self.inits = inits
        self.units = [check_unit(u) for u in units]
        self.unit = self.units[0] if len(set(self.units)) == 1 else tuple(self.units)
        with torch.no_grad():
            for name in set(inits):
                rows = [e for e, i in enumerate(inits) if i == name]
                tensors = ensemble_init(name, self.n_in, self.n_hidden, self.n_out, [self.seeds[e] for e in rows],
                                        dtype=self.dtype, device=self.device, **self.init_options)
                idx = torch.tensor(rows, device=self.device)
                for key in exact.PARAM_NAMES:
                    getattr(self, key).index_copy_(0, idx, tensors[key])

    @property
    def mixed_units(self) -> bool:
        return isinstance(self.unit, tuple)

    def config(self) -> dict:
        return {**super().config(), "init": list(self.inits), "unit": list(self.units)}

    def select(self, members: Sequence[int]) -> ElmanRNN:
        """Copies of the given members: an :class:`ElmanRNN` where they share one
        initialization and unit, else a :class:`MixedElmanRNN`."""
        members = list(members)
        cfg = self.config()
        cfg.update(seeds=[self.seeds[i] for i in members], init=[self.inits[i] for i in members],
                   unit=[self.units[i] for i in members])
        new = from_config(cfg, device=self.device)
        idx = torch.as_tensor(members, dtype=torch.long, device=self.device)
        with torch.no_grad():
            for name, p in new.params.items():
                p.copy_(getattr(self, name).index_select(0, idx))
        return new

    def _single_unit(self, what: str) -> None:
        if self.mixed_units:
            raise ValueError(f"{what} of members with different units needs kernel='persistent'")

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        self._single_unit("the autograd forward")
        return super().forward(x, h0)

    def forward_backward(self, x, y, *, kernel: str = "exact", **kw) -> exact.StepResult:
        if kernel != "persistent":
            self._single_unit("the pass")
        return super().forward_backward(x, y, kernel=kernel, **kw)

    def evaluate(self, x, y, *, kernel: str = "exact", **kw) -> exact.Evaluation:
        if kernel != "persistent":
            self._single_unit("the evaluation")
        return super().evaluate(x, y, kernel=kernel, **kw)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", inits={self.inits!r}, units={self.units!r}"


def from_config(config: dict, device: torch.device | str = "cpu") -> ElmanRNN:
    """The model a ``config()`` describes: :class:`MixedElmanRNN` where its ``init`` or
    ``unit`` is a list whose members differ, else :class:`ElmanRNN`."""
    cfg = dict(config)
    cfg["dtype"] = getattr(torch, cfg.get("dtype", "float32"))
    n = len(cfg["seeds"])
    inits = cfg["init"] if isinstance(cfg["init"], (list, tuple)) else [cfg["init"]] * n
    units = cfg.get("unit")
    units = list(units) if isinstance(units, (list, tuple)) else [units] * n
    units = [u if u is not None else DEFAULT_UNIT[i] for i, u in zip(inits, units)]
    if len(set(zip(inits, units))) == 1:
        cfg.update(init=inits[0], unit=units[0])
        return ElmanRNN(device=device, **cfg)
    cfg.update(init=inits, unit=units)
    return MixedElmanRNN(device=device, **cfg)


def stack(configs: Sequence[dict], states: Sequence[dict], device: torch.device | str = "cpu") -> ElmanRNN:
    """One ensemble holding several saved networks (``config()`` and state dict each, same
    shapes), each keeping its own initialization's name and unit."""
    cfg = dict(configs[0])
    cfg["seeds"], cfg["init"], cfg["unit"] = [], [], []
    for c in configs:
        n = len(c["seeds"])
        cfg["seeds"] += list(c["seeds"])
        cfg["init"] += list(c["init"]) if isinstance(c["init"], (list, tuple)) else [c["init"]] * n
        cfg["unit"] += list(c["unit"]) if isinstance(c.get("unit"), (list, tuple)) else [c.get("unit")] * n
    model = from_config(cfg, device=device)
    with torch.no_grad():
        for name, p in model.params.items():
            p.copy_(torch.cat([s[name].to(p.device, p.dtype) for s in states]))
    return model
