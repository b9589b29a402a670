"""The dense-Jacobian reference algorithm, kept for benchmarks and cross-checks.

This is the algorithm of the original FlyStability code (but with the correct derivative
and the Jacobian taken at the state each step starts from): for one network at a time,
build the ``N×N`` Jacobian ``D_t = (1 − Δt) I + Δt c W diag(φ'(h_t))`` every step, multiply
it into the tangent basis, QR every ``t_ONS``. It costs ``O(N²)`` memory traffic plus an
``N×N×k`` product per step and per network, which is what the batched Jacobian-free engine
avoids. Do not use it for science: use :func:`nrmkit.dynamics.lyapunov_spectrum`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nrmkit.nn.activations import get_activation


def dense_jacobian_spectrum(
    weight: Tensor,
    *,
    n_exponents: int,
    n_steps: int,
    steps_per_ons: int,
    dt: float = 0.1,
    coupling: float = 1.0,
    gain: Tensor | float = 1.0,
    shift: Tensor | float = 0.0,
    activation: str = "tanh",
    state: Tensor,
    basis: Tensor,
) -> Tensor:
    """Exponents ``(k,)`` of one network over ``n_steps`` steps (no transients).

    Args:
        weight: ``(N, N)`` signed weights. ``state``: ``(N,)``. ``basis``: ``(N, k)`` columns.
    """
    phi = get_activation(activation)
    n = weight.shape[0]
    eye = torch.eye(n, dtype=weight.dtype, device=weight.device)
    scaled = coupling * weight
    log_sum = torch.zeros(n_exponents, dtype=torch.float64, device=weight.device)
    q = basis
    for step in range(1, n_steps + 1):
        value, slope = phi.value_and_derivative(state, gain, shift)
        jacobian = (1.0 - dt) * eye + dt * scaled * slope[None, :]
        q = jacobian @ q
        state = (1.0 - dt) * state + dt * (scaled @ value)
        if step % steps_per_ons == 0:
            q, r = torch.linalg.qr(q)
            log_sum += torch.log(torch.diagonal(r).abs().to(torch.float64))
    return log_sum / (n_steps * dt)
