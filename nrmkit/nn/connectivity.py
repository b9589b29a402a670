"""Random connectivity: Gaussian coupling matrices with no self-connections.

All draws happen on the CPU from an explicit ``torch.Generator`` and are then moved to
the requested device, so a seed gives the same networks on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_coupling(
    n: int,
    *,
    batch: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Unit-coupling random matrices ``J`` with ``J_ij ~ N(0, 1/N)`` and ``J_ii = 0``.

    Multiply by the coupling ``g`` for ``N(0, g²/N)`` entries: ``g·J`` has exactly the
    distribution of a fresh draw at coupling ``g``.

    Returns:
        Tensor of shape ``(*batch, n, n)``.
    """
    draw = torch.randn((*batch, n, n), generator=generator, dtype=torch.float64)
    draw.diagonal(dim1=-2, dim2=-1).zero_()
    return draw.div_(n**0.5).to(device=device, dtype=dtype)  # in place: one float64 copy


def normal_like(
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Standard-normal draws of ``shape`` made on the CPU, then moved (seed-reproducible)."""
    draw = torch.randn(shape, generator=generator, dtype=torch.float64)
    return draw.to(device=device, dtype=dtype)
