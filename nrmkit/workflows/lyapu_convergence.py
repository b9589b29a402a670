"""``lyapu_convergence``: how the exponents converge in time, for several t_ONS values.

The same ``n_samples`` random networks at coupling ``g`` (same initial states and tangent
bases) are run once per ``t_ONS``; the running estimates ``λ_i(t)`` show the convergence
and the final spectra show whether a long ``t_ONS`` has corrupted the smallest exponents
(the QR method needs ``t_ONS·(λ_1 − λ_k)`` ≲ 15 in float32, ≲ 35 in float64).

results.json:
    tons: the t_ONS values (effective, whole steps).
    g, n, nle, tsim, dt.
    exponents: for each t_ONS, for each sample, the nle final exponents (descending) [1/τ].
    exponents_stderr: same shape, block standard errors.
    history: for each t_ONS, ``{"time": [...], "lambda": [...]}`` — the running estimate
        λ_i(t), median over samples, per time point per exponent (at most 400 time points).
Arrays: ``history_tons_<t>.npz`` (time, lambda[time, sample, k]) for every t_ONS.
Figures: ``figures/lyapu_convergence.{png,pdf}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from nrmkit.cli.options import Command, common_options, option
from nrmkit.cli.runner import CommonOptions, build_config, execute
from nrmkit.core.base import MemoryTerm, Workflow
from nrmkit.workflows.common import (
    LOG_ITEMSIZE,
    LyapunovSettings,
    check,
    check_finite,
    engine_memory,
    lyapunov_options,
    memory_term,
    naming_divergence,
    plural,
    raised,
    weight_memory,
)

MAX_HISTORY_POINTS = 400


@dataclass(frozen=True)
class ConvergenceConfig(LyapunovSettings):
    """Options of ``lyapu_convergence`` (``tons`` holds several values here)."""

    n: int = 100
    nle: int | None = 20
    tsim: float = 700.0
    g: float = 1.5
    n_samples: int = 5
    tons_values: tuple[float, ...] = (0.2, 1.0, 5.0)

    def __post_init__(self):
        check(len(self.tons_values) >= 1, "--tons", "give at least one value")
        for value in self.tons_values:
            check_finite(value, "--tons")
        # validate every t_ONS against dt and tsim with the shared rules
        for value in self.tons_values:
            object.__setattr__(self, "tons", value)
            super().__post_init__()
        object.__setattr__(self, "tons", min(self.tons_values))
        check_finite(self.g, "--g")
        check(self.g >= 0, "--g", f"couplings must be non-negative, got {self.g}")
        check(self.n_samples >= 1, "--n_samples", f"must be at least 1, got {self.n_samples}")


class Convergence(Workflow):
    name = "lyapu_convergence"
    config_class = ConvergenceConfig

    def memory_terms(self, config: ConvergenceConfig, *, itemsize: int) -> list[MemoryTerm]:
        """``S = n_samples`` networks of ``N`` neurons in one engine call per t_ONS, ``k =
        nle``; ``n_ons`` re-orthonormalisations at the smallest t_ONS (bytes):

        * weights ``S · N² · (8 + itemsize)`` (:func:`weight_memory`);
        * engine ``7 · S·(k+1)·N · itemsize + S·k² · itemsize`` (:func:`engine_memory`);
        * history ``4 · n_ons · S · k · 8``: the float64 log increments, their sorted copy
          and the running estimate λ_i(t) (a cumulative sum, then divided by t), kept for
          every exponent until the arrays are written.

        Measured (float32, peak RSS above the same run at N = 20, or at tsim = 2): ``--n
        3000 --n_samples 10 --nle 1 --tons 0.2 --tsim 2``: 1670 MiB for 1718 estimated;
        ``--n 20 --nle 20 --n_samples 100 --tons 0.1 --tsim 2000``: 1217 MiB for 1219.
        """
        samples, n, k = config.n_samples, config.n, config.nle
        n_ons = config.n_ons  # config.tons is the smallest t_ONS
        working, _ = engine_memory(networks=samples, n=n, nle=k, n_ons=n_ons,
                                   itemsize=itemsize)
        history = 4.0 * n_ons * samples * k * LOG_ITEMSIZE
        growth = {"--n_samples": raised(config, "--n_samples"), "--nle": raised(config, "--nle")}
        return [
            memory_term({"--n": raised(config, "--n", 2), **growth},
                        weight_memory(n, samples, itemsize),
                        f"the {n}×{n} weight matrices of {plural(samples, 'sample')}"),
            memory_term({"--n": raised(config, "--n"), **growth}, working,
                        f"the states and {plural(k, 'tangent vector')} of "
                        f"{plural(samples, 'network')} of {n} neurons"),
            memory_term({"--tsim": raised(config, "--tsim"),
                         "--tons": raised(config, "--tons", -1), **growth}, history,
                        f"the running estimates of {plural(k, 'exponent')} of "
                        f"{plural(samples, 'sample')} at {plural(n_ons, 're-orthonormalisation')}"),
        ]

    def run(self, config: ConvergenceConfig, context) -> dict:
        import numpy as np

        from nrmkit import plotting
        from nrmkit.dynamics import lyapunov_spectrum
        from nrmkit.nn.rate_rnn import random_rate_network

        model = random_rate_network(
            config.n, [config.g], config.n_samples, activation=config.activation,
            dt=config.dt, generator=context.generator(), dtype=context.torch_dtype,
            device=context.device,
        )
        context.log(f"lyapu_convergence: g={config.g}, {config.n_samples} samples, "
                    f"N={config.n}, nle={config.nle}, t_ONS {list(config.tons_values)}")
        tons_effective, times, histories, finals, errors, summaries = [], [], [], [], [], []
        for tons in config.tons_values:
            generator = context.generator(offset=1)  # same initial state and basis each time
            with naming_divergence(
                    lambda index, t=tons: f"g={config.g:g}, sample {index[0]}, t_ONS={t:g}"):
                result = lyapunov_spectrum(
                    model, config.nle, generator=generator,
                    progress=context.progress(f"t_ONS={tons:g}"),
                    **{**config.engine_kwargs(), "tons": tons},
                )
            ordered = result.sorted()
            history = result.history.detach().cpu().numpy()[:, :, 0, :]  # (time, sample, k)
            time = result.times.numpy()
            exponents = ordered.exponents.detach().cpu().numpy()[:, 0, :]
            stderr = ordered.standard_error.numpy()[:, 0, :]
            context.run_dir.write_arrays(f"history_tons_{result.tons:g}.npz", time=time,
                                         **{"lambda": history})
            keep = np.unique(np.geomspace(1, len(time), MAX_HISTORY_POINTS).astype(int) - 1)
            summaries.append({"time": time[keep], "lambda": np.median(history[keep], axis=1)})
            tons_effective.append(result.tons)
            times.append(time)
            histories.append(history[..., 0].copy())  # a view would keep every exponent
            finals.append(exponents)
            errors.append(stderr)
            context.log(f"  t_ONS={result.tons:g}: λ_1 median {np.median(exponents[:, 0]):+.4f}"
                        f", λ_{config.nle} median {np.median(exponents[:, -1]):+.4f}")
        figure = plotting.convergence(
            tons_effective, times, histories, finals, errors,
            title=f"{config.activation}, g={config.g:g}, N={config.n}, "
                  f"{config.n_samples} samples",
        )
        context.run_dir.save_figure(figure, "lyapu_convergence")
        return {
            "tons": tons_effective,
            "g": config.g,
            "n": config.n,
            "nle": config.nle,
            "tsim": config.tsim,
            "dt": config.dt,
            "exponents": finals,
            "exponents_stderr": errors,
            "history": summaries,
        }


@click.command("lyapu_convergence", cls=Command)
@option("--tons", "--tONS", "tons_values", type=float, multiple=True, default=(0.2, 1.0, 5.0),
        help="Time between re-orthonormalisations [τ] (repeatable: one run per value).")
@option("--g", type=float, default=1.5, help="Coupling g of the random networks.")
@option("--n_samples", type=int, default=5, help="Random networks.")
@lyapunov_options(exclude=("tons",), n=100, nle=20, tsim=700.0)
@common_options
def command(**kwargs):
    """Convergence of the Lyapunov exponents in time, for several t_ONS values.

    Example: lyapu_convergence --tons 0.2 --tons 1 --tons 5 --g 3
    """
    common = CommonOptions.pop_from(kwargs)
    kwargs["tons_values"] = tuple(kwargs["tons_values"])
    config = build_config(ConvergenceConfig, **kwargs)
    execute(Convergence(), config, common)
