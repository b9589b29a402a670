r"""The gamma activation: a two-parameter family between a smooth ReLU and a sigmoid.

.. math::

    \gamma(x; n, s) = (1 - s)\,\frac{\operatorname{softplus}(n x)}{n} + s\,\sigma(n x),

with gain ``n > 0`` and saturation ``s ∈ [0, 1]``: ``s = 0`` gives ``softplus(nx)/n``
(→ ReLU as ``n`` grows), ``s = 1`` the logistic sigmoid ``σ(nx)``. Derivatives
(``σ = σ(nx)``, ``S = softplus(nx)``):

.. math::

    \partial_x\gamma = (1-s)\,σ + s\,n\,σ(1-σ), \qquad
    \partial_s\gamma = σ - S/n, \qquad
    \partial_n\gamma = \frac{1-s}{n}\Big(xσ - \frac{S}{n}\Big) + s\,x\,σ(1-σ).

:func:`gamma` evaluates it with these analytic derivatives in both reverse mode
(``backward``) and forward mode (``jvp``, so ``torch.func.jvp``/``vmap`` work); ``softplus``
switches to its linear branch for ``nx > 20``, so nothing overflows and no gradient is NaN.

:class:`GammaActivation` holds the shape parameters: one ``(n, s)`` for the layer
(``gamma``) or one per neuron (``gamma2``; the published code intended this but shared one
pair). The parametrisation keeps them valid whatever the optimiser does:
``n = softplus(ρ_n)`` (strictly positive) and ``s = clip(ρ_s, 0, 1)`` with a straight-through
gradient, plus :meth:`GammaActivation.project_` which the trainer calls after every
optimiser step to put ``ρ_s`` back into ``[0, 1]`` (projected gradient descent: the gradient
is exact inside the box and ``s`` can sit exactly on 0 or 1).

Reference: Geadah, Lajoie et al., "Neural networks with optimized single-neuron adaptation
uncover biologically plausible regularization" (gamma, ANRU).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional

#: above this value of ``n·x`` softplus is replaced by its linear branch.
SOFTPLUS_THRESHOLD = 20.0


def _pieces(x: Tensor, n: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(nx, softplus(nx), σ(nx))`` with the overflow-safe softplus."""
    z = n * x
    return z, functional.softplus(z, beta=1.0, threshold=SOFTPLUS_THRESHOLD), torch.sigmoid(z)


def gamma_value(x: Tensor, n: Tensor, s: Tensor) -> Tensor:
    """``γ(x; n, s)`` from plain torch operations (autograd's own derivatives)."""
    _, soft, sig = _pieces(x, n, s)
    return (1.0 - s) * soft / n + s * sig


def gamma_slope(x: Tensor, n: Tensor | float, s: Tensor | float) -> Tensor:
    """``∂γ/∂x = (1 − s)σ(nx) + s n σ(nx)(1 − σ(nx))`` (the tangent map's diagonal)."""
    sig = torch.sigmoid(n * x)
    return (1.0 - s) * sig + s * n * sig * (1.0 - sig)


def _partials(x: Tensor, n: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    _, soft, sig = _pieces(x, n, s)
    bell = sig * (1.0 - sig)
    d_x = (1.0 - s) * sig + s * n * bell
    d_n = (1.0 - s) / n * (x * sig - soft / n) + s * x * bell
    d_s = sig - soft / n
    return d_x, d_n, d_s


class _Gamma(torch.autograd.Function):
    """γ with analytic derivatives in reverse and forward mode; n, s broadcast against x."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, n, s):
        return gamma_value(x, n, s)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, n, s = inputs
        ctx.save_for_backward(x, n, s)
        ctx.save_for_forward(x, n, s)

    @staticmethod
    def backward(ctx, grad_output):
        x, n, s = ctx.saved_tensors
        d_x, d_n, d_s = _partials(x, n, s)
        grad_x = grad_n = grad_s = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_output * d_x).sum_to_size(x.shape)
        if ctx.needs_input_grad[1]:
            grad_n = (grad_output * d_n).sum_to_size(n.shape)
        if ctx.needs_input_grad[2]:
            grad_s = (grad_output * d_s).sum_to_size(s.shape)
        return grad_x, grad_n, grad_s

    @staticmethod
    def jvp(ctx, tangent_x, tangent_n, tangent_s):
        x, n, s = ctx.saved_tensors
        d_x, d_n, d_s = _partials(x, n, s)
        out = torch.zeros_like(d_x)
        for tangent, partial in ((tangent_x, d_x), (tangent_n, d_n), (tangent_s, d_s)):
            if tangent is not None:
                out = out + tangent * partial
        return out


def gamma(x: Tensor, n: Tensor | float, s: Tensor | float) -> Tensor:
    """``γ(x; n, s)`` with analytic derivatives; ``n`` and ``s`` broadcast against ``x``.

    Args:
        x: pre-activations, any shape (e.g. ``(batch, H)``).
        n: gain(s) > 0: a scalar, ``(H,)`` per neuron, or the shape of ``x``.
        s: saturation(s) in ``[0, 1]``, broadcastable like ``n``.
    """
    n = torch.as_tensor(n, dtype=x.dtype, device=x.device)
    s = torch.as_tensor(s, dtype=x.dtype, device=x.device)
    return _Gamma.apply(x, n, s)


def inverse_softplus(value: Tensor) -> Tensor:
    """``ρ`` with ``softplus(ρ) = value`` (value > 0), stable for large values."""
    return value + torch.log(-torch.expm1(-value))


def clip_straight_through(raw: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """``clip(raw, low, high)`` in the forward pass, the identity in the backward pass."""
    return raw + (raw.clamp(low, high) - raw).detach()


class GammaActivation(nn.Module):
    """``γ(x; n, s)`` with its shape parameters, per layer or per neuron.

    Args:
        n_neurons: ``H`` (the last dimension of the pre-activations).
        per_neuron: ``(n, s)`` of shape ``(H,)`` (``gamma2``) or scalars (``gamma``).
        gain, saturation: initial values, scalars or ``(H,)`` tensors (n > 0, s ∈ [0, 1]).
        learn: make ``(n, s)`` trainable parameters (otherwise buffers).
    """

    def __init__(self, n_neurons: int, *, per_neuron: bool, gain: Tensor | float = 1.0,
                 saturation: Tensor | float = 0.0, learn: bool = True):
        super().__init__()
        shape = (n_neurons,) if per_neuron else ()
        gain = torch.as_tensor(gain, dtype=torch.get_default_dtype()).expand(shape).clone()
        saturation = torch.as_tensor(saturation, dtype=gain.dtype).expand(shape).clone()
        if not bool(torch.all(gain > 0)):
            raise ValueError("the gain n must be positive")
        if not bool(torch.all((saturation >= 0) & (saturation <= 1))):
            raise ValueError("the saturation s must lie in [0, 1]")
        self.per_neuron = per_neuron
        raw_gain, raw_saturation = inverse_softplus(gain), saturation
        if learn:
            self.raw_gain = nn.Parameter(raw_gain)
            self.raw_saturation = nn.Parameter(raw_saturation)
        else:
            self.register_buffer("raw_gain", raw_gain)
            self.register_buffer("raw_saturation", raw_saturation)

    @property
    def gain(self) -> Tensor:
        """``n = softplus(ρ_n)``: shape ``()`` or ``(H,)``."""
        return functional.softplus(self.raw_gain)

    @property
    def saturation(self) -> Tensor:
        """``s = clip(ρ_s, 0, 1)`` (straight-through gradient)."""
        return clip_straight_through(self.raw_saturation)

    def forward(self, x: Tensor) -> Tensor:
        return _Gamma.apply(x, self.gain, self.saturation)

    def slope(self, x: Tensor) -> Tensor:
        return gamma_slope(x, self.gain, self.saturation)

    @torch.no_grad()
    def project_(self) -> None:
        """Put ``ρ_s`` back into ``[0, 1]`` (call after each optimiser step)."""
        self.raw_saturation.clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        kind = "per neuron" if self.per_neuron else "per layer"
        learn = isinstance(self.raw_gain, nn.Parameter)
        return f"{kind}, learn={learn}"


def random_gain(shape: tuple[int, ...], *, generator: torch.Generator | None = None) -> Tensor:
    """The published random initial gain ``n0 = 5 + 2·U(0, 1)`` (one draw per entry)."""
    return 5.0 + 2.0 * torch.rand(shape, generator=generator)


__all__ = [
    "SOFTPLUS_THRESHOLD",
    "GammaActivation",
    "clip_straight_through",
    "gamma",
    "gamma_slope",
    "gamma_value",
    "inverse_softplus",
    "random_gain",
]
