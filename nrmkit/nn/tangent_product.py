r"""The rate-network step and tangent map with one product per step (inference only).

For the dense step of :mod:`nrmkit.nn.tangent_step` (per network ``b = (s, g)``, ``ε = Δt c_b``)

.. math::

    P = W_s\,[\,φ \mid φ'⊙q_1 \mid \dots \mid φ'⊙q_k\,], \qquad
    h' = (1 − Δt)\,h + ε P_{:,0} + u, \qquad q'_j = (1 − Δt)\,q_j + ε P_{:,j},

:func:`fused_tangent_step` stacks the state row and the ``k`` tangent rows of all ``G``
networks of a matrix into one ``(G(k+1)) × N`` operand, so that each step reads every
``W_s`` once (the autograd node reads it twice: the state rows and the tangent rows in two
products, so that a step without tangent vectors follows bitwise the same trajectory).
The rows are written in place into one buffer and the Euler update is applied in place to
the product; nothing is recorded for autograd.

Because a matrix product's round-off depends on the number of rows it multiplies, the state
computed here agrees with :meth:`RateRNN.step <nrmkit.nn.rate_rnn.RateRNN.step>` to
round-off, not bitwise; for fixed ``(G, k)`` the result is deterministic, so a sweep that
runs every sample in its own call gives each sample the same numbers in any chunk.

Reference: Engelken, Wolf & Abbott (2023), Phys. Rev. Research 5, 043044 (the tangent map
of rate networks applied without forming the Jacobian).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nrmkit.nn.tangent_step import StepPlan, _per_neuron


def fused_tangent_step(plan: StepPlan, state: Tensor, vectors: Tensor, gain: Tensor,
                       shift: Tensor, weight: Tensor,
                       drive: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(h', Q')`` of a dense network with one product ``W_s X`` per matrix.

    Shapes: ``state (S, G, N)``, ``vectors (S, G, k, N)``, ``gain``/``shift (S, G, P)``,
    ``weight (S, N, N)``, ``drive`` broadcastable to ``(S, G, N)``. Returns views of one
    ``(S, G, k+1, N)`` tensor: ``h'`` is ``[..., 0, :]``, ``Q'`` is ``[..., 1:, :]``.
    No gradient flows (call it under ``torch.no_grad`` or with inputs that need none).
    """
    keep = 1.0 - plan.dt
    n_matrices, n_couplings, k, n = vectors.shape
    value, slope, _ = plan.activation.linearize(state, _per_neuron(gain, plan),
                                                _per_neuron(shift, plan))
    rows = state.new_empty((n_matrices, n_couplings, k + 1, n))
    rows[..., 0, :].copy_(value)
    torch.mul(slope.unsqueeze(-2), vectors, out=rows[..., 1:, :])
    product = torch.bmm(rows.view(n_matrices, n_couplings * (k + 1), n),
                        weight.transpose(-1, -2)).view(rows.shape).mul_(plan.scale)
    next_state = product[..., 0, :].add_(state, alpha=keep)
    if drive is not None:
        next_state.add_(drive)
    next_vectors = product[..., 1:, :].add_(vectors, alpha=keep)
    return next_state, next_vectors
