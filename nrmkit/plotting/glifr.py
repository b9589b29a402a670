"""Figures of the GLIFR networks: learning curves, sine outputs, the learned neuron
parameters and the silencing curve; and of their analyses (:mod:`nrmkit.dynamics.glifr_analysis`):
f–I curves coloured by cluster, Calinski–Harabasz scores against the number of clusters, and
the per-epoch trajectories of the neuron parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nrmkit.plotting.style import colormap, figure_grid, finished, label_panels, new_figure, styled

__all__ = ["cluster_scores_figure", "fi_curves_figure", "glifr_learning_curves",
           "glifr_parameters", "parameter_trajectories_figure", "silencing_curve",
           "sine_outputs"]

#: axis labels (with units, as published: mV, 1/ms, pA) of the neuron parameters, in panel order.
PARAMETER_LABELS = {"v_th": "threshold $V_{th}$ (mV)", "k_m": "$k_m$ (1/ms)",
                    "k_j": "$k_j$ (1/ms)", "r_j": "$r_j$", "a_j": "$a_j$ (pA)"}


@styled
def glifr_learning_curves(curves: Sequence[dict], *, metric: str, title: str = "") -> Figure:
    """Training loss and validation metric per epoch, one line per trial."""
    figure, axes = new_figure(7.0, 2.6, ncols=2)
    for trial, curve in enumerate(curves):
        if not curve:
            continue
        epochs = np.arange(1, len(curve["train_loss"]) + 1)
        color = colormap("tab10")(trial % 10)
        axes[0].plot(epochs, curve["train_loss"], color=color, lw=1.0, label=f"trial {trial}")
        scale = 100.0 if metric == "accuracy" else 1.0
        axes[1].plot(epochs, scale * np.asarray(curve[f"validation_{metric}"]), color=color,
                     lw=1.0)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation accuracy (%)" if metric == "accuracy" else "validation MSE")
    for axis in axes[:2]:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metric != "accuracy":
        axes[1].set_yscale("log")
    if len(curves) <= 10:
        axes[0].legend(frameon=False)
    return finished(figure, axes, title, fontsize=None)


@styled
def sine_outputs(outputs: np.ndarray, targets: np.ndarray, frequencies: np.ndarray, *,
                 title: str = "", dt: float = 0.05) -> Figure:
    """Network outputs (solid) against targets (dashed) for each frequency ``(T, n)``."""
    figure, (axis,) = new_figure(5.0, 3.2)
    time = np.arange(outputs.shape[0]) * dt
    colors = colormap("viridis")(np.linspace(0.05, 0.9, outputs.shape[1]))
    for column, color in enumerate(colors):
        axis.plot(time, targets[:, column], color=color, ls="--", lw=1.0)
        axis.plot(time, outputs[:, column], color=color, lw=1.5,
                  label=f"{1000 * frequencies[column]:.0f} Hz")
    axis.set_xlabel("time (ms)")
    axis.set_ylabel("output")
    axis.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                title="solid: network\ndashed: target", title_fontsize=7)
    if title:
        axis.set_title(title)
    return figure


@styled
def glifr_parameters(values: dict[str, np.ndarray], *, title: str = "",
                     dt: float = 0.05) -> Figure:
    """Histograms across neurons of V_th, k_m, and a_j, r_j, k_j of each after-spike current
    (the after-spike panels only where the neurons have currents)."""
    names = [("v_th", "threshold $V_{th}$"), ("k_m", "$k_m$ (1/ms)"), ("a_j", "$a_j$"),
             ("r_j", "$r_j$"), ("k_j", "$k_j$ (1/ms)")]
    n_currents = np.atleast_2d(values["a_j"]).shape[0] if np.size(values["a_j"]) else 0
    if not n_currents:
        names = names[:2]
    figure, axes = figure_grid(1, len(names), 12.0 * len(names) / 5, 2.5)
    for axis, (name, label) in zip(axes, names, strict=True):
        value = np.atleast_2d(values[name])
        for j, row in enumerate(value):
            color = f"C{j}"
            if row.size:
                axis.hist(row, **_histogram_range(row), color=color, alpha=0.7)
        axis.set_xlabel(label)
        axis.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("neurons")
    if title and n_currents > 1:
        numbers = ", ".join(str(j + 1) for j in range(n_currents))
        figure.suptitle(f"{title} (after-spike currents j = {numbers} in "
                        f"{n_currents} colours)")
    elif title:
        figure.suptitle(title)
    label_panels(axes)
    return figure


@styled
def silencing_curve(scores: dict[str, list[list[float]]], fractions: Sequence[float], *,
                    metric: str) -> Figure:
    """Metric against the fraction of silenced neurons: mean ± s.d. over trials per model."""
    figure, (axis,) = new_figure(4.2, 3.0)
    scale = 100.0 if metric == "accuracy" else 1.0
    for name, trials in scores.items():
        values = scale * np.asarray(trials)
        axis.errorbar(fractions, values.mean(0), yerr=values.std(0), marker="o", ms=4,
                      capsize=2, label=name)
    axis.set_xlabel("fraction of hidden neurons silenced")
    axis.set_ylabel("test accuracy (%)" if metric == "accuracy" else "test MSE")
    axis.legend(frameon=False)
    return figure


@styled
def fi_curves_figure(currents: np.ndarray, rates: np.ndarray, labels: np.ndarray | None = None,
                     *, reference: np.ndarray | None = None, title: str = "",
                     current_label: str = "injected current $I$ (pA)") -> Figure:
    """f–I curves: ``rates (H, C)`` of each neuron against ``currents (C,)``, one faint line
    per neuron, coloured by its cluster in ``labels (H,)`` (legend: cluster and its size);
    ``reference (H₀, C)`` (e.g. the untrained network's curves) in black underneath."""
    currents, rates = np.asarray(currents, dtype=float), np.atleast_2d(rates)
    figure, (axis,) = new_figure(4.6, 3.2)
    if reference is not None:
        axis.plot(currents, np.atleast_2d(reference).T, color="black", lw=1.2, alpha=0.8)
        axis.plot([], [], color="black", lw=1.2, label="before training")
    if labels is None:
        axis.plot(currents, rates.T, color="#1f77b4", lw=0.8, alpha=0.4)
    else:
        labels = np.asarray(labels)
        clusters = np.unique(labels)
        palette = colormap("tab10" if len(clusters) <= 10 else "tab20")
        for index, cluster in enumerate(clusters):
            members = rates[labels == cluster]
            color = palette(index % palette.N)
            axis.plot(currents, members.T, color=color, lw=0.8, alpha=0.5)
            axis.plot([], [], color=color, lw=2.0,
                      label=f"cluster {_cluster_name(index)} (n = {len(members)})")
    axis.set_xlabel(current_label)
    axis.set_ylabel(r"mean rate $\bar{r}$ (dimensionless)")
    axis.set_ylim(-0.02, 1.02)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        axis.set_title(title)
    return figure


@styled
def cluster_scores_figure(n_clusters: Sequence[int], scores: Sequence[float], *,
                          title: str = "") -> Figure:
    """Calinski–Harabasz index against the number of clusters ``k``; the best ``k`` ringed."""
    ks, values = np.asarray(n_clusters, dtype=int), np.asarray(scores, dtype=float)
    figure, (axis,) = new_figure(3.4, 2.8)
    axis.plot(ks, values, color="black", lw=1.0, marker="o", ms=5)
    scored = np.flatnonzero(np.isfinite(values))
    if scored.size:
        best = scored[np.argmax(values[scored])]
        axis.plot(ks[best], values[best], marker="o", ms=12, mfc="none", mec="#d62728",
                  mew=1.5, ls="none", label=f"best: k = {ks[best]}")
        axis.legend(frameon=False)
    axis.set_xticks(ks)
    axis.set_xlabel("number of clusters $k$")
    axis.set_ylabel("Calinski–Harabasz index")
    if title:
        axis.set_title(title)
    return figure


@styled
def parameter_trajectories_figure(epochs: np.ndarray, trajectories: dict[str, np.ndarray],
                                  dt: float = 0.05, *, title: str = "") -> Figure:
    """Per-epoch values of the neuron parameters: a panel per parameter present
    (``v_th, k_m`` as ``(E, H)``; ``k_j, r_j, a_j`` as ``(E, n_asc, H)``, one colour per
    after-spike current), faint lines per neuron and the mean across neurons thick; the
    rate panels also read ``dt·k`` (the fraction decayed per step of ``dt`` ms) on the right."""
    epochs = np.asarray(epochs, dtype=float)
    names = [name for name in PARAMETER_LABELS
             if name in trajectories and np.asarray(trajectories[name]).size]
    figure, axes = figure_grid(1, len(names), 2.7 * len(names), 2.7, squeeze=False)
    axes = list(axes[0])
    for axis, name in zip(axes, names, strict=True):
        values = np.asarray(trajectories[name], dtype=float)
        rows = values[:, None, :] if values.ndim == 2 else values
        for j in range(rows.shape[1]):
            color = f"C{j}" if values.ndim == 3 else "#444444"
            axis.plot(epochs, rows[:, j, :], color=color, lw=0.5, alpha=0.15)
            label = f"$j = {j + 1}$ mean" if values.ndim == 3 else "mean"
            axis.plot(epochs, rows[:, j, :].mean(-1), color=color, lw=2.0, label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(PARAMETER_LABELS[name])
        if name in ("k_m", "k_j"):
            right = axis.secondary_yaxis("right", functions=(lambda k: k * dt,
                                                             lambda step: step / dt))
            right.set_ylabel(rf"$dt\,k$ per step ($dt$ = {dt:g} ms)", fontsize=7)
        if name in ("v_th", "k_j"):
            axis.legend(frameon=False, fontsize=6.5)
    return finished(figure, axes, title)


def _cluster_name(index: int) -> str:
    """A, B, …, Z, then numbers (as in the published figure's legend)."""
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def _histogram_range(values: np.ndarray, bins: int = 20) -> dict:
    """Bins for ``hist``: 20 across the data, or one bin around (nearly) constant data
    (fixed, homogeneous neurons), where numpy refuses 20 bins inside a round-off range."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scale = max(abs(low), abs(high), 1e-12)
    if high - low > 1e-6 * scale:
        return {"bins": bins}
    half = 0.05 * scale
    return {"bins": 1, "range": (low - half, high + half)}
