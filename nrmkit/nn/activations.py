r"""Rate-network activations φ(x; a, s) with analytic derivatives ∂φ/∂x.

Each activation returns its value and its derivative with respect to the
pre-activation ``x`` in one call, sharing the ``tanh`` evaluation. Gains ``a`` and shifts
``s`` broadcast against ``x`` (per neuron, per population or scalar).

===============  =========================  ==================================  ==============
name (aliases)   φ(x; a, s)                 φ'(x; a, s)                         uses a, s
===============  =========================  ==================================  ==============
tanh (std)       tanh(x)                    1 − tanh²(x)                        no
tanh_stretch     tanh(a(x − s))             a · sech²(a(x − s))                 yes
(strech)
tanh_pos (pos)   ½ (1 + tanh(a(x − s)))     ½ a · sech²(a(x − s))               yes
linear           a (x − s)                  a                                   yes
===============  =========================  ==================================  ==============

The derivatives include the gain and the shift (a published implementation used
``a·sech²(x)`` for every activation, which is wrong whenever ``s ≠ 0``, ``a ≠ 1`` or for
``tanh_pos``).

Pullbacks
---------
The analytic backward pass of the tangent step (:mod:`nrmkit.nn.tangent_step`) needs the
vector–Jacobian product of the pair ``(φ, φ')`` with respect to ``(x, a, s)``: given
cotangents ``ḡ = ∂L/∂φ`` and ``ḡ' = ∂L/∂φ'`` (elementwise),

.. math::

    \bar x = ḡ\,∂_xφ + ḡ'\,∂_xφ', \qquad
    \bar a = ḡ\,∂_aφ + ḡ'\,∂_aφ', \qquad
    \bar s = ḡ\,∂_sφ + ḡ'\,∂_sφ'.

With ``z = a(x − s)``, ``τ = tanh z``, ``T = 1 − τ²`` (so ``dτ/dz = T``, ``dT/dz = −2τT``):

* tanh: ``∂_xφ = T``, ``∂_xφ' = −2τT``; so ``x̄ = T(ḡ − 2τḡ')``; no ``a``, ``s``.
* tanh_stretch (``φ = τ``, ``φ' = aT``): ``∂_xφ = aT``, ``∂_aφ = (x − s)T``,
  ``∂_sφ = −aT``; ``∂_xφ' = −2a²τT``, ``∂_aφ' = T(1 − 2zτ)``, ``∂_sφ' = 2a²τT``.
  With ``u = T(ḡ − 2aτḡ')``: ``x̄ = a u``, ``s̄ = −a u``, ``ā = (x − s) u + T ḡ'``.
* tanh_pos (``φ = ½(1 + τ)``, ``φ' = ½aT``): the same with ``u = ½T(ḡ − 2aτḡ')`` and
  ``ā = (x − s) u + ½T ḡ'``.
* linear (``φ = a(x − s)``, ``φ' = a``): ``x̄ = aḡ``, ``s̄ = −aḡ``, ``ā = (x − s)ḡ + ḡ'``.

In every case ``s̄ = −x̄`` where the shift is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nrmkit.core.registry import ACTIVATIONS

ValueAndDerivative = Callable[[Tensor, Tensor | float, Tensor | float], tuple[Tensor, Tensor]]
Value = Callable[[Tensor, Tensor | float, Tensor | float], Tensor]
#: ``(x, a, s) -> (φ, φ', saved)``: ``saved`` is what the pullback needs.
Linearize = Callable[[Tensor, Tensor | float, Tensor | float], tuple[Tensor, Tensor, tuple]]
#: ``(x, a, s, ε, out) -> εφ'``, with ``εφ`` written into ``out``.
ScaledLinearize = Callable[[Tensor, Tensor | float, Tensor | float, Tensor, Tensor], Tensor]
#: ``(saved, ḡ, ḡ', parameters) -> (x̄, ā, s̄)``; ``ḡ'`` None means zero; ``ā``, ``s̄`` None
#: when the activation ignores gains and shifts or ``parameters`` is False.
Pullback = Callable[[tuple, Tensor, Tensor | None, bool],
                    tuple[Tensor, Tensor | None, Tensor | None]]


@dataclass(frozen=True)
class Activation:
    """A pointwise activation with its analytic derivative.

    Attributes:
        name: canonical registry name.
        formula: the function in words/maths, for documentation and figure labels.
        value_and_derivative: ``(x, gain, shift) -> (φ, ∂φ/∂x)``.
        uses_gain_shift: whether gains and shifts change the function at all.
        value: ``(x, gain, shift) -> φ`` alone (cheaper); None: taken from
            ``value_and_derivative``.
        linearize: ``(x, gain, shift) -> (φ, φ', saved)``, the same ``φ``, ``φ'`` as
            ``value_and_derivative`` plus the intermediates the pullback needs.
        scaled_linearize: ``(x, gain, shift, ε, out) -> ε φ'`` with ``ε φ`` written into
            ``out``, in fewer operations than ``linearize`` and two products (``ε``
            broadcast to ``x``; the one-product step of
            :mod:`nrmkit.nn.tangent_product`); None: from ``linearize``.
        pullback: the vector–Jacobian product of ``(φ, φ')`` (module docstring),
            ``(saved, ḡ, ḡ', parameters) -> (x̄, ā, s̄)`` (``ḡ'`` None: zero), every tensor
            broadcast to the shape of ``x``. Without ``linearize`` and ``pullback`` the rate
            network is differentiated by autograd instead.
    """

    name: str
    formula: str
    value_and_derivative: ValueAndDerivative
    uses_gain_shift: bool
    value: Value | None = None
    linearize: Linearize | None = None
    pullback: Pullback | None = None
    scaled_linearize: ScaledLinearize | None = None

    def __call__(self, x: Tensor, gain: Tensor | float = 1.0, shift: Tensor | float = 0.0):
        if self.value is not None:
            return self.value(x, gain, shift)
        return self.value_and_derivative(x, gain, shift)[0]

    def derivative(self, x: Tensor, gain: Tensor | float = 1.0, shift: Tensor | float = 0.0):
        return self.value_and_derivative(x, gain, shift)[1]


def _tanh(x, gain, shift):
    value = torch.tanh(x)
    return value, 1.0 - value * value


def _tanh_value(x, gain, shift):
    return torch.tanh(x)


# ``torch.rsub(t, 1.0)`` is ``1.0 - t`` without the Python-level ``Tensor.__rsub__``.
def _tanh_linearize(x, gain, shift):
    value = torch.tanh(x)
    sech2 = torch.rsub(value * value, 1.0)
    return value, sech2, (value, sech2)


def _tanh_scaled_linearize(x, gain, shift, scale, out):
    # εφ' = ε(1 − φ²) = ε − (εφ)·φ: one fused multiply-add instead of three operations
    value = torch.tanh(x)
    scaled_value = torch.mul(value, scale, out=out)
    return torch.addcmul(scale, scaled_value, value, value=-1.0)


def _tanh_pullback(saved, grad_value, grad_slope, parameters=True):
    # x̄ = T(ḡ − 2τḡ')
    value, sech2 = saved
    if grad_slope is not None:
        grad_value = torch.addcmul(grad_value, value, grad_slope, value=-2.0)
    return sech2 * grad_value, None, None


def _tanh_stretch(x, gain, shift):
    value = torch.tanh(gain * (x - shift))
    return value, gain * (1.0 - value * value)


def _tanh_stretch_value(x, gain, shift):
    return torch.tanh(gain * (x - shift))


def _tanh_stretch_linearize(x, gain, shift):
    offset = x - shift
    value = torch.tanh(gain * offset)
    sech2 = torch.rsub(value * value, 1.0)
    return value, gain * sech2, (gain, offset, value, sech2, 1.0)


def _tanh_pos(x, gain, shift):
    squashed = torch.tanh(gain * (x - shift))
    return 0.5 * (1.0 + squashed), 0.5 * gain * (1.0 - squashed * squashed)


def _tanh_pos_value(x, gain, shift):
    return 0.5 * (1.0 + torch.tanh(gain * (x - shift)))


def _tanh_pos_linearize(x, gain, shift):
    offset = x - shift
    squashed = torch.tanh(gain * offset)
    sech2 = torch.rsub(squashed * squashed, 1.0)
    return 0.5 * (1.0 + squashed), 0.5 * gain * sech2, (gain, offset, squashed, sech2, 0.5)


def _stretched_pullback(saved, grad_value, grad_slope, parameters=True):
    """``x̄, ā, s̄`` of ``φ = c₀ + c τ``, ``φ' = c a T`` (tanh_stretch: ``c = 1``,
    tanh_pos: ``c = ½``)."""
    gain, offset, squashed, sech2, factor = saved
    if factor != 1.0:
        sech2 = factor * sech2
    if grad_slope is not None:
        grad_value = torch.addcmul(grad_value, gain * squashed, grad_slope, value=-2.0)
    u = sech2 * grad_value
    grad_x = gain * u
    if not parameters:
        return grad_x, None, None
    if grad_slope is None:
        grad_gain = offset * u
    else:
        grad_gain = torch.addcmul(sech2 * grad_slope, offset, u)
    return grad_x, grad_gain, -grad_x


def _linear(x, gain, shift):
    return gain * (x - shift), gain * torch.ones_like(x)


def _linear_value(x, gain, shift):
    return gain * (x - shift)


def _linear_linearize(x, gain, shift):
    offset = x - shift
    return gain * offset, gain * torch.ones_like(x), (gain, offset)


def _linear_pullback(saved, grad_value, grad_slope, parameters=True):
    gain, offset = saved
    grad_x = gain * grad_value
    if not parameters:
        return grad_x, None, None
    grad_gain = offset * grad_value
    if grad_slope is not None:
        grad_gain = grad_gain + grad_slope
    return grad_x, grad_gain, -grad_x


TANH = Activation("tanh", "tanh(x)", _tanh, uses_gain_shift=False, value=_tanh_value,
                  linearize=_tanh_linearize, pullback=_tanh_pullback,
                  scaled_linearize=_tanh_scaled_linearize)
TANH_STRETCH = Activation("tanh_stretch", "tanh(a(x − s))", _tanh_stretch, uses_gain_shift=True,
                          value=_tanh_stretch_value, linearize=_tanh_stretch_linearize,
                          pullback=_stretched_pullback)
TANH_POS = Activation("tanh_pos", "½(1 + tanh(a(x − s)))", _tanh_pos, uses_gain_shift=True,
                      value=_tanh_pos_value, linearize=_tanh_pos_linearize,
                      pullback=_stretched_pullback)
LINEAR = Activation("linear", "a(x − s)", _linear, uses_gain_shift=True, value=_linear_value,
                    linearize=_linear_linearize, pullback=_linear_pullback)


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name or alias (``std``, ``strech``, ``pos``)."""
    return name if isinstance(name, Activation) else ACTIVATIONS.get(name)
