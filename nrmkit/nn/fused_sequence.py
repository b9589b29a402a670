r"""A whole sequence of the RNN cell as one autograd node, with backpropagation through time
written out: one small matrix product per step forward and one backward, the weight
gradients as single large products over all steps.

The cell (:class:`~nrmkit.nn.recurrent.RNNCell` with a synaptic delay of one step) is

.. math::

    a_t = U x_t + b + V h_{t-1} + d_t, \qquad h_t = φ(a_t; θ), \qquad t = 1, …, T,

with inputs ``x_t`` ``(B, I)``, optional drive ``d_t`` (added pre-activation), hidden state
``h_t`` ``(B, H)`` and a pointwise nonlinearity ``φ`` with shape parameters ``θ`` (gamma:
``θ = (n, s)``; modReLU: its biases; ReLU, tanh, sigmoid: none). The forward pass records no
graph: it keeps the pre-activations ``A = (a_1 … a_T)`` and the states
``(h_1 … h_T)``, ``(T, B, H)`` each. With ``g_t = ∂L/∂h_t`` the gradient reaching ``h_t``
(from the loss directly, ``∂L/∂h_t|_direct``, and through the next step), the backward pass
runs

.. math::

    g_T = ∂L/∂h_T|_{\rm direct}, \qquad δ_t = g_t ⊙ φ'(a_t), \qquad
    g_{t-1} = ∂L/∂h_{t-1}|_{\rm direct} + δ_t V,

and then, with ``h_0`` the initial state,

.. math::

    ∂L/∂V = \sum_t δ_t^\top h_{t-1}, \quad ∂L/∂U = \sum_t δ_t^\top x_t, \quad
    ∂L/∂b = \sum_{t,β} δ_{t,β}, \quad ∂L/∂θ = \sum_{t,β} g_t ⊙ ∂_θ φ(a_t; θ),

``∂L/∂x_t = δ_t U``, ``∂L/∂d_t = δ_t`` (summed over broadcast dimensions), ``∂L/∂h_0 = δ_1 V``:
``∂L/∂V`` is one ``(H × T·B) @ (T·B × H)`` product. The shape parameters enter as the
*effective* values (gamma: ``n = softplus(ρ_n)``, ``s = clip(ρ_s, 0, 1)`` computed outside by
the module's own properties), so autograd carries ``∂L/∂θ`` back to the raw parameters
exactly as for the step-by-step loop.

The forward values are those of the step-by-step loop bit for bit (the same operations in the
same order: ``(U x_t + b) + V h_{t-1}``, then ``+ d_t``, then ``φ``); the gradients agree with
autograd's to round-off (the sums run in a different order). Memory: two ``(T, B, H)``
tensors kept for the backward pass and one more (``δ``) during it, on a CPU reused from one
call to the next once nothing holds them (:mod:`nrmkit.nn.sequence_buffers`). Cost per
step: one ``(B × H)(H × H)`` product forward and one backward plus pointwise work, then ``∂L/∂V``:
``3 · 2TBH²`` flops in all for the recurrence. The backward product ``δ_{t+1} V`` goes
through oneDNN's kernel with ``V`` reordered once per pass for the batch's row count where
that applies (CPU, float32: :func:`~nrmkit.nn.tangent_product.packed_matmul`, faster than
``mm`` at these shapes with several threads); the forward product stays ``mm``, the loop's.
Only first derivatives: the backward pass is not itself differentiable (no double backward,
no forward mode); the graph may be kept (``retain_graph``) and differentiated again.

Reference: Werbos, "Backpropagation through time: what it does and how to do it",
Proc. IEEE 78 (1990); the gamma derivatives are those of :mod:`nrmkit.nn.gamma`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional

from nrmkit.nn.gamma import GammaActivation, _pieces, gamma_slope
from nrmkit.nn.pointwise import ModReLU, Sigmoid
from nrmkit.nn.sequence_buffers import sequence_buffer
from nrmkit.nn.tangent_product import packed_matmul


@dataclass(frozen=True)
class PointwiseRule:
    """A pointwise nonlinearity ``h = φ(a; θ)`` as the fused sequence needs it.

    Attributes:
        name: for messages.
        shape: ``module -> θ``, the effective shape parameters (autograd-tracked), each
            broadcastable to ``(H,)``.
        constants: ``θ -> c``, what the steps use, computed once per pass (e.g. ``1 − s``).
        value: ``(a, c, out) -> out``: writes ``h = φ(a; θ)`` into ``out``, computed by the
            very operations of the module's forward (bit for bit).
        slope: ``(a, h, g, c, moments) -> φ'(a)``; with ``moments`` (a list of
            ``n_moments`` tensors ``(B, H)``, else empty) it also adds this step's terms of
            the shape gradient, ``g = ∂L/∂h`` times functions of ``a``, in place.
        shape_gradients: ``(sums, c) -> (∂L/∂θ_1, …)`` from the moments summed over steps
            and batch (each ``(H,)``).
        n_moments: how many moments the shape gradient needs.
    """

    name: str
    shape: Callable[[nn.Module], tuple[Tensor, ...]]
    constants: Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]
    value: Callable[[Tensor, tuple[Tensor, ...], Tensor], Tensor]
    slope: Callable[[Tensor, Tensor, Tensor, tuple[Tensor, ...], list[Tensor]], Tensor]
    shape_gradients: Callable[[list[Tensor], tuple[Tensor, ...]], tuple[Tensor, ...]]
    n_moments: int = 0


def _gamma_constants(shape: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """``(n, s, 1 − s, s n)``."""
    n, s = shape
    return n, s, 1.0 - s, s * n


def _gamma_value(a: Tensor, constants: tuple[Tensor, ...], out: Tensor) -> Tensor:
    """:func:`~nrmkit.nn.gamma.gamma_value`'s operations: ``(1 − s)·S/n + s·σ``."""
    n, s, one_minus_s = constants[:3]
    _, soft, sig = _pieces(a, n, s)
    return torch.add(one_minus_s * soft / n, s * sig, out=out)


def _gamma_slope(a: Tensor, h: Tensor, g: Tensor, constants: tuple[Tensor, ...],
                 moments: list[Tensor]) -> Tensor:
    """``∂_a γ = (1 − s)σ + s n σ(1 − σ)`` (``σ = σ(na)``, ``S = softplus(na)``) and the
    moments ``Σ gσ``, ``Σ gS``, ``Σ gaσ``, ``Σ gaσ(1 − σ)`` of the shape gradient."""
    n, s, one_minus_s, s_n = constants
    if not moments:
        return gamma_slope(a, n, s)
    _, soft, sig = _pieces(a, n, s)
    bell = sig * (1.0 - sig)
    g_a = g * a
    for moment, left, right in zip(moments, (g, g, g_a, g_a), (sig, soft, sig, bell),
                                   strict=True):
        moment.addcmul_(left, right)
    return torch.addcmul(one_minus_s * sig, s_n, bell)


def _gamma_shape_gradients(sums: list[Tensor], constants: tuple[Tensor, ...]
                           ) -> tuple[Tensor, ...]:
    """With ``∂_s γ = σ − S/n`` and ``∂_n γ = (1 − s)/n (aσ − S/n) + s a σ(1 − σ)``
    (:mod:`nrmkit.nn.gamma`): ``∂L/∂n``, ``∂L/∂s`` from the four moments."""
    n, s, one_minus_s, _ = constants
    g_sig, g_soft, g_a_sig, g_a_bell = sums
    return (one_minus_s / n * (g_a_sig - g_soft / n) + s * g_a_bell, g_sig - g_soft / n)


def _modrelu_value(a: Tensor, constants: tuple[Tensor, ...], out: Tensor) -> Tensor:
    """ModReLU's forward: ``sign(a)·relu(|a| + b)``."""
    return torch.mul(torch.sign(a), torch.relu(a.abs() + constants[0]), out=out)


def _modrelu_slope(a: Tensor, h: Tensor, g: Tensor, constants: tuple[Tensor, ...],
                   moments: list[Tensor]) -> Tensor:
    """``∂φ/∂a = 1[|a| + b > 0]·sign(a)²``, ``∂φ/∂b = 1[|a| + b > 0]·sign(a)`` (autograd's);
    the moment ``Σ g ∂φ/∂b``."""
    open_sign = (a.abs() + constants[0] > 0).to(a.dtype) * torch.sign(a)
    for moment in moments:
        moment.addcmul_(g, open_sign)
    return open_sign * open_sign


def _fixed(function: Callable[..., Tensor], slope_of_output: Callable[[Tensor], Tensor],
           name: str) -> PointwiseRule:
    """A rule without shape parameters whose slope is a function of the output ``h``."""
    return PointwiseRule(name, lambda module: (), lambda shape: (),
                         lambda a, constants, out: out.copy_(function(a)),
                         lambda a, h, g, constants, moments: slope_of_output(h),
                         lambda sums, constants: ())


GAMMA_RULE = PointwiseRule("gamma", lambda module: (module.gain, module.saturation),
                           _gamma_constants, _gamma_value, _gamma_slope,
                           _gamma_shape_gradients, n_moments=4)
MODRELU_RULE = PointwiseRule("modrelu", lambda module: (module.bias,), lambda shape: shape,
                             _modrelu_value, _modrelu_slope, lambda sums, constants: (sums[0],),
                             n_moments=1)
RELU_RULE = _fixed(torch.relu, lambda h: (h > 0).to(h.dtype), "ReLU")
TANH_RULE = _fixed(torch.tanh, lambda h: 1.0 - h * h, "tanh")
SIGMOID_RULE = _fixed(torch.sigmoid, lambda h: h * (1.0 - h), "sigmoid")


def pointwise_rule(module: nn.Module) -> PointwiseRule | None:
    """The rule of a nonlinearity module, or None when the fused sequence does not know it.

    Known: :class:`~nrmkit.nn.gamma.GammaActivation` (``gamma``, ``gamma2``),
    :class:`~nrmkit.nn.pointwise.ModReLU`, :class:`~nrmkit.nn.pointwise.Sigmoid` and the
    fixed ``ReLU``/``tanh`` of :mod:`nrmkit.nn.recurrent` (recognised by their function).
    Exact types only: a subclass may evaluate something else.
    """
    kind = type(module)
    if kind is GammaActivation:
        return GAMMA_RULE
    if kind is ModReLU:
        return MODRELU_RULE
    if kind is Sigmoid:
        return SIGMOID_RULE
    function = getattr(module, "function", None)
    if kind.__name__ == "_Pointwise" and function is torch.relu:
        return RELU_RULE
    if kind.__name__ == "_Pointwise" and function is torch.tanh:
        return TANH_RULE
    return None


def forward_sequence(rule: PointwiseRule, inputs: Tensor, drive: Tensor | None, h0: Tensor,
                     input_weight: Tensor, input_bias: Tensor, recurrent_weight: Tensor,
                     shape: tuple[Tensor, ...], *, keep: bool = True
                     ) -> tuple[Tensor | None, Tensor]:
    """Pre-activations (None unless ``keep``) and states, ``(T, B, H)`` each.

    No graph is recorded (the caller runs it without gradients). ``drive`` is None or 3-d,
    its step ``t`` broadcast against ``(B, H)``.
    """
    n_steps, batch = inputs.shape[:2]
    size = recurrent_weight.shape[0]
    hidden = sequence_buffer((n_steps, batch, size), inputs)
    pre = sequence_buffer(hidden.shape, inputs) if keep else None
    scratch = None if keep else inputs.new_empty((batch, size))
    constants = rule.constants(shape)
    recurrent_t = recurrent_weight.t()
    h = h0
    for t in range(n_steps):
        a = pre[t] if pre is not None else scratch
        torch.add(functional.linear(inputs[t], input_weight, input_bias),
                  torch.mm(h, recurrent_t), out=a)
        if drive is not None:
            a.add_(drive[t])
        h = rule.value(a, constants, hidden[t])
    return pre, hidden


def _backward_loop(rule: PointwiseRule, pre: Tensor, hidden: Tensor, recurrent_weight: Tensor,
                   shape: tuple[Tensor, ...], grad_hidden: Tensor | None,
                   grad_last: Tensor | None, with_shape: bool
                   ) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``δ_t`` for every step ``(T, B, H)`` and ``∂L/∂θ`` (each ``(H,)``; empty unless
    ``with_shape``)."""
    n_steps, batch, size = pre.shape
    delta = sequence_buffer(pre.shape, pre)
    constants = rule.constants(shape)
    moments = [pre.new_zeros((batch, size)) for _ in range(rule.n_moments if with_shape else 0)]
    times_recurrent = packed_matmul(recurrent_weight.t().contiguous(), batch)  # δ ↦ δ V
    for t in range(n_steps - 1, -1, -1):
        direct = None if grad_hidden is None else grad_hidden[t]
        if t == n_steps - 1:
            if grad_last is not None:
                direct = grad_last if direct is None else direct + grad_last
            g = pre.new_zeros((batch, size)) if direct is None else direct
        elif direct is None:
            g = times_recurrent(delta[t + 1])
        else:
            g = times_recurrent(delta[t + 1]).add_(direct)
        torch.mul(g, rule.slope(pre[t], hidden[t], g, constants, moments), out=delta[t])
    if not with_shape:
        return delta, ()
    return delta, rule.shape_gradients([moment.sum(0) for moment in moments], constants)


class FusedRNNSequence(torch.autograd.Function):
    """``(h_1 … h_T), h_T`` of the RNN cell over a sequence; see the module docstring.

    ``apply(rule, inputs (T, B, I), drive (T, ·, ·) | None, h0 (B, H), U (H, I), b (H,),
    V (H, H), *θ)``.
    """

    @staticmethod
    def forward(ctx, rule: PointwiseRule, inputs: Tensor, drive: Tensor | None, h0: Tensor,
                input_weight: Tensor, input_bias: Tensor, recurrent_weight: Tensor,
                *shape: Tensor) -> tuple[Tensor, Tensor]:
        differentiated = any(ctx.needs_input_grad)
        pre, hidden = forward_sequence(rule, inputs, drive, h0, input_weight, input_bias,
                                       recurrent_weight, shape, keep=differentiated)
        ctx.rule = rule
        ctx.drive_shape = None if drive is None else drive.shape
        if differentiated:
            ctx.save_for_backward(inputs, h0, input_weight, recurrent_weight, hidden, pre,
                                  *shape)
        ctx.set_materialize_grads(False)
        return hidden, hidden[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hidden: Tensor | None, grad_last: Tensor | None):
        inputs, h0, input_weight, recurrent_weight, hidden, pre, *shape = ctx.saved_tensors
        needs = ctx.needs_input_grad
        delta, shape_grads = _backward_loop(ctx.rule, pre, hidden, recurrent_weight,
                                           tuple(shape), grad_hidden, grad_last,
                                           any(needs[7:]))
        size = hidden.shape[-1]
        flat = delta.flatten(0, 1)
        grads: list[Tensor | None] = [None] * len(needs)
        if needs[1]:
            grads[1] = torch.matmul(delta, input_weight)
        if needs[2]:
            grads[2] = delta.sum_to_size(ctx.drive_shape)
        if needs[3]:
            grads[3] = torch.mm(delta[0], recurrent_weight)
        if needs[4]:
            grads[4] = flat.t().mm(inputs.flatten(0, 1))
        if needs[5]:
            grads[5] = flat.sum(0)
        if needs[6]:                    # Σ_t δ_t^T h_{t−1}: one (H × T·B)(T·B × H) product
            first = delta[0].t().mm(h0)
            grads[6] = (first if len(hidden) == 1 else torch.addmm(
                first, delta[1:].reshape(-1, size).t(), hidden[:-1].reshape(-1, size)))
        for index, (value, total) in enumerate(zip(shape, shape_grads, strict=False)):
            if needs[7 + index]:
                grads[7 + index] = total.sum_to_size(value.shape)
        return tuple(grads)


def fused_rnn_sequence(rule: PointwiseRule, inputs: Tensor, drive: Tensor | None,
                       h0: Tensor, input_weight: Tensor, input_bias: Tensor,
                       recurrent_weight: Tensor, shape: tuple[Tensor, ...]
                       ) -> tuple[Tensor, Tensor]:
    """``(h_1 … h_T)`` ``(T, B, H)`` and ``h_T`` ``(B, H)``, differentiable in every tensor.

    ``drive``: None or indexed by step (``(T, …)``, at most 3-d, step ``t`` broadcast against
    ``(B, H)`` as in the loop).
    """
    if drive is not None and drive.dim() < 3:
        drive = drive.reshape(drive.shape[0], *(1,) * (3 - drive.dim()), *drive.shape[1:])
    return FusedRNNSequence.apply(rule, inputs, drive, h0, input_weight, input_bias,
                                  recurrent_weight, *shape)


__all__ = [
    "GAMMA_RULE",
    "MODRELU_RULE",
    "RELU_RULE",
    "SIGMOID_RULE",
    "TANH_RULE",
    "FusedRNNSequence",
    "PointwiseRule",
    "forward_sequence",
    "fused_rnn_sequence",
    "pointwise_rule",
]
