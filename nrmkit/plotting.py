"""Figures drawn from results arrays (never from live models). Matplotlib, Agg backend.

Every function returns a :class:`matplotlib.figure.Figure`; the run directory saves it as
PNG and PDF.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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


def _styled(function):
    """Draw under the house style without touching the caller's global rcParams."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, np.ndarray]:
    figure, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False,
                                layout="constrained")
    for axis in axes.flat:
        axis.spines[["top", "right"]].set_visible(False)
    return figure, axes[0]


def _label_panels(axes: Sequence) -> None:
    if len(axes) < 2:
        return
    for letter, axis in zip("abcdefgh", axes, strict=False):
        axis.text(-0.14, 1.04, letter, transform=axis.transAxes, fontweight="bold",
                  fontsize=10, va="bottom")


@_styled
def transition_to_chaos(
    g: np.ndarray, lambda_max: np.ndarray, *, theory: np.ndarray | None = None,
    title: str = "", seed: int = 0, dt: float | None = None,
) -> Figure:
    """Strip plot of λ_max per coupling (``lambda_max[g, sample]``), medians, zero line.

    With ``theory`` the mean-field curve is drawn (below g = 1 for the Euler map of step
    ``dt`` when given).
    """
    figure, (axis,) = _figure(4.6, 3.0)
    rng = np.random.default_rng(seed)
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(g)))
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

        axis.plot(fine, mean_field_lambda_max(fine, dt=dt), color="tab:red", lw=1, alpha=0.8,
                  label="mean field, N → ∞")
    axis.scatter([], [], s=10, color="grey", alpha=0.55, lw=0, label="one network")
    axis.scatter([], [], marker="D", color="grey", edgecolor="black", label="median")
    axis.legend(frameon=False, loc="upper left")
    axis.set_xlabel("coupling g")
    axis.set_ylabel(r"$\lambda_{\max}$  [1/τ]")
    if title:
        axis.set_title(title)
    return figure


@_styled
def spectrum_overview(
    g: np.ndarray, exponents: np.ndarray, dimension: np.ndarray, entropy: np.ndarray,
    n: int, *, sum_rule: float | None = None, title: str = "",
) -> Figure:
    """(a) spectra λ_i vs i/N per g (mean over samples), (b) D/N vs g, (c) H/N vs g.

    ``exponents[g, sample, k]``; ``dimension``, ``entropy``: ``[g, sample]``.
    """
    from matplotlib.colors import LogNorm, Normalize

    figure, axes = _figure(9.0, 2.8, ncols=3)
    logarithmic = g.min() > 0 and g.max() / g.min() > 20
    norm = (LogNorm if logarithmic else Normalize)(vmin=g.min(), vmax=max(g.max(), g.min() + 1e-9))
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(plt.get_cmap("plasma")(np.linspace(0.05, 0.85, 256)))
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
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
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
    if title:
        figure.suptitle(title, fontsize=9)
    _label_panels(axes)
    return figure


@_styled
def convergence(
    tons: Sequence[float], times: Sequence[np.ndarray], lambda_1: Sequence[np.ndarray],
    final: Sequence[np.ndarray], final_stderr: Sequence[np.ndarray], *, title: str = "",
) -> Figure:
    """(a) λ_1(t) per t_ONS (median over samples, shaded range); (b) final spectra per t_ONS.

    ``lambda_1[i]``: ``(time, sample)``; ``final[i]``: ``(sample, k)``.
    """
    figure, axes = _figure(8.0, 3.0, ncols=2)
    colors = plt.get_cmap("tab10")(np.arange(len(tons)) % 10)
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
    if title:
        figure.suptitle(title, fontsize=9)
    _label_panels(axes)
    return figure


@_styled
def trained_spectra(
    exponents: np.ndarray, dimension: np.ndarray, entropy: np.ndarray, n: int, *,
    sum_rule: float | None = None, title: str = "",
) -> Figure:
    """The networks of one model: (a) spectra λ_i vs i/N, (b) D/N and (c) H/N per network.

    ``exponents[network, k]``; ``dimension``, ``entropy``: ``[network]``.
    """
    figure, axes = _figure(9.0, 2.8, ncols=3)
    networks, k = exponents.shape
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, max(networks, 1)))
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
    if title:
        figure.suptitle(title, fontsize=9)
    _label_panels(axes)
    return figure


@_styled
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
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def plain_log_ticks(axis, data) -> None:
        data = np.asarray(data, dtype=float)
        decades = np.log10(data.max() / data.min()) if data.min() > 0 else 3.0
        axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 2.5
                                                else (1.0,)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())

    scaling = nle is not None and n is not None
    figure, axes = _figure(10.0 if scaling else 4.0, 3.2, ncols=3 if scaling else 1)
    values = np.asarray(ms_per_network_step, dtype=float)
    colors = ["0.35", "0.65", "tab:blue", "tab:orange", "tab:green", "tab:purple"]
    positions = np.arange(len(values))
    axis = axes[0]
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
    plain_log_ticks(axis, [values.min() / 4, top])
    axis.set_ylabel("ms per network-step")
    axis.set_title("sweep: cost per network and Euler step")
    if scaling:
        styles = {"FlyStability": ("0.35", "s", "--"), "broadcast": ("0.65", "^", ":"),
                  "engine": ("tab:blue", "o", "-")}
        for axis, x, engine, reference, broadcast, xlabel in (
            (axes[1], np.asarray(nle), engine_vs_nle, reference_vs_nle, broadcast_vs_nle,
             f"number of exponents k  (N = {nle_at_n})"),
            (axes[2], np.asarray(n), engine_vs_n, reference_vs_n, broadcast_vs_n,
             f"network size N  (k = {n_at_nle})"),
        ):
            series_list = [("FlyStability (dense Jacobian, N³)", reference),
                           ("broadcast (dense Jacobian, N²)", broadcast),
                           ("engine (Jacobian-free)", engine)]
            for name, series in series_list:
                if series is None:
                    continue
                color, marker, linestyle = styles[name.split()[0]]
                axis.plot(x, np.asarray(series, dtype=float), color=color, marker=marker,
                          ls=linestyle, lw=1.2, markersize=4, label=name)
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xticks(x, [str(int(v)) for v in x])
            plain_log_ticks(axis, np.concatenate([np.asarray(v, dtype=float)
                                                  for _, v in series_list if v is not None]))
            axis.minorticks_off()
            axis.set_xlabel(xlabel)
            axis.set_ylabel("ms per step (one network)")
            axis.legend(frameon=False, loc="upper left", fontsize=6.5)
        axes[1].set_title("cost vs number of exponents")
        axes[2].set_title("cost vs network size")
    if title:
        figure.suptitle(title, fontsize=9)
    _label_panels(axes)
    return figure


@_styled
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
    figure, axes = _figure(9.0, 2.8, ncols=3)
    epochs = np.arange(1, loss.shape[0] + 1)
    colors = plt.get_cmap("tab10")(np.arange(loss.shape[1]) % 10)
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
    if title:
        figure.suptitle(title, fontsize=9)
    _label_panels(axes)
    return figure


@_styled
def trained_parameters(
    gains: np.ndarray, shifts: np.ndarray, *, populations: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """Trained gains and shifts ``[network, P]``: per population (named, one dot per network)
    or, per neuron, as histograms over neurons and networks."""
    if populations is not None:
        width = min(16.0, max(7.0, 3.0 + 0.18 * len(populations)))
        figure, axes = plt.subplots(2, 1, figsize=(width, 4.6), layout="constrained",
                                    sharex=True)
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
        figure, axes = _figure(6.0, 2.6, ncols=2)
        for axis, values, label in ((axes[0], gains, "gain a"), (axes[1], shifts, "shift s")):
            axis.hist(values.ravel(), bins=40, color="tab:blue", alpha=0.8)
            axis.set_xlabel(label)
            axis.set_ylabel("neurons")
        _label_panels(axes)
    if title:
        figure.suptitle(title, fontsize=9)
    return figure


@_styled
def learning_curves(history: Sequence[dict], *, title: str = "") -> Figure:
    """Cross-entropy and accuracy per epoch, training and validation (``history`` entries
    hold ``train_loss``, ``validation_loss``, ``train_accuracy``, ``validation_accuracy``)."""
    figure, axes = _figure(7.0, 2.7, ncols=2)
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
    axes[0].set_yscale("log")
    axes[1].legend(frameon=False, loc="lower right")
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure


@_styled
def seed_learning_curves(curves: dict[str, np.ndarray], seeds: Sequence[int], *,
                         test_accuracy: dict[str, float], title: str = "") -> Figure:
    """Validation loss (nats) and accuracy (%) per epoch of a sweep over seeds.

    ``curves``: ``validation_loss`` and ``validation_accuracy`` as ``[seed, epoch]`` (NaN
    after a shorter run); one thin line per seed (grey beyond ten seeds), their mean in
    black; ``test_accuracy``: ``{mean, std}`` (fractions) for the title.
    """
    figure, axes = _figure(7.0, 2.9, ncols=2)
    n_epochs = curves["validation_accuracy"].shape[1]
    epochs = np.arange(1, n_epochs + 1)
    marker = "o" if n_epochs < 30 else None
    colors = plt.get_cmap("tab10")
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
    _label_panels(axes)
    return figure


@_styled
def shape_parameters(n: np.ndarray, s: np.ndarray, *, title: str = "",
                     initial_n: np.ndarray | None = None, label: str = "learned") -> Figure:
    """Histograms across neurons of the gamma gain ``n`` and saturation ``s``."""
    figure, axes = _figure(7.0, 2.6, ncols=2)
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
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure


@_styled
def adaptation_traces(inputs: np.ndarray, n: np.ndarray, s: np.ndarray,
                      neurons: Sequence[int], *, title: str = "") -> Figure:
    """ANRU shape signals over one sequence: input ``(T, I)``, ``n_t`` and ``s_t`` ``(T, k)``
    for the neurons listed."""
    figure, axes = plt.subplots(3, 1, figsize=(6.0, 5.0), sharex=True, layout="constrained")
    steps = np.arange(inputs.shape[0])
    inputs = inputs.reshape(len(steps), -1)
    if inputs.shape[1] == 1:
        axes[0].plot(steps, inputs[:, 0], color="black", lw=0.8)
        axes[0].set_ylabel("input")
    else:
        axes[0].imshow(inputs.T, aspect="auto", cmap="gray_r", interpolation="nearest",
                       extent=(-0.5, len(steps) - 0.5, inputs.shape[1] - 0.5, -0.5))
        axes[0].set_ylabel("input channel")
    colors = plt.get_cmap("tab10")(np.arange(len(neurons)) % 10)
    for column, (neuron, color) in enumerate(zip(neurons, colors, strict=True)):
        axes[1].plot(steps, n[:, column], color=color, lw=1.1, label=f"neuron {neuron}")
        axes[2].plot(steps, s[:, column], color=color, lw=1.1)
    axes[1].set_ylabel("gain $n_t$")
    axes[2].set_ylabel("saturation $s_t$")
    axes[2].set_xlabel("time step")
    axes[1].legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for axis in axes:
        axis.spines[["top", "right"]].set_visible(False)
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure


@_styled
def sequence_lyapunov(curves: dict[str, tuple[np.ndarray, np.ndarray]], *,
                      title: str = "") -> Figure:
    """Top exponents (mean ± s.d. over trajectories) per condition, nats per step."""
    figure, (axis,) = _figure(4.4, 3.0)
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


@_styled
def fractional_orders(alpha_hat: np.ndarray, alphas: np.ndarray, error: np.ndarray, *,
                      title: str = "") -> Figure:
    """Histogram of the estimated order α̂ per neuron and the mismatch ``1 − R²`` vs α."""
    figure, axes = _figure(7.0, 2.6, ncols=2)
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
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure


@_styled
def glifr_learning_curves(curves: Sequence[dict], *, metric: str, title: str = "") -> Figure:
    """Training loss and validation metric per epoch, one line per trial."""
    figure, axes = _figure(7.0, 2.6, ncols=2)
    for trial, curve in enumerate(curves):
        if not curve:
            continue
        epochs = np.arange(1, len(curve["train_loss"]) + 1)
        color = plt.get_cmap("tab10")(trial % 10)
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
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure


@_styled
def sine_outputs(outputs: np.ndarray, targets: np.ndarray, frequencies: np.ndarray, *,
                 title: str = "", dt: float = 0.05) -> Figure:
    """Network outputs (solid) against targets (dashed) for each frequency ``(T, n)``."""
    figure, (axis,) = _figure(5.0, 3.2)
    time = np.arange(outputs.shape[0]) * dt
    colors = plt.get_cmap("viridis")(np.linspace(0.05, 0.9, outputs.shape[1]))
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


@_styled
def glifr_parameters(values: dict[str, np.ndarray], *, title: str = "",
                     dt: float = 0.05) -> Figure:
    """Histograms across neurons of V_th, k_m, and a_j, r_j, k_j of each after-spike current."""
    names = [("v_th", "threshold $V_{th}$"), ("k_m", "$k_m$ (1/ms)"), ("a_j", "$a_j$"),
             ("r_j", "$r_j$"), ("k_j", "$k_j$ (1/ms)")]
    figure, axes = plt.subplots(1, len(names), figsize=(12.0, 2.5), layout="constrained")
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
    _label_panels(axes)
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


@_styled
def silencing_curve(scores: dict[str, list[list[float]]], fractions: Sequence[float], *,
                    metric: str) -> Figure:
    """Metric against the fraction of silenced neurons: mean ± s.d. over trials per model."""
    figure, (axis,) = _figure(4.2, 3.0)
    scale = 100.0 if metric == "accuracy" else 1.0
    for name, trials in scores.items():
        values = scale * np.asarray(trials)
        axis.errorbar(fractions, values.mean(0), yerr=values.std(0), marker="o", ms=4,
                      capsize=2, label=name)
    axis.set_xlabel("fraction of hidden neurons silenced")
    axis.set_ylabel("test accuracy (%)" if metric == "accuracy" else "test MSE")
    axis.legend(frameon=False)
    return figure


@_styled
def rate_task_outputs(outputs: np.ndarray, targets: np.ndarray, conditions: np.ndarray,
                      condition_names: Sequence[str], *, step_ms: float = 5.0,
                      title: str = "", ylabel: str = "output") -> Figure:
    """Mean ± s.d. output per condition (solid) with its target (dashed); arrays ``(T, B)``."""
    figure, (axis,) = _figure(5.0, 3.0)
    time = np.arange(outputs.shape[0]) * step_ms / 1000.0
    colors = plt.get_cmap("tab10")
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
    axis.set_xlabel("time (s)")
    axis.set_ylabel(ylabel)
    axis.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                title="solid: mean ± s.d.\ndashed: target", title_fontsize=7)
    if title:
        axis.set_title(title)
    return figure


@_styled
def lambda_grid(lambdas: np.ndarray, accuracy: np.ndarray, firing_rate_hz: np.ndarray, *,
                best: float, rate_accuracy: float | None = None, title: str = "") -> Figure:
    """LIF task accuracy and mean firing rate against the scaling factor λ."""
    figure, axes = _figure(7.0, 2.6, ncols=2)
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
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure


@_styled
def lif_raster(spike_times_ms: np.ndarray, spike_neurons: np.ndarray, inhibitory: np.ndarray,
               lif_output: np.ndarray, rate_output: np.ndarray, target: np.ndarray, *,
               step_ms: float = 5.0, title: str = "") -> Figure:
    """One trial: raster (excitatory blue, inhibitory red; inhibitory units on top) and the
    LIF read-out against the rate network's output and the target."""
    figure, axes = plt.subplots(2, 1, figsize=(6.0, 4.6), sharex=True, layout="constrained",
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
    _label_panels(axes)
    return figure


@_styled
def rate_training_curve(updates: np.ndarray, loss: np.ndarray, accuracy: np.ndarray, *,
                        title: str = "") -> Figure:
    """Evaluation loss (with the stopping threshold 7) and accuracy every 100 updates."""
    figure, axes = _figure(7.0, 2.6, ncols=2)
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
    if title:
        figure.suptitle(title)
    _label_panels(axes)
    return figure
