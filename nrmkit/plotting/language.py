"""Figures of the character-level language model (``ptb_task``): learning curves in bits per
character."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nrmkit.plotting.style import new_figure, styled

__all__ = ["bpc_curves"]


@styled
def bpc_curves(history: Sequence[dict], *, uniform_bpc: float, test_bpc: float | None = None,
               title: str = "") -> Figure:
    """Training and validation bits per character per epoch (``history`` entries hold
    ``train_bpc`` and ``validation_bpc``), with the uniform predictor's ``log2 V``
    (dashed) and the test BPC of the final model (dotted) for reference."""
    figure, axes = new_figure(4.2, 2.9)
    axis = axes[0]
    epochs = np.arange(1, len(history) + 1)
    marker = "o" if len(epochs) < 30 else None
    for key, label, color in (("train_bpc", "train", "#1f77b4"),
                              ("validation_bpc", "validation", "#d62728")):
        axis.plot(epochs, [entry[key] for entry in history], color=color, lw=1.3,
                  marker=marker, ms=2.5, label=label)
    axis.axhline(uniform_bpc, color="0.5", ls="--", lw=0.9, label="uniform (log₂ V)")
    if test_bpc is not None:
        axis.axhline(test_bpc, color="k", ls=":", lw=0.9, label="test, final model")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("bits per character (bits)")
    axis.legend(frameon=False, loc="upper right")
    if title:
        figure.suptitle(title)
    return figure
