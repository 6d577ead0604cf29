"""The rows of ``bptt reproduce remedies``: each remedy as a training configuration.

A row (:class:`Remedy`) is one way of training a recurrent network on the paper's
pathological problems: the paper's three methods on its Elman tanh network (MSGD,
MSGD-C, MSGD-CR, §4.1), and the rival remedies of §3.3 and after (gated units, leaky
units, the IRNN, skip connections, echo-state networks, orthogonal initialization,
Nesterov momentum, RMSprop, Adam, L1 and L2 penalties, Hessian-free). Each row holds
the :class:`bptt.training.config.TrainConfig` fields that make it (the fields ``bptt
train`` takes), the learning rates its learning-rate search tries (the first is the
value its own paper recommends, or ours where it gives none), the clipping it is
normally used with, and its protocol: every setting with its source.

Every row shares the problem, the network size (50 units), the minibatch (20), the
seeds and the update budget; only what makes the remedy differs.

:meth:`Remedy.check` refuses rows that make no sense (Ω on a model the loop cannot
regularize, a penalty on a model whose recurrent weights do not learn, learning rates
that are not positive) with a ``ValueError`` naming the row. A row whose optimizer this
build does not know (Hessian-free, until the training loop takes it) is listed as not
available, with the reason, instead of failing the whole experiment
(:meth:`Remedy.unavailable`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bptt.experiments import paper

#: The learning rates a row with a ``corpus_lr`` tries on the music data sets, as factors of
#: it: no search was made there, so a rate set for another network (Table 1's 1 for its
#: sigmoid units) gets a second, smaller chance; the validation split decides.
CORPUS_LR_FACTORS = (1.0, 0.1)

#: One protocol row: (setting, value, source).
Setting = tuple[str, str, str]

PAPER = "paper §4.1"
OURS = "our choice"
#: Fields a row may not set: the experiment sets them for every row alike.
SHARED_FIELDS = ("task", "task_options", "min_length", "max_length", "seed", "seeds", "lr", "hidden",
                 "batch_size", "max_updates", "eval_every", "check_sequences", "eval_sequences",
                 "record_every", "checkpoint_every", "success_error", "data_seed")


@dataclass(frozen=True)
class Remedy:
    """One row of the remedies comparison.

    Args:
        name: a short identifier (``lstm``), used in labels and the store.
        label: how the report names the row.
        train: the :class:`~bptt.training.config.TrainConfig` fields of the row, without
            the shared ones (:data:`SHARED_FIELDS`: task, lengths, seeds, learning rate,
            network size, minibatch, budget).
        lr: the learning rates the search tries; the first is the recommended one.
        clipping: in words, the clipping the remedy is normally used with (and the source).
        protocol: the row's own settings as ``(setting, value, source)``.
        table1_method: the Table 1 method that trains this row on the music corpora
            (``msgd``, ``msgd-c``, ``msgd-cr``), or ``None`` when Table 1's training
            cannot train it (then ``corpus_note`` says why).
        corpus_lr: the first learning rate of the row's runs on Table 1's music data sets
            (``bptt reproduce table1 --remedies``: the row's network and update rule with
            Table 1's size, threshold, windows, epochs and evaluation), with its source in
            ``corpus_lr_source``; the row also runs at a tenth of it (:meth:`corpus_lrs`),
            and the report takes the run with the lower best validation figure. ``None``
            for rows without such runs (``table1_method`` rows are Table 1's own; the
            others say why in ``corpus_note``).
        corpus_note: why the row has no Nottingham run.
        optional: a row that may be missing from this build (listed as not available
            when its configuration does not check, instead of raising).
        caps: ``(budget name, updates)`` pairs: the row's own cap on updates per run at
            that budget, below the budget's (a Hessian-free iteration costs hundreds of
            gradient-sized passes, so its row counts iterations and has its own cap,
            stated in the protocol).
    """

    name: str
    label: str
    train: dict
    lr: tuple
    clipping: str
    protocol: tuple = ()
    table1_method: str | None = None
    corpus_lr: float | None = None
    corpus_lr_source: str = ""
    corpus_note: str = ""
    optional: bool = False
    caps: tuple = ()

    def cap(self, budget: str, updates: int) -> int:
        """The updates per run of this row at ``budget``: ``updates`` (the budget's),
        or the row's own cap where it sets one and it is lower."""
        own = dict(self.caps).get(budget)
        return int(updates) if own is None else min(int(updates), int(own))

    def config(self, lr: float | None = None, **shared) -> dict:
        """The row's training configuration at learning rate ``lr`` (default: the
        recommended one) with the ``shared`` fields (task, lengths, seed, budget ...)."""
        return {**self.train, "lr": float(self.lr[0] if lr is None else lr), "hidden": paper.HIDDEN,
                "batch_size": paper.BATCH_SIZE, **shared}

    def corpus_lrs(self) -> tuple[float, ...]:
        """The learning rates of the row's runs on the music data sets: ``corpus_lr`` and
        the factors of :data:`CORPUS_LR_FACTORS` times it (none without ``corpus_lr``)."""
        if self.corpus_lr is None:
            return ()
        return tuple(float(f"{self.corpus_lr * f:.6g}") for f in CORPUS_LR_FACTORS)

    def corpus_row(self) -> dict | None:
        """The row's network and update rule as Table 1's
        :attr:`bptt.experiments.table1.protocol.NaturalConfig.row` (``None`` when the row has
        no run of its own on the music data sets)."""
        from bptt.experiments.table1.protocol import ROW_FIELDS

        if self.corpus_lr is None:
            return None
        return {"name": self.name} | {k: v for k, v in self.train.items() if k in ROW_FIELDS}

    @property
    def method(self) -> str:
        """The row's method (``msgd``, ``msgd-c`` or ``msgd-cr``)."""
        return str(self.train.get("method", "msgd-cr"))

    def unavailable(self) -> str | None:
        """Why this build cannot train the row (``None``: it can).

        Only an optional row can be unavailable; a row that makes no sense raises in
        :meth:`check` instead."""
        from bptt.optim import UPDATE_RULES

        optimizer = self.train.get("optimizer", "sgd")
        if optimizer not in UPDATE_RULES:
            return (f"not available in this build: the training loop does not know the optimizer {optimizer!r} "
                    f"(it knows {', '.join(UPDATE_RULES)})")
        if self.optional:
            try:
                self.check()
            except ValueError as exc:
                return f"not available in this build: {exc}"
        return None

    def check(self) -> "Remedy":
        """Refuse a row that makes no sense; returns ``self``.

        Raises:
            ValueError: no name, label or learning rate; a learning rate not finite and
                positive; a shared field set by the row; a configuration the training
                loop refuses (e.g. Ω on the echo-state network, whose recurrent weights do not learn); an L1 or L2
                penalty on a model whose recurrent weights do not learn (the echo-state
                network), which would be a silent no-op.
        """
        from bptt import tasks
        from bptt.training.build import build_model
        from bptt.training.config import TrainConfig

        who = f"remedy row {self.name!r}"
        if not self.name or not self.label:
            raise ValueError("a remedy row needs a name and a label")
        if not self.lr or any(not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0) for v in self.lr):
            raise ValueError(f"{who}: the learning-rate candidates must be finite and > 0, got {list(self.lr)}")
        if len(set(self.lr)) != len(self.lr):
            raise ValueError(f"{who}: the learning-rate candidates repeat: {list(self.lr)}")
        shared = sorted(set(self.train) & set(SHARED_FIELDS))
        if shared:
            raise ValueError(f"{who} sets {', '.join(shared)}, which the experiment sets alike for every row; "
                             f"leave them out of the row")
        try:
            config = TrainConfig(**self.config(task="temporal_order", min_length=50, max_length=50,
                                               seeds=[0])).validate()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{who} makes no sense: {exc}") from None
        if config.l1 or config.l2:
            model = build_model(config, tasks.get("temporal_order", seed=0))
            if not model.recurrent_names:
                raise ValueError(f"{who} makes no sense: an L1/L2 penalty on W_rec needs recurrent weights that "
                                 f"learn, and model {config.model!r} learns none (its reservoir is fixed)")
        return self


# -- the rows --------------------------------------------------------------------------------------
_ELMAN = {"model": "elman", "init": "smart_tanh", "unit": None}
_CLIP1 = "gradient-norm clipping at 1 (Algorithm 1; the paper's threshold, §4.1)"


def _paper(method: str, label: str, **extra) -> Remedy:
    alpha = paper.ALPHA if method == "msgd-cr" else 0.0
    return Remedy(method, label, {**_ELMAN, "method": method, "threshold": paper.THRESHOLD, "alpha": alpha,
                                  **extra},
                  (paper.LEARNING_RATE, 0.03, 0.003),
                  "none" if method == "msgd" else _CLIP1 + (", with Ω at α = 4" if alpha else ""),
                  (("network", "50 tanh units, smart_tanh initialization", PAPER),
                   ("update rule", "SGD, learning rate 0.01", PAPER),
                   *((("clipping", "norm, threshold 1", PAPER),) if method != "msgd" else ()),
                   *((("α (weight of Ω)", "4, constant", f"{PAPER} (Figure 7)"),) if alpha else ())),
                  table1_method=method)


#: Hessian-free's row: sequences per iteration (gradient, curvature) and its own caps on iterations.
HF_GRADIENT_BATCH, HF_CURVATURE_BATCH = 500, 100
HF_CAPS = (("smoke", 2), ("quick", 20), ("full", 5000))

#: The source of the Nottingham learning rate of the SGD rows on an Elman-like network.
TABLE1_RATE = "Table 1's rate (paper §4.2: 1 on Nottingham)"

ROWS: tuple[Remedy, ...] = (
    _paper("msgd", "MSGD"),
    _paper("msgd-c", "MSGD-C"),
    _paper("msgd-cr", "MSGD-CR"),
    Remedy("lstm", "LSTM (forget bias 1)",
           {"model": "lstm", "model_options": {"forget_bias": 1.0}, "method": "msgd-c", "threshold": 5.0,
            "alpha": 0.0},
           (1.0, 0.3, 0.1),
           "gradient-norm clipping at 5 (Sutskever, Vinyals & Le 2014; Zaremba et al. 2014)",
           (("network", "LSTM with forget gate (Gers et al. 2000), 50 cells, weights U(−1/√H, 1/√H)",
             "Hochreiter & Schmidhuber 1997; PyTorch's initialization"),
            ("forget-gate bias", "1", "Jozefowicz, Zaremba & Sutskever 2015"),
            ("update rule", "SGD, learning rate 1", "Zaremba, Sutskever & Vinyals 2014 (lr 1)"),
            ("clipping", "norm, threshold 5", "Sutskever et al. 2014; Zaremba et al. 2014")),
           corpus_lr=1.0, corpus_lr_source="Zaremba, Sutskever & Vinyals 2014 (SGD at 1)"),
    Remedy("gru", "GRU",
           {"model": "gru", "method": "msgd-c", "optimizer": "rmsprop", "threshold": 1.0, "alpha": 0.0},
           (1e-3, 3e-3, 3e-4),
           "gradient-norm clipping at 1 with RMSprop (Chung, Gulcehre, Cho & Bengio 2014)",
           (("network", "GRU (Cho et al. 2014), reset after the product, 50 units", "Cho et al. 2014; cuDNN's form"),
            ("update rule", "RMSprop, learning rate 1e-3, decay 0.99", "Chung et al. "
             "2014 (RMSprop); the rate and decay: PyTorch's defaults"),
            ("clipping", "norm, threshold 1", "Chung et al. 2014")),
           corpus_lr=1e-3, corpus_lr_source="the row's (RMSprop's default)"),
    Remedy("leaky", "leaky units",
           {"model": "leaky", "init": "smart_tanh", "method": "msgd-c", "threshold": 1.0, "alpha": 0.0},
           (paper.LEARNING_RATE, 0.03, 0.003),
           "gradient-norm clipping at 1 (Bengio, Boulanger-Lewandowski & Pascanu 2013 combine the two)",
           (("network", "leaky-integrator tanh units, fixed rates spread geometrically over 0.01–0.99",
             "Bengio, Boulanger-Lewandowski & Pascanu 2013; the spread: our choice"),
            ("update rule", "SGD, learning rate 0.01", f"{OURS} (the paper's)"),
            ("clipping", "norm, threshold 1", "Bengio et al. 2013")),
           corpus_lr=1.0, corpus_lr_source=TABLE1_RATE),
    Remedy("irnn", "IRNN",
           {"model": "elman", "init": "identity", "method": "msgd-c", "threshold": 1.0, "alpha": 0.0},
           (1e-3, 1e-2, 1e-4),
           "gradient-norm clipping at 1 (Le, Jaitly & Hinton 2015 clip; 1 is the lowest of their thresholds)",
           (("network", "ReLU units, W_rec = I, biases 0, W_in and W_out N(0, 0.001²)", "Le, Jaitly & Hinton 2015"),
            ("update rule", "SGD, learning rate 1e-3",
             "Le et al. 2015 search the rate; these candidates: our choice"),
            ("clipping", "norm, threshold 1", "Le et al. 2015 (their search: 1, 10, 100)")),
           corpus_lr=0.1, corpus_lr_source=f"{OURS} (a tenth of Table 1's rate: ReLU units are unbounded)"),
    Remedy("skip", "skip connections (d = 5)",
           {"model": "skip", "init": "smart_tanh", "model_options": {"delay": 5}, "method": "msgd-c",
            "threshold": 1.0, "alpha": 0.0},
           (paper.LEARNING_RATE, 0.03, 0.003),
           _CLIP1,
           (("network", "tanh units with an extra recurrent path from h_{t−5}, drawn like W_rec",
             "Lin, Horne, Tiňo & Giles 1996; El Hihi & Bengio 1996; d = 5: our choice"),
            ("update rule", "SGD, learning rate 0.01", f"{OURS} (the paper's)"),
            ("clipping", "norm, threshold 1", f"{OURS} (the paper's)")),
           corpus_lr=1.0, corpus_lr_source=TABLE1_RATE),
    Remedy("esn", "echo-state network",
           {"model": "esn", "method": "msgd", "optimizer": "adam", "alpha": 0.0},
           (1e-2, 3e-3, 3e-2),
           "none (only the readout learns; no gradient flows through time)",
           (("network", "fixed sparse reservoir, ρ = 0.95, 10 nonzero weights per unit, input scaling 1, "
             "non-leaky", "Jaeger 2001; Lukoševičius 2012"),
            ("readout training", "Adam on the readout through the training loop, learning rate 1e-2",
             f"{OURS} (Lukoševičius 2012: closed-form ridge regression, "
             "`ESN.fit_readout`; the loop trains by gradient so that every row has the same update budget)")),
           corpus_lr=1e-2, corpus_lr_source="the row's (Adam on the readout)"),
    Remedy("orthogonal", "orthogonal init",
           {"model": "elman", "init": "orthogonal", "method": "msgd-c", "threshold": 1.0, "alpha": 0.0},
           (paper.LEARNING_RATE, 0.03, 0.003),
           _CLIP1,
           (("network", "50 tanh units, W_rec orthogonal (gain 1)", "Saxe, McClelland & Ganguli 2014"),
            ("update rule", "SGD, learning rate 0.01", f"{OURS} (the paper's)"),
            ("clipping", "norm, threshold 1", f"{OURS} (the paper's)")),
           corpus_lr=1.0, corpus_lr_source=TABLE1_RATE),
    Remedy("nesterov", "Nesterov momentum",
           {**_ELMAN, "method": "msgd-c", "optimizer": "nesterov", "momentum": 0.9, "threshold": 1.0, "alpha": 0.0},
           (3e-3, 1e-2, 1e-3),
           "gradient-norm clipping at 1 (Bengio, Boulanger-Lewandowski & Pascanu 2013 combine the two)",
           (("network", "50 tanh units, smart_tanh initialization", PAPER),
            ("update rule", "SGD with Nesterov momentum μ = 0.9, learning rate 3e-3",
             "Sutskever, Martens, Dahl & Hinton 2013 (μ 0.9 to 0.99); the rates: our choice"),
            ("clipping", "norm, threshold 1", "Bengio et al. 2013")),
           corpus_lr=0.1,
           corpus_lr_source=f"{OURS}: Table 1's rate × (1 − μ), the same step size once the momentum builds up"),
    Remedy("rmsprop", "RMSprop",
           {**_ELMAN, "method": "msgd-c", "optimizer": "rmsprop", "threshold": 1.0, "alpha": 0.0},
           (1e-3, 3e-3, 3e-4),
           _CLIP1,
           (("network", "50 tanh units, smart_tanh initialization", PAPER),
            ("update rule", "RMSprop, learning rate 1e-3, decay 0.99",
             "Tieleman & Hinton 2012; the rate and decay: PyTorch's defaults"),
            ("clipping", "norm, threshold 1", f"{OURS} (the paper's)")),
           corpus_lr=1e-3, corpus_lr_source="the row's (RMSprop's default)"),
    Remedy("adam", "Adam",
           {**_ELMAN, "method": "msgd-c", "optimizer": "adam", "threshold": 1.0, "alpha": 0.0},
           (1e-3, 3e-3, 3e-4),
           _CLIP1,
           (("network", "50 tanh units, smart_tanh initialization", PAPER),
            ("update rule", "Adam, learning rate 1e-3, β = (0.9, 0.999), ε = 1e-8",
             "Kingma & Ba 2015"),
            ("clipping", "norm, threshold 1", f"{OURS} (the paper's)")),
           corpus_lr=1e-3, corpus_lr_source="the row's (Kingma & Ba 2015)"),
    Remedy("l1", "L1 on W_rec",
           {**_ELMAN, "method": "msgd-c", "threshold": 1.0, "alpha": 0.0, "l1": 1e-4},
           (paper.LEARNING_RATE, 0.03, 0.003),
           _CLIP1 + ", the penalty's gradient clipped with the data gradient",
           (("network", "50 tanh units, smart_tanh initialization", PAPER),
            ("penalty", "λ₁ ‖W_rec‖₁ (sum of absolute values), λ₁ = 1e-4", f"§3.3 names the remedy; λ₁: {OURS}"),
            ("update rule", "SGD, learning rate 0.01", PAPER),
            ("clipping", "norm, threshold 1", PAPER)),
           corpus_lr=1.0, corpus_lr_source=TABLE1_RATE),
    Remedy("l2", "L2 on W_rec",
           {**_ELMAN, "method": "msgd-c", "threshold": 1.0, "alpha": 0.0, "l2": 1e-3},
           (paper.LEARNING_RATE, 0.03, 0.003),
           _CLIP1 + ", the penalty's gradient clipped with the data gradient",
           (("network", "50 tanh units, smart_tanh initialization", PAPER),
            ("penalty", "(λ₂/2)‖W_rec‖², λ₂ = 1e-3", f"§3.3 names the remedy; λ₂: {OURS} (the middle weight of "
             "`bptt plot penalties`)"),
            ("update rule", "SGD, learning rate 0.01", PAPER),
            ("clipping", "norm, threshold 1", PAPER)),
           corpus_lr=1.0, corpus_lr_source=TABLE1_RATE),
    Remedy("hf", "Hessian-free",
           {**_ELMAN, "method": "msgd", "optimizer": "hf", "alpha": 0.0, "gradient_batch": HF_GRADIENT_BATCH,
            "curvature_batch": HF_CURVATURE_BATCH},
           (1.0,),
           "none (the damping bounds the step)",
           (("network", "50 tanh units, smart_tanh initialization", PAPER),
            ("update rule", "Hessian-free with structural damping, the defaults of `bptt.optim.HessianFree` "
             "(λ₀ = 1, CG ≤ 250 iterations, preconditioner (diag F + λ)^0.75)",
             "Martens 2010; Martens & Sutskever 2011 (docs/hf.md)"),
            ("sequences per iteration", f"{HF_GRADIENT_BATCH} for the gradient, the first {HF_CURVATURE_BATCH} "
             "of them for the curvature products", f"{OURS} (Martens & Sutskever 2011 use larger batches)"),
            ("learning rate", "none (the step is CG's solution, scaled by the line search); the one "
             "candidate 1 is a placeholder", "Martens 2010"),
            ("updates per run", "HF iterations, capped at " + ", ".join(f"{n:,} ({b})" for b, n in HF_CAPS)
             + " (the other rows count minibatch updates)", OURS)),
           corpus_note="Hessian-free trains on batches of whole sequences from zero states; Table 1's windows "
                       "carry the state from one window to the next, which its batches do not take",
           optional=True, caps=HF_CAPS),
)


def rows() -> dict[str, Remedy]:
    """The rows by name, in the report's order."""
    return {r.name: r for r in ROWS}
