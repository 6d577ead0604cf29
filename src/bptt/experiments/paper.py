"""What the paper reports for its synthetic experiments, and the protocol it used.

Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
ICML 2013, §4.1. Only what the paper states is recorded here: its protocol, the
quantitative results of the other pathological problems and of the generalization
test, and the qualitative claims drawn from Figure 7. Figure 7's individual success
rates are read off a plot in the paper and are deliberately not transcribed; the
reports compare our numbers with the claims instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bptt.methods import METHODS

CITATION = ("R. Pascanu, T. Mikolov and Y. Bengio, \"On the difficulty of training recurrent "
            "neural networks\", ICML 2013 (arXiv:1211.5063)")

# -- §4.1: the protocol of the temporal order experiment (Figure 7) -----------------------
FIGURE7_INITS = ("sigmoid", "basic_tanh", "smart_tanh")
FIGURE7_METHODS = METHODS
FIGURE7_LENGTHS = (50, 100, 150, 200, 250)
FIGURE7_SEEDS = 5
HIDDEN = 50
BATCH_SIZE = 20
LEARNING_RATE = 0.01
THRESHOLD = 1.0
ALPHA = 4.0
#: A run succeeds when it gets fewer than 1% of 10,000 fresh sequences wrong.
SUCCESS_ERROR = 0.01
SUCCESS_SEQUENCES = 10_000
#: The update budget of one run.
MAX_UPDATES = 5_000_000


@dataclass(frozen=True)
class Claim:
    """A qualitative statement of the paper that a report checks against our numbers."""

    key: str
    text: str
    source: str


FIGURE7_CLAIMS = (
    Claim("ordering", "MSGD-CR succeeds at least as often as MSGD-C, and MSGD-C at least as often as MSGD, "
          "for every initialization and length.", "§4.1, Figure 7"),
    Claim("length", "Clipping and Ω matter more as the sequences grow longer: the advantage of MSGD-C and "
          "MSGD-CR over MSGD widens with length.", "§4.1, Figure 7"),
    Claim("smart_cr", "With the smart_tanh initialization MSGD-CR solves the task at every length "
          "(50 to 250).", "§4.1, Figure 7"),
)

# -- §4.1: the other pathological problems, MSGD-CR --------------------------------------
#: Runs per problem, and the lengths of the training sequences (drawn per minibatch).
SYNTHETIC_RUNS = 5
SYNTHETIC_TRAIN_LENGTHS = (50, 200)
#: The noiseless memorization problem: one model per length.
MEMORIZATION_LENGTHS = (50, 100, 150, 200)
#: Successful runs out of SYNTHETIC_RUNS, per problem, as the paper reports them.
SYNTHETIC_SUCCESS = {
    "adding": 5,
    "multiplication": 5,
    "temporal_order_3bit": 5,
    "permutation": 2,
    "memorization_5bit": 5,
    "memorization_23bit": 5,
}
SYNTHETIC_CLAIMS = (
    Claim("solved", "MSGD-CR solves every problem in all 5 runs except the random permutation problem, "
          "solved in 2 of 5.", "§4.1"),
)
#: Adding and multiplication models are also tested on sequences this long.
SYNTHETIC_GENERALIZATION_LENGTH = 500

# -- §4.1: generalization of the temporal order problem ----------------------------------
GENERALIZATION_TRAIN_LENGTHS = (50, 200)
GENERALIZATION_TEST_LENGTHS = (50, 100, 150, 200, 250, 500, 1000, 2000, 3000, 5000)
GENERALIZATION_SEEDS = 5
#: The paper's result: no error at any test length, for every one of the 5 seeds.
GENERALIZATION_ERROR = 0.0
GENERALIZATION_SOLVED_SEEDS = 5
GENERALIZATION_CLAIMS = (
    Claim("zero_error", "A temporal order model trained on lengths 50–200 (basic_tanh, MSGD-CR) makes no error "
          "on 10,000 sequences at any length from 50 to 5000, for all 5 seeds.", "§4.1"),
)
