r"""Mutual information from samples: the Mixed-KSG k-nearest-neighbour estimator.

For ``N`` paired samples ``(x_i, y_i)`` (``x`` of dimension ``d_x``, ``y`` of ``d_y``), with
``ρ_i`` the max-norm distance from ``(x_i, y_i)`` to its ``k``-th nearest neighbour in the
joint space,

.. math::

    \hat I(X; Y) = \frac1N \sum_i \Big[ψ(\tilde k_i) + \ln N - ψ(n_{x,i}) - ψ(n_{y,i})\Big]
    \quad\text{(nats)},

where ``n_{x,i}`` (``n_{y,i}``) counts the samples, ``i`` itself included, strictly closer
than ``ρ_i`` to ``x_i`` (``y_i``) and ``\tilde k_i = k``; when ``ρ_i = 0`` (a repeated,
discrete value) ``\tilde k_i``, ``n_{x,i}``, ``n_{y,i}`` count the samples at distance 0
instead. This is the estimator of Gao, Kannan, Oh & Viswanath, "Estimating mutual
information for discrete-continuous mixtures" (NeurIPS 2017), which stays consistent when
``X`` or ``Y`` has atoms — digit pixels are exactly 0 more often than not — where the
classical KSG estimator diverges. ``ψ`` is the digamma function.

Everything is batched over the samples (pairwise distances by ``torch.cdist``).
"""

from __future__ import annotations

import numpy as np

#: below this distance two samples count as equal (the atoms of a mixed distribution).
TIE_RADIUS = 1e-15


def _as_matrix(values, n: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n:
        raise ValueError(f"{name} must be (N,) or (N, d) with N = {n}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds non-finite values")
    return array


def _row_statistics(x: np.ndarray, y: np.ndarray, k: int, rows: slice):
    """For the samples ``rows``: ``(k̃, n_x, n_y)`` of the estimator (module docstring)."""
    import torch

    x_all, y_all = torch.from_numpy(x), torch.from_numpy(y)
    inf = float("inf")
    d_x = torch.cdist(x_all[rows], x_all, p=inf)            # (R, N) max-norm distances
    d_y = torch.cdist(y_all[rows], y_all, p=inf)
    joint = torch.maximum(d_x, d_y)
    rho = joint.kthvalue(k + 1, dim=1).values               # the sample itself is at 0
    tied = rho == 0.0
    below = torch.where(tied, TIE_RADIUS, rho).unsqueeze(1)
    # strictly closer than ρ, or within TIE_RADIUS when ρ = 0 (the published counts)
    inside_x = torch.where(tied.unsqueeze(1), d_x <= below, d_x < below)
    inside_y = torch.where(tied.unsqueeze(1), d_y <= below, d_y < below)
    k_tilde = torch.where(tied, (joint <= TIE_RADIUS).sum(1).double(),
                          torch.full_like(rho, float(k)))
    return k_tilde, inside_x.sum(1).double(), inside_y.sum(1).double()


#: samples whose distances to all others are computed at once (memory: rows × N floats).
CHUNK = 1024


def mixed_ksg(x, y, *, k: int = 5) -> float:
    """``Î(X; Y)`` in nats from paired samples (module docstring).

    Exact neighbour search (all pairwise max-norm distances, in chunks of rows): the cost is
    ``N² (d_x + d_y)``, fine for the few thousand samples of an analysis.

    Args:
        x: ``(N,)`` or ``(N, d_x)`` samples of ``X``.
        y: ``(N,)`` or ``(N, d_y)`` samples of ``Y``, paired with ``x`` row by row.
        k: the neighbour order (``1 ≤ k < N``); 5 as in the published analysis.
    """
    import torch

    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k must lie in [1, N − 1] = [1, {n - 1}], got {k}")
    x, y = _as_matrix(x, n, "x"), _as_matrix(y, n, "y")
    total = 0.0
    for start in range(0, n, CHUNK):
        k_tilde, n_x, n_y = _row_statistics(x, y, k, slice(start, start + CHUNK))
        terms = (torch.digamma(k_tilde) + np.log(n) - torch.digamma(n_x)
                 - torch.digamma(n_y))
        total += float(terms.sum())
    return total / n


def gaussian_channel_information(signal_variance: float, noise_variance: float) -> float:
    """``I(X; aX + Z) = ½ ln(1 + a²σ_X²/σ_Z²)`` for Gaussian ``X`` and independent Gaussian
    noise ``Z`` (pass ``signal_variance = a²σ_X²``), in nats: the closed form the estimator
    is tested against."""
    return 0.5 * float(np.log1p(signal_variance / noise_variance))
