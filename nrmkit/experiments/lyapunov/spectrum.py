"""``spectrum``: full (or top-nle) Lyapunov spectra, attractor dimension and entropy vs g —
of random networks, or of the trained networks of a training run (``--model``).

Couplings are ``σ = 2^0 … 2^(variance_max − 1)`` (FlyStability's grid) or given directly
with ``--g`` (repeatable), for random matrices of the ensemble ``--connectivity``
(:mod:`nrmkit.nn.ensembles`). For every sample the spectra at all couplings are computed in one
batched engine call (the units of the sweep are the samples); from them the Kaplan–Yorke
dimension ``D``, the entropy rate bound ``H = Σ max(λ_i, 0)`` and the mean exponent (for a
full spectrum fixed by the sum rule at ``ln(1 − dt)/dt + O(1/N)``, whatever the weights,
gains and shifts: with a zero-diagonal W the Jacobian's determinant does not depend on them).

``--model RUN_DIR`` analyses the ``S`` networks saved by a training run instead
(``model.pt``; ``--untrained``: ``model_initial.pt``, the same networks before training):
N, dt and the activation are the model's (``--n``, ``--dt``, ``--activation``, ``--g``,
``--variance_max``, ``--n_samples``, ``--parameter``, ``--independent-draws`` are refused
with it); the units are the networks, network ``i`` one engine call starting from a state and
basis drawn from its own stream ``(seed, i, "analysed states")``, so trained and untrained
networks start alike and ``--resume``/executors work as for a sweep.

The numerical limit of the QR method is checked: ``t_ONS·(λ_1 − λ_k)`` above ≈15 (float32)
or ≈35 (float64) loses the smallest exponents; the run then warns and records
``tons_ok: false``. ``--tons auto`` chooses the interval of every engine call from a pilot
run so that this product stays near half the limit
(:func:`nrmkit.dynamics.lyapunov.choose_tons`; the couplings of a sample share one interval,
so the largest coupling sets it).

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/spectrum.md``), and a test checks them against what the workflow writes.
Arrays: ``spectrum.npz`` (``exponents[g, sample, k]``, or ``[network, k]`` with --model;
``tons`` per sample or network). Figures: ``figures/spectrum.{png,pdf}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.lyapunov.coupling_sweep import CouplingSweep, SweepResult
from nrmkit.experiments.lyapunov.settings import (
    RandomNetworkSettings,
    check_parameter_sets,
    default_value,
)
from nrmkit.experiments.lyapunov.trained_models import (
    adopt_trained_model,
    iter_trained_networks,
    trained_memory_terms,
    trained_model_info,
)

#: ``tons·(λ_1 − λ_k)`` beyond which the QR method loses precision, per dtype.
TONS_SPREAD_LIMIT = {"float32": 15.0, "float64": 35.0}


@dataclass(frozen=True)
class SpectrumConfig(RandomNetworkSettings):
    """Options of ``spectrum`` (``nle`` None = the full spectrum).

    With ``model`` (a training run's folder) ``n``, ``dt``, ``activation`` and ``n_samples``
    (= its networks) are the model's, and ``model_sha256`` is its file's digest.
    """

    adaptive_tons: ClassVar[bool] = True

    n: int = 100
    nle: int | None = None
    n_samples: int = 3
    variance_max: int = 12
    g: tuple[float, ...] = ()
    parameter: tuple[str, ...] = ("weights",)
    independent_draws: bool = False
    model: str | None = None
    untrained: bool = False
    model_sha256: str | None = None

    def __post_init__(self):
        adopt_trained_model(self)
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
    """Random networks over couplings (units: samples), or the networks of ``--model``
    (units: networks)."""

    name = "spectrum"
    config_class = SpectrumConfig

    def couplings_growth(self, config: SpectrumConfig) -> dict[str, float]:
        option_name = "--g" if config.g else "--variance_max"
        return {option_name: config.n_couplings / default_value(config, "--variance_max")}

    def memory_terms(self, config: SpectrumConfig, *, itemsize: int) -> list:
        """See :meth:`CouplingSweep.memory_terms`; with ``--model`` one network per engine
        call (:func:`~nrmkit.experiments.lyapunov.trained_models.trained_memory_terms`)."""
        if config.model is not None:
            return trained_memory_terms(config, networks=1, itemsize=itemsize)
        return super().memory_terms(config, itemsize=itemsize)

    def iter_units(self, config: SpectrumConfig, context, units: list[int]):
        if config.model is None:
            yield from super().iter_units(config, context, units)
            return
        for network, arrays in iter_trained_networks(self.name, config, context,
                                                            units):
            yield [network], arrays

    def aggregate(self, config: SpectrumConfig, context, arrays) -> dict:
        if config.model is not None:
            return self._aggregate_model(config, context, arrays)
        import numpy as np

        from nrmkit import plotting

        couplings = config.couplings
        result = SweepResult.from_units(arrays)
        measures = _spectrum_measures(context, config, result.exponents, result.stderr,
                                      result.tons_per_sample[None, :])
        exponents, stderr, sum_rule = (measures["exponents"], measures["exponents_stderr"],
                                       measures["sum_rule_mean"])
        dimension, entropy, mean = (measures["kaplan_yorke_dim"], measures["ks_entropy"],
                                    measures["mean_exponent"])
        context.run_dir.write_arrays(
            "spectrum.npz", g=np.array(couplings), exponents=exponents, stderr=stderr,
            kaplan_yorke_dim=dimension, ks_entropy=entropy, mean_exponent=mean,
            tons=result.tons_per_sample,
        )
        figure = plotting.spectrum_overview(
            np.array(couplings), exponents, dimension, entropy, config.n,
            sum_rule=sum_rule if config.nle == config.n else None,
            title=f"{config.activation}, {config.connectivity}, N={config.n}, "
                  f"{config.n_samples} samples, "
                  f"varied: {', '.join(config.parameter)}",
        )
        context.run_dir.save_figure(figure, "spectrum")
        for g, d, h, m in zip(couplings, dimension, entropy, mean, strict=True):
            context.log(f"  g={g:8.3f}  D/N {np.median(d) / config.n:.4f}  "
                        f"H/N {np.median(h) / config.n:.5f}  mean λ {np.median(m):+.4f}")
        return {
            "g": couplings,
            "connectivity": config.connectivity_record(),
            **measures,
            "tons_effective": result.tons,
            "tons_per_sample": result.tons_per_sample,
            "t_accumulated": result.t_accumulated,
        }

    def _aggregate_model(self, config: SpectrumConfig, context, arrays) -> dict:
        """Results of ``--model``: one spectrum per network of the model."""
        from nrmkit import plotting

        info = trained_model_info(config.model, config.untrained)
        tons = arrays["tons"].reshape(-1)
        measures = _spectrum_measures(context, config, arrays["exponents"],  # [network, k]
                                      arrays["stderr"], tons)
        exponents, stderr, sum_rule = (measures["exponents"], measures["exponents_stderr"],
                                       measures["sum_rule_mean"])
        dimension, entropy, mean = (measures["kaplan_yorke_dim"], measures["ks_entropy"],
                                    measures["mean_exponent"])
        context.run_dir.write_arrays(
            "spectrum.npz", exponents=exponents, stderr=stderr, kaplan_yorke_dim=dimension,
            ks_entropy=entropy, mean_exponent=mean, tons=tons)
        which = "trained" if info.trained else "before training"
        figure = plotting.trained_spectra(
            exponents, dimension, entropy, config.n,
            sum_rule=sum_rule if config.nle == config.n else None,
            title=f"{info.workflow} ({which}): {Path(info.run).name}, N={config.n}, "
                  f"{config.activation}")
        context.run_dir.save_figure(figure, "spectrum")
        for network, (d, h, m) in enumerate(zip(dimension, entropy, mean, strict=True)):
            context.log(f"  network {network}: λ_1 {exponents[network, 0]:+.4f}  D/N "
                        f"{d / config.n:.4f}  H/N {h / config.n:.5f}  mean λ {m:+.4f}")
        return {
            "model": info.record(),
            **measures,
            "dt": config.dt,
            "activation": config.activation,
            "tons_effective": float(tons.max()),
            "tons_per_network": tons,
            "t_accumulated": float(arrays["t_accumulated"].min()),
        }


def _spectrum_measures(context, config: SpectrumConfig, exponents: Any, stderr: Any,
                       tons: Any) -> dict:
    """The results both modes share: the spectra ``[..., k]``, their Kaplan–Yorke
    dimension, KS entropy and mean exponent, the sum rule's mean and the t_ONS check."""
    from nrmkit.dynamics import kaplan_yorke_dimension, ks_entropy, mean_exponent
    from nrmkit.dynamics.theory import euler_sum_rule_mean

    spread, tons_ok = _check_spread(context, exponents, tons)
    return {
        "exponents": exponents,
        "exponents_stderr": stderr,
        "kaplan_yorke_dim": kaplan_yorke_dimension(exponents),
        "ks_entropy": ks_entropy(exponents),
        "mean_exponent": mean_exponent(exponents),
        "n": config.n,
        "nle": config.nle,
        "sum_rule_mean": euler_sum_rule_mean(config.dt),
        "tons_spread_product": spread,
        "tons_ok": tons_ok,
    }


def _check_spread(context, exponents: Any, tons: Any) -> tuple[float, bool]:
    """``max t_ONS·(λ_1 − λ_k)`` over every network (``tons`` broadcast against the
    exponents' leading axes) and whether it is within :data:`TONS_SPREAD_LIMIT`; warns if
    not."""
    spread = float(((exponents[..., 0] - exponents[..., -1]) * tons).max())
    limit = TONS_SPREAD_LIMIT[context.dtype]
    tons_ok = spread <= limit
    if not tons_ok:
        context.log(
            f"warning: t_ONS·(λ_1 − λ_k) = {spread:.1f} exceeds {limit:g} for "
            f"{context.dtype}: the smallest exponents are unreliable; lower --tons (or "
            "--tons auto) or use --dtype float64")
    return spread, tons_ok
