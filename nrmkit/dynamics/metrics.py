"""Metrics of a Lyapunov spectrum (last axis = exponents; any leading batch axes).

All functions accept torch tensors or numpy arrays and return the same kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_sorted_tensor(exponents: Any) -> tuple[torch.Tensor, bool]:
    is_numpy = not isinstance(exponents, torch.Tensor)
    values = torch.as_tensor(np.asarray(exponents, dtype=np.float64)) if is_numpy else exponents
    return torch.sort(values, dim=-1, descending=True).values, is_numpy


def _out(value: torch.Tensor, is_numpy: bool):
    return value.detach().cpu().numpy() if is_numpy else value


def kaplan_yorke_dimension(exponents: Any):
    r"""Kaplan–Yorke (Lyapunov) dimension of the attractor, fractional.

    With the exponents sorted descending and partial sums :math:`S_j = \sum_{i\le j} \lambda_i`,
    let ``k`` be the largest index with :math:`S_k \ge 0`. Then

    .. math:: D = k + S_k / |\lambda_{k+1}|,

    ``D = 0`` if :math:`\lambda_1 < 0`, and ``D`` = the number of exponents given if the
    partial sums never turn negative (for a top-``k`` spectrum that is a lower bound).

    Reference: Kaplan & Yorke (1979), "Chaotic behavior of multidimensional difference
    equations", Lecture Notes in Mathematics 730, 204–227.
    """
    values, is_numpy = _as_sorted_tensor(exponents)
    n = values.shape[-1]
    partial = values.cumsum(-1)
    k = (partial >= 0).sum(-1)  # partial sums are non-negative exactly on a leading run
    index = k.clamp(min=1, max=n - 1 if n > 1 else 1) - 1
    s_k = partial.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    next_exponent = values.gather(-1, (index + 1).clamp(max=n - 1).unsqueeze(-1)).squeeze(-1)
    fractional = k.to(values.dtype) + s_k / next_exponent.abs()
    dimension = torch.where(
        k == 0, torch.zeros_like(fractional),
        torch.where(k >= n, torch.full_like(fractional, float(n)), fractional),
    )
    return _out(dimension, is_numpy)


def ks_entropy(exponents: Any):
    r"""Kolmogorov–Sinai entropy rate bound (Pesin): :math:`H = \sum_i \max(\lambda_i, 0)`.

    Reference: Pesin (1977), "Characteristic Lyapunov exponents and smooth ergodic theory",
    Russian Math. Surveys 32(4), 55–114.
    """
    values, is_numpy = _as_sorted_tensor(exponents)
    return _out(values.clamp(min=0).sum(-1), is_numpy)


def mean_exponent(exponents: Any):
    """Mean of the exponents (for a full spectrum: ``trace``-fixed, see the sum rule)."""
    values, is_numpy = _as_sorted_tensor(exponents)
    return _out(values.mean(-1), is_numpy)
