r"""Losses on a (top-``k``) Lyapunov spectrum, looked up by name in the ``LOSSES`` registry
(:mod:`nrmkit.core.registry`; names are case-insensitive).

Every loss maps exponents ``λ`` of shape ``(*batch, k)`` (descending, 1/τ) and a scalar
``target`` to one value per network, shape ``(*batch,)``; a batch of independent networks
is trained on the sum, which gives each network its own gradient.

=============  ====================================================================
name           loss
=============  ====================================================================
``l2``         :math:`\lVert \lambda - \mathrm{target}\,\mathbf 1 \rVert_2`
``MSE``        :math:`\frac1k \sum_i (\lambda_i - \mathrm{target})^2`
``MSE_Custom`` :math:`\frac1k \sum_i (\lambda_i - t_i)^2`, ``t = linspace(1.24, −1.25, k)``
               (a fixed target spectrum; ``target`` is ignored)
``Sinai``      :math:`\sum_i \mathrm{relu}(\lambda_i) - \sum_i \mathrm{relu}(-\lambda_i)`
               (which equals :math:`\sum_i \lambda_i`: it lowers the whole top-k spectrum)
``Sinai_max``  :math:`-\sum_i \lambda_i`, the negative of ``Sinai``: it raises the spectrum,
               the direction of the published ``train_rd_model_fixed_param --loss Sinai``
               (which maximises the ``Sinai`` value with Adam)
=============  ====================================================================
"""

from __future__ import annotations

import torch
from torch import Tensor

from nrmkit.core.registry import LOSSES

#: end points of the MSE_Custom target spectrum.
CUSTOM_TARGET_RANGE = (1.24, -1.25)


def l2_loss(exponents: Tensor, target: float) -> Tensor:
    return torch.linalg.vector_norm(exponents - target, dim=-1)


def mse_loss(exponents: Tensor, target: float) -> Tensor:
    return (exponents - target).square().mean(-1)


def custom_target(k: int, *, dtype=torch.float64, device="cpu") -> Tensor:
    """The MSE_Custom target spectrum ``linspace(1.24, −1.25, k)``."""
    return torch.linspace(*CUSTOM_TARGET_RANGE, k, dtype=dtype, device=device)


def mse_custom_loss(exponents: Tensor, target: float) -> Tensor:
    del target  # the target spectrum is fixed
    reference = custom_target(exponents.shape[-1], dtype=exponents.dtype,
                              device=exponents.device)
    return (exponents - reference).square().mean(-1)


def sinai_loss(exponents: Tensor, target: float) -> Tensor:
    del target
    return torch.relu(exponents).sum(-1) - torch.relu(-exponents).sum(-1)


def sinai_max_loss(exponents: Tensor, target: float) -> Tensor:
    """``−(Σ relu(λ) − Σ relu(−λ))``: minimising it *raises* the entropy measure of
    :func:`sinai_loss`, the direction of the published ``train_rd_model_fixed_param --loss
    Sinai`` (Adam with ``maximize=True``)."""
    return -sinai_loss(exponents, target)


def get_loss(name: str):
    """The loss function registered as ``name`` (case-insensitive)."""
    return LOSSES.get(name)
