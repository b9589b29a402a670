"""Lyapunov exponents of the rate network of ``rate_to_lif`` (``--lyapunov K``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrmkit.core.checks import check
from nrmkit.runs.summaries import mean_std

if TYPE_CHECKING:
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig

#: trajectories of the autonomous rate network whose spectra are averaged.
LYAPUNOV_TRAJECTORIES = 10


def lyapunov_exponents(config: RateToLifConfig, context, network) -> dict:
    """The ``--lyapunov`` largest exponents (1/s) of the autonomous rate network
    (:class:`~nrmkit.nn.dale.DaleDynamics`, :data:`LYAPUNOV_TRAJECTORIES` trajectories;
    accumulated over 2000 steps of 5 ms after a warm-up of 200 steps, re-orthonormalised
    every 5 steps; stream ``lyapunov``): ``"mean_per_s"`` and ``"std_per_s"`` (K,) over the
    trajectories (each spectrum sorted descending), ``"trajectories"`` and
    ``"t_accumulated_s"``.

    Raises:
        ConfigError: naming ``--lyapunov`` when it exceeds the network's units.
    """
    import torch

    from nrmkit.dynamics.lyapunov import lyapunov_spectrum
    from nrmkit.nn.dale import DaleDynamics

    check(config.lyapunov <= network.spec.n, "--lyapunov",
          f"cannot exceed the model's {network.spec.n} units")
    model = DaleDynamics(network, LYAPUNOV_TRAJECTORIES)
    step = model.dt
    with torch.no_grad():
        result = lyapunov_spectrum(model, config.lyapunov, tsim=2000 * step, tons=5 * step,
                                   ttrans=200 * step, generator=context.stream("lyapunov"),
                                   check_finite=False)
    spread = mean_std(result.sorted().exponents, axis=0)
    return {"mean_per_s": spread["mean"].tolist(), "std_per_s": spread["std"].tolist(),
            "trajectories": LYAPUNOV_TRAJECTORIES, "t_accumulated_s": result.t_accumulated}
