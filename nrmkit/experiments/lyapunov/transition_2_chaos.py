"""``transition_2_chaos``: the largest Lyapunov exponent of random networks vs coupling g.

For ``m_g`` couplings evenly spaced in ``[gmin, gmax]`` and ``n_samples`` random networks
each, compute λ_max (or the top ``nle`` exponents) of
``h' = −h + W φ(h; a, s)`` (Euler, step dt) with W, gains and/or shifts drawn at scale g
(see :func:`nrmkit.nn.rate_rnn.random_rate_network`). All networks run in one batched
engine call; by default each sample reuses one random matrix across the couplings
(``W = g·J``), which is exact in distribution and turns the sweep into matrix–matrix
products; ``--independent-draws`` draws a fresh matrix for every (g, sample).
``--connectivity`` chooses the ensemble of J (``gaussian``, ``symmetric``, ``ei``;
:mod:`nrmkit.nn.ensembles`); the theory curve is the mean field for ``gaussian`` and the
linearisation at 0 up to the edge of the bulk for the others.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/transition_2_chaos.md``), and a test checks them against what the workflow writes.
Arrays: ``lambda.npz`` (g, exponents[g, sample, k], stderr[g, sample, k]).
Figures: ``figures/transition_2_chaos.{png,pdf}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nrmkit.experiments.lyapunov.coupling_sweep import CouplingSweep, SweepResult
from nrmkit.experiments.lyapunov.settings import (
    RandomNetworkSettings,
    check_coupling_grid,
    check_parameter_sets,
    coupling_grid,
    raised,
)


@dataclass(frozen=True)
class TransitionConfig(RandomNetworkSettings):
    """A coupling sweep (all options of ``transition_2_chaos``)."""

    adaptive_tons: ClassVar[bool] = True

    gmin: float = 0.5
    gmax: float = 3.0
    m_g: int = 7
    n_samples: int = 10
    parameter: tuple[str, ...] = ("weights",)
    independent_draws: bool = False

    def __post_init__(self):
        super().__post_init__()
        check_coupling_grid(self.gmin, self.gmax, self.m_g, self.n_samples)
        object.__setattr__(self, "parameter",
                           check_parameter_sets(tuple(self.parameter), self.activation))

    @property
    def couplings(self) -> list[float]:
        return coupling_grid(self.gmin, self.gmax, self.m_g)

    @property
    def n_couplings(self) -> int:
        return self.m_g


class TransitionToChaos(CouplingSweep):
    name = "transition_2_chaos"
    config_class = TransitionConfig

    def couplings_growth(self, config: TransitionConfig) -> dict[str, float]:
        return {"--m_g": raised(config, "--m_g")}

    def aggregate(self, config: TransitionConfig, context, arrays) -> dict:
        import numpy as np

        from nrmkit import plotting

        couplings = config.couplings
        result = SweepResult.from_units(arrays)
        exponents, stderr = result.exponents, result.stderr
        lambda_max = exponents[..., 0]
        curve = _theory_curve(config)
        theory = None if curve is None else curve(np.array(couplings))

        results = {
            "g": couplings,
            "lambda_max": lambda_max,
            "lambda_max_stderr": stderr[..., 0],
            "lambda_max_median": np.median(lambda_max, axis=1),
            "mean_field_lambda_max": theory,
            "connectivity": config.connectivity_record(),
            "n": config.n,
            "dt": config.dt,
            "tons_effective": result.tons,
            "tons_per_sample": result.tons_per_sample,
            "t_accumulated": result.t_accumulated,
        }
        if config.nle > 1:
            results["exponents"] = exponents
        context.run_dir.write_arrays("lambda.npz", g=np.array(couplings), exponents=exponents,
                                     stderr=stderr)
        figure = plotting.transition_to_chaos(
            np.array(couplings), lambda_max, theory=theory, dt=config.dt,
            curve=None if config.connectivity == "gaussian" else curve,
            title=f"{config.activation}, {config.connectivity}, N={config.n}, varied: "
                  f"{', '.join(config.parameter)}",
        )
        context.run_dir.save_figure(figure, "transition_2_chaos")
        for g, values in zip(couplings, lambda_max, strict=True):
            context.log(f"  g={g:7.3f}  λ_max median {np.median(values):+.4f}  "
                        f"[{values.min():+.4f}, {values.max():+.4f}]")
        return results


def _theory_curve(config: TransitionConfig):
    """λ_max(g) for N → ∞ where known (tanh, weights varied), else None: the mean-field
    curve of the Gaussian ensemble, or for ``symmetric`` and ``ei`` the linearisation at the
    fixed point 0 up to the edge of the bulk (NaN beyond;
    :func:`nrmkit.dynamics.theory.linear_lambda_max`)."""
    from functools import partial

    from nrmkit.dynamics.theory import BULK_EDGE, linear_lambda_max, mean_field_lambda_max

    if config.activation != "tanh" or config.parameter != ("weights",):
        return None
    if config.connectivity == "gaussian":
        return partial(mean_field_lambda_max, dt=config.dt)
    return partial(linear_lambda_max, dt=config.dt, edge=BULK_EDGE[config.connectivity])
