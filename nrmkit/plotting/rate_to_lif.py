"""Figures of the rate-to-LIF conversion: the rate network's outputs and training curve, the
LIF accuracy and firing rate against λ, one LIF trial's raster, the read-out with and without
artificial stimulation and membrane-voltage traces."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from nrmkit.plotting.style import colormap, figure_grid, finished, label_panels, new_figure, styled

__all__ = ["lambda_grid", "lif_raster", "rate_task_outputs", "rate_training_curve",
           "stimulation_outputs", "voltage_traces"]


@styled
def rate_task_outputs(outputs: np.ndarray, targets: np.ndarray, conditions: np.ndarray,
                      condition_names: Sequence[str], *, step_ms: float = 5.0,
                      title: str = "", ylabel: str = "output") -> Figure:
    """Mean ± s.d. output per condition (solid) with its target (dashed); arrays ``(T, B)``."""
    figure, (axis,) = new_figure(5.0, 3.0)
    time = np.arange(outputs.shape[0]) * step_ms / 1000.0
    colors = colormap("tab10")
    for index, name in enumerate(condition_names):
        chosen = conditions == index
        if not chosen.any():
            continue
        color = colors(index % 10)
        mean = outputs[:, chosen].mean(1)
        spread = outputs[:, chosen].std(1)
        axis.fill_between(time, mean - spread, mean + spread, color=color, alpha=0.2, lw=0)
        axis.plot(time, mean, color=color, lw=1.5, label=f"{name} (n={int(chosen.sum())})")
        axis.plot(time, targets[:, chosen][:, 0], color=color, lw=1.0, ls="--")
    _label_conditions(axis, ylabel, "solid: mean ± s.d.\ndashed: target", title)
    return figure


@styled
def lambda_grid(lambdas: np.ndarray, accuracy: np.ndarray, firing_rate_hz: np.ndarray, *,
                best: float, rate_accuracy: float | None = None, title: str = "") -> Figure:
    """LIF task accuracy and mean firing rate against the scaling factor λ."""
    figure, axes = new_figure(7.0, 2.6, ncols=2)
    axes[0].plot(lambdas, 100 * np.asarray(accuracy), marker="o", ms=4, color="#1f77b4",
                 label="LIF network")
    if rate_accuracy is not None:
        axes[0].axhline(100 * rate_accuracy, color="0.4", ls="--", lw=1.0,
                        label="rate network")
    axes[0].axvline(best, color="#d62728", lw=1.0, ls=":", label=f"best λ = {best:g}")
    axes[0].set_xlabel("scaling factor λ")
    axes[0].set_ylabel("task accuracy (%)")
    axes[0].set_ylim(-3, 103)
    axes[0].legend(frameon=False, loc="lower left")
    axes[1].plot(lambdas, firing_rate_hz, marker="o", ms=4, color="#2ca02c")
    axes[1].set_xlabel("scaling factor λ")
    axes[1].set_ylabel("mean firing rate (Hz)")
    return finished(figure, axes, title, fontsize=None)


@styled
def lif_raster(spike_times_ms: np.ndarray, spike_neurons: np.ndarray, inhibitory: np.ndarray,
               lif_output: np.ndarray, rate_output: np.ndarray, target: np.ndarray, *,
               step_ms: float = 5.0, title: str = "") -> Figure:
    """One trial: raster (excitatory blue, inhibitory red; inhibitory units on top) and the
    LIF read-out against the rate network's output and the target."""
    figure, axes = figure_grid(2, 1, 6.0, 4.6, sharex=True,
                                gridspec_kw={"height_ratios": [2.2, 1.0]})
    order = np.argsort(inhibitory.astype(int), kind="stable")    # excitatory first
    row = np.empty_like(order)
    row[order] = np.arange(order.size)
    times = np.asarray(spike_times_ms) / 1000.0
    neurons = np.asarray(spike_neurons, dtype=int)
    is_inh = inhibitory[neurons] if neurons.size else np.zeros(0, dtype=bool)
    for mask, color, label in ((~is_inh, "#1f77b4", "excitatory"),
                               (is_inh, "#d62728", "inhibitory")):
        axes[0].scatter(times[mask], row[neurons[mask]], s=0.6, color=color, marker="|",
                        linewidths=0.5, label=label, rasterized=True)
    axes[0].set_ylabel("neuron")
    axes[0].set_ylim(-1, inhibitory.size)
    axes[0].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=8)
    time = np.arange(len(lif_output)) * step_ms / 1000.0
    axes[1].plot(time, target, color="0.3", ls="--", lw=1.0, label="target")
    axes[1].plot(time, rate_output, color="0.55", lw=1.2, label="rate network")
    axes[1].plot(time, lif_output, color="#9467bd", lw=1.5, label="LIF network")
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("read-out")
    axes[1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for axis in axes:
        axis.spines[["top", "right"]].set_visible(False)
    if title:
        axes[0].set_title(title)
    label_panels(axes)
    return figure


@styled
def rate_training_curve(updates: np.ndarray, loss: np.ndarray, accuracy: np.ndarray, *,
                        title: str = "") -> Figure:
    """Evaluation loss (with the stopping threshold 7) and accuracy every 100 updates."""
    figure, axes = new_figure(7.0, 2.6, ncols=2)
    axes[0].plot(updates, loss, marker="o", ms=3)
    axes[0].axhline(7.0, color="0.4", ls="--", lw=1.0, label="stopping threshold")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("updates")
    axes[0].set_ylabel("evaluation loss")
    axes[0].legend(frameon=False)
    axes[1].plot(updates, 100 * np.asarray(accuracy), marker="o", ms=3)
    axes[1].axhline(95.0, color="0.4", ls="--", lw=1.0)
    axes[1].set_xlabel("updates")
    axes[1].set_ylabel("evaluation accuracy (%)")
    return finished(figure, axes, title, fontsize=None)


@styled
def stimulation_outputs(without: np.ndarray, with_stimulation: np.ndarray,
                        conditions: np.ndarray, condition_names: Sequence[str],
                        window_ms: Sequence[float], *, mode: str, step_ms: float = 5.0,
                        title: str = "") -> Figure:
    """Mean LIF read-out per condition with (solid) and without (dashed) the artificial
    stimulation, the window shaded; arrays ``(T, B)``."""
    figure, (axis,) = new_figure(5.0, 3.0)
    time = np.arange(without.shape[0]) * step_ms / 1000.0
    axis.axvspan(window_ms[0] / 1000.0, window_ms[1] / 1000.0, color="#ffdd57", alpha=0.3,
                 lw=0, label=f"{mode} stimulation")
    colors = colormap("tab10")
    for index, name in enumerate(condition_names):
        chosen = conditions == index
        if not chosen.any():
            continue
        color = colors(index % 10)
        axis.plot(time, without[:, chosen].mean(1), color=color, lw=1.0, ls="--")
        axis.plot(time, with_stimulation[:, chosen].mean(1), color=color, lw=1.5,
                  label=f"{name} (n={int(chosen.sum())})")
    _label_conditions(axis, "LIF read-out", "solid: stimulated\ndashed: unperturbed", title)
    return figure


def _label_conditions(axis, ylabel: str, legend_title: str, title: str) -> None:
    """Time axis, ``ylabel``, the per-condition legend outside the axes, and the title."""
    axis.set_xlabel("time (s)")
    axis.set_ylabel(ylabel)
    axis.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                title=legend_title, title_fontsize=7)
    if title:
        axis.set_title(title)


@styled
def voltage_traces(time_ms: np.ndarray, voltage_mv: np.ndarray, units: Sequence[int], *,
                   stimulated: np.ndarray | None = None,
                   window_ms: Sequence[float] | None = None, title: str = "") -> Figure:
    """Membrane voltage ``(T_lif, K)`` of ``K`` units, one panel each (spikes drawn as peaks
    at 30 mV), with the stimulated run's traces and its window when given."""
    k = len(units)
    figure, axes = figure_grid(k, 1, 6.0, 1.2 + 1.1 * k, sharex=True, squeeze=False)
    axes = axes[:, 0]
    time = np.asarray(time_ms) / 1000.0
    for index, (axis, unit) in enumerate(zip(axes, units, strict=True)):
        if window_ms is not None:
            axis.axvspan(window_ms[0] / 1000.0, window_ms[1] / 1000.0, color="#ffdd57",
                         alpha=0.3, lw=0)
        axis.plot(time, voltage_mv[:, index], color="0.25", lw=0.5, label="unperturbed")
        if stimulated is not None:
            axis.plot(time, stimulated[:, index], color="#d62728", lw=0.5, alpha=0.8,
                      label="stimulated")
        axis.set_ylabel(f"v, unit {unit}\n(mV)")
        axis.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("time (s)")
    if stimulated is not None:
        axes[0].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        axes[0].set_title(title)
    return figure
