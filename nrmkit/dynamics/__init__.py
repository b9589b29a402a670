"""Dynamics: the Lyapunov engine, spectrum metrics, independent checks, theory, and
fractional derivatives."""

from nrmkit.dynamics.fractional import FractionalOrder, fracdiff, fractional_order
from nrmkit.dynamics.lyapunov import LyapunovResult, lyapunov_spectrum, orthonormalize
from nrmkit.dynamics.metrics import kaplan_yorke_dimension, ks_entropy, mean_exponent

__all__ = [
    "FractionalOrder",
    "LyapunovResult",
    "fracdiff",
    "fractional_order",
    "kaplan_yorke_dimension",
    "ks_entropy",
    "lyapunov_spectrum",
    "mean_exponent",
    "orthonormalize",
]
