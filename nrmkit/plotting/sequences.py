"""Figures of the sequence tasks (sequential MNIST) with adaptive nonlinearities: learning
curves, the shape parameters and their adaptation, Lyapunov exponents per step and the
fractional order of the neurons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nrmkit.plotting.style import colormap, figure_grid, finished, label_panels, new_figure, styled

__all__ = ["adaptation_traces", "fractional_orders", "learning_curves", "seed_learning_curves",
           "sequence_lyapunov", "shape_parameters"]


@styled
def learning_curves(history: Sequence[dict], *, title: str = "") -> Figure:
    """Cross-entropy and accuracy per epoch, training and validation (``history`` entries
    hold ``train_loss``, ``validation_loss``, ``train_accuracy``, ``validation_accuracy``)."""
    figure, axes = new_figure(7.0, 2.7, ncols=2)
    epochs = np.arange(1, len(history) + 1)
    for axis, key, label in ((axes[0], "loss", "cross-entropy"),
                             (axes[1], "accuracy", "accuracy (%)")):
        scale = 100.0 if key == "accuracy" else 1.0
        for split, color in (("train", "#1f77b4"), ("validation", "#d62728")):
            values = np.array([entry[f"{split}_{key}"] for entry in history]) * scale
            axis.plot(epochs, values, color=color, lw=1.3, marker="o" if len(epochs) < 30
                      else None, ms=2.5, label=split)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_yscale("log")
    axes[1].legend(frameon=False, loc="lower right")
    return finished(figure, axes, title, fontsize=None)


@styled
def seed_learning_curves(curves: dict[str, np.ndarray], seeds: Sequence[int], *,
                         test_accuracy: dict[str, float], title: str = "") -> Figure:
    """Validation loss (nats) and accuracy (%) per epoch of a sweep over seeds.

    ``curves``: ``validation_loss`` and ``validation_accuracy`` as ``[seed, epoch]`` (NaN
    after a shorter run); one thin line per seed (grey beyond ten seeds), their mean in
    black; ``test_accuracy``: ``{mean, std}`` (fractions) for the title.
    """
    figure, axes = new_figure(7.0, 2.9, ncols=2)
    n_epochs = curves["validation_accuracy"].shape[1]
    epochs = np.arange(1, n_epochs + 1)
    marker = "o" if n_epochs < 30 else None
    colors = colormap("tab10")
    labelled = len(seeds) <= 10
    panels = ((axes[0], "validation_loss", 1.0, "validation cross-entropy (nats)"),
              (axes[1], "validation_accuracy", 100.0, "validation accuracy (%)"))
    for axis, key, scale, label in panels:
        values = scale * curves[key]
        for row, seed in enumerate(seeds):
            axis.plot(epochs, values[row], lw=0.9, alpha=0.75, marker=marker, ms=2.5,
                      color=colors(row % 10) if labelled else "0.6",
                      label=(f"seed {seed}" if labelled else
                             "individual seeds" if row == 0 else None))
        axis.plot(epochs, np.nanmean(values, axis=0), color="black", lw=2.0, marker=marker,
                  ms=3.5, label=f"mean of {len(seeds)} seeds", zorder=3)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses = curves["validation_loss"][np.isfinite(curves["validation_loss"])]
    if losses.size and losses.min() > 0 and losses.max() > 10 * losses.min():
        axes[0].set_yscale("log")
    axes[1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.suptitle(f"{title}\ntest accuracy {100 * test_accuracy['mean']:.1f} ± "
                    f"{100 * test_accuracy['std']:.1f} % (mean ± std over seeds)")
    label_panels(axes)
    return figure


@styled
def shape_parameters(n: np.ndarray, s: np.ndarray, *, title: str = "",
                     initial_n: np.ndarray | None = None, label: str = "learned") -> Figure:
    """Histograms across neurons of the gamma gain ``n`` and saturation ``s``."""
    figure, axes = new_figure(7.0, 2.6, ncols=2)
    for axis, values, initial, name in ((axes[0], n, initial_n, "gain n"),
                                        (axes[1], s, None, "saturation s")):
        values = np.atleast_1d(values)
        pooled = values if initial is None else np.concatenate([values, np.ravel(initial)])
        low, high = (0.0, 1.0) if initial is None and name.startswith("sat") else (
            float(pooled.min()), float(pooled.max()))
        edges = np.linspace(low, high if high > low else low + 1e-3,
                            min(41, max(9, values.size // 4)))
        if values.size == 1:
            axis.axvline(float(values[0]), color="#1f77b4", lw=2, label=label)
        else:
            axis.hist(values, bins=edges, color="#1f77b4", alpha=0.8, label=label)
        if initial is not None and np.size(initial) > 1:
            axis.hist(np.ravel(initial), bins=edges, color="grey", alpha=0.45, label="initial")
        axis.set_xlabel(name)
        axis.set_ylabel("neurons")
    axes[1].set_xlim(-0.05, 1.05)
    axes[0].legend(frameon=False)
    return finished(figure, axes, title, fontsize=None)


@styled
def adaptation_traces(inputs: np.ndarray, n: np.ndarray, s: np.ndarray,
                      neurons: Sequence[int], *, title: str = "") -> Figure:
    """ANRU shape signals over one sequence: input ``(T, I)``, ``n_t`` and ``s_t`` ``(T, k)``
    for the neurons listed."""
    figure, axes = figure_grid(3, 1, 6.0, 5.0, sharex=True)
    steps = np.arange(inputs.shape[0])
    inputs = inputs.reshape(len(steps), -1)
    if inputs.shape[1] == 1:
        axes[0].plot(steps, inputs[:, 0], color="black", lw=0.8)
        axes[0].set_ylabel("input")
    else:
        axes[0].imshow(inputs.T, aspect="auto", cmap="gray_r", interpolation="nearest",
                       extent=(-0.5, len(steps) - 0.5, inputs.shape[1] - 0.5, -0.5))
        axes[0].set_ylabel("input channel")
    colors = colormap("tab10")(np.arange(len(neurons)) % 10)
    for column, (neuron, color) in enumerate(zip(neurons, colors, strict=True)):
        axes[1].plot(steps, n[:, column], color=color, lw=1.1, label=f"neuron {neuron}")
        axes[2].plot(steps, s[:, column], color=color, lw=1.1)
    axes[1].set_ylabel("gain $n_t$")
    axes[2].set_ylabel("saturation $s_t$")
    axes[2].set_xlabel("time step")
    axes[1].legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for axis in axes:
        axis.spines[["top", "right"]].set_visible(False)
    return finished(figure, axes, title, fontsize=None)


@styled
def sequence_lyapunov(curves: dict[str, tuple[np.ndarray, np.ndarray]], *,
                      title: str = "") -> Figure:
    """Top exponents (mean ± s.d. over trajectories) per condition, nats per step."""
    figure, (axis,) = new_figure(4.4, 3.0)
    for (name, (mean, std)), marker in zip(curves.items(), "os^", strict=False):
        index = np.arange(1, len(mean) + 1)
        axis.errorbar(index, mean, yerr=std, marker=marker, ms=4, lw=1.2, capsize=2,
                      label=name)
    axis.axhline(0.0, color="black", ls="--", lw=0.8, alpha=0.6)
    axis.set_xlabel("exponent index $i$")
    axis.set_ylabel(r"$\lambda_i$ (nats / step)")
    axis.legend(frameon=False)
    if title:
        axis.set_title(title)
    return figure


@styled
def fractional_orders(alpha_hat: np.ndarray, alphas: np.ndarray, error: np.ndarray, *,
                      title: str = "") -> Figure:
    """Histogram of the estimated order α̂ per neuron and the mismatch ``1 − R²`` vs α."""
    figure, axes = new_figure(7.0, 2.6, ncols=2)
    edges = np.linspace(alphas.min(), alphas.max(), 21)
    axes[0].hist(alpha_hat, bins=edges, color="#2ca02c", alpha=0.85)
    axes[0].axvline(float(np.median(alpha_hat)), color="black", ls="--", lw=0.9,
                    label=f"median {np.median(alpha_hat):.2f}")
    axes[0].set_xlabel(r"fractional order $\hat\alpha$")
    axes[0].set_ylabel("neurons")
    axes[0].legend(frameon=False)
    for row in error[:: max(1, len(error) // 40)]:
        axes[1].plot(alphas, row, color="grey", lw=0.5, alpha=0.4)
    axes[1].plot(alphas, error.mean(0), color="black", lw=1.6, label="mean over neurons")
    axes[1].set_xlabel(r"order $\alpha$")
    axes[1].set_ylabel(r"$1 - R^2$ of $D^\alpha$(response) vs drive")
    axes[1].set_yscale("log")
    axes[1].legend(frameon=False)
    return finished(figure, axes, title, fontsize=None)
