"""Models: the paper's RNN (ensemble-first), its initializations, and the rival
architectures of the remedies comparison, each with the same interface
(:class:`bptt.models.base.EnsembleModel`)."""

from bptt.models.base import AutogradEnsemble, EnsembleModel
from bptt.models.elman import ElmanRNN
from bptt.models.esn import ESN
from bptt.models.gru import GRU
from bptt.models.init import INITS, ensemble_init, member_init, spectral_radius
from bptt.models.leaky import LeakyRNN
from bptt.models.lstm import LSTM
from bptt.models.skip import SkipRNN

#: Every ensemble model by name.
MODELS = {"elman": ElmanRNN, "lstm": LSTM, "gru": GRU, "leaky": LeakyRNN, "skip": SkipRNN, "esn": ESN}

__all__ = ["AutogradEnsemble", "ESN", "ElmanRNN", "EnsembleModel", "GRU", "INITS", "LSTM", "LeakyRNN",
           "MODELS", "SkipRNN", "ensemble_init", "member_init", "spectral_radius"]
