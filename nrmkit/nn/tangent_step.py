r"""The rate-network step with its tangent map as one autograd node, with analytic adjoint.

Forward: one Euler step of :mod:`nrmkit.nn.rate_rnn` (time in units of τ), per network
``b = (s, g)`` with ``k`` tangent rows ``q_j`` and ``ε = Δt c_b``,

.. math::

    X = [\,φ \mid φ'⊙q_1 \mid \dots \mid φ'⊙q_k\,] \in ℝ^{N×(k+1)}, \qquad P = W_s X,

    h' = (1 − Δt)\,h + ε P_{:,0} + u, \qquad q'_j = (1 − Δt)\,q_j + ε P_{:,j},

with ``φ = φ(h; a, s)``, ``φ' = ∂φ/∂h``. Adjoint: given the cotangents ``h̄'``, ``q̄'_j``,

.. math::

    P̄ = ε\,[\,h̄' \mid q̄'_1 \mid \dots \mid q̄'_k\,], \qquad X̄ = W_s^{T} P̄, \qquad
    \bar W_s = \sum_g P̄ X^{T},

    ḡ = X̄_{:,0}, \qquad ḡ' = \sum_j X̄_{:,j} ⊙ q_j, \qquad
    \bar q_j = (1 − Δt)\,q̄'_j + φ' ⊙ X̄_{:,j},

    \bar h = (1 − Δt)\,h̄' + x̄, \qquad \bar u = h̄' \ \text{(summed to the shape of } u),

where ``(x̄, ā, s̄)`` is the activation's pullback of ``(ḡ, ḡ') = (∂L/∂φ, ∂L/∂φ')``
(:mod:`nrmkit.nn.activations`); gains and shifts shared by a population receive the sums of
``ā``, ``s̄`` over its neurons. One node replaces the ≈25 of autograd through the plain ops,
and a sparse ``W`` is applied transposed through a CSR copy of ``W^T`` made once, not a
transpose per step.

A sparse ``W`` multiplies the ``k + 1`` columns of all ``G`` networks at once, stored
neuron-major as ``(N, G(k+1))``; a dense ``W_s`` multiplies the state rows ``(G, N)`` and the
tangent rows ``(Gk, N)`` in two batched products. Either way the state row is computed by
exactly the operations of the step without tangent vectors (a sparse product is column by
column), so :meth:`~nrmkit.nn.rate_rnn.RateRNN.step` and
:meth:`~nrmkit.nn.rate_rnn.RateRNN.step_with_tangent` follow bitwise the same trajectory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from nrmkit.nn.activations import Activation


@dataclass(frozen=True)
class StepPlan:
    """What a step needs besides its differentiable inputs.

    Attributes:
        dt: Euler step ``Δt``.
        activation: the activation (with a pullback).
        scale: ``ε = Δt c`` with the couplings ``c`` (not differentiated), shaped
            ``(S, G, 1, 1)`` to scale rows ``(S, G, m, N)``.
        population: ``(N,)`` population index or None.
        population_count: ``P``, the number of populations (0 without ``population``).
        membership: ``(N, P)`` one-hot population matrix (sums per population as one
            product), or None.
        flat_population: ``(S, G, N)`` index of every neuron's entry in a contiguous
            ``(S, G, P)`` parameter (its population's gain or shift), or None.
        sparse: the sparse CSR ``(N, N)`` weight shared by all networks, or None (dense).
        sparse_transpose: CSR ``W^T`` (sparse only).
    """

    dt: float
    activation: Activation
    scale: Tensor
    population: Tensor | None
    population_count: int = 0
    sparse: Tensor | None = None
    sparse_transpose: Tensor | None = None
    membership: Tensor | None = None
    flat_population: Tensor | None = None


def sparse_operators(weight: Tensor) -> tuple[Tensor, Tensor]:
    """CSR ``W`` and ``W^T`` of a sparse ``(N, N)`` matrix, with 32-bit indices where they fit
    (the CPU sparse kernels otherwise convert the indices on every product)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # CSR support is flagged as beta
        coo = weight.to_sparse_coo().coalesce()
        transposed = torch.sparse_coo_tensor(coo.indices().flip(0), coo.values(), coo.shape)
        return _compact_csr(coo.to_sparse_csr()), _compact_csr(transposed.coalesce()
                                                                .to_sparse_csr())


def _compact_csr(matrix: Tensor) -> Tensor:
    if matrix._nnz() >= 2**31 - 1 or max(matrix.shape) >= 2**31 - 1:
        return matrix
    return torch.sparse_csr_tensor(matrix.crow_indices().to(torch.int32),
                                   matrix.col_indices().to(torch.int32), matrix.values(),
                                   matrix.shape)


def tangent_step(plan: StepPlan, state: Tensor, vectors: Tensor | None, gain: Tensor,
                 shift: Tensor, weight: Tensor | None, drive: Tensor | None):
    """``(h', Q')`` (or ``h'`` alone when ``vectors`` is None), see the module docstring.

    Shapes: ``state (S, G, N)``, ``vectors (S, G, k, N)``, ``gain``/``shift (S, G, P)``,
    ``weight (S, N, N)`` dense or None (then ``plan.sparse``), ``drive`` broadcastable to
    ``(S, G, N)``. Without any input requiring a gradient (or under ``no_grad``) no graph is
    recorded and nothing is saved.
    """
    batch = plan.scale.shape[:2]
    if state.shape[:-1] != batch or (vectors is not None and vectors.shape[:2] != batch):
        shapes = tuple(state.shape) if vectors is None else (tuple(state.shape),
                                                             tuple(vectors.shape))
        raise ValueError(f"state/vectors of shape {shapes} do not match the batch "
                         f"{tuple(batch)} of the network")
    inputs = (state, vectors, gain, shift, weight, drive)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return _TangentStep.apply(plan, *inputs)
    outputs, _ = _forward(plan, *inputs, save=False)
    return outputs


def _per_neuron(value: Tensor, plan: StepPlan) -> Tensor:
    """Gains or shifts per neuron, ``(S, G, N)``, from ``(S, G, P)`` (or ``(S, G, 1)``)."""
    if plan.population is None or value.shape[-1] == 1:
        return value
    index = plan.flat_population
    if (index is not None and value.shape[:-1] == index.shape[:-1]
            and value.shape[-1] == plan.population_count and value.is_contiguous()):
        return torch.take(value, index)
    return torch.index_select(value, -1, plan.population)


def flat_population(population: Tensor | None, batch_shape: torch.Size) -> Tensor | None:
    """``(S, G, N)`` flat index of ``population`` into contiguous ``(S, G, P)`` tensors."""
    if population is None:
        return None
    n_populations = int(population.max()) + 1
    start = torch.arange(batch_shape.numel(), device=population.device) * n_populations
    return (start.reshape(*batch_shape, 1) + population).contiguous()


def _sparse_columns(like: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """An uninitialised ``(1, G, m, N)`` tensor of rows stored neuron-major, ``(N, G·m)``:
    the dense operand of the sparse product."""
    _, n_couplings, n = like.shape
    storage = like.new_empty((n, n_couplings, m))
    return storage.permute(1, 2, 0).unsqueeze(0), storage.view(n, n_couplings * m)


def _sparse_product(matrix: Tensor, storage: Tensor, m: int) -> Tensor:
    """``M X`` of the neuron-major ``storage`` (``(N, G·m)``), as ``(1, G, m, N)`` rows."""
    n, columns = storage.shape
    # in place with β = 0: the product is written straight into fresh memory (``mm`` would
    # first fill a zero matrix and copy it); β = 0 never reads the uninitialised values
    product = storage.new_empty((n, columns)).addmm_(matrix, storage, beta=0)
    return product.view(n, columns // m, m).permute(1, 2, 0).unsqueeze(0)


def _sparse_state_product(matrix: Tensor, rows: Tensor) -> Tensor:
    """``M x`` of rows ``(1, G, N)``, as ``(1, G, N)``."""
    return _sparse_product(matrix, rows[0].transpose(0, 1), 1)[:, :, 0]


def _forward(plan: StepPlan, state, vectors, gain, shift, weight, drive, *, save: bool,
             per_neuron: tuple[Tensor, Tensor] | None = None):
    # The state row is computed by the same operations with or without tangent vectors
    # (the dense products separately, the sparse one column by column), so that step and
    # step_with_tangent follow bitwise the same trajectory. ``per_neuron``: the gains and
    # shifts already expanded to neurons (a caller running many steps expands them once).
    keep = 1.0 - plan.dt
    scale = plan.scale
    if per_neuron is None:
        a, s = _per_neuron(gain, plan), _per_neuron(shift, plan)
    else:
        a, s = per_neuron
    saved = slope = tangent_rows = None
    if vectors is None:
        if save:
            value, _, saved = plan.activation.linearize(state, a, s)
        else:
            value = plan.activation(state, a, s)
    else:
        value, slope, saved = plan.activation.linearize(state, a, s)
    if weight is None:
        if vectors is None:
            product_state = _sparse_state_product(plan.sparse, value) * scale[..., 0]
        else:
            rows, storage = _sparse_columns(state, vectors.shape[-2] + 1)
            rows[..., 0, :].copy_(value)
            torch.mul(slope.unsqueeze(-2), vectors, out=rows[..., 1:, :])
            product = _sparse_product(plan.sparse, storage, rows.shape[-2]).mul_(scale)
            product_state, product_vectors = product[..., 0, :], product[..., 1:, :]
    else:
        transposed = weight.transpose(-1, -2)
        product_state = torch.bmm(value, transposed) * scale[..., 0]
        if vectors is not None:
            n_matrices, n_couplings, k, n = vectors.shape
            tangent_rows = slope.unsqueeze(-2) * vectors
            product_vectors = torch.bmm(tangent_rows.view(n_matrices, n_couplings * k, n),
                                        transposed).view(vectors.shape).mul_(scale)
    next_state = torch.add(product_state, state, alpha=keep)
    if drive is not None:
        next_state = next_state + drive
    if vectors is None:
        outputs = next_state
    else:
        # contiguous rows: what the QR re-orthonormalisation reads fastest
        next_vectors = torch.add(product_vectors, vectors, alpha=keep,
                                 out=vectors.new_empty(vectors.shape))
        outputs = (next_state, next_vectors)
    if save:
        saved = (saved, slope, value, tangent_rows)
    return outputs, saved


class _TangentStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan, state, vectors, gain, shift, weight, drive):
        outputs, (activation_saved, slope, value, tangent_rows) = _forward(
            plan, state, vectors, gain, shift, weight, drive, save=True)
        ctx.plan = plan
        ctx.has_vectors = vectors is not None
        ctx.gain_shape, ctx.shift_shape = gain.shape, shift.shape
        ctx.drive_shape = None if drive is None else drive.shape
        if not ctx.needs_input_grad[5]:  # rows X, only for the gradient of a dense W
            value = tangent_rows = None
        # saved intermediates may be Python numbers (a scalar gain, the tanh_pos factor)
        ctx.constants = {i: v for i, v in enumerate(activation_saved)
                         if not isinstance(v, Tensor)}
        tensors = [v if isinstance(v, Tensor) else None for v in activation_saved]
        ctx.save_for_backward(vectors, weight, slope, value, tangent_rows, *tensors)
        return outputs

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        # grads are materialised: zeros, never None, for unused outputs
        vectors, weight, slope, value, tangent_rows, *activation_saved = ctx.saved_tensors
        for i, v in ctx.constants.items():
            activation_saved[i] = v
        saved = (vectors, weight, slope, value, tangent_rows, tuple(activation_saved))
        shapes = (ctx.gain_shape, ctx.shift_shape, ctx.drive_shape)
        return (None, *step_backward(ctx.plan, saved, grads[0],
                                     grads[1] if ctx.has_vectors else None,
                                     ctx.needs_input_grad[1:], shapes))


def step_backward(plan: StepPlan, saved: tuple, grad_state: Tensor, grad_vectors: Tensor | None,
                  needs: tuple[bool, ...], shapes: tuple | None) -> tuple:
    """The adjoint of one step (module docstring): the cotangents of
    ``(state, vectors, gain, shift, weight, drive)`` (None where not needed) from those of
    ``(h', Q')``.

    ``saved``: ``(vectors, weight, slope, value, tangent_rows, activation_saved)`` of the
    forward step; ``needs``: which of the six inputs need a cotangent; ``shapes``: the shapes
    of gain, shift and drive — or None: the gain and shift cotangents stay per neuron,
    ``(S, G, N)`` (a caller summing many steps reduces them to populations once).
    """
    keep = 1.0 - plan.dt
    scale = plan.scale
    vectors, weight, slope, value, tangent_rows, activation_saved = saved
    need_state, need_vectors, need_gain, need_shift, need_weight, need_drive = needs
    gain_shape, shift_shape, drive_shape = shapes if shapes is not None else (None,) * 3
    # ε h̄', ε Q̄' are the cotangents of the unscaled products W φ, W (φ'⊙Q); pulled
    # back through W they give ∂L/∂φ and ∂L/∂(φ'⊙Q)
    result_weight = pulled_vectors = None
    if weight is None:
        if grad_vectors is None:
            pulled_state = _sparse_state_product(plan.sparse_transpose,
                                                 grad_state * scale[..., 0])
        else:
            rows, storage = _sparse_columns(grad_state, grad_vectors.shape[-2] + 1)
            torch.mul(grad_state.unsqueeze(-2), scale, out=rows[..., :1, :])
            torch.mul(grad_vectors, scale, out=rows[..., 1:, :])
            pulled = _sparse_product(plan.sparse_transpose, storage, rows.shape[-2])
            pulled_state, pulled_vectors = pulled[..., 0, :], pulled[..., 1:, :]
    else:
        scaled_state = grad_state * scale[..., 0]
        pulled_state = torch.bmm(scaled_state, weight)
        if grad_vectors is not None:
            n_matrices, n_couplings, k, n = grad_vectors.shape
            scaled_vectors = (grad_vectors * scale).view(n_matrices, n_couplings * k, n)
            pulled_vectors = torch.bmm(scaled_vectors, weight).view(grad_vectors.shape)
        if need_weight:  # W̄_s = Σ_g ε (h̄' φᵀ + Σ_j q̄'_j (φ'⊙q_j)ᵀ)
            result_weight = torch.bmm(scaled_state.transpose(-1, -2), value)
            if grad_vectors is not None:
                result_weight.baddbmm_(scaled_vectors.transpose(-1, -2),
                                       tangent_rows.view(n_matrices, n_couplings * k, n))

    grad_slope = result_vectors = None
    if pulled_vectors is not None:
        grad_slope = (vectors * pulled_vectors).sum(-2)
        if need_vectors:
            result_vectors = torch.addcmul(grad_vectors * keep, slope.unsqueeze(-2),
                                           pulled_vectors)
    parameters = need_gain or need_shift
    grad_x, grad_a, grad_s = plan.activation.pullback(
        activation_saved, pulled_state, grad_slope, parameters)
    result_state = torch.add(grad_x, grad_state, alpha=keep) if need_state else None
    result_gain = grad_a if need_gain else None
    result_shift = grad_s if need_shift else None
    if shapes is not None:
        result_gain = None if result_gain is None else _per_population(result_gain,
                                                                       gain_shape, plan)
        result_shift = None if result_shift is None else _per_population(result_shift,
                                                                         shift_shape, plan)
    result_drive = grad_state.sum_to_size(drive_shape) if need_drive else None
    return (result_state, result_vectors, result_gain, result_shift, result_weight,
            result_drive)


def population_membership(population: Tensor | None, dtype: torch.dtype,
                          max_populations: int = 256) -> Tensor | None:
    """One-hot ``(N, P)`` matrix of ``population`` (None for none or more than
    ``max_populations`` populations)."""
    if population is None:
        return None
    n_populations = int(population.max()) + 1
    if n_populations > max_populations:
        return None
    return torch.nn.functional.one_hot(population, n_populations).to(dtype)


def _per_population(grad: Tensor, shape: torch.Size, plan: StepPlan) -> Tensor:
    """Sum per-neuron ``(S, G, N)`` gradients into a parameter of shape ``(S, G, P)``."""
    width = shape[-1]
    if width == 1:
        grad = grad.sum(-1, keepdim=True)
    elif plan.population is not None:
        membership = plan.membership
        if (membership is not None and membership.shape[-1] == width
                and membership.dtype == grad.dtype):
            grad = torch.matmul(grad, membership)
        else:
            summed = grad.new_zeros((*grad.shape[:-1], width))
            grad = summed.index_add_(-1, plan.population, grad)
    return grad.sum_to_size(shape)
