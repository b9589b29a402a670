r"""Weight initialisers for recurrent and input matrices, looked up by name.

Each initialiser is ``init(rows, cols, *, generator) -> Tensor`` (float32, ``rows × cols``,
``W[out, in]`` like ``nn.Linear.weight``), drawn from an explicit ``torch.Generator``.

===========  ==================================================================  =========
name         matrix                                                              shape
===========  ==================================================================  =========
henaff       ``exp(A)``, ``A`` block-diagonal skew-symmetric with 2×2 blocks     square
             ``[[0, θ], [−θ, 0]]``, ``θ ~ U(−π, 0)``: rotations by θ (Henaff
             et al. 2016, as used by nnRNN)
cayley       Cayley transform ``(I + A)^{-1}(I − A)`` of the same block
             structure with ``θ = −√((1 − cos u)/(1 + cos u))``, ``u ~ U(0, π/2)``  square
orthogonal   Haar-random orthogonal (QR of a Gaussian matrix, signs fixed);     any
             semi-orthogonal when not square
xavier       ``N(0, 2/(fan_in + fan_out))`` (Glorot normal)                      any
kaiming      ``N(0, 2/fan_in)`` (He normal, ReLU gain)                            any
uniform      ``U(−1/√rows, 1/√rows)``: PyTorch's default for recurrent layers,     any
             ``1/√H`` for every matrix feeding ``H`` units (the GLIFR baselines)
normal       ``N(0, 1/rows)``: standard deviation ``1/√H`` for every matrix        any
             feeding ``H`` units (the published gamma code's ``normal``)
===========  ==================================================================  =========

The three orthogonal schemes give a recurrent matrix with all singular values 1 (no
vanishing or exploding linear dynamics at initialisation). With an odd size the last unit
of henaff/cayley is left with a 1 on the diagonal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from nrmkit.core.registry import INITIALIZERS

Initializer = Callable[..., Tensor]


def _uniform(count: int, low: float, high: float, generator) -> Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)


def _rotation_blocks(angles: Tensor, size: int) -> Tensor:
    """``exp(A)`` for the block skew matrix with blocks ``[[0, θ], [−θ, 0]]``: rotations."""
    matrix = torch.eye(size, dtype=torch.float64)
    cos, sin = torch.cos(angles), torch.sin(angles)
    index = torch.arange(angles.numel()) * 2
    matrix[index, index] = cos
    matrix[index + 1, index + 1] = cos
    matrix[index, index + 1] = sin
    matrix[index + 1, index] = -sin
    return matrix


def _skew_blocks(values: Tensor, size: int) -> Tensor:
    skew = torch.zeros(size, size, dtype=torch.float64)
    index = torch.arange(values.numel()) * 2
    skew[index, index + 1] = values
    skew[index + 1, index] = -values
    return skew


def _square(rows: int, cols: int, name: str) -> None:
    if rows != cols:
        raise ValueError(f"the {name} initialiser needs a square matrix, got {rows}×{cols}")


def henaff(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    _square(rows, cols, "henaff")
    angles = _uniform(rows // 2, -math.pi, 0.0, generator)
    return _rotation_blocks(angles, rows).float()


def cayley(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    _square(rows, cols, "cayley")
    u = _uniform(rows // 2, 0.0, math.pi / 2, generator)
    skew = _skew_blocks(-torch.sqrt((1.0 - torch.cos(u)) / (1.0 + torch.cos(u))), rows)
    eye = torch.eye(rows, dtype=torch.float64)
    return torch.linalg.solve(eye + skew, eye - skew).float()


def orthogonal(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    big, small = max(rows, cols), min(rows, cols)
    draw = torch.randn(big, small, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(draw)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(1))
    return (q if rows >= cols else q.T).float()


def xavier(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    std = math.sqrt(2.0 / (rows + cols))
    return std * torch.randn(rows, cols, generator=generator)


def kaiming(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    std = math.sqrt(2.0 / cols)
    return std * torch.randn(rows, cols, generator=generator)


def uniform(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    bound = 1.0 / math.sqrt(rows)
    return (2.0 * torch.rand(rows, cols, generator=generator) - 1.0) * bound


def normal(rows: int, cols: int, *, generator: torch.Generator | None = None) -> Tensor:
    std = 1.0 / math.sqrt(rows)
    return std * torch.randn(rows, cols, generator=generator)


#: initialisers that only make square matrices.
SQUARE_ONLY = ("henaff", "cayley")


def initialize(name: str, rows: int, cols: int, *,
               generator: torch.Generator | None = None) -> Tensor:
    """The ``rows × cols`` matrix of initialiser ``name`` (see the module table)."""
    return INITIALIZERS.get(name)(rows, cols, generator=generator)
