"""Dense-Jacobian reference algorithms, kept for benchmarks and cross-checks.

Both follow one network at a time, form the ``N×N`` Jacobian
``D_t = (1 − Δt) I + Δt c W diag(φ'(h_t))`` every step, multiply it into the tangent basis
and re-orthonormalise every ``t_ONS`` — with the correct derivative (gains and shifts
included) taken at the state the step starts from. They differ in how ``D_t`` is built:

* ``"product"`` — as the original FlyStability code builds it: the signed matrix is
  recombined from its sign mask and magnitudes (``C∘W``), ``diag(Δt φ')`` is formed as a
  dense matrix and the two are multiplied, an ``O(N³)`` product every step. This is the
  algorithm whose cost the published sweep times reflect.
* ``"broadcast"`` — an economical dense construction: ``D_t`` by broadcasting ``φ'`` over
  the columns of ``W``, ``O(N²)`` memory traffic per step.

Either way each step also costs an ``N×N×k`` product ``D_t Q``. The batched Jacobian-free
engine avoids all of it; do not use these for science: use
:func:`nrmkit.dynamics.lyapunov_spectrum`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nrmkit.nn.activations import get_activation

JACOBIAN_CONSTRUCTIONS = ("product", "broadcast")


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
    jacobian: str = "product",
) -> Tensor:
    """Exponents ``(k,)`` of one network over ``n_steps`` steps (no transients).

    Args:
        weight: ``(N, N)`` signed weights. ``state``: ``(N,)``. ``basis``: ``(N, k)`` columns.
        jacobian: ``"product"`` (the published construction) or ``"broadcast"``.
    """
    if jacobian not in JACOBIAN_CONSTRUCTIONS:
        raise ValueError(f"jacobian must be one of {JACOBIAN_CONSTRUCTIONS}, got {jacobian!r}")
    phi = get_activation(activation)
    scaled = coupling * weight
    build = _product_builder(scaled, dt) if jacobian == "product" else _broadcast_builder(
        scaled, dt)
    log_sum = torch.zeros(n_exponents, dtype=torch.float64, device=weight.device)
    q = basis
    for step in range(1, n_steps + 1):
        value, slope = phi.value_and_derivative(state, gain, shift)
        signed, matrix = build(slope)
        q = matrix @ q
        state = (1.0 - dt) * state + dt * (signed @ value)
        if step % steps_per_ons == 0:
            q, r = torch.linalg.qr(q)
            log_sum += torch.log(torch.diagonal(r).abs().to(torch.float64))
    return log_sum / (n_steps * dt)


Builder = Callable[[Tensor], tuple[Tensor, Tensor]]


def _product_builder(scaled: Tensor, dt: float) -> Builder:
    """``slope -> (C∘W, (1 − Δt)I + (C∘W)·diag(Δt φ'))`` with a dense product, every step."""
    mask, magnitude = torch.sign(scaled), scaled.abs()
    n = scaled.shape[0]

    def build(slope: Tensor) -> tuple[Tensor, Tensor]:
        signed = mask * magnitude
        identity = torch.eye(n, dtype=scaled.dtype, device=scaled.device) * (1.0 - dt)
        return signed, identity + signed @ torch.diag(dt * slope)

    return build


def _broadcast_builder(scaled: Tensor, dt: float) -> Builder:
    """``slope -> (W, (1 − Δt)I + Δt W φ'[None, :])`` by broadcasting, ``O(N²)``."""
    identity = torch.eye(scaled.shape[0], dtype=scaled.dtype, device=scaled.device)

    def build(slope: Tensor) -> tuple[Tensor, Tensor]:
        return scaled, (1.0 - dt) * identity + dt * scaled * slope[None, :]

    return build
