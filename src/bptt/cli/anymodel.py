"""The options of ``bptt train`` that choose the model, the optimizer and the clipper's settings.

``--method`` keeps its meaning: it decides, per member, whether the gradient is clipped
(``msgd-c``, ``msgd-cr``) and whether Ω is added (``msgd-cr``). ``--clip`` decides how
the clipping members clip, e.g. ``--method msgd-c --clip zclip``; with ``--method msgd``
nothing is clipped whatever ``--clip`` says. ``--optimizer`` is the step that follows.

``--optimizer hf`` trains by Hessian-free optimization (``docs/hf.md``), with its own
options ``--damping``, ``--structural-damping``, ``--cg-max-iters``, ``--cg-decay``,
``--cg-tolerance``, ``--gradient-batch`` and ``--curvature-batch`` (unset: the defaults
of docs/hf.md); it neither clips nor adds Ω, so ``--method`` defaults to ``msgd`` there.
"""

from __future__ import annotations

import json

import click

from bptt.models import MODELS
from bptt.optim import UPDATE_RULES

#: The options of ``--optimizer hf``: option name → (type, help).
HF_OPTIONS = {
    "damping": (float, "hf: the initial Tikhonov damping λ₀ ≥ 0 (default 1; λ then follows ρ)."),
    "structural_damping": (float, "hf: structural damping μ ≥ 0 (default 1/30 for elman, 0 for models without "
                                  "hidden pre-activations)."),
    "cg_max_iters": (int, "hf: at most this many CG iterations per HF iteration (default 250)."),
    "cg_decay": (float, "hf: CG starts from this in [0, 1] times the previous solution (default 0.95)."),
    "cg_tolerance": (float, "hf: ε > 0 of Martens' CG stopping rule (default 5e-4)."),
    "gradient_batch": (int, "hf: fresh sequences per member for each HF iteration's gradient (default 1000)."),
    "curvature_batch": (int, "hf: sequences of the gradient batch the curvature products use (default a tenth)."),
}

#: The clipper options: option name → (clip kind, constructor argument).
CLIP_OPTIONS = {
    "clip_factor": ("average-norm", "factor"),
    "clip_window": ("average-norm", "window"),
    "clip_percentile": ("autoclip", "percentile"),
    "clip_history": ("autoclip", "history"),
    "agc_clipping": ("agc", "clipping"),
    "zclip_z": ("zclip", "z_threshold"),
    "zclip_alpha": ("zclip", "alpha"),
    "clip_warmup": (("average-norm", "zclip"), "warmup"),
}


def _model_option(ctx, param, values):
    out = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", ctx=ctx, param=param)
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out


def any_model_options(f):
    """Add the options of this group to a command."""
    options = [
        click.option("--model", default="elman", show_default=True, type=click.Choice(list(MODELS)),
                     help="The network: the paper's Elman RNN (exact engine) or an LSTM, GRU, leaky-integrator, "
                          "skip-connection or echo-state ensemble (autograd). Ω (msgd-cr) trains every model but esn, "
                          "whose recurrent weights do not learn."),
        click.option("--model-option", "model_option", multiple=True, callback=_model_option, metavar="NAME=VALUE",
                     help="An option of the model's constructor, e.g. --model-option forget_bias=1.0 "
                          "(lstm), delay=10 (skip), radius=0.9 (esn); repeat for several. VALUE is read as JSON."),
        click.option("--optimizer", default="sgd", show_default=True, type=click.Choice(list(UPDATE_RULES)),
                     help="The update rule after clipping: the paper's SGD, SGD with Nesterov momentum "
                          "(Sutskever et al. 2013), RMSprop or Adam; or hf, Hessian-free optimization with "
                          "structural damping (Martens 2010; Martens & Sutskever 2011), see the --*-batch, "
                          "--damping and --cg-* options."),
        click.option("--momentum", type=float,
                     help="Momentum μ in [0, 1) (nesterov: default 0.9; rmsprop: default 0)."),
        click.option("--betas", type=(float, float), metavar="B1 B2",
                     help="Adam's β₁ and β₂, each in [0, 1) (default 0.9 0.999)."),
        click.option("--eps", type=float, help="ε > 0 of rmsprop and adam (default 1e-8)."),
        click.option("--weight-decay", type=float, help="L2 weight decay λ ≥ 0 (nesterov, rmsprop, adam; default 0)."),
        click.option("--smoothing", type=float,
                     help="rmsprop: ρ in [0, 1), the decay of the average of squared gradients (default 0.99)."),
        click.option("--clip-factor", type=float,
                     help="average-norm: the threshold as a multiple of the average norm (default 1)."),
        click.option("--clip-window", type=int, help="average-norm: how many latest norms the average covers "
                                                     "(default 100)."),
        click.option("--clip-warmup", type=int, help="average-norm, zclip: norms recorded before clipping starts."),
        click.option("--clip-percentile", type=float,
                     help="autoclip: the percentile p in (0, 100] of past norms used as threshold (default 10)."),
        click.option("--clip-history", type=int, help="autoclip: how many latest norms to keep (default all)."),
        click.option("--agc-clipping", type=float,
                     help="agc: λ, the largest ratio of a unit's gradient norm to its weight norm (default 0.01)."),
        click.option("--zclip-z", type=float, help="zclip: the z-score above which a norm is clipped (default 2.5)."),
        click.option("--zclip-alpha", type=float, help="zclip: the smoothing of the norm's EMA, in (0, 1) "
                                                       "(default 0.97)."),
    ]
    options += [click.option("--" + name.replace("_", "-"), type=kind, help=text)
                for name, (kind, text) in HF_OPTIONS.items()]
    for option in reversed(options):
        f = option(f)
    return f


def any_model_settings(o: dict) -> dict:
    """The :class:`bptt.training.config.TrainConfig` fields of this group from the parsed options.

    Raises:
        click.UsageError: a clipper option given for another ``--clip``, or an option of
            ``--optimizer hf`` for another optimizer.
    """
    for name in HF_OPTIONS:
        if o.get(name) is not None and o["optimizer"] != "hf":
            raise click.UsageError(f"--{name.replace('_', '-')} is an option of --optimizer hf, "
                                   f"not of --optimizer {o['optimizer']}")
    clip_options = {}
    for name, (kinds, arg) in CLIP_OPTIONS.items():
        if o.get(name) is None:
            continue
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        if o["clip"] not in kinds:
            raise click.UsageError(f"--{name.replace('_', '-')} is an option of --clip {' or '.join(kinds)}, "
                                   f"not of --clip {o['clip']}")
        clip_options[arg] = o[name]
    return {"model": o["model"], "model_options": dict(o["model_option"]), "optimizer": o["optimizer"],
            "momentum": o["momentum"], "betas": None if o["betas"] is None else list(o["betas"]),
            "eps": o["eps"], "weight_decay": o["weight_decay"], "smoothing": o["smoothing"],
            "clip_options": clip_options, **{name: o.get(name) for name in HF_OPTIONS}}
