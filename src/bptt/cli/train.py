"""``bptt tasks`` and ``bptt train``: the pathological tasks, and training an ensemble on one."""

from __future__ import annotations

import sys

import click

from bptt import tasks as task_registry
from bptt.cli.common import (
    check_device,
    open_store,
    parse_seeds,
    progress_option,
    seeds_option,
    sigterm_as_interrupt,
    store_option,
)
from bptt.engine.units import UNITS
from bptt.methods import Method
from bptt.models.init import INITS
from bptt.omega.terms import OMEGA_VARIANTS
from bptt.optim.sgd import GUARDS
from bptt.store import Status

# -- any model, any update rule: the options of this group ------------------------------------
from bptt.cli.anymodel import any_model_options, any_model_settings  # noqa: E402
from bptt.optim.rules import CLIPS  # noqa: E402


@click.command("tasks")
def tasks_cmd() -> None:
    """List the tasks with their input size, output and error measure."""
    rows = []
    for name in task_registry.names():
        t = task_registry.get(name, seed=0)
        rows.append((name, str(t.n_in), str(t.n_out), t.output, t.error_measure))
    widths = [max(len(r[i]) for r in rows + [("task", "in", "out", "output", "error")]) for i in range(4)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(("task", "in", "out", "output"), widths)) + "  error")
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r[:4], widths)) + "  " + r[4])


@click.command()
@click.option("--task", default="temporal_order", show_default=True,
              type=click.Choice(task_registry.names()), help="The task to train on.")
@click.option("--length", type=click.IntRange(min=1), help="Fixed sequence length L.")
@click.option("--min-length", type=click.IntRange(min=1), help="Draw L per minibatch from [min, max].")
@click.option("--max-length", type=click.IntRange(min=1), help="Upper end of L (with --min-length).")
@click.option("--init", default="smart_tanh", show_default=True, type=click.Choice(INITS),
              help="Initialization of the weights (§4.1).")
@click.option("--unit", type=click.Choice(UNITS),
              help="Recurrent unit (default: the one the init was made for).")
@click.option("--method", type=click.Choice([m.value for m in Method]),
              help="SGD; with clipping; with clipping and Ω. Default: msgd-cr (msgd with --optimizer hf, "
                   "which neither clips nor adds Ω).")
@click.option("--hidden", default=50, show_default=True, type=click.IntRange(min=1), help="Hidden units H.")
@click.option("--lr", default=0.01, show_default=True, type=float, help="Learning rate.")
@click.option("--threshold", default=1.0, show_default=True, type=float, help="Clipping threshold (> 0).")
@click.option("--clip", default="norm", show_default=True, type=click.Choice(CLIPS),
              help="How the members whose --method clips clip: rescale the whole gradient (norm, Algorithm 1, "
                   "at --threshold), clip each element (elementwise, at --threshold), or an adaptive rule "
                   "(average-norm, autoclip, agc, zclip; see the --clip-* options); none only with msgd.")
@click.option("--alpha", default=2.0, show_default=True, type=float, help="Weight of Ω (msgd-cr).")
@click.option("--alpha-schedule", default="constant", show_default=True, type=click.Choice(["constant", "inverse"]),
              help="α constant, or α/t decaying with the update t.")
@click.option("--omega", default="squared", show_default=True, type=click.Choice(OMEGA_VARIANTS),
              help="Ω_k from squared norms (the reference code) or from norms (eq 9 as printed).")
@click.option("--batch-size", default=20, show_default=True, type=click.IntRange(min=1),
              help="Sequences per minibatch.")
@click.option("--max-updates", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Update budget per member.")
@click.option("--eval-every", default=100, show_default=True, type=click.IntRange(min=1),
              help="Updates between checks of the error on fresh sequences.")
@click.option("--eval-sequences", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Fresh sequences of the success test.")
@click.option("--success-error", default=0.01, show_default=True, type=float,
              help="A member succeeds when its error on fresh sequences falls below this.")
@click.option("--strict", is_flag=True, help="Success only with no error at all.")
@click.option("--l1", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Weight λ₁ of the L1 penalty λ₁Σ|W_rec| (§3.3's rival remedy; 0: none).")
@click.option("--l2", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Weight λ₂ of the L2 penalty (λ₂/2)‖W_rec‖² (weight decay; 0: none).")
@seeds_option("0", "One member per seed.")
@click.option("--record-every", default=10, show_default=True, type=click.IntRange(min=1),
              help="Updates per recorded point of the training curves.")
@click.option("--checkpoint-every", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Updates between checkpoints.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float64"]),
              help="Floating-point type of the networks.")
@click.option("--device", default="cpu", show_default=True, callback=check_device,
              help="Torch device, e.g. cpu or cuda.")
@any_model_options
# -- the protocol's open choices --
@click.option("--guard", default="clipping", show_default=True, type=click.Choice(GUARDS),
              help="Which members the non-finite guard protects: those that clip (the reference code), "
                   "always, or never. An unprotected member that overflows ends as diverged.")
@click.option("--kernel", default="exact", show_default=True, type=click.Choice(["exact", "persistent"]),
              help="The engine's pass: exact (any device) or persistent (one Triton kernel; CUDA, needs bptt[gpu]).")
@store_option
@click.option("--resume", type=int, help="Resume the stopped training that run RUN_ID belongs to.")
@progress_option
def train(**o) -> None:
    """Train an ensemble, one member per seed, and record every run in the store."""
    from bptt.training.memory import check_fits
    from bptt.training.trainer import TrainConfig, Trainer

    sigterm_as_interrupt()
    store = open_store(o["store_path"])
    if o["resume"] is not None:
        trainer = _resumed(store, o["resume"], o["progress"])
    else:
        if o["length"] is not None and (o["min_length"] or o["max_length"]):
            raise click.UsageError("give either --length or --min-length/--max-length, not both")
        lo = o["length"] or o["min_length"] or o["max_length"] or 50
        hi = o["length"] or o["max_length"] or lo
        config = TrainConfig(
            task=o["task"], min_length=lo, max_length=hi, hidden=o["hidden"], init=o["init"],
            unit=o["unit"], method=o["method"] or _default_method(o["optimizer"]), lr=o["lr"],
            threshold=o["threshold"], clip=o["clip"],
            alpha=o["alpha"], alpha_schedule=o["alpha_schedule"], omega=o["omega"],
            batch_size=o["batch_size"], max_updates=o["max_updates"], eval_every=o["eval_every"],
            eval_sequences=o["eval_sequences"], success_error=o["success_error"], strict=o["strict"],
            seeds=parse_seeds(o["seeds"]), dtype=o["dtype"], device=o["device"],
            record_every=o["record_every"], checkpoint_every=o["checkpoint_every"], kernel=o["kernel"],
            guard=o["guard"], **any_model_settings(o))
        config.l1, config.l2 = o["l1"], o["l2"]
        try:
            check_fits(config.validate())
            trainer = Trainer(config, store, progress=o["progress"])
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        ids = [trainer.run_ids[m] for m in range(len(trainer.run_ids)) if trainer.status[m] == Status.STOPPED]
        saved = any(r is not None and store.load_checkpoint(r) is not None for r in ids)
        click.echo(f"\nstopped at update {trainer.update}; "
                   + ("checkpoint saved. " if saved else "no checkpoint was saved yet (it restarts from scratch). ")
                   + f"Resume with: bptt train --resume {ids[0] if ids else trainer.run_ids[0]}"
                   + (f" --store {o['store_path']}" if o["store_path"] else ""), err=True)
        sys.exit(130)
    click.echo(f"{result.updates} updates in {result.seconds:.1f} s")
    click.echo(f"{'run':>5}  {'seed':>4}  {'status':<10}  {'updates':>8}  {'error':>7}  {'clipped':>7}  nonfinite")
    for m in result.members:
        click.echo(f"{m.run_id or '-':>5}  {m.seed:>4}  {m.status:<10}  {m.updates:>8}  {m.error:>7.4f}  "
                   f"{m.clipped_fraction:>7.3f}  {m.nonfinite}")
    if trainer.config.optimizer == "hf":
        _hf_totals(store, result.members)


def _hf_totals(store, members) -> None:
    """Hessian-free's cost per run: iterations, CG iterations, gradients, curvature products, seconds."""
    click.echo(f"\n{'run':>5}  {'HF iters':>8}  {'accepted':>8}  {'CG iters':>8}  {'gradients':>9}  "
               f"{'GN products':>11}  seconds")
    for m in members:
        if m.run_id is None:
            continue
        t = store.get_run(m.run_id)["metrics"]
        click.echo(f"{m.run_id:>5}  {t.get('hf_iterations', 0):>8.0f}  {t.get('hf_accepted', 0):>8.0f}  "
                   f"{t.get('hf_cg_iterations', 0):>8.0f}  {t.get('hf_gradient_evaluations', 0):>9.0f}  "
                   f"{t.get('hf_curvature_products', 0):>11.0f}  {t.get('hf_wall_time', 0):.2f}")


def _default_method(optimizer: str) -> str:
    """``--method``'s default: the paper's MSGD-CR, or plain msgd for Hessian-free."""
    return Method.MSGD.value if optimizer == "hf" else Method.MSGD_CR.value


def _resumed(store, run_id: int, progress: bool):
    from bptt.training.synthetic import resume

    try:
        trainer = resume(store, run_id, progress=progress)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if trainer.restarted:
        click.echo(f"restarting group {trainer.group} from scratch (it stopped before its first checkpoint) "
                   f"with {len(trainer.active)} members", err=True)
    else:
        click.echo(f"resuming group {trainer.group} at update {trainer.update} with {len(trainer.active)} "
                   f"active members", err=True)
    return trainer
