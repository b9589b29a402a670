r"""Further RNN nonlinearities of the sequence tasks (``--nonlin modrelu|sigmoid``).

Each factory ``(n_hidden, **shape) -> module`` returns an ``nn.Module`` with
``forward(a)`` (pre-activations ``(B, H)`` → outputs ``(B, H)``) and ``slope(a) = φ'(a)``,
the diagonal of the RNN's tangent map ``v ↦ φ'(a) ⊙ V v``
(:meth:`nrmkit.nn.recurrent.RNNCell.tangent`).

===========  ===================================================  ==============================
name         φ(a)                                                 φ'(a)
===========  ===================================================  ==============================
modrelu      ``sign(a)·relu(|a| + b)``, ``b ∈ R^H`` learned,        ``1[|a| + b > 0]·1[a ≠ 0]``
             ``b ~ U(−0.01, 0.01)`` at the start
sigmoid      ``σ(a) = 1/(1 + e^{−a})``                             ``σ(a)(1 − σ(a))``
===========  ===================================================  ==============================

modReLU (Arjovsky, Shah & Bengio, "Unitary evolution recurrent neural networks", ICML 2016;
used by nnRNN and by the published gamma code on real pre-activations) keeps the sign of the
pre-activation and shrinks (``b < 0``) or grows (``b > 0``) its magnitude, with a dead zone
``|a| < −b``. Its bias is a trainable parameter of every neuron whatever ``--learn_params``
says (that option concerns the gamma shape).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

#: half-width of the uniform start of the modReLU bias.
MODRELU_BIAS_BOUND = 0.01


class ModReLU(nn.Module):
    """``φ(a) = sign(a)·relu(|a| + b)`` with a learned bias ``b`` of shape ``(H,)``."""

    def __init__(self, n_hidden: int, *, generator: torch.Generator | None = None):
        super().__init__()
        start = (2.0 * torch.rand(n_hidden, generator=generator) - 1.0) * MODRELU_BIAS_BOUND
        self.bias = nn.Parameter(start.to(torch.get_default_dtype()))

    def forward(self, a: Tensor) -> Tensor:
        return torch.sign(a) * torch.relu(a.abs() + self.bias)

    def slope(self, a: Tensor) -> Tensor:
        """``∂φ/∂a = 1`` where ``|a| + b > 0`` and ``a ≠ 0``, else 0 (autograd's value)."""
        return ((a.abs() + self.bias > 0) & (a != 0)).to(a.dtype)

    def extra_repr(self) -> str:
        return f"modReLU, {self.bias.numel()} learned biases"


class Sigmoid(nn.Module):
    """The logistic function ``σ(a)`` (no parameters)."""

    def forward(self, a: Tensor) -> Tensor:
        return torch.sigmoid(a)

    def slope(self, a: Tensor) -> Tensor:
        """``σ'(a) = σ(a)(1 − σ(a))``."""
        value = torch.sigmoid(a)
        return value * (1.0 - value)


def modrelu_nonlinearity(n_hidden: int, *, generator: torch.Generator | None = None,
                         **_: Any) -> ModReLU:
    """``--nonlin modrelu``: biases drawn from ``U(−0.01, 0.01)`` on ``generator``."""
    return ModReLU(n_hidden, generator=generator)


def sigmoid_nonlinearity(n_hidden: int, **_: Any) -> Sigmoid:
    """``--nonlin sigmoid``."""
    return Sigmoid()
