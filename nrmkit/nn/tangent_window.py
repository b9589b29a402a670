r"""A window of a Lyapunov run as one autograd node, with the adjoint run back in one loop.

Forward: ``n`` re-orthonormalisation intervals of ``s`` fused steps each
(:mod:`nrmkit.nn.tangent_step`), exactly the operations of
:func:`~nrmkit.dynamics.lyapunov_spectrum` (same values, bit for bit): for ``m = 1 … n``

.. math::

    (h, Q) \leftarrow \mathrm{step}^{s}(h, Q), \qquad Q^{T} = \hat Q R \ \text{(reduced QR)},
    \qquad Q \leftarrow \hat Q^{T}, \qquad \ell_m = \log|\mathrm{diag}\,R|.

Backward: the adjoints of the steps (:func:`~nrmkit.nn.tangent_step.step_backward`) and of
every QR factorisation, in reverse order. For rows ``X`` (``k × N``) with ``Xᵀ = Q̂R`` and
``Q = Q̂ᵀ``, the cotangents ``Q̄`` and ``ℓ̄`` (so ``R̄ = diag(ℓ̄_i / R_ii)``) pull back to

.. math::

    B = R̄ R^{T} − Q Q̄^{T}, \qquad C = \mathrm{triu}(B), \qquad
    S = C + C^{T} − \mathrm{diag}(C), \qquad X̄ = R^{-1} (S Q + Q̄),

the reduced-QR adjoint for ``N ≥ k`` (Walter & Lehmann 2018; the formula of
``torch.linalg.qr``'s derivative) written for rows. One node per window instead of one per
step and per factorisation removes the autograd engine's work per node (≈ 30 % of a step
of the 2935-neuron connectome); the arithmetic is the same.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from nrmkit.nn.tangent_step import (
    StepPlan,
    _forward,
    _per_neuron,
    _per_population,
    step_backward,
)


def tangent_window(plan: StepPlan, state: Tensor, vectors: Tensor, gain: Tensor, shift: Tensor,
                   weight: Tensor | None, n_intervals: int, steps_per_interval: int):
    """``(h, Q, log_increments)`` after ``n_intervals`` intervals of ``steps_per_interval``
    steps, each closed by a QR re-orthonormalisation (module docstring).

    Shapes: ``state (S, G, N)``, ``vectors (S, G, k, N)`` (``k ≥ 2``), ``gain``/``shift``
    ``(S, G, P)``, ``weight (S, N, N)`` dense or None (then ``plan.sparse``);
    ``log_increments (n_intervals, S, G, k)`` float64, ``log|R_ii|`` in QR order.
    """
    inputs = (state, vectors, gain, shift, weight)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return _TangentWindow.apply(plan, n_intervals, steps_per_interval, *inputs)
    with torch.no_grad():
        return _run(plan, n_intervals, steps_per_interval, *inputs, tape=None)


def _orthonormalize(rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(Q, R, log|diag R|)`` of rows ``(…, k, N)``: the operations of
    :func:`nrmkit.dynamics.lyapunov.orthonormalize`."""
    q, r = torch.linalg.qr(rows.transpose(-1, -2), mode="reduced")
    log_diagonal = torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs().to(torch.float64))
    return q.transpose(-1, -2), r, log_diagonal


def _run(plan, n_intervals, steps_per_interval, state, vectors, gain, shift, weight, *,
         tape: list | None):
    keep_rows = tape is not None and weight is not None and weight.requires_grad
    per_neuron = (_per_neuron(gain, plan), _per_neuron(shift, plan))  # once per window
    logs = []
    for _ in range(n_intervals):
        steps = []
        for _ in range(steps_per_interval):
            before = vectors
            (state, vectors), saved = _forward(plan, state, vectors, gain, shift, weight, None,
                                               save=tape is not None, per_neuron=per_neuron)
            if tape is not None:
                activation_saved, slope, value, tangent_rows = saved
                if not keep_rows:
                    value = tangent_rows = None
                steps.append((before, slope, value, tangent_rows, activation_saved))
        vectors, r, log_diagonal = _orthonormalize(vectors)
        logs.append(log_diagonal)
        if tape is not None:
            tape.append((steps, vectors, r))
    return state, vectors, torch.stack(logs)


def _qr_adjoint(q: Tensor, r: Tensor, grad_q: Tensor, grad_log: Tensor) -> Tensor:
    """``X̄`` of rows ``X`` with ``Xᵀ = Q̂R``, ``Q = Q̂ᵀ``, from ``Q̄`` and ``ℓ̄`` (module
    docstring)."""
    diagonal = torch.diagonal(r, dim1=-2, dim2=-1)
    grad_r_diagonal = grad_log.to(r.dtype) / diagonal
    b = grad_r_diagonal.unsqueeze(-1) * r.transpose(-1, -2) - torch.matmul(
        q, grad_q.transpose(-1, -2))
    c = b.triu()
    symmetric = c + c.transpose(-1, -2)
    symmetric.diagonal(dim1=-2, dim2=-1).sub_(torch.diagonal(c, dim1=-2, dim2=-1))
    # R⁻¹ of the small k×k factor first, then one product with the k×N rows: far cheaper
    # than a triangular solve with N right-hand sides
    eye = torch.eye(r.shape[-1], dtype=r.dtype, device=r.device).expand_as(r)
    inverse = torch.linalg.solve_triangular(r, eye, upper=True, left=True)
    return torch.matmul(inverse, torch.matmul(symmetric, q).add_(grad_q))


class _TangentWindow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan, n_intervals, steps_per_interval, state, vectors, gain, shift,
                weight):
        tape: list = []
        outputs = _run(plan, n_intervals, steps_per_interval, state, vectors, gain, shift,
                       weight, tape=tape)
        ctx.plan, ctx.tape, ctx.weight = plan, tape, weight
        ctx.gain_shape, ctx.shift_shape = gain.shape, shift.shape
        return outputs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_state, grad_vectors, grad_logs):
        plan, weight = ctx.plan, ctx.weight
        need_state, need_vectors, need_gain, need_shift, need_weight = ctx.needs_input_grad[3:]
        needs = (True, True, need_gain, need_shift, need_weight, False)
        # per neuron, summed over the window's steps; reduced to populations at the end
        totals: list[Tensor | None] = [None, None, None]  # gain, shift, weight
        for interval in range(len(ctx.tape) - 1, -1, -1):
            steps, q, r = ctx.tape[interval]
            grad_vectors = _qr_adjoint(q, r, grad_vectors, grad_logs[interval])
            for before, slope, value, tangent_rows, activation_saved in reversed(steps):
                grads = step_backward(plan, (before, weight, slope, value, tangent_rows,
                                             activation_saved),
                                      grad_state, grad_vectors, needs, None)
                grad_state, grad_vectors = grads[0], grads[1]
                for slot, grad in enumerate(grads[2:5]):
                    if grad is not None:
                        totals[slot] = grad if totals[slot] is None else totals[slot].add_(grad)
        gain_total, shift_total, weight_total = totals
        if gain_total is not None:
            gain_total = _per_population(gain_total, ctx.gain_shape, plan)
        if shift_total is not None:
            shift_total = _per_population(shift_total, ctx.shift_shape, plan)
        return (None, None, None, grad_state if need_state else None,
                grad_vectors if need_vectors else None, gain_total, shift_total, weight_total)
