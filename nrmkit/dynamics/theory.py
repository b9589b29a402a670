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
