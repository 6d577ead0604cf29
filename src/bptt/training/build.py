"""What a :class:`bptt.training.config.TrainConfig` builds: its model and its update rule.

* :func:`build_model`: the ensemble named by ``config.model`` (one of
  :data:`bptt.models.MODELS`), with ``config.model_options``; the Elman network is built
  exactly as before the other models could train (the paper's numbers unchanged).
* :func:`build_rule`: the update rule of ``config.optimizer`` behind ``config.clip``
  (:func:`bptt.optim.make_rule`): the paper's :class:`bptt.optim.PaperSGD` for
  ``sgd`` with ``norm``/``elementwise``/``none``, a :class:`bptt.optim.ClippedRule`
  otherwise. The method of each member decides whether it clips. ``optimizer="hf"``
  builds :class:`bptt.optim.HFRule` (Hessian-free optimization, which the loop hands
  batches instead of gradients) with ``config.hf_options()``.
"""

from __future__ import annotations

import inspect

import torch

from bptt.methods import Method
from bptt.models import MODELS, ElmanRNN
from bptt.models.init import INITS
from bptt.optim import HFRule, guarded, make_rule

#: The initialization the configuration's ``init`` defaults to (the paper's).
DEFAULT_INIT = "smart_tanh"
#: Every initialization of any model.
ALL_INITS = tuple(dict.fromkeys(list(INITS) + [i for cls in MODELS.values() for i in getattr(cls, "INITS", ())]))


def model_name(model) -> str:
    """The name in :data:`bptt.models.MODELS` of ``model``'s class."""
    name = getattr(type(model), "KIND", None)
    if MODELS.get(name) is type(model):
        return name
    raise ValueError(f"{type(model).__name__} is not one of the models {', '.join(MODELS)}")


def model_kwargs(config, output: str) -> dict:
    """The constructor's keyword arguments for ``config.model`` (without sizes and seeds).

    Raises:
        ValueError: an unknown model, an ``init`` or ``unit`` the model does not take.
    """
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(MODELS)}")
    cls = MODELS[config.model]
    kw = {"output": output, "dtype": getattr(torch, config.dtype)}
    if cls is ElmanRNN:
        return kw | {"unit": config.unit, "init": config.init} | dict(config.model_options)
    inits = getattr(cls, "INITS", ())
    if config.init in inits:
        kw["init"] = config.init
    elif config.init != DEFAULT_INIT:
        raise ValueError(f"model {config.model!r} has no initialization {config.init!r}; choose one of "
                         f"{', '.join(inits)} (or leave init at its default for the model's own)")
    takes = inspect.signature(cls.__init__).parameters
    if config.unit is not None:
        if "unit" not in takes:
            raise ValueError(f"model {config.model!r} takes no unit (got {config.unit!r}); leave it unset")
        kw["unit"] = config.unit
    unknown = sorted(set(config.model_options) - set(takes) - {"self"})
    fixed = sorted(set(config.model_options) & {"n_in", "n_hidden", "n_out", "seed", "seeds", "ensemble",
                                                  "dtype", "device", "output", "init", "unit"})
    if unknown or fixed:
        options = sorted(set(takes) - {"self", "n_in", "n_hidden", "n_out", "seed", "seeds", "ensemble", "dtype",
                                       "device", "output", "init", "unit"})
        raise ValueError(f"model {config.model!r} takes no option {', '.join(unknown + fixed)} in model_options; "
                         f"its options: {', '.join(options) or 'none'}")
    return kw | dict(config.model_options)


def build_model(config, task, *, seeds=None, device=None):
    """The ensemble of ``config`` for ``task`` (one member per seed); Elman networks with
    an initialization or unit per member are a :class:`bptt.models.mixed.MixedElmanRNN`."""
    cls = MODELS[config.model] if config.model in MODELS else None
    kw = model_kwargs(config, task.output)
    if cls is ElmanRNN and config.mixed_networks:
        from bptt.models.mixed import MixedElmanRNN

        cls = MixedElmanRNN
    return cls(task.n_in, config.hidden, task.n_out, seeds=list(config.seeds if seeds is None else seeds),
               device=config.device if device is None else device, **kw)


def build_rule(config, model):
    """The update rule of ``config`` for ``model`` (see the module docstring)."""
    if config.optimizer == "hf":
        return HFRule(model, **config.hf_options())
    methods = [Method.parse(m) for m in config.values("method")]
    return make_rule(config.optimizer, config.clip, lr=config.values("lr"), threshold=config.values("threshold"),
                     clip_members=[m.clips for m in methods], guard=[guarded(config.guard, m.clips) for m in methods], momentum=_listed_or_none(config, "momentum"),
                     betas=None if config.betas is None else tuple(config.betas), eps=config.eps,
                     weight_decay=config.weight_decay, smoothing=config.smoothing, clip_options=config.clip_options,
                     recurrent=model.recurrent_names, frozen=getattr(model, "FIXED", ()),
                     ensemble=len(config.seeds), dtype=model.dtype, device=model.device,
                     l1=config.values("l1"), l2=config.values("l2"))


def _listed_or_none(config, name: str):
    value = getattr(config, name)
    return None if value is None else config.values(name)
