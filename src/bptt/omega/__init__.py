"""Ω, the vanishing-gradient regularizer of §3.3: its formula (:mod:`bptt.omega.terms`),
used by the exact engine and by every other model; the wrapper that adds it to any
recurrent PyTorch module (:mod:`bptt.omega.wrapper`, step maps in
:mod:`bptt.omega.stepmaps`); and the schedules of its weight α
(:mod:`bptt.omega.schedule`)."""

from bptt.omega.schedule import AlphaSchedule, ConstantAlpha, InverseTimeAlpha, alpha_schedule
from bptt.omega.terms import OMEGA_BOUND, OMEGA_VARIANTS, OmegaTerms, check_omega, omega_terms
from bptt.omega.wrapper import SEMANTICS, Omega, OmegaValue, layer_omega, penalty

__all__ = ["OMEGA_BOUND", "OMEGA_VARIANTS", "OmegaTerms", "check_omega", "omega_terms",
           "AlphaSchedule", "ConstantAlpha", "InverseTimeAlpha", "alpha_schedule",
           "SEMANTICS", "Omega", "OmegaValue", "layer_omega", "penalty"]
