"""Rate-network activations φ(x; a, s) with analytic derivatives ∂φ/∂x.

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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nrmkit.core.registry import ACTIVATIONS

ValueAndDerivative = Callable[[Tensor, Tensor | float, Tensor | float], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Activation:
    """A pointwise activation with its analytic derivative.

    Attributes:
        name: canonical registry name.
        formula: the function in words/maths, for documentation and figure labels.
        value_and_derivative: ``(x, gain, shift) -> (φ, ∂φ/∂x)``.
        uses_gain_shift: whether gains and shifts change the function at all.
    """

    name: str
    formula: str
    value_and_derivative: ValueAndDerivative
    uses_gain_shift: bool

    def __call__(self, x: Tensor, gain: Tensor | float = 1.0, shift: Tensor | float = 0.0):
        return self.value_and_derivative(x, gain, shift)[0]

    def derivative(self, x: Tensor, gain: Tensor | float = 1.0, shift: Tensor | float = 0.0):
        return self.value_and_derivative(x, gain, shift)[1]


def _tanh(x, gain, shift):
    value = torch.tanh(x)
    return value, 1.0 - value * value


def _tanh_stretch(x, gain, shift):
    value = torch.tanh(gain * (x - shift))
    return value, gain * (1.0 - value * value)


def _tanh_pos(x, gain, shift):
    squashed = torch.tanh(gain * (x - shift))
    return 0.5 * (1.0 + squashed), 0.5 * gain * (1.0 - squashed * squashed)


def _linear(x, gain, shift):
    return gain * (x - shift), gain * torch.ones_like(x)


TANH = Activation("tanh", "tanh(x)", _tanh, uses_gain_shift=False)
TANH_STRETCH = Activation("tanh_stretch", "tanh(a(x − s))", _tanh_stretch, uses_gain_shift=True)
TANH_POS = Activation("tanh_pos", "½(1 + tanh(a(x − s)))", _tanh_pos, uses_gain_shift=True)
LINEAR = Activation("linear", "a(x − s)", _linear, uses_gain_shift=True)


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name or alias (``std``, ``strech``, ``pos``)."""
    return name if isinstance(name, Activation) else ACTIVATIONS.get(name)
