"""Lyapunov-spectrum figures: transition to chaos, spectra vs coupling, convergence of the
estimates with the re-orthonormalisation interval, and the engine's benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from nrmkit.plotting.style import colormap, finished, new_figure, styled

__all__ = ["benchmark", "convergence", "network_activity", "spectrum_overview",
           "transition_to_chaos"]


@styled
def transition_to_chaos(
    g: np.ndarray, lambda_max: np.ndarray, *, theory: np.ndarray | None = None,
    title: str = "", seed: int = 0, dt: float | None = None, curve=None,
) -> Figure:
    """Strip plot of λ_max per coupling (``lambda_max[g, sample]``), medians, zero line.

    With ``theory`` the N → ∞ curve is drawn: ``curve(g)`` when given (where finite), else
    the mean-field curve (below g = 1 for the Euler map of step ``dt`` when given).
    """
    figure, (axis,) = new_figure(4.6, 3.0)
    rng = np.random.default_rng(seed)
    colors = colormap("viridis")(np.linspace(0.1, 0.85, len(g)))
    spacing = np.min(np.diff(g)) if len(g) > 1 else 1.0
    for g_value, values, color in zip(g, lambda_max, colors, strict=True):
        jitter = rng.uniform(-0.18, 0.18, size=len(values)) * spacing
        axis.scatter(g_value + jitter, values, s=10, color=color, alpha=0.55, lw=0)
        axis.scatter([g_value], [np.median(values)], marker="D", s=28, color=color,
                     edgecolor="black", linewidth=0.7, zorder=3)
    axis.axhline(0.0, color="black", ls="--", lw=0.8, alpha=0.6)
    if theory is not None and np.isfinite(theory).any():
        fine = np.linspace(g.min(), g.max(), 200)
        from nrmkit.dynamics.theory import mean_field_lambda_max

        values = mean_field_lambda_max(fine, dt=dt) if curve is None else curve(fine)
        axis.plot(fine, values, color="tab:red", lw=1, alpha=0.8,
                  label="mean field, N → ∞" if curve is None else "linear theory, N → ∞")
    axis.scatter([], [], s=10, color="grey", alpha=0.55, lw=0, label="one network")
    axis.scatter([], [], marker="D", color="grey", edgecolor="black", label="median")
    axis.legend(frameon=False, loc="upper left")
    axis.set_xlabel("coupling g")
    axis.set_ylabel(r"$\lambda_{\max}$  [1/τ]")
    if title:
        axis.set_title(title)
    return figure


@styled
def spectrum_overview(
    g: np.ndarray, exponents: np.ndarray, dimension: np.ndarray, entropy: np.ndarray,
    n: int, *, sum_rule: float | None = None, title: str = "",
) -> Figure:
    """(a) spectra λ_i vs i/N per g (mean over samples), (b) D/N vs g, (c) H/N vs g.

    ``exponents[g, sample, k]``; ``dimension``, ``entropy``: ``[g, sample]``.
    """
    figure, axes = new_figure(9.0, 2.8, ncols=3)
    logarithmic = g.min() > 0 and g.max() / g.min() > 20
    norm = (LogNorm if logarithmic else Normalize)(vmin=g.min(), vmax=max(g.max(), g.min() + 1e-9))
    cmap = ListedColormap(colormap("plasma")(np.linspace(0.05, 0.85, 256)))
    colors = cmap(norm(g))
    k = exponents.shape[-1]
    index = np.arange(1, k + 1) / n
    for spectra, color in zip(exponents, colors, strict=True):
        axes[0].plot(index, spectra.mean(0), color=color, lw=1.0)
        if spectra.shape[0] > 1:
            axes[0].fill_between(index, spectra.min(0), spectra.max(0), color=color,
                                 alpha=0.2, lw=0)
    axes[0].axhline(0, color="black", lw=0.7, ls="--", alpha=0.6)
    if sum_rule is not None:
        axes[0].axhline(sum_rule, color="grey", lw=0.7, ls=":",
                        label=f"sum-rule mean {sum_rule:.3f}")
        axes[0].legend(frameon=False, loc="lower left")
    axes[0].set_xlabel("i / N")
    axes[0].set_ylabel(r"$\lambda_i$  [1/τ]")
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    colorbar = figure.colorbar(mappable, ax=axes[0], pad=0.02, fraction=0.05)
    colorbar.set_label("coupling g")
    for axis, values, label in ((axes[1], dimension / n, "attractor dimension D / N"),
                                (axes[2], entropy / n, "entropy rate H / N  [nats/τ]")):
        for g_value, samples, color in zip(g, values, colors, strict=True):
            axis.scatter(np.full(samples.shape, g_value), samples, s=10, color=color,
                         alpha=0.5, lw=0)
        axis.plot(g, np.median(values, axis=1), color="black", lw=1, marker="D",
                  markersize=3)
        axis.set_xlabel("coupling g")
        axis.set_ylabel(label)
        if logarithmic:
            axis.set_xscale("log", base=2)
    return finished(figure, axes, title)


@styled
def convergence(
    tons: Sequence[float], times: Sequence[np.ndarray], lambda_1: Sequence[np.ndarray],
    final: Sequence[np.ndarray], final_stderr: Sequence[np.ndarray], *, title: str = "",
) -> Figure:
    """(a) λ_1(t) per t_ONS (median over samples, shaded range); (b) final spectra per t_ONS.

    ``lambda_1[i]``: ``(time, sample)``; ``final[i]``: ``(sample, k)``.
    """
    figure, axes = new_figure(8.0, 3.0, ncols=2)
    colors = colormap("tab10")(np.arange(len(tons)) % 10)
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "v")]
    for number, (value, time, history, spectrum, stderr, color) in enumerate(zip(
        tons, times, lambda_1, final, final_stderr, colors, strict=True
    )):
        linestyle, marker = styles[number % len(styles)]
        label = f"$t_{{ONS}}$ = {value:g}"
        axes[0].plot(time, np.median(history, axis=1), color=color, lw=1, label=label)
        axes[0].fill_between(time, history.min(1), history.max(1), color=color, alpha=0.15,
                             lw=0)
        index = np.arange(1, spectrum.shape[-1] + 1)
        axes[1].errorbar(index, spectrum.mean(0), yerr=np.sqrt((stderr**2).mean(0)),
                         color=color, lw=1, ls=linestyle, marker=marker, markersize=3,
                         capsize=1.5, label=label, mfc="none")
    axes[0].set_xscale("log")
    axes[0].axhline(0, color="black", lw=0.7, ls="--", alpha=0.6)
    axes[0].set_xlabel("accumulation time t  [τ]")
    axes[0].set_ylabel(r"running estimate $\lambda_1(t)$  [1/τ]")
    axes[0].legend(frameon=False)
    axes[1].axhline(0, color="black", lw=0.7, ls="--", alpha=0.6)
    axes[1].set_xlabel("exponent index i")
    axes[1].set_ylabel(r"final $\lambda_i$, mean over samples  [1/τ]")
    axes[1].legend(frameon=False)
    return finished(figure, axes, title)


@styled
def network_activity(
    time: np.ndarray, neurons: np.ndarray, states: np.ndarray, population: np.ndarray,
    image: np.ndarray, *, title: str = "",
) -> Figure:
    """(a) states ``h_i(t)`` of the traced neurons of network 0 (``states[t, K]``), (b) the
    population activity ``(1/N) Σ φ(h_i)`` of every network (``population[t, B]``; network 0
    in black), (c) the activity ``φ(h_i(t))`` of network 0's first neurons as an image
    (``image[t, M]``). Time in τ."""
    figure, axes = new_figure(11.0, 3.0, ncols=3)
    colors = colormap("viridis")(np.linspace(0.05, 0.9, max(len(neurons), 1)))
    for trace, neuron, color in zip(states.T, neurons, colors, strict=True):
        axes[0].plot(time, trace, color=color, lw=0.8, label=f"neuron {neuron}")
    axes[0].set_xlabel("time t  [τ]")
    axes[0].set_ylabel(r"state $h_i(t)$  (network 0)")
    if len(neurons) <= 10:
        axes[0].legend(frameon=False, fontsize=6, ncol=2)
    axes[1].plot(time, population[:, 1:], color="grey", lw=0.6, alpha=0.6)
    axes[1].plot(time, population[:, 0], color="black", lw=1.0, label="network 0")
    if population.shape[1] > 1:
        axes[1].plot([], [], color="grey", lw=0.6, label="other networks")
    axes[1].axhline(0, color="black", lw=0.7, ls="--", alpha=0.6)
    axes[1].set_xlabel("time t  [τ]")
    axes[1].set_ylabel(r"population activity $\langle\phi(h_i)\rangle_i$")
    axes[1].legend(frameon=False)
    limit = max(float(np.nanmax(np.abs(image), initial=0.0)), 1e-9)
    shown = axes[2].imshow(image.T, aspect="auto", origin="lower", cmap="RdBu_r",
                           interpolation="nearest", vmin=-limit, vmax=limit,
                           extent=(time[0], time[-1], -0.5, image.shape[1] - 0.5))
    figure.colorbar(shown, ax=axes[2], label=r"activity $\phi(h_i)$")
    axes[2].set_xlabel("time t  [τ]")
    axes[2].set_ylabel("neuron i  (network 0)")
    return finished(figure, axes, title)


#: colour, marker and line style of each method in the scaling panels of :func:`benchmark`.
_METHOD_STYLES = {"FlyStability": ("0.35", "s", "--"), "broadcast": ("0.65", "^", ":"),
                  "engine": ("tab:blue", "o", "-")}


@styled
def benchmark(
    labels: Sequence[str], ms_per_network_step: Sequence[float], *,
    nle: np.ndarray | None = None, engine_vs_nle: Sequence[float] | None = None,
    reference_vs_nle: Sequence[float] | None = None, n: np.ndarray | None = None,
    engine_vs_n: Sequence[float] | None = None, reference_vs_n: Sequence[float] | None = None,
    broadcast_vs_nle: Sequence[float] | None = None,
    broadcast_vs_n: Sequence[float] | None = None,
    nle_at_n: int = 200, n_at_nle: int = 10, title: str = "",
) -> Figure:
    """Wall-clock cost of the Lyapunov engine vs the dense-Jacobian references [ms].

    (a) ms per network-step, one bar per method (the first bar is the published reference;
    the others are annotated with their speedup over it), log scale. When the scaling data
    are given: (b) ms per step of one network vs the number of exponents k (at
    N = ``nle_at_n``) and (c) vs the network size N (at k = ``n_at_nle``), engine and
    references, log–log.
    """
    scaling = nle is not None and n is not None
    figure, axes = new_figure(10.0 if scaling else 4.0, 3.2, ncols=3 if scaling else 1)
    _cost_bars(axes[0], labels, np.asarray(ms_per_network_step, dtype=float))
    if scaling:
        _cost_scaling(axes[1], np.asarray(nle), engine_vs_nle, reference_vs_nle,
                      broadcast_vs_nle, f"number of exponents k  (N = {nle_at_n})")
        _cost_scaling(axes[2], np.asarray(n), engine_vs_n, reference_vs_n, broadcast_vs_n,
                      f"network size N  (k = {n_at_nle})")
        axes[1].set_title("cost vs number of exponents")
        axes[2].set_title("cost vs network size")
    return finished(figure, axes, title)


def _cost_bars(axis, labels: Sequence[str], values: np.ndarray) -> None:
    """Panel (a) of :func:`benchmark`: ms per network-step per method, speedups annotated."""
    colors = ["0.35", "0.65", "tab:blue", "tab:orange", "tab:green", "tab:purple"]
    positions = np.arange(len(values))
    axis.bar(positions, values, color=colors[:len(values)], width=0.6)
    axis.set_yscale("log")
    top = values.max() * 5
    axis.set_ylim(values.min() / 4, top)
    for position, value in zip(positions, values, strict=True):
        text = f"{value:.3g} ms"
        if position > 0:
            text += f"\n×{values[0] / value:.0f} faster"
        axis.text(position, value * 1.15, text, ha="center", va="bottom", fontsize=7)
    axis.set_xticks(positions, labels, fontsize=7)
    _plain_log_ticks(axis, [values.min() / 4, top])
    axis.set_ylabel("ms per network-step")
    axis.set_title("sweep: cost per network and Euler step")


def _cost_scaling(axis, x: np.ndarray, engine, reference, broadcast, xlabel: str) -> None:
    """A scaling panel of :func:`benchmark`: ms per step of each method against ``x``, log–log
    (a method whose series is None is left out)."""
    series_list = [("FlyStability (dense Jacobian, N³)", reference),
                   ("broadcast (dense Jacobian, N²)", broadcast),
                   ("engine (Jacobian-free)", engine)]
    for name, series in series_list:
        if series is None:
            continue
        color, marker, linestyle = _METHOD_STYLES[name.split()[0]]
        axis.plot(x, np.asarray(series, dtype=float), color=color, marker=marker,
                  ls=linestyle, lw=1.2, markersize=4, label=name)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(x, [str(int(v)) for v in x])
    _plain_log_ticks(axis, np.concatenate([np.asarray(v, dtype=float)
                                           for _, v in series_list if v is not None]))
    axis.minorticks_off()
    axis.set_xlabel(xlabel)
    axis.set_ylabel("ms per step (one network)")
    axis.legend(frameon=False, loc="upper left", fontsize=6.5)


def _plain_log_ticks(axis, data) -> None:
    """Plain numbers (no powers of ten) on a log y axis: 1-2-5 ticks within 2.5 decades."""
    data = np.asarray(data, dtype=float)
    decades = np.log10(data.max() / data.min()) if data.min() > 0 else 3.0
    axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 2.5
                                            else (1.0,)))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.yaxis.set_minor_formatter(NullFormatter())
