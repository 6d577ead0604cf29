"""The ``bptt plot`` commands: figures of a stored run, of the §2 diagnostics and of the
one-unit dynamics. Each writes ``<name>.png``, ``<name>.svg`` and ``<name>.csv`` into
``--out`` and prints the paths it wrote. A name says what the figure shows: the kind of
figure, the network (``run12``, ``init-basic_tanh``) and every option that changes it
from its default (e.g. ``gradient-flow-init-basic_tanh-h20-L100``), so that figures of
different networks or settings never replace each other."""

from __future__ import annotations

from pathlib import Path

import click

from bptt import tasks as task_registry
from bptt.cli.common import library_errors, open_store, out_option, store_option
from bptt.engine.units import UNITS
from bptt.models.init import INITS

_out_option = out_option("plots", "Directory for the figures.")


def _name(*parts: str) -> str:
    """A figure's file name: the non-empty ``parts`` joined by ``-``."""
    return "-".join(p for p in parts if p)


def _flag(value, default, prefix: str = "") -> str:
    """``prefix + value`` where ``value`` differs from ``default``, else ``""``."""
    if value is None or value == default:
        return ""
    return f"{prefix}{value:g}" if isinstance(value, float) else f"{prefix}{value}"


def _echo_paths(paths) -> None:
    for p in paths:
        click.echo(str(p))


@click.group("plot")
def plot() -> None:
    """Draw figures: a stored run, the §2 diagnostics, the one-unit dynamics."""


# ---------------------------------------------------------------------------
# A stored run
# ---------------------------------------------------------------------------


@plot.command("run")
@click.argument("run_id", type=click.IntRange(min=1))
@store_option
@_out_option
def run_cmd(run_id: int, store_path: str | None, out_dir: str) -> None:
    """The training record of run RUN_ID: gradient norm, loss, ρ(W_rec) and Ω."""
    from bptt.diagnostics.run_record import load_run_record, plot_training_record

    store = open_store(store_path, must_exist=True)
    try:
        record = load_run_record(store, run_id)
    except KeyError:
        raise click.ClickException(f"no run with id {run_id} in {store.path}; "
                                   "list the runs with `bptt runs`") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    _echo_paths(plot_training_record(record, Path(out_dir) / f"training-run{run_id}"))


# ---------------------------------------------------------------------------
# A network: from a stored run, or freshly initialised
# ---------------------------------------------------------------------------


def _model_options(f):
    options = [
        click.option("--run", "run_id", type=click.IntRange(min=1),
                     help="Use the network saved with this run (its task and length by default)."),
        store_option,
        click.option("--init", default="smart_tanh", show_default=True, type=click.Choice(INITS),
                     help="Initialisation of a fresh network (without --run)."),
        click.option("--unit", type=click.Choice(UNITS),
                     help="Recurrent unit of a fresh network (default: the init's own)."),
        click.option("--hidden", default=50, show_default=True, type=click.IntRange(min=1),
                     help="Hidden units of a fresh network."),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Seed of a fresh network."),
        click.option("--task", type=click.Choice(task_registry.names()),
                     help="Task the inputs come from (default: the run's, else temporal_order)."),
        click.option("--length", type=click.IntRange(min=1),
                     help="Sequence length L (default: the run's, else 50)."),
        click.option("--batch", default=20, show_default=True, type=click.IntRange(min=1),
                     help="Sequences in the batch."),
        click.option("--data-seed", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Seed of the sampled sequences."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


class _Network:
    """The model, its member, the task and a description, resolved from the options."""

    def __init__(self, o: dict) -> None:
        import torch

        from bptt.models import ElmanRNN

        self.run_id = o["run_id"]
        self.initial = None
        if self.run_id is not None:
            from bptt.diagnostics.run_record import load_run_model

            store = open_store(o["store_path"], must_exist=True)
            try:
                run = store.get_run(self.run_id)
                model, member, step = load_run_model(store, self.run_id)
            except KeyError:
                raise click.ClickException(f"no run with id {self.run_id} in {store.path}; "
                                           "list the runs with `bptt runs`") from None
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            finally:
                store.close()
            cfg = run["config"]
            self.model, self.member = model, member
            task_name = o["task"] or cfg.get("task", "temporal_order")
            task_options = cfg.get("task_options", {}) if task_name == cfg.get("task") else {}
            length = o["length"] or cfg.get("min_length") or 50
            self.describe = (f"run {self.run_id} ({cfg.get('task')}, {cfg.get('method')}, "
                             f"init {cfg.get('init')}, seed {cfg.get('seed')}) at update {step}")
            init_cfg = model.config()
            init_cfg["seeds"] = [model.seeds[member]]
            self.initial = ElmanRNN.from_config(init_cfg)
        else:
            task_name = o["task"] or "temporal_order"
            task_options = {}
            length = o["length"] or 50
        try:
            self.task = task_registry.get(task_name, seed=o["data_seed"], **task_options)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--task") from None
        if self.run_id is None:
            try:
                self.model = ElmanRNN(self.task.n_in, o["hidden"], self.task.n_out, unit=o["unit"],
                                      init=o["init"], output=self.task.output, seed=o["seed"],
                                      dtype=torch.float64)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None
            self.member = 0
            self.describe = (f"fresh {o['init']} network ({self.model.unit}, H = {o['hidden']}, "
                             f"seed {o['seed']})")
        elif (self.task.n_in, self.task.n_out, self.task.output) != (
                self.model.n_in, self.model.n_out, self.model.output):
            raise click.BadParameter(f"task {task_name} does not fit the network of run {self.run_id} "
                                     f"({self.model.n_in} inputs, {self.model.n_out} outputs, "
                                     f"{self.model.output})", param_hint="--task")
        self.task_name = task_name
        self.length = int(length)
        self.batch = o["batch"]
        if self.run_id is not None:
            self.tag = f"run{self.run_id}"
        else:
            self.tag = _name("init", o["init"], _flag(o["unit"], None), _flag(o["hidden"], 50, "h"),
                             _flag(o["seed"], 0, "seed"))
        self.data_tag = _name(_flag(o["task"], None), _flag(o["length"], None, "L"), _flag(o["batch"], 20, "B"),
                              _flag(o["data_seed"], 0, "data"))

    def sample(self, length: int | None = None, batch: int | None = None):
        try:
            return self.task.sample(batch or self.batch, length or self.length)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--length") from None


@plot.command("gradient-flow")
@_model_options
@click.option("--params", "param_names", default="W_rec", show_default=True,
              help="Comma-separated parameters to take apart: W_rec, W_in, b.")
@_out_option
@library_errors
def gradient_flow_cmd(param_names: str, out_dir: str, **o) -> None:
    """Gradient components over (t, k) and the lag (eq 5), and Jacobian norms (eq 7)."""
    from bptt.diagnostics.gradient_flow import COMPONENT_PARAMS, gradient_flow, jacobian_norms
    from bptt.diagnostics.plots import plot_gradient_flow, plot_jacobian_norms

    names = tuple(p.strip() for p in param_names.split(",") if p.strip())
    if not names or any(p not in COMPONENT_PARAMS for p in names):
        raise click.BadParameter(f"choose from {', '.join(COMPONENT_PARAMS)}, got {param_names!r}",
                                 param_hint="--params")
    net = _Network(o)
    x, y = net.sample()
    flow = gradient_flow(net.model, x, y, params=names, member=net.member)
    out = Path(out_dir)
    what = _name(net.tag, net.data_tag)
    paths = plot_gradient_flow(flow, out / _name("gradient-flow", what, _flag("+".join(names), "W_rec")),
                               param=names[0])
    jac = jacobian_norms(net.model, x, member=net.member)
    paths += plot_jacobian_norms(jac, out / _name("jacobian-norms", what),
                                 title=f"{x.shape[1]} {net.task_name} sequences, {net.describe}")
    _echo_paths(paths)


@plot.command("spectra")
@_model_options
@_out_option
@library_errors
def spectra_cmd(out_dir: str, **o) -> None:
    """Singular values and eigenvalues of W_rec, with 1/γ and the unit circle."""
    from bptt.diagnostics.plots import plot_spectra
    from bptt.diagnostics.spectra import model_spectrum

    net = _Network(o)
    specs = []
    if net.initial is not None:
        specs.append(model_spectrum(net.initial, 0, label="at initialisation"))
        specs.append(model_spectrum(net.model, net.member, label="trained"))
    else:
        specs.append(model_spectrum(net.model, net.member, label=f"W_rec ({net.model.unit})"))
    _echo_paths(plot_spectra(specs, Path(out_dir) / _name("spectra", net.tag),
                             title=f"Spectrum of W_rec: {net.describe}"))


@plot.command("lyapunov")
@_model_options
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(min=2),
              help="Trajectory length (autonomous; also the driving sequence's length).")
@click.option("--transient", default=200, show_default=True, type=click.IntRange(min=0),
              help="Steps discarded before averaging.")
@click.option("--k", "k", type=click.IntRange(min=1), help="Leading exponents only (default all).")
@_out_option
@library_errors
def lyapunov_cmd(steps: int, transient: int, k: int | None, out_dir: str, **o) -> None:
    """Lyapunov exponents of the autonomous and of the input-driven network."""
    import numpy as np

    from bptt.diagnostics.gradient_flow import member_params
    from bptt.diagnostics.lyapunov import model_lyapunov
    from bptt.diagnostics.plots import plot_lyapunov
    from bptt.engine.units import GAMMA

    if transient >= steps:
        raise click.BadParameter(f"must be smaller than --steps ({steps}), got {transient}",
                                 param_hint="--transient")
    net = _Network(o)
    if k is not None and k > net.model.n_hidden:
        raise click.BadParameter(f"at most the {net.model.n_hidden} hidden units, got {k}",
                                 param_hint="--k")
    kw = dict(k=k, transient=transient, seed=o["seed"])
    auto = model_lyapunov(net.model, member=net.member, steps=steps,
                          label="autonomous (u = 0)", **kw)
    x, _ = net.sample(length=max(steps, net.task.min_length), batch=1)
    driven = model_lyapunov(net.model, x[:, 0], member=net.member,
                            label=f"driven by a {net.task_name} sequence", **kw)
    W = member_params(net.model, net.member)["W_rec"].numpy()
    gamma = GAMMA[net.model.unit]
    with np.errstate(divide="ignore"):
        ref = np.sort(np.log(gamma * np.abs(np.linalg.eigvals(W))))[::-1][: auto.exponents.size]
    label = (r"$\log|\lambda_i(W_{rec})|$" if gamma == 1 else rf"$\log(\gamma|\lambda_i(W_{{rec}})|)$, $\gamma = {gamma:g}$")
    label += r" (constant Jacobian, $\sigma' = \gamma$)"
    stem = _name("lyapunov", net.tag, net.data_tag, _flag(steps, 2000, "steps"), _flag(transient, 200, "transient"),
                 _flag(k, None, "k"))
    _echo_paths(plot_lyapunov([auto, driven], Path(out_dir) / stem, reference=ref, reference_label=label,
                              title=f"Lyapunov exponents: {net.describe}"))


@plot.command("depth")
@click.option("--hidden", default=50, show_default=True, type=click.IntRange(min=1), help="Hidden units H.")
@click.option("--depth", default=100, show_default=True, type=click.IntRange(min=1),
              help="Steps to backpropagate through.")
@click.option("--gains", default="0.8,0.9,1,1.1,1.2", show_default=True,
              help="Comma-separated gains g (weights N(0, g²/H)).")
@click.option("--units", default="linear,tanh", show_default=True, help="Comma-separated units.")
@click.option("--draws", default=20, show_default=True, type=click.IntRange(min=1),
              help="Random weight draws per gain and unit.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the draws.")
@_out_option
@library_errors
def depth_cmd(hidden: int, depth: int, gains: str, units: str, draws: int, seed: int, out_dir: str) -> None:
    """Shared (recurrent) vs untied (deep feedforward) random weights over depth."""
    from bptt.diagnostics.depth import depth_experiment
    from bptt.diagnostics.plots import plot_depth

    try:
        g = [float(v) for v in gains.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{gains!r} is not a comma-separated list of numbers",
                                 param_hint="--gains") from None
    if not g or any(not (v > 0) for v in g):
        raise click.BadParameter(f"gains must be positive, got {gains!r}", param_hint="--gains")
    us = [u.strip() for u in units.split(",") if u.strip()]
    bad = [u for u in us if u not in UNITS]
    if not us or bad:
        raise click.BadParameter(f"choose units from {', '.join(UNITS)}, got {units!r}",
                                 param_hint="--units")
    result = depth_experiment(hidden=hidden, depth=depth, gains=g, units=us, draws=draws, seed=seed)
    stem = _name("depth", f"h{hidden}", f"T{depth}", _flag("_".join(f"{v:g}" for v in g), "0.8_0.9_1_1.1_1.2", "g"),
                 _flag("_".join(us), "linear_tanh"), _flag(draws, 20, "draws"), _flag(seed, 0, "seed"))
    _echo_paths(plot_depth(result, Path(out_dir) / stem))


# ---------------------------------------------------------------------------
# One-unit dynamics (§2.2–2.3)
# ---------------------------------------------------------------------------


def _dynamics_options(f):
    f = click.option("--unit", default="sigmoid", show_default=True, type=click.Choice(["sigmoid", "tanh"]),
                     help="The unit of x_t = w σ(x_{t−1}) + b.")(f)
    f = click.option("--w", "w", default=5.0, show_default=True, type=float,
                     help="The recurrent weight w.")(f)
    return f


@plot.command("bifurcation")
@_dynamics_options
@_out_option
@library_errors
def bifurcation_cmd(w: float, unit: str, out_dir: str) -> None:
    """Fixed points of the one-unit network against the bias b."""
    from bptt.dynamics import bifurcation
    from bptt.dynamics.plots import plot_bifurcation

    _echo_paths(plot_bifurcation(bifurcation(w=w, unit=unit), Path(out_dir) / f"bifurcation-{unit}-w{w:g}"))


@plot.command("basins")
@_dynamics_options
@_out_option
@library_errors
def basins_cmd(w: float, unit: str, out_dir: str) -> None:
    """Basins of attraction of the one-unit network, and orbits across their boundary."""
    from bptt.dynamics import basins, compare_pairs, perturbation_pairs
    from bptt.dynamics.plots import plot_basins, plot_trajectories

    out = Path(out_dir)
    paths = plot_basins(basins(w=w, unit=unit), out / f"basins-{unit}-w{w:g}")
    paths += plot_trajectories(compare_pairs(perturbation_pairs(w=w, unit=unit), w=w, unit=unit),
                               out / f"trajectories-{unit}-w{w:g}")
    _echo_paths(paths)


@plot.command("cliff")
@_out_option
@library_errors
def cliff_cmd(out_dir: str) -> None:
    """The error surface of Figure 6 with plain and norm-clipped gradient descent."""
    from bptt.dynamics import cliff_demo
    from bptt.dynamics.plots import plot_cliff

    _echo_paths(plot_cliff(cliff_demo(), Path(out_dir) / "cliff"))
