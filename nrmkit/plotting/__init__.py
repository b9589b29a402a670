"""Figures drawn from results arrays (never from live models).

Every figure function returns a :class:`matplotlib.figure.Figure`, built with the
object-oriented API under the house style (:data:`STYLE`); the run directory saves it as
PNG and PDF with :meth:`Figure.savefig`, which needs no backend. The package never calls
``matplotlib.use`` and never imports :mod:`matplotlib.pyplot`, so it leaves the caller's
backend (a notebook's inline one, say) and pyplot's figure registry alone.

One module per family:

* ``lyapunov``: :func:`transition_to_chaos`, :func:`spectrum_overview`,
  :func:`convergence`, :func:`network_activity`, :func:`benchmark`;
* ``spectrum_training``: :func:`trained_spectra`, :func:`training_curves`,
  :func:`trained_parameters`;
* ``sequences`` (sequential MNIST, adaptive nonlinearities): :func:`learning_curves`,
  :func:`seed_learning_curves`, :func:`shape_parameters`, :func:`adaptation_traces`,
  :func:`sequence_lyapunov`, :func:`fractional_orders`;
* ``nonlinmod`` (analyses of trained adaptive-nonlinearity networks): :func:`grid_heatmap`,
  :func:`analysis_curves`;
* ``language`` (character language models): :func:`bpc_curves`;
* ``glifr``: :func:`glifr_learning_curves`, :func:`sine_outputs`,
  :func:`glifr_parameters`, :func:`silencing_curve`, :func:`fi_curves_figure`,
  :func:`cluster_scores_figure`, :func:`parameter_trajectories_figure`;
* ``rate_to_lif``: :func:`rate_task_outputs`, :func:`lambda_grid`, :func:`lif_raster`,
  :func:`rate_training_curve`, :func:`stimulation_outputs`, :func:`voltage_traces`;
* ``style``: the shared style and figure scaffolding.

Every public name is available here (``from nrmkit import plotting;
plotting.transition_to_chaos(...)``). Importing this package is cheap: a family module (and
matplotlib with it) is loaded the first time one of its names is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nrmkit.plotting.glifr import (
        cluster_scores_figure,
        fi_curves_figure,
        glifr_learning_curves,
        glifr_parameters,
        parameter_trajectories_figure,
        silencing_curve,
        sine_outputs,
    )
    from nrmkit.plotting.language import bpc_curves
    from nrmkit.plotting.lyapunov import (
        benchmark,
        convergence,
        network_activity,
        spectrum_overview,
        transition_to_chaos,
    )
    from nrmkit.plotting.nonlinmod import analysis_curves, grid_heatmap
    from nrmkit.plotting.rate_to_lif import (
        lambda_grid,
        lif_raster,
        rate_task_outputs,
        rate_training_curve,
        stimulation_outputs,
        voltage_traces,
    )
    from nrmkit.plotting.sequences import (
        adaptation_traces,
        fractional_orders,
        learning_curves,
        seed_learning_curves,
        sequence_lyapunov,
        shape_parameters,
    )
    from nrmkit.plotting.spectrum_training import (
        trained_parameters,
        trained_spectra,
        training_curves,
    )
    from nrmkit.plotting.style import STYLE

#: the module that defines each public name.
_FAMILY = {
    "STYLE": "style",
    **dict.fromkeys(("transition_to_chaos", "spectrum_overview", "convergence",
                     "network_activity", "benchmark"), "lyapunov"),
    **dict.fromkeys(("grid_heatmap", "analysis_curves"), "nonlinmod"),
    "bpc_curves": "language",
    **dict.fromkeys(("trained_spectra", "training_curves", "trained_parameters"),
                    "spectrum_training"),
    **dict.fromkeys(("learning_curves", "seed_learning_curves", "shape_parameters",
                     "adaptation_traces", "sequence_lyapunov", "fractional_orders"),
                    "sequences"),
    **dict.fromkeys(("glifr_learning_curves", "sine_outputs", "glifr_parameters",
                     "silencing_curve", "fi_curves_figure", "cluster_scores_figure",
                     "parameter_trajectories_figure"), "glifr"),
    **dict.fromkeys(("rate_task_outputs", "lambda_grid", "lif_raster", "rate_training_curve",
                     "stimulation_outputs", "voltage_traces"), "rate_to_lif"),
}

__all__ = [
    "STYLE",
    "adaptation_traces",
    "analysis_curves",
    "benchmark",
    "bpc_curves",
    "cluster_scores_figure",
    "convergence",
    "fi_curves_figure",
    "fractional_orders",
    "glifr_learning_curves",
    "glifr_parameters",
    "grid_heatmap",
    "lambda_grid",
    "learning_curves",
    "lif_raster",
    "network_activity",
    "parameter_trajectories_figure",
    "rate_task_outputs",
    "rate_training_curve",
    "seed_learning_curves",
    "sequence_lyapunov",
    "shape_parameters",
    "silencing_curve",
    "sine_outputs",
    "spectrum_overview",
    "stimulation_outputs",
    "trained_parameters",
    "trained_spectra",
    "training_curves",
    "transition_to_chaos",
    "voltage_traces",
]


def __getattr__(name: str) -> Any:
    """Load the family module of ``name`` on first use (PEP 562) and cache the name here."""
    family = _FAMILY.get(name)
    if family is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{family}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
