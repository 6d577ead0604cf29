"""Models: the paper's RNN (ensemble-first) and its initializations."""

from bptt.models.elman import ElmanRNN
from bptt.models.init import INITS, ensemble_init, member_init, spectral_radius

__all__ = ["ElmanRNN", "INITS", "ensemble_init", "member_init", "spectral_radius"]
