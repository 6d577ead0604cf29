"""Where the gradients are, and the operations every clipper needs on them.

A clipper may be handed its gradients in any of the forms PyTorch code and this
library use; :func:`collect` turns each into one :class:`Gradients`:

==============================================  =========================  ===========
form                                            gradients taken from       ensemble
==============================================  =========================  ===========
a tensor (one parameter)                        its ``.grad``              no
an iterable of tensors (``model.parameters()``,  each ``.grad``             no
a generator, a list)
a ``torch.nn.Module``                           ``named_parameters()``     no
a bptt model (``.params``, a mapping of          each ``.grad``             yes
``[E, ...]`` parameters: :class:`ElmanRNN`)
a mapping name → gradient (the engine's          the values themselves      yes
``StepResult.grads``, ``[E, ...]`` each)
==============================================  =========================  ===========

Parameters whose ``.grad`` is ``None`` are left out. The last column is the default of
``ensemble``; pass ``ensemble=True`` or ``False`` to override it. With an ensemble,
every gradient carries a leading member axis ``E`` and every member is measured and
clipped on its own (``[E]`` norms); without, all gradients form one vector (a 0-dim
norm), as in ``torch.nn.utils.clip_grad_norm_``.

Mixed devices and dtypes are accepted: each gradient's norm is taken on its own device
in its own dtype, the norms are gathered on the device of the first gradient (the total
has the promoted dtype, float64 if any gradient is float64), and each gradient is scaled
on its own device in its own dtype — PyTorch's convention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

_FOREACH_DEVICES = ("cpu", "cuda")
_PLAIN = (torch.Tensor, torch.nn.Parameter)


@dataclass
class Gradients:
    """The gradients a clipper works on, and what it needs to know about them.

    Attributes:
        grads: the gradient tensors (modified in place by the clippers).
        params: the parameter of each gradient, or ``None`` for a mapping of gradients.
        keys: the name (or position) of each gradient, for messages.
        ensemble: whether every gradient is ``[E, ...]`` with its own member axis.
        members: ``E`` for an ensemble (``None`` when unknown: no tensors at all).
        mapping: name → gradient when the gradients came as a mapping or a bptt model
            with every gradient present (the engine's form), else ``None``.
        row_vector: the weights are stored ``[..., in, out]`` (a bptt model) rather
            than PyTorch's ``[out, in, ...]``.
        like: a tensor of the input (the first), for the dtype and device of a zero norm.
    """

    grads: list[torch.Tensor]
    params: list[torch.Tensor] | None
    keys: list
    ensemble: bool
    members: int | None
    mapping: dict[str, torch.Tensor] | None = None
    row_vector: bool = False
    like: torch.Tensor | None = None

    # -- shapes ----------------------------------------------------------------------
    @property
    def member_shape(self) -> tuple[int, ...]:
        """The shape of a norm: ``(E,)`` for an ensemble, ``()`` otherwise."""
        return (self.members,) if self.ensemble and self.members is not None else ()

    def zero_norm(self) -> torch.Tensor:
        """The norm reported when there is no gradient at all (PyTorch: ``tensor(0.)``)."""
        if self.ensemble and self.members is not None and self.like is not None:
            return torch.zeros(self.members, dtype=self.like.dtype, device=self.like.device)
        return torch.tensor(0.0)

    def _groups(self) -> dict[tuple[torch.device, torch.dtype], list[torch.Tensor]]:
        first = self.grads[0]
        if all(g.device == first.device and g.dtype == first.dtype for g in self.grads):
            return {(first.device, first.dtype): self.grads}
        groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for g in self.grads:
            groups.setdefault((g.device, g.dtype), []).append(g)
        return groups

    # -- the operations ----------------------------------------------------------
    def norm(self, norm_type: float = 2.0) -> torch.Tensor:
        """The p-norm of all gradients seen as one vector: 0-dim, or ``[E]`` per member.

        Without an ensemble this is computed exactly as PyTorch does (the norm of each
        gradient, by ``torch._foreach_norm`` where PyTorch uses it, then the norm of
        those norms), so the numbers are bit for bit PyTorch's.
        """
        if not self.grads:
            return self.zero_norm()
        first = self.grads[0].device
        norms: list[torch.Tensor] = []
        if self.ensemble:
            E = self.members
            for g in self.grads:
                norms.append(torch.linalg.vector_norm(g.reshape(E, -1), norm_type, dim=1))
            return torch.linalg.vector_norm(torch.stack([n.to(first) for n in norms]), norm_type, dim=0)
        for (device, _), grads in self._groups().items():
            if device.type in _FOREACH_DEVICES and all(type(g) in _PLAIN for g in grads):
                norms.extend(torch._foreach_norm(grads, norm_type))
            else:
                norms.extend(torch.linalg.vector_norm(g, norm_type) for g in grads)
        return torch.linalg.vector_norm(torch.stack([n.to(first) for n in norms]), norm_type)

    def scale_(self, scale: torch.Tensor) -> None:
        """Multiply the gradients in place by ``scale`` (0-dim, or ``[E]`` per member)."""
        if self.ensemble:
            for g in self.grads:
                g.mul_(scale.to(g.device).reshape(-1, *([1] * (g.dim() - 1))))
            return
        for (device, _), grads in self._groups().items():
            s = scale.to(device)
            if device.type in _FOREACH_DEVICES and all(type(g) in _PLAIN for g in grads):
                torch._foreach_mul_(grads, s)
            else:
                for g in grads:
                    g.mul_(s)

    def clamp_(self, value: float) -> None:
        """Clamp every component in place to ``[−value, value]``."""
        for (device, _), grads in self._groups().items():
            if device.type in _FOREACH_DEVICES and all(type(g) in _PLAIN for g in grads):
                torch._foreach_clamp_min_(grads, -value)
                torch._foreach_clamp_max_(grads, value)
            else:
                for g in grads:
                    g.clamp_(min=-value, max=value)

    def zero_(self, where: torch.Tensor) -> None:
        """Set the gradients to zero where ``where`` is true (0-dim, or ``[E]``)."""
        for g in self.grads:
            mask = where.to(g.device)
            if self.ensemble:
                mask = mask.reshape(-1, *([1] * (g.dim() - 1)))
            g.masked_fill_(mask, 0)


def _label(key) -> str:
    return repr(key) if isinstance(key, str) else f"parameter {key}"


def collect(parameters, ensemble: bool | None = None) -> Gradients:
    """The gradients held by ``parameters``, in any of the forms of the table above.

    Args:
        parameters: a tensor, an iterable of tensors, an ``nn.Module``, a bptt model
            (an object whose ``.params`` is a mapping of ``[E, ...]`` tensors) or a
            mapping name → ``[E, ...]`` gradient.
        ensemble: whether gradients carry a leading member axis; ``None`` chooses by
            the form (yes for bptt models and mappings, no otherwise).

    Returns:
        :class:`Gradients`.

    Raises:
        ValueError: an element is not a tensor; with an ensemble, a gradient without a
            leading axis or with a leading size different from the others (the message
            names it).
    """
    mapping = None
    row_vector = False
    if isinstance(parameters, torch.Tensor):
        named, default, given_grads = [(0, parameters)], False, False
    elif isinstance(parameters, Mapping):
        named, default, given_grads = list(parameters.items()), True, True
    elif isinstance(getattr(parameters, "params", None), Mapping):
        named, default, given_grads = list(parameters.params.items()), True, False
        row_vector = True
    elif isinstance(parameters, torch.nn.Module):
        named, default, given_grads = list(parameters.named_parameters()), False, False
    else:
        try:
            named = list(enumerate(parameters))
        except TypeError:
            raise ValueError("parameters must be a tensor, an iterable of tensors, a module or a "
                             f"mapping of gradients; got {type(parameters).__name__}") from None
        default, given_grads = False, False
    for key, p in named:
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"parameters must be tensors; {_label(key)} is a {type(p).__name__}")
    ensemble = default if ensemble is None else bool(ensemble)

    if given_grads:
        keys = [k for k, _ in named]
        grads = [g for _, g in named]
        params = None
        mapping = dict(named)
    else:
        keys, grads, params = [], [], []
        for key, p in named:
            if p.grad is not None:
                keys.append(key)
                grads.append(p.grad)
                params.append(p)
        if row_vector and len(grads) == len(named):
            mapping = dict(zip(keys, grads))

    members = None
    if ensemble:
        tensors = list(zip(keys, grads)) or [(k, p) for k, p in named]
        for key, t in tensors:
            if t.dim() == 0:
                raise ValueError(f"with ensemble=True every gradient must be [E, ...]; {_label(key)} "
                                 "is a scalar. Pass ensemble=False to clip all gradients as one vector.")
        if tensors:
            first_key, first = tensors[0]
            members = first.shape[0]
            for key, t in tensors[1:]:
                if t.shape[0] != members:
                    raise ValueError(
                        f"with ensemble=True every gradient must be [E, ...] with the same E; "
                        f"{_label(key)} has shape {tuple(t.shape)} but {_label(first_key)} has "
                        f"E = {members}. Pass ensemble=False to clip all gradients as one vector.")
    return Gradients(grads=grads, params=params, keys=keys, ensemble=ensemble, members=members,
                     mapping=mapping, row_vector=row_vector, like=named[0][1] if named else None)
