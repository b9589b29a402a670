"""Figures of the gamma-shape grid (``smnist_grid``) and of the analyses of a trained
sequence model (``smnist_analysis``): heat maps over the gain n and saturation s, and curves
against a parameter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from nrmkit.plotting.style import finished, new_figure, styled

__all__ = ["analysis_curves", "grid_heatmap"]


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted grid ``values`` (midpoints; half a step beyond the ends)."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return np.array([values[0] - 0.5, values[0] + 0.5])
    middle = 0.5 * (values[1:] + values[:-1])
    return np.concatenate([[2 * values[0] - middle[0]], middle,
                           [2 * values[-1] - middle[-1]]])


def _heatmap(axis, gains, saturations, values, *, label: str, annotate: bool):
    order_n, order_s = np.argsort(gains), np.argsort(saturations)
    gains, saturations = np.asarray(gains)[order_n], np.asarray(saturations)[order_s]
    values = np.asarray(values, dtype=float)[np.ix_(order_n, order_s)]
    mesh = axis.pcolormesh(_edges(saturations), _edges(gains), values, cmap="viridis",
                           shading="flat")
    axis.figure.colorbar(mesh, ax=axis, label=label)
    if annotate and values.size <= 60:
        for i, n in enumerate(gains):
            for j, s in enumerate(saturations):
                if np.isfinite(values[i, j]):   # dark text on the bright half of the map
                    bright = mesh.norm(values[i, j]) > 0.5
                    axis.text(s, n, f"{values[i, j]:.3g}", ha="center", va="center",
                              fontsize=6, color="black" if bright else "white")
    axis.set_xticks(saturations, [f"{s:g}" for s in saturations])     # the grid's own values
    axis.set_yticks(gains, [f"{n:g}" for n in gains])
    axis.set_xlabel("saturation s")
    axis.set_ylabel("gain n")


@styled
def grid_heatmap(gains: np.ndarray, saturations: np.ndarray, values: np.ndarray, *,
                 label: str, title: str = "", annotate: bool = True) -> Figure:
    """A heat map of ``values`` (shape ``(len(gains), len(saturations))``) over the grid of
    gamma shapes: saturation s on the x axis, gain n on the y axis, one cell per point."""
    figure, axes = new_figure(4.2, 3.4)
    _heatmap(axes[0], gains, saturations, values, label=label, annotate=annotate)
    return finished(figure, axes, title, fontsize=None)


@styled
def analysis_curves(panels: Sequence[dict], *, title: str = "") -> Figure:
    """Curves side by side. Each panel: ``x``, ``ys`` (``{label: y}``), ``xlabel``,
    ``ylabel``, optional ``logx``/``logy`` and ``zero`` (a dashed line at y = 0)."""
    figure, axes = new_figure(3.6 * len(panels), 2.9, ncols=len(panels))
    for axis, panel in zip(axes, panels, strict=True):
        for label, y in panel["ys"].items():
            axis.plot(panel["x"], y, "o-", ms=3, label=label)
        if panel.get("zero"):
            axis.axhline(0.0, color="grey", ls="--", lw=0.8)
        if panel.get("logx"):
            axis.set_xscale("log")
        if panel.get("logy"):
            axis.set_yscale("log")
        axis.set_xlabel(panel["xlabel"])
        axis.set_ylabel(panel["ylabel"])
        if len(panel["ys"]) > 1:
            axis.legend(frameon=False, fontsize=7)
    return finished(figure, axes, title, fontsize=None)
