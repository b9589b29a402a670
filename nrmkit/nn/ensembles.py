r"""Random connectivity ensembles of the rate network at unit coupling.

Each constructor returns matrices ``J`` of shape ``(*batch, N, N)`` with a zero diagonal;
a network at coupling ``g`` uses ``W = g·J`` (so one draw serves every coupling of a sweep).
All draws are made on the CPU in float64 from an explicit ``torch.Generator``, batched over
``batch``, then cast and moved, so a seed gives the same matrices on any device.

* ``gaussian`` (:func:`nrmkit.nn.connectivity.gaussian_coupling`): ``J_ij ~ N(0, 1/N)``;
  circular law of radius 1 (the transition to chaos of a tanh network at g = 1).
* ``symmetric`` (:func:`symmetric_coupling`): FlyStability's symmetric ensemble,
  ``J = (X + Xᵀ)/2`` with ``X_ij ~ N(0, 1/N)``: off-diagonal variance ``1/(2N)``, a real
  spectrum following the semicircle law of radius ``√2`` (so the fixed point 0 of a tanh
  network loses stability at ``g = 1/√2``).
* ``ei`` (:func:`balanced_ei_coupling`): a sparse balanced excitatory/inhibitory ensemble
  obeying Dale's law, normalised so that its bulk has radius 1 (Rajan & Abbott 2006).

References:
    Wigner (1958), Ann. Math. 67, 325 (the semicircle law);
    Rajan & Abbott (2006), "Eigenvalue spectra of random matrices for neural networks",
    Phys. Rev. Lett. 97, 188104;
    Brunel (2000), J. Comput. Neurosci. 8, 183 (fixed in-degree E/I networks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nrmkit.nn.connectivity import gaussian_coupling

#: the connectivity ensembles of the Lyapunov workflows (the first is the default).
ENSEMBLES = ("gaussian", "symmetric", "ei")


def symmetric_coupling(
    n: int, *, batch: tuple[int, ...] = (), generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
) -> Tensor:
    """Symmetric matrices ``J = (X + Xᵀ)/2``, ``X_ij ~ N(0, 1/N)``, ``J_ii = 0``.

    The off-diagonal entries have variance ``1/(2N)``; the eigenvalues are real and, for
    N → ∞, follow the semicircle law ``ρ(x) = 2√(R² − x²)/(πR²)`` of radius ``R = √2``
    (``R = 2·√(N·Var J_ij)``). This is FlyStability's ``construct_Symmetric_Matrix_simple``
    at coupling 1: the coupling there scales ``X`` before symmetrising, as ``g·J`` does here.

    Returns:
        Tensor of shape ``(*batch, n, n)``.
    """
    draw = torch.randn((*batch, n, n), generator=generator, dtype=torch.float64)
    symmetric = draw + draw.transpose(-1, -2)
    del draw
    symmetric.diagonal(dim1=-2, dim2=-1).zero_()
    return symmetric.mul_(0.5 / n**0.5).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class EILayout:
    """The sizes and weights of a balanced E/I ensemble (see :func:`balanced_ei_coupling`).

    Attributes:
        n_exc, n_inh: excitatory neurons (columns ``0 … n_exc − 1``) and inhibitory ones.
        k_exc, k_inh: excitatory and inhibitory inputs of every neuron (fixed in-degree).
        w_exc, w_inh: magnitudes of an excitatory and an inhibitory weight at unit radius.
    """

    n_exc: int
    n_inh: int
    k_exc: int
    k_inh: int
    w_exc: float
    w_inh: float

    @property
    def radius(self) -> float:
        """Rajan–Abbott bulk radius ``√(N·Σ_X f_X·q_X(1 − q_X)·w_X²)`` with ``q_X =
        k_X/n_X`` (1 by construction, up to the zero diagonal's ``O(1/N)``)."""
        return math.sqrt(sum(k * (1 - k / m) * w * w for k, m, w in (
            (self.k_exc, self.n_exc, self.w_exc), (self.k_inh, self.n_inh, self.w_inh))))


def ei_layout(n: int, frac_exc: float, connection_prob: float) -> EILayout:
    """Sizes of the balanced E/I ensemble: ``n_exc = round(f·N)``, ``k_X = min(round(p·n_X),
    n_X − 1)`` inputs from population X, ``w_inh = w_exc·k_exc/k_inh`` (every row sums to
    zero), and ``w_exc`` chosen so that the Rajan–Abbott radius is 1. Raises ValueError when
    a population is empty or receives no inputs."""
    n_exc = round(frac_exc * n)
    n_inh = n - n_exc
    if min(n_exc, n_inh) < 2:
        raise ValueError(f"frac_exc {frac_exc:g} leaves {n_exc} excitatory and {n_inh} "
                         f"inhibitory neurons of {n}; each population needs at least 2")
    k_exc = min(round(connection_prob * n_exc), n_exc - 1)
    k_inh = min(round(connection_prob * n_inh), n_inh - 1)
    if min(k_exc, k_inh) < 1:
        raise ValueError(f"connection probability {connection_prob:g} gives {k_exc} "
                         f"excitatory and {k_inh} inhibitory inputs per neuron at N = {n}; "
                         "each must be at least 1")
    ratio = k_exc / k_inh
    unit = k_exc * (1 - k_exc / n_exc) + k_inh * (1 - k_inh / n_inh) * ratio**2
    w_exc = 1.0 / math.sqrt(unit)
    return EILayout(n_exc, n_inh, k_exc, k_inh, w_exc, w_exc * ratio)


def _fixed_in_degree(keys: Tensor, k: int) -> Tensor:
    """A 0/1 mask with ones at the ``k`` smallest keys of every row (float64)."""
    chosen = torch.topk(keys, k, dim=-1, largest=False).indices
    return torch.zeros_like(keys).scatter_(-1, chosen, 1.0)


def balanced_ei_coupling(
    n: int, *, frac_exc: float = 0.8, connection_prob: float = 0.1,
    batch: tuple[int, ...] = (), generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
) -> Tensor:
    """Sparse balanced E/I matrices obeying Dale's law, bulk radius 1.

    Columns ``0 … n_exc − 1`` are excitatory (entries ``0`` or ``+w_exc``), the others
    inhibitory (``0`` or ``−w_inh``). Every neuron receives exactly ``k_exc`` excitatory and
    ``k_inh`` inhibitory inputs, chosen uniformly without self-connections (fixed
    in-degree, connection probability ``p`` within each population; :func:`ei_layout`).
    Since ``k_exc·w_exc = k_inh·w_inh`` every row sums to zero exactly — the balance
    condition of Rajan & Abbott (2006), which removes the outliers of the mean part — and
    the eigenvalues fill a disk of radius ``√(f σ_E² + (1 − f) σ_I²) = 1`` with ``σ_X² =
    N·Var(J_ij)`` over the columns of population X (not uniformly when ``σ_E ≠ σ_I``).

    Returns:
        Tensor of shape ``(*batch, n, n)``.
    """
    layout = ei_layout(n, frac_exc, connection_prob)
    blocks = []
    for first, size, k, weight in ((0, layout.n_exc, layout.k_exc, layout.w_exc),
                                   (layout.n_exc, layout.n_inh, layout.k_inh, -layout.w_inh)):
        keys = torch.rand((*batch, n, size), generator=generator, dtype=torch.float64)
        rows = torch.arange(first, first + size)
        keys[..., rows, rows - first] = math.inf   # never a self-connection
        blocks.append(_fixed_in_degree(keys, k).mul_(weight))
        del keys
    return torch.cat(blocks, dim=-1).to(device=device, dtype=dtype)


def unit_coupling(
    connectivity: str, n: int, *, frac_exc: float = 0.8, connection_prob: float = 0.1,
    batch: tuple[int, ...] = (), generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
) -> Tensor:
    """Unit-coupling matrices of the ensemble ``connectivity`` (one of :data:`ENSEMBLES`;
    ``frac_exc`` and ``connection_prob`` are used by ``ei`` only)."""
    kwargs = {"batch": batch, "generator": generator, "dtype": dtype, "device": device}
    if connectivity == "gaussian":
        return gaussian_coupling(n, **kwargs)
    if connectivity == "symmetric":
        return symmetric_coupling(n, **kwargs)
    if connectivity == "ei":
        return balanced_ei_coupling(n, frac_exc=frac_exc, connection_prob=connection_prob,
                                    **kwargs)
    raise ValueError(f"unknown connectivity {connectivity!r}; choose from {ENSEMBLES}")
