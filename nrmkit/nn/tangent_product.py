r"""The rate-network step and tangent map with one product per step (inference only).

For the dense step of :mod:`nrmkit.nn.tangent_step` (per network ``b = (s, g)``, ``ε = Δt c_b``)

.. math::

    h' = (1 − Δt)\,h + ε φ(h) W_s^{\mathsf T} + u, \qquad
    q'_j = (1 − Δt)\,q_j + ε\,(φ'(h)⊙q_j)\,W_s^{\mathsf T},

:func:`fused_tangent_step` stacks the state rows of the ``G`` networks of a matrix and then
their ``G·k`` tangent rows into one ``(G(k+1)) × N`` operand, so that each step reads every
``W_s`` once (the autograd node reads it twice: the state rows and the tangent rows in two
products, so that a step without tangent vectors follows bitwise the same trajectory). A step's
output is one ``(S, G(k+1), N)`` tensor whose two parts, ``h'`` and ``Q'``, the next step
reads in place, so that its Euler term ``(1 − Δt)[h | Q]`` is one in-place addition to the
product: with tanh a step is the product and five pointwise operations (the warm-up's
state-only step, :func:`fused_state_step`, three). Nothing is recorded for autograd.

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

from collections.abc import Callable

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
        packed = self._packed_for(rows.shape[1])
        if len(packed) == 1:
            return _linear(rows[0], packed[0]).unsqueeze(0)
        return torch.stack([_linear(part, matrix) for part, matrix in zip(rows, packed,
                                                                         strict=True)])

    def _packed_for(self, n_rows: int) -> list[Tensor]:
        """Every matrix reordered for products with ``n_rows`` rows (made once)."""
        packed = self._packed.get(n_rows)
        if packed is None:
            packed = self._packed[n_rows] = [
                torch.ops.mkldnn._reorder_linear_weight(matrix, n_rows)
                for matrix in self.weight]
        return packed


def packed_matmul(weight: Tensor, n_rows: int) -> Callable[[Tensor], Tensor]:
    """``rows (n_rows, K) ↦ rows Wᵀ`` for one ``(M, K)`` matrix ``weight``, through oneDNN's
    kernel with ``weight`` reordered once for ``n_rows`` rows where it applies (CPU,
    float32: equal to ``mm`` to round-off), else ``mm``. For a matrix multiplied by many
    row blocks of one size (a sequence's steps)."""
    if not _onednn_applies(weight):
        transposed = weight.t()
        return lambda rows: torch.mm(rows, transposed)
    packed = torch.ops.mkldnn._reorder_linear_weight(weight, n_rows)
    return lambda rows: _linear(rows, packed)


def _linear(rows: Tensor, packed: Tensor) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(rows, packed, None, "none", [], "")


def fused_tangent_step(plan: StepPlan, state: Tensor, vectors: Tensor, gain: Tensor,
                       shift: Tensor, weight: PackedWeight,
                       drive: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(h', Q')`` of a dense network with one product ``X W_sᵀ`` per matrix.

    Shapes: ``state (S, G, N)``, ``vectors (S, G, k, N)`` (``k ≥ 1``), ``gain``/``shift
    (S, G, P)``, ``weight`` the :class:`PackedWeight` of the ``(S, N, N)`` matrices,
    ``drive`` broadcastable to ``(S, G, N)``. Returns the two parts of one ``(S, G(k+1), N)``
    tensor, ``h' = out[:, :G]`` and ``Q' = out[:, G:]`` viewed as ``(S, G, k, N)``; passed
    back as the next step's input they are read in place. No gradient flows (call it under
    ``torch.no_grad`` or with inputs that need none).
    """
    n_matrices, n_couplings, k, n = vectors.shape
    rows = state.new_empty((n_matrices, n_couplings * (k + 1), n))
    scaled_slope = _scaled_linearize(plan, state, gain, shift, rows[:, :n_couplings])
    tangent_rows = rows[:, n_couplings:].view(vectors.shape)
    torch.mul(scaled_slope.unsqueeze(-2), vectors, out=tangent_rows)
    output = weight.product(rows)
    keep = 1.0 - plan.dt
    joint = _joint_output(state, vectors)
    next_state = output[:, :n_couplings]
    next_vectors = output[:, n_couplings:].view(vectors.shape)
    if joint is not None:
        output.add_(joint, alpha=keep)
    else:
        next_state.add_(state, alpha=keep)
        next_vectors.add_(vectors, alpha=keep)
    if drive is not None:
        next_state.add_(drive)
    return next_state, next_vectors


def fused_state_step(plan: StepPlan, state: Tensor, gain: Tensor, shift: Tensor,
                     weight: PackedWeight, drive: Tensor | None = None) -> Tensor:
    """``h'`` of :func:`fused_tangent_step` without tangent vectors (``state (S, G, N)``;
    the same kernel for ``G`` rows per matrix)."""
    rows = torch.mul(plan.activation(state, _per_neuron(gain, plan),
                                     _per_neuron(shift, plan)), plan.scale.squeeze(-1))
    next_state = weight.product(rows).add_(state, alpha=1.0 - plan.dt)
    if drive is not None:
        next_state.add_(drive)
    return next_state


def _scaled_linearize(plan: StepPlan, state: Tensor, gain: Tensor, shift: Tensor,
                      out: Tensor) -> Tensor:
    """``εφ'(h)``, with ``εφ(h)`` written into ``out`` (``(S, G, N)``)."""
    activation, scale = plan.activation, plan.scale.squeeze(-1)
    gain, shift = _per_neuron(gain, plan), _per_neuron(shift, plan)
    if activation.scaled_linearize is not None:
        return activation.scaled_linearize(state, gain, shift, scale, out)
    value, slope, _ = activation.linearize(state, gain, shift)
    torch.mul(value, scale, out=out)
    return slope * scale


def _joint_output(state: Tensor, vectors: Tensor) -> Tensor | None:
    """The ``(S, G(k+1), N)`` tensor of which ``state`` and ``vectors`` are the two parts
    (as :func:`fused_tangent_step` returns them), or None."""
    base = state._base
    if base is None or vectors._base is not base or not base.is_contiguous():
        return None
    n_matrices, n_couplings, k, n = vectors.shape
    rows = n_couplings * (k + 1)
    if (base.numel() != n_matrices * rows * n or state.data_ptr() != base.data_ptr()
            or not _strided_as(state, (rows * n, n, 1))
            or vectors.data_ptr() != base.data_ptr() + n_couplings * n * base.element_size()
            or not _strided_as(vectors, (rows * n, k * n, n, 1))):
        return None
    return base.view(n_matrices, rows, n)


def _strided_as(tensor: Tensor, strides: tuple[int, ...]) -> bool:
    """Whether ``tensor`` has ``strides`` in every dimension longer than one (the stride
    of a dimension of length one is arbitrary)."""
    return all(stride == expected or size == 1 for stride, expected, size
               in zip(tensor.stride(), strides, tensor.shape, strict=True))
