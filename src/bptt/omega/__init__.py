"""Ω, the vanishing-gradient regularizer of §3.3: its formula (:mod:`bptt.omega.terms`),
used by the exact engine and by every other model, and the schedules of its weight α
(:mod:`bptt.omega.schedule`)."""

from bptt.omega.schedule import AlphaSchedule, ConstantAlpha, InverseTimeAlpha, alpha_schedule
from bptt.omega.terms import OMEGA_BOUND, OMEGA_VARIANTS, OmegaTerms, check_omega, omega_terms

__all__ = ["OMEGA_BOUND", "OMEGA_VARIANTS", "OmegaTerms", "check_omega", "omega_terms",
           "AlphaSchedule", "ConstantAlpha", "InverseTimeAlpha", "alpha_schedule"]
