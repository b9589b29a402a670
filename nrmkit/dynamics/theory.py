"""Results known independently of the engine, used by tests and figure overlays.

References:
    Sompolinsky, Crisanti & Sommers (1988), "Chaos in random neural networks", Phys. Rev.
    Lett. 61, 259 (the transition to chaos at g = 1 and the mean-field theory);
    Engelken, Wolf & Abbott (2023), Phys. Rev. Research 5, 043044 (the mean-field λ_max
    and the sum rule of the full spectrum).
"""

from __future__ import annotations

import math

import numpy as np

#: Largest Lyapunov exponent (per τ) of h' = −h + J tanh(h), J_ij ~ N(0, g²/N), in the
#: limit N → ∞, from the dynamic mean-field equations (continuous time).
MEAN_FIELD_LAMBDA_MAX: dict[float, float] = {
    1.05: 0.0011, 1.1: 0.0037, 1.2: 0.0119, 1.3: 0.0224, 1.5: 0.0467, 2.0: 0.1125,
    2.5: 0.1761, 3.0: 0.2355, 4.0: 0.3415, 5.0: 0.4337, 6.0: 0.5154, 8.0: 0.6556,
    10.0: 0.7739,
}


def mean_field_lambda_max(g: float | np.ndarray, dt: float | None = None) -> np.ndarray:
    """Mean-field λ_max (per τ) at coupling ``g``, N → ∞.

    Below the transition the fixed point h = 0 is stable and λ_max is set by the edge of
    the circular law of J (eigenvalues with real part up to g): ``g − 1`` in continuous
    time, ``ln(1 − dt + dt·g)/dt`` for the Euler map with step ``dt`` when ``dt`` is given.
    Above it the tabulated continuous-time mean-field values, interpolated linearly.
    NaN above the tabulated range (g > 10).
    """
    table_g = np.array([1.0, *MEAN_FIELD_LAMBDA_MAX])
    table_l = np.array([0.0, *MEAN_FIELD_LAMBDA_MAX.values()])
    g = np.asarray(g, dtype=float)
    if dt is None:
        below = g - 1.0
    else:
        below = np.log(np.clip(1.0 - dt + dt * np.minimum(g, 1.0), 1e-300, None)) / dt
    values = np.where(g <= 1.0, below, np.interp(g, table_g, table_l))
    return np.where(g > table_g[-1], np.nan, values)


def euler_sum_rule_mean(dt: float) -> float:
    """Mean of all N exponents of the Euler rate map with zero-diagonal W, N → ∞.

    ``trace(J_t) = N(1 − Δt)`` does not depend on the state, so the volume contraction per
    step is fixed: mean exponent = ``ln(1 − Δt)/Δt`` (−1.0536 at Δt = 0.1).
    """
    return math.log(1.0 - dt) / dt


def linear_exponents(eigenvalues: np.ndarray, dt: float) -> np.ndarray:
    """Exact exponents of ``h ↦ (1 − Δt)h + Δt·M h``: ``ln|1 − Δt + Δt μ_k|/Δt``, descending.

    Holds for a linear network with connectivity eigenvalues ``μ_k`` and, below the
    transition to chaos, for the linearisation at the fixed point ``h = 0`` (tanh'(0) = 1).
    """
    rates = np.log(np.abs(1.0 - dt + dt * np.asarray(eigenvalues))) / dt
    return np.sort(rates)[::-1]


#: the largest real part of the bulk of the unit-coupling matrix ``J`` for N → ∞, per
#: connectivity ensemble (:mod:`nrmkit.nn.ensembles`): the circular law's radius 1, the
#: semicircle's √2 for FlyStability's symmetric ``(X + Xᵀ)/2``, and the Rajan–Abbott radius
#: 1 of the balanced E/I ensemble (normalised so).
BULK_EDGE: dict[str, float] = {"gaussian": 1.0, "symmetric": math.sqrt(2.0), "ei": 1.0}


def linear_lambda_max(g: float | np.ndarray, dt: float, edge: float = 1.0) -> np.ndarray:
    """λ_max (per τ) of a tanh network ``W = g·J`` while its fixed point 0 is stable,
    N → ∞: ``ln(1 − dt + dt·g·edge)/dt`` for ``g·edge ≤ 1`` (``edge`` = :data:`BULK_EDGE`
    of the ensemble, the largest real eigenvalue of ``J``), NaN beyond, where the
    linearisation no longer decides (a symmetric network then settles on other fixed
    points and stays non-chaotic; an i.i.d. or E/I network becomes chaotic)."""
    g = np.asarray(g, dtype=float)
    top = g * edge
    values = np.log(np.clip(1.0 - dt + dt * np.minimum(top, 1.0), 1e-300, None)) / dt
    return np.where(top <= 1.0, values, np.nan)


def semicircle_density(x: np.ndarray, radius: float) -> np.ndarray:
    """Wigner's semicircle ``ρ(x) = 2√(R² − x²)/(πR²)`` on ``[−R, R]`` (0 outside): the
    eigenvalue density of a large symmetric random matrix with ``R = 2√(N·Var J_ij)``.
    Its even moments are ``(R/2)^{2m}·C_m`` (Catalan numbers 1, 2, 5, …)."""
    x = np.asarray(x, dtype=float)
    return 2.0 * np.sqrt(np.clip(radius**2 - x**2, 0.0, None)) / (np.pi * radius**2)


def rajan_abbott_radius(frac_exc: float, sigma_exc: float, sigma_inh: float) -> float:
    """Radius ``√(f σ_E² + (1 − f) σ_I²)`` of the eigenvalue disk of a balanced E/I matrix
    whose excitatory (fraction ``f``) and inhibitory columns have entry variances
    ``σ_E²/N`` and ``σ_I²/N`` and whose rows sum to zero (Rajan & Abbott 2006, Phys. Rev.
    Lett. 97, 188104)."""
    return math.sqrt(frac_exc * sigma_exc**2 + (1.0 - frac_exc) * sigma_inh**2)
