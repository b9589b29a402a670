"""Dynamics: the Lyapunov engine, spectrum metrics, independent checks and theory."""

from nrmkit.dynamics.lyapunov import LyapunovResult, lyapunov_spectrum, orthonormalize
from nrmkit.dynamics.metrics import kaplan_yorke_dimension, ks_entropy, mean_exponent

__all__ = [
    "LyapunovResult",
    "kaplan_yorke_dimension",
    "ks_entropy",
    "lyapunov_spectrum",
    "mean_exponent",
    "orthonormalize",
]
