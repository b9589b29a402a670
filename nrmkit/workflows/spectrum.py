"""``spectrum``: full (or top-nle) Lyapunov spectra, attractor dimension and entropy vs g.

Couplings are ``σ = 2^0 … 2^(variance_max − 1)`` (FlyStability's grid) or given directly
with ``--g`` (repeatable). For every coupling and sample the spectrum is computed in one
batched engine call; from it the Kaplan–Yorke dimension ``D``, the entropy rate bound
``H = Σ max(λ_i, 0)`` and the mean exponent (for a full spectrum fixed by the sum rule at
``ln(1 − dt)/dt``).

The numerical limit of the QR method is checked: ``t_ONS·(λ_1 − λ_k)`` above ≈15 (float32)
or ≈35 (float64) loses the smallest exponents; the run then warns and records
``tons_ok: false``.

results.json:
    g: couplings.
    exponents: for each g, for each sample, the nle exponents (descending) [1/τ].
    kaplan_yorke_dim, ks_entropy, mean_exponent: for each g, for each sample.
    exponents_stderr: like exponents, block standard errors.
    sum_rule_mean: ln(1 − dt)/dt, the N → ∞ mean of a full spectrum.
    tons_spread_product, tons_ok: the numerical-limit check above.
Arrays: ``spectrum.npz``. Figures: ``figures/spectrum.{png,pdf}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from nrmkit.cli.options import Command, common_options, option
from nrmkit.cli.runner import CommonOptions, build_config, execute
from nrmkit.cli.sweep import ExecutorOptions, executor_options
from nrmkit.workflows.common import (
    CouplingSweep,
    LyapunovSettings,
    SweepResult,
    check,
    check_finite,
    check_parameter_sets,
    default_value,
    lyapunov_options,
    parameter_option,
)

#: ``tons·(λ_1 − λ_k)`` beyond which the QR method loses precision, per dtype.
TONS_SPREAD_LIMIT = {"float32": 15.0, "float64": 35.0}


@dataclass(frozen=True)
class SpectrumConfig(LyapunovSettings):
    """Options of ``spectrum`` (``nle`` None = the full spectrum)."""

    n: int = 100
    nle: int | None = None
    n_samples: int = 3
    variance_max: int = 12
    g: tuple[float, ...] = ()
    parameter: tuple[str, ...] = ("weights",)
    independent_draws: bool = False

    def __post_init__(self):
        super().__post_init__()
        check(self.n_samples >= 1, "--n_samples", f"must be at least 1, got {self.n_samples}")
        check(self.variance_max >= 1, "--variance_max",
              f"must be at least 1, got {self.variance_max}")
        check(self.variance_max <= 30, "--variance_max",
              f"2^{self.variance_max - 1} is not a sensible coupling")
        for value in self.g:
            check_finite(value, "--g")
            check(value >= 0, "--g", f"couplings must be non-negative, got {value}")
        object.__setattr__(self, "g", tuple(float(v) for v in self.g))
        object.__setattr__(self, "parameter",
                           check_parameter_sets(tuple(self.parameter), self.activation))

    @property
    def couplings(self) -> list[float]:
        return list(self.g) if self.g else [float(2**k) for k in range(self.variance_max)]

    @property
    def n_couplings(self) -> int:
        return len(self.g) if self.g else self.variance_max


class Spectrum(CouplingSweep):
    name = "spectrum"
    config_class = SpectrumConfig

    def couplings_growth(self, config: SpectrumConfig) -> dict[str, float]:
        option_name = "--g" if config.g else "--variance_max"
        return {option_name: config.n_couplings / default_value(config, "--variance_max")}

    def aggregate(self, config: SpectrumConfig, context, arrays) -> dict:
        import numpy as np

        from nrmkit import plotting
        from nrmkit.dynamics import kaplan_yorke_dimension, ks_entropy, mean_exponent
        from nrmkit.dynamics.theory import euler_sum_rule_mean

        couplings = config.couplings
        result = SweepResult.from_units(arrays)
        exponents, stderr = result.exponents, result.stderr
        dimension = kaplan_yorke_dimension(exponents)
        entropy = ks_entropy(exponents)
        mean = mean_exponent(exponents)
        spread = float((exponents[..., 0] - exponents[..., -1]).max()) * result.tons
        tons_ok = spread <= TONS_SPREAD_LIMIT[context.dtype]
        if not tons_ok:
            context.log(
                f"warning: t_ONS·(λ_1 − λ_k) = {spread:.1f} exceeds "
                f"{TONS_SPREAD_LIMIT[context.dtype]:g} for {context.dtype}: the smallest "
                "exponents are unreliable; lower --tons or use --dtype float64"
            )
        sum_rule = euler_sum_rule_mean(config.dt)
        context.run_dir.write_arrays(
            "spectrum.npz", g=np.array(couplings), exponents=exponents, stderr=stderr,
            kaplan_yorke_dim=dimension, ks_entropy=entropy, mean_exponent=mean,
        )
        figure = plotting.spectrum_overview(
            np.array(couplings), exponents, dimension, entropy, config.n,
            sum_rule=sum_rule if config.nle == config.n else None,
            title=f"{config.activation}, N={config.n}, {config.n_samples} samples, "
                  f"varied: {', '.join(config.parameter)}",
        )
        context.run_dir.save_figure(figure, "spectrum")
        for g, d, h, m in zip(couplings, dimension, entropy, mean, strict=True):
            context.log(f"  g={g:8.3f}  D/N {np.median(d) / config.n:.4f}  "
                        f"H/N {np.median(h) / config.n:.5f}  mean λ {np.median(m):+.4f}")
        return {
            "g": couplings,
            "exponents": exponents,
            "exponents_stderr": stderr,
            "kaplan_yorke_dim": dimension,
            "ks_entropy": entropy,
            "mean_exponent": mean,
            "n": config.n,
            "nle": config.nle,
            "sum_rule_mean": sum_rule,
            "tons_effective": result.tons,
            "tons_spread_product": spread,
            "tons_ok": tons_ok,
            "t_accumulated": result.t_accumulated,
        }


@click.command("spectrum", cls=Command)
@option("--n_samples", type=int, default=3, help="Random networks per coupling.")
@option("--variance_max", type=int, default=12,
        help="Couplings σ = 2^0 … 2^(variance_max − 1).")
@option("--g", type=float, multiple=True,
        help="A coupling (repeatable); replaces the σ = 2^k grid.")
@parameter_option()
@lyapunov_options(n=100, nle=None, tsim=200.0, tons=0.2)
@option("--independent-draws", "--independent_draws", is_flag=True, default=False,
        help="Draw a fresh matrix for every (g, sample) instead of reusing one per sample.")
@executor_options
@common_options
def command(**kwargs):
    """Lyapunov spectra, Kaplan–Yorke dimension and entropy of random networks vs coupling.

    Example: spectrum --n 200 --g 2 --g 3 --g 6 --tons 1
    """
    common = CommonOptions.pop_from(kwargs)
    executor = ExecutorOptions.pop_from(kwargs)
    kwargs["parameter"] = tuple(kwargs["parameter"])
    kwargs["g"] = tuple(kwargs["g"])
    config = build_config(SpectrumConfig, **kwargs)
    execute(WORKFLOW, config, common, executor=executor)


WORKFLOW = Spectrum()
