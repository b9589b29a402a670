"""Figures of the GLIFR networks: learning curves, sine outputs, the learned neuron
parameters and the silencing curve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from nrmkit.plotting.style import colormap, figure_grid, finished, label_panels, new_figure, styled

__all__ = ["glifr_learning_curves", "glifr_parameters", "silencing_curve", "sine_outputs"]


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
    """Histograms across neurons of V_th, k_m, and a_j, r_j, k_j of each after-spike current."""
    names = [("v_th", "threshold $V_{th}$"), ("k_m", "$k_m$ (1/ms)"), ("a_j", "$a_j$"),
             ("r_j", "$r_j$"), ("k_j", "$k_j$ (1/ms)")]
    figure, axes = figure_grid(1, len(names), 12.0, 2.5)
    for axis, (name, label) in zip(axes, names, strict=True):
        value = np.atleast_2d(values[name])
        for row, color in zip(value, ("#1f77b4", "#ff7f0e"), strict=False):
            if row.size:
                axis.hist(row, **_histogram_range(row), color=color, alpha=0.7)
        axis.set_xlabel(label)
        axis.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("neurons")
    if title:
        figure.suptitle(title + " (after-spike currents j = 1, 2 in two colours)")
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
