"""Figures of networks trained on their Lyapunov spectrum: the trained networks' spectra,
the training curves, and the trained gains and shifts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nrmkit.plotting.style import colormap, figure_grid, finished, label_panels, new_figure, styled

__all__ = ["trained_parameters", "trained_spectra", "training_curves"]


@styled
def trained_spectra(
    exponents: np.ndarray, dimension: np.ndarray, entropy: np.ndarray, n: int, *,
    sum_rule: float | None = None, title: str = "",
) -> Figure:
    """The networks of one model: (a) spectra λ_i vs i/N, (b) D/N and (c) H/N per network.

    ``exponents[network, k]``; ``dimension``, ``entropy``: ``[network]``.
    """
    figure, axes = new_figure(9.0, 2.8, ncols=3)
    networks, k = exponents.shape
    colors = colormap("viridis")(np.linspace(0.1, 0.85, max(networks, 1)))
    index = np.arange(1, k + 1) / n
    for number, (spectrum, color) in enumerate(zip(exponents, colors, strict=False)):
        axes[0].plot(index, spectrum, color=color, lw=1.0,
                     label=f"network {number}" if networks <= 8 else None)
    axes[0].axhline(0, color="black", lw=0.7, ls="--", alpha=0.6)
    if sum_rule is not None:
        axes[0].axhline(sum_rule, color="grey", lw=0.7, ls=":",
                        label=f"sum-rule mean {sum_rule:.3f}")
    if networks <= 8 or sum_rule is not None:
        axes[0].legend(frameon=False, loc="lower left")
    axes[0].set_xlabel("i / N")
    axes[0].set_ylabel(r"$\lambda_i$  [1/τ]")
    numbers = np.arange(networks)
    for axis, values, label in ((axes[1], dimension / n, "attractor dimension D / N"),
                                (axes[2], entropy / n, "entropy rate H / N  [nats/τ]")):
        axis.bar(numbers, values, color=colors[:networks], width=0.7)
        axis.set_xlabel("network")
        axis.set_ylabel(label)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return finished(figure, axes, title)


@styled
def training_curves(
    loss: np.ndarray, lambda_max: np.ndarray, spectrum_initial: np.ndarray,
    spectrum_final: np.ndarray, *, target: float | None = None, title: str = "",
    evaluated: tuple[np.ndarray, np.ndarray] | None = None,
    baseline: np.ndarray | None = None,
) -> Figure:
    """Training on the spectrum: (a) loss per epoch, (b) λ_max per epoch, (c) spectra.

    ``loss``, ``lambda_max``: ``[epoch, network]`` estimates of the training runs (NaN
    after a network stopped early); spectra ``[network, k]`` (1/τ) of the evaluation runs.
    ``evaluated``: the evaluation losses ``[network]`` before and after training (circles
    at epoch 0 and at the last epoch); ``baseline``: the best global gain's loss
    ``[network]`` (dashed).
    """
    figure, axes = new_figure(9.0, 2.8, ncols=3)
    epochs = np.arange(1, loss.shape[0] + 1)
    colors = colormap("tab10")(np.arange(loss.shape[1]) % 10)
    for i, color in enumerate(colors):
        axes[0].plot(epochs, loss[:, i], color=color, lw=1, alpha=0.8)
        axes[1].plot(epochs, lambda_max[:, i], color=color, lw=1)
        if evaluated is not None:
            axes[0].plot([0, epochs[-1]], [evaluated[0][i], evaluated[1][i]], "o",
                         color=color, mfc="white", ms=5)
        if baseline is not None:
            axes[0].axhline(baseline[i], color=color, ls="--", lw=0.8)
    if evaluated is not None:
        axes[0].plot([], [], color="grey", lw=1, label="training")
        axes[0].plot([], [], "o", color="grey", mfc="white", label="evaluation")
    if baseline is not None:
        axes[0].plot([], [], color="grey", ls="--", lw=0.8, label="best global gain")
    if evaluated is not None or baseline is not None:
        axes[0].legend(frameon=False, fontsize=7)
    if np.all(loss[np.isfinite(loss)] > 0):
        axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    if target is not None:
        axes[1].axhline(target, color="black", ls="--", lw=0.8, label=f"target {target:g}")
        axes[1].legend(frameon=False)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel(r"$\lambda_{\max}$  [1/τ]")
    for axis in axes[:2]:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    index = np.arange(1, spectrum_initial.shape[-1] + 1)
    for i, color in enumerate(colors):
        axes[2].plot(index, spectrum_initial[i], color=color, ls=":", lw=1)
        axes[2].plot(index, spectrum_final[i], color=color, lw=1.2)
    axes[2].plot([], [], color="grey", ls=":", label="before")
    axes[2].plot([], [], color="grey", label="after")
    axes[2].axhline(0, color="black", lw=0.6, alpha=0.5)
    axes[2].legend(frameon=False)
    axes[2].set_xlabel("exponent index i")
    axes[2].set_ylabel(r"$\lambda_i$  [1/τ]")
    return finished(figure, axes, title)


@styled
def trained_parameters(
    gains: np.ndarray, shifts: np.ndarray, *, populations: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """Trained gains and shifts ``[network, P]``: per population (named, one dot per network)
    or, per neuron, as histograms over neurons and networks."""
    if populations is not None:
        width = min(16.0, max(7.0, 3.0 + 0.18 * len(populations)))
        figure, axes = figure_grid(2, 1, width, 4.6, sharex=True)
        positions = np.arange(len(populations))
        for axis, values, label in ((axes[0], gains, "gain a"), (axes[1], shifts, "shift s")):
            for row in values:
                axis.scatter(positions, row, s=12, alpha=0.7, lw=0)
            axis.set_ylabel(label)
            axis.spines[["top", "right"]].set_visible(False)
        axes[0].axhline(1.0, color="grey", lw=0.6, ls=":")
        axes[1].axhline(0.0, color="grey", lw=0.6, ls=":")
        axes[1].set_xticks(positions, list(populations), rotation=90,
                           fontsize=7 if len(populations) < 40 else 5)
        axes[1].set_xlabel("population")
    else:
        figure, axes = new_figure(6.0, 2.6, ncols=2)
        for axis, values, label in ((axes[0], gains, "gain a"), (axes[1], shifts, "shift s")):
            axis.hist(values.ravel(), bins=40, color="tab:blue", alpha=0.8)
            axis.set_xlabel(label)
            axis.set_ylabel("neurons")
        label_panels(axes)
    if title:
        figure.suptitle(title, fontsize=9)
    return figure
