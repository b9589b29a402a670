r"""The rate-network step and tangent map with one product per step (inference only).

For the dense step of :mod:`nrmkit.nn.tangent_step` (per network ``b = (s, g)``, ``ε = Δt c_b``)

.. math::

    P = [\,ε φ \mid ε φ'⊙q_1 \mid \dots \mid ε φ'⊙q_k\,]\,W_s^{\mathsf T}, \qquad
    h' = (1 − Δt)\,h + P_{0} + u, \qquad q'_j = (1 − Δt)\,q_j + P_{j},

:func:`fused_tangent_step` stacks the state row and the ``k`` tangent rows of all ``G``
networks of a matrix into one ``(G(k+1)) × N`` operand, so that each step reads every
``W_s`` once (the autograd node reads it twice: the state rows and the tangent rows in two
products, so that a step without tangent vectors follows bitwise the same trajectory).
The rows are written in place into one buffer and the Euler update is applied in place to
the product; nothing is recorded for autograd.

The product goes through :class:`PackedWeight`: on a CPU with oneDNN and float32 each
matrix is reordered once into the blocked layout of oneDNN's matrix-product kernel for the
row count of the step (the same layout a compiled ``nn.Linear`` uses); a product with few
rows then runs near the machine's arithmetic peak instead of at the ≈ 40–65 % a general
``bmm`` reaches for 7–14 rows (measured: ``lyapu_benchmark``'s ``quick_start`` entry).
Elsewhere (CUDA, float64, no oneDNN) it is a ``bmm``.

Because a matrix product's round-off depends on the kernel and on the number of rows it
multiplies, the state computed here agrees with
:meth:`RateRNN.step <nrmkit.nn.rate_rnn.RateRNN.step>` to round-off, not bitwise; for fixed
``(G, k)`` the result is deterministic and each matrix is multiplied on its own, so a sweep
that runs every sample in its own call gives each sample the same numbers in any chunk.

Reference: Engelken, Wolf & Abbott (2023), Phys. Rev. Research 5, 043044 (the tangent map
of rate networks applied without forming the Jacobian).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nrmkit.nn.tangent_step import StepPlan, _per_neuron


def _onednn_applies(weight: Tensor) -> bool:
    """Whether :class:`PackedWeight` can use oneDNN's reordered weights for ``weight``."""
    return (weight.device.type == "cpu" and weight.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class PackedWeight:
    """``rows ↦ rows W_sᵀ`` for the dense matrices ``weight (S, N, N)``, each matrix
    reordered once per row count into oneDNN's blocked layout (CPU, float32), else ``bmm``.

    Holds derived data only (rebuilt from ``weight`` when needed; not pickled).
    """

    def __init__(self, weight: Tensor) -> None:
        self.weight = weight
        self.onednn = _onednn_applies(weight)
        self._packed: dict[int, list[Tensor]] = {}

    def product(self, rows: Tensor) -> Tensor:
        """``rows (S, M, N)`` → ``(S, M, N)``, row ``i`` of matrix ``s`` times ``W_sᵀ``."""
        if not self.onednn:
            return torch.bmm(rows, self.weight.transpose(-1, -2))
        n_rows = rows.shape[1]
        packed = self._packed.get(n_rows)
        if packed is None:
            packed = self._packed[n_rows] = [
                torch.ops.mkldnn._reorder_linear_weight(matrix, n_rows)
                for matrix in self.weight]
        if len(packed) == 1:
            return _linear(rows[0], packed[0]).unsqueeze(0)
        return torch.stack([_linear(part, matrix) for part, matrix in zip(rows, packed,
                                                                         strict=True)])


def _linear(rows: Tensor, packed: Tensor) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(rows, packed, None, "none", [], "")


def fused_tangent_step(plan: StepPlan, state: Tensor, vectors: Tensor, gain: Tensor,
                       shift: Tensor, weight: PackedWeight,
                       drive: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(h', Q')`` of a dense network with one product ``X W_sᵀ`` per matrix.

    Shapes: ``state (S, G, N)``, ``vectors (S, G, k, N)`` (``k`` may be 0: the state
    alone), ``gain``/``shift (S, G, P)``, ``weight`` the :class:`PackedWeight` of the
    ``(S, N, N)`` matrices, ``drive`` broadcastable to ``(S, G, N)``. Returns views of one
    ``(S, G, k+1, N)`` tensor: ``h'`` is ``[..., 0, :]``, ``Q'`` is ``[..., 1:, :]``.
    No gradient flows (call it under ``torch.no_grad`` or with inputs that need none).
    """
    keep = 1.0 - plan.dt
    n_matrices, n_couplings, k, n = vectors.shape
    value, slope, _ = plan.activation.linearize(state, _per_neuron(gain, plan),
                                                _per_neuron(shift, plan))
    scale = plan.scale.squeeze(-1)
    rows = state.new_empty((n_matrices, n_couplings, k + 1, n))
    torch.mul(value, scale, out=rows[..., 0, :])
    if k:
        torch.mul((slope * scale).unsqueeze(-2), vectors, out=rows[..., 1:, :])
    product = weight.product(rows.view(n_matrices, n_couplings * (k + 1), n))
    product = product.view(rows.shape)
    next_state = product[..., 0, :].add_(state, alpha=keep)
    if drive is not None:
        next_state.add_(drive)
    next_vectors = product[..., 1:, :].add_(vectors, alpha=keep)
    return next_state, next_vectors
