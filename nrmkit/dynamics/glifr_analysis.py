r"""Analyses of trained GLIFR networks: f–I curves of the neurons and Ward clustering of their
learned parameters, scored by the Calinski–Harabasz index (Winston, Mastrovito, Shea-Brown &
Mihalas, *Neural Computation* 2023).

* :func:`fi_curves` — the steady (or windowed) rate of every neuron of a trained
  :class:`~nrmkit.nn.glifr.GLIFRCell`, *isolated* (no lateral input at all, not even its
  self-connection), under a constant injected current, for a batch of currents at once. The
  simulation is the cell's own step (:meth:`GLIFRCell.forward`) on a copy with the trained
  per-neuron values; nothing of the neuron equations is rewritten here.
* :func:`neuron_features` — the ``(H, 2 + 3·n_asc)`` matrix of learned parameters, one row
  per neuron, in the published column order ``V_th, k_m, r_1…, k_1…, a_1…``.
* :func:`ward_clustering` — Ward's agglomerative clustering of such rows (Euclidean), cut at
  each requested number of clusters, each cut scored by :func:`calinski_harabasz`.

The published protocol (GLIFS_ASC, ``NetworkAnalyzer.plot_ficurve`` and ``cluster.py``):

* f–I: currents ``I_0 ∈ {−10000, −9900, …, 9900}`` (:data:`PUBLISHED_CURRENTS`) set as the
  layer's constant bias current ``I_0`` (so entering the voltage through ``dt·k_m·R``), zero
  network input, zero lateral input, all states from 0, 100 steps (5 ms at ``dt = 0.05`` ms),
  the dimensionless rate ``r`` averaged over all 100 steps (onset transient included). Here:
  ``injection="membrane"``, ``duration_ms = window_ms = 100·dt``.
* clustering: the raw (unstandardised) 8 learned parameters per neuron of the two-ASC
  networks, Ward linkage, ``k = 2 … 11`` (:data:`PUBLISHED_N_CLUSTERS`), the k of highest
  Calinski–Harabasz index kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage

from nrmkit.core.streams import torch_generator
from nrmkit.nn.glifr import GLIFRCell

__all__ = [
    "PUBLISHED_CURRENTS",
    "PUBLISHED_N_CLUSTERS",
    "calinski_harabasz",
    "fi_curves",
    "neuron_features",
    "ward_clustering",
]

#: the injected currents ``I_0`` of the published f–I curves (200 values, step 100).
PUBLISHED_CURRENTS = np.arange(-10_000.0, 10_000.0, 100.0)
#: the numbers of clusters scored in the published clustering.
PUBLISHED_N_CLUSTERS = tuple(range(2, 12))


def _isolated_copy(cell: GLIFRCell, injection: str) -> GLIFRCell:
    """A one-input float64 copy of ``cell``'s neurons: trained per-neuron values and
    constants, lateral weights 0, input weights mapping the injected current onto each
    neuron (1 for ``"synaptic"``, ``dt·k_m·R`` for ``"membrane"``)."""
    values = {name: value.detach().cpu() for name, value in cell.neuron_parameters().items()}
    copy = GLIFRCell(1, cell.hidden_size, dt=cell.dt, tau=cell.tau, delay=1,
                     n_ascs=cell.n_ascs, sigma_v=float(cell.sigma_v),
                     resistance=float(cell.resistance), i0=float(cell.i0),
                     v_reset=float(cell.v_reset), learn_neuron=False, neuron_values=values,
                     generator=torch_generator(0, 0, "f-I copy, overwritten")).double()
    with torch.no_grad():
        copy.weight_lat.zero_()
        if injection == "synaptic":
            copy.weight_in.fill_(1.0)
        else:
            copy.weight_in.copy_((copy.dt * copy.resistance * copy.k_m)[None])
    return copy


def fi_curves(cell: GLIFRCell, currents: Iterable[float] | np.ndarray, *, duration_ms: float,
              window_ms: float,
              injection: Literal["membrane", "synaptic"] = "membrane") -> np.ndarray:
    r"""Rates ``(H, C)`` of the isolated neurons of ``cell`` under ``C`` constant currents.

    Each neuron ``h`` runs the cell's step from the zero state (``r = V = I_j = 0``) for
    ``n = round(duration_ms / dt)`` steps with a constant current ``I`` and no lateral input;
    with ``injection="membrane"`` (the published protocol) ``I`` adds to the bias current,

    .. math:: V[t] = (1 - dt\,k_m) V[t-1] + dt\,k_m R \big(\textstyle\sum_j I_j[t] + I_0 + I\big)
              - \tfrac{dt}{τ} r[t-1] (V[t-1] - V_{reset}),

    so ``I`` is in the units of ``I_0`` and ``a_j`` (a voltage ``R·I`` at rest, per neuron
    filtered by its own ``k_m``); with ``injection="synaptic"`` it adds ``I`` to the synaptic
    current ``I_syn`` instead (the units of the network's input ``x·W_in``: voltage per step).
    The after-spike currents ``I_j`` and the rate ``r = σ((V − V_th)/σ_V)`` follow the
    cell's equations (:mod:`nrmkit.nn.glifr`). The result is the mean of ``r[t]`` over the
    last ``m = round(window_ms / dt)`` steps (``1 ≤ m ≤ n``); ``window_ms = duration_ms``
    averages the whole run, onset transient included, as published; a short window at the
    end of a long run gives the steady-state f–I curve.

    Rates are the model's dimensionless ``r ∈ (0, 1)`` (as published); the expected number
    of spikes per ms is ``r/τ`` (the reset term removes ``dt·r/τ`` spikes' worth of voltage
    per step), i.e. ``1000·r/τ`` Hz with ``τ`` in ms.

    Args:
        cell: a (trained) :class:`GLIFRCell`; only its per-neuron parameters and constants
            (``dt, τ, n_asc, σ_V, R, I_0, V_reset``) are used, not its weights.
        currents: ``(C,)`` injected currents.
        duration_ms, window_ms: simulated time and final averaging window, in ms.
        injection: ``"membrane"`` (through ``dt·k_m·R`` like ``I_0``) or ``"synaptic"``.

    All neurons and currents run as one batch ``(C, H)`` in float64 without gradients.
    """
    if injection not in ("membrane", "synaptic"):
        raise ValueError(f"injection must be 'membrane' or 'synaptic', got {injection!r}")
    current = torch.as_tensor(np.asarray(currents, dtype=np.float64).reshape(-1, 1))
    n_steps = round(duration_ms / cell.dt)
    n_window = round(window_ms / cell.dt)
    if not 1 <= n_window <= n_steps:
        raise ValueError(f"need dt ≤ window_ms ≤ duration_ms, got window {window_ms} ms, "
                         f"duration {duration_ms} ms at dt {cell.dt} ms")
    with torch.no_grad():
        neurons = _isolated_copy(cell, injection)
        state = neurons.initial_state(current.shape[0], dtype=torch.float64)
        total = torch.zeros(current.shape[0], cell.hidden_size, dtype=torch.float64)
        for step in range(n_steps):
            state = neurons(current, state)
            if step >= n_steps - n_window:
                total += state[0]
    return (total / n_window).T.numpy()


def neuron_features(parameters: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """The learned parameters as a matrix ``(H, 2 + 3·n_asc)`` and its column names.

    ``parameters`` as :meth:`GLIFRCell.neuron_parameters` returns them (tensors or arrays):
    ``v_th (H,)``, ``k_m (H,)`` and ``k_j, r_j, a_j (n_asc, H)``. Columns in the published
    order ``v_th, k_m, r_1 … r_n, k_1 … k_n, a_1 … a_n`` (``k`` in 1/ms); without after-spike
    currents only ``v_th, k_m``.
    """
    def array(name):
        value = parameters[name]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        return np.asarray(value, dtype=np.float64)

    columns, names = [array("v_th"), array("k_m")], ["v_th", "k_m"]
    for name, letter in (("r_j", "r"), ("k_j", "k"), ("a_j", "a")):
        rows = array(name).reshape(-1, columns[0].shape[0]) if name in parameters else []
        columns += list(rows)
        names += [f"{letter}_{j}" for j in range(1, len(rows) + 1)]
    return np.stack(columns, axis=1), names


def calinski_harabasz(features: np.ndarray, labels: np.ndarray) -> float:
    r"""The Calinski–Harabasz index of a partition of ``n`` points into ``k`` clusters.

    .. math:: \mathrm{CH} = \frac{B}{W}\,\frac{n - k}{k - 1},\quad
              B = \sum_c n_c \lVert μ_c - μ \rVert^2,\quad
              W = \sum_c \sum_{i \in c} \lVert x_i - μ_c \rVert^2

    (between- and within-cluster dispersion; ``μ`` the overall mean, ``μ_c`` the centroids):
    larger is better separated. Needs ``2 ≤ k ≤ n − 1``; ``W = 0`` (every cluster a single
    point repeated) gives ``inf`` (``nan`` if also ``B = 0``), where scikit-learn returns 1.

    Args:
        features: ``(n, F)`` points (``(n,)``: one feature). labels: ``(n,)`` any hashables.
    """
    points = np.asarray(features, dtype=np.float64)
    points = points.reshape(len(points), -1)
    groups, index = np.unique(np.asarray(labels), return_inverse=True)
    index = index.reshape(-1)
    n, k = len(points), len(groups)
    if len(index) != n:
        raise ValueError(f"{len(index)} labels for {n} points")
    if not 2 <= k <= n - 1:
        raise ValueError(f"need 2 ≤ clusters ≤ n − 1, got {k} clusters of {n} points")
    counts = np.bincount(index, minlength=k)
    centroids = np.zeros((k, points.shape[1]))
    np.add.at(centroids, index, points)
    centroids /= counts[:, None]
    between = float(np.sum(counts * np.sum((centroids - points.mean(0)) ** 2, axis=1)))
    within = float(np.sum((points - centroids[index]) ** 2))
    if within == 0.0:
        return float("inf") if between > 0.0 else float("nan")
    return between * (n - k) / (within * (k - 1))


def ward_clustering(features: np.ndarray, n_clusters: Iterable[int] = PUBLISHED_N_CLUSTERS,
                    *, standardize: bool = False) -> dict[str, Any]:
    """Ward clustering of the rows of ``features (n, F)`` at each ``k`` of ``n_clusters``.

    One Ward linkage (Euclidean, :func:`scipy.cluster.hierarchy.linkage`), cut with
    ``fcluster(criterion="maxclust")`` at each ``k`` (ties in merge heights can give fewer
    than ``k`` clusters: see ``"found"``), each cut scored by :func:`calinski_harabasz` on
    the matrix that was clustered. As published the features are used raw; with
    ``standardize`` each column is z-scored first (constant columns become 0).

    Returns a dict: ``n_clusters (K,)``, ``labels (K, n)`` (0-based, per k), ``found (K,)``
    (clusters actually formed), ``scores (K,)`` (CH; NaN where fewer than 2 clusters formed),
    ``best`` (the k of the highest score), ``best_labels (n,)`` and ``linkage (n−1, 4)``.
    """
    points = np.asarray(features, dtype=np.float64)
    points = points.reshape(len(points), -1)
    ks = np.asarray(list(n_clusters), dtype=int)
    if ks.size == 0 or ks.min() < 2 or ks.max() > len(points) - 1:
        raise ValueError(f"numbers of clusters must lie in [2, n − 1 = {len(points) - 1}], "
                         f"got {ks.tolist()}")
    if standardize:
        spread = points.std(0)
        points = (points - points.mean(0)) / np.where(spread > 0, spread, 1.0)
    tree = linkage(points, method="ward", metric="euclidean")
    labels = np.stack([fcluster(tree, t=k, criterion="maxclust") - 1 for k in ks])
    found = np.array([len(np.unique(row)) for row in labels])
    scores = np.array([calinski_harabasz(points, row) if 2 <= m <= len(points) - 1
                       else np.nan for row, m in zip(labels, found, strict=True)])
    scored = np.flatnonzero(~np.isnan(scores))
    best = int(scored[np.argmax(scores[scored])]) if scored.size else 0
    return {"n_clusters": ks, "labels": labels, "found": found, "scores": scores,
            "best": int(ks[best]), "best_labels": labels[best], "linkage": tree}
