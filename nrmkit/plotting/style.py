"""The house style and the figure scaffolding shared by every plotting family.

Figures are built with the object-oriented API (:class:`matplotlib.figure.Figure`), never
through :mod:`matplotlib.pyplot`: no backend is selected, no global figure registry is
touched, and :meth:`Figure.savefig` writes PNG and PDF by itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

__all__ = ["STYLE", "colormap", "figure_grid", "label_panels", "new_figure", "styled"]

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,
}


def styled(function: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the house style without touching the caller's global rcParams."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def colormap(name: str) -> Colormap:
    """The registered colormap ``name`` (a copy, as ``pyplot.get_cmap`` gives)."""
    return matplotlib.colormaps[name]


def figure_grid(nrows: int, ncols: int, width: float, height: float,
                **subplots: Any) -> tuple[Figure, Any]:
    """A constrained-layout figure of ``width × height`` inches and its axes
    (``Figure.subplots(nrows, ncols, **subplots)``)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(nrows, ncols, **subplots)


def new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, np.ndarray]:
    """One row of ``ncols`` axes without top and right spines."""
    figure, axes = figure_grid(1, ncols, width, height, squeeze=False)
    for axis in axes.flat:
        axis.spines[["top", "right"]].set_visible(False)
    return figure, axes[0]


def label_panels(axes: Sequence) -> None:
    """Bold letters a, b, c, … at the top left of the panels (none for a single panel)."""
    if len(axes) < 2:
        return
    for letter, axis in zip("abcdefgh", axes, strict=False):
        axis.text(-0.14, 1.04, letter, transform=axis.transAxes, fontweight="bold",
                  fontsize=10, va="bottom")


def finished(figure: Any, axes: Sequence, title: str = "", *,
             fontsize: float | None = 9) -> Any:
    """The figure with its title (if any; ``fontsize`` None: the style's) and its panels
    lettered: the last step of the multi-panel figures of the package."""
    if title:
        figure.suptitle(title, **({} if fontsize is None else {"fontsize": fontsize}))
    label_panels(axes)
    return figure
