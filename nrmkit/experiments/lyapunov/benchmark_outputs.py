"""The arrays and the figure of ``lyapu_benchmark``.

``benchmark.npz``: ``labels`` (4,) and ``ms_per_network_step`` (4,) [ms] — FlyStability
reference, broadcast reference, engine on the shared-matrix sweep, engine on independent
draws; ``full_spectrum`` (5,) — engine, FlyStability and broadcast ms per step, GFLOP/s and
the matmul limit [GFLOP/s]; with the scaling timings also ``nle`` (5,), ``n`` (4,) and the
engine / reference / broadcast-reference ms per step ``*_vs_nle`` (5,) and ``*_vs_n`` (4,).
Figure: ``figures/lyapu_benchmark.{png,pdf}`` (:func:`nrmkit.plotting.benchmark`).
"""

from __future__ import annotations

from typing import Any

from nrmkit.experiments.lyapunov.benchmark_harness import BenchmarkHarness
from nrmkit.experiments.lyapunov.benchmark_scaling import (
    SCALING_N,
    SCALING_N_AT_NLE,
    SCALING_NLE,
    SCALING_NLE_AT_N,
)

#: the bars of the cost figure, in the order of ``ms_per_network_step``.
BAR_LABELS = ["reference\nFlyStability", "reference\nbroadcast", "engine\nshared J",
              "engine\nindependent J"]

#: the per-step scaling lists of results.json written to benchmark.npz under the same name.
SCALING_ARRAYS = ("engine_ms_per_step_vs_nle", "reference_ms_per_step_vs_nle",
                  "engine_ms_per_step_vs_n", "reference_ms_per_step_vs_n",
                  "broadcast_reference_ms_per_step_vs_nle",
                  "broadcast_reference_ms_per_step_vs_n")


def write_outputs(harness: BenchmarkHarness, sweep: dict[str, Any],
                  independent_draws: dict[str, Any], full_spectrum: dict[str, Any],
                  scaling: dict[str, Any] | None, threads: int) -> None:
    """Write ``benchmark.npz`` and the figure from the results.json entries of the run."""
    from nrmkit import plotting

    config, context = harness.config, harness.context
    bars = [sweep["reference_ms_per_network_step"],
            sweep["broadcast_reference_ms_per_network_step"],
            sweep["engine_ms_per_network_step"], independent_draws["ms_per_network_step"]]
    context.run_dir.write_arrays("benchmark.npz",
                                 **benchmark_arrays(bars, full_spectrum, scaling))
    figure = plotting.benchmark(
        BAR_LABELS, bars, **_scaling_curves(scaling),
        nle_at_n=SCALING_NLE_AT_N, n_at_nle=SCALING_N_AT_NLE,
        title=f"{config.activation}, N={config.n}, {sweep['networks']} networks, "
              f"nle={config.nle}, {harness.device} {context.dtype}, {threads} threads",
    )
    context.run_dir.save_figure(figure, "lyapu_benchmark")


def benchmark_arrays(bars: list[float], full_spectrum: dict[str, Any],
                     scaling: dict[str, Any] | None) -> dict[str, Any]:
    """The arrays of ``benchmark.npz`` (see the module's docstring)."""
    import numpy as np

    arrays = {
        "labels": np.array([label.replace("\n", " ") for label in BAR_LABELS]),
        "ms_per_network_step": np.array(bars),
        "full_spectrum": np.array([full_spectrum["ms_per_step"],
                                   full_spectrum["reference_ms_per_step"],
                                   full_spectrum["broadcast_reference_ms_per_step"],
                                   full_spectrum["gflops"],
                                   full_spectrum["matmul_limit_gflops"]]),
    }
    if scaling is not None:
        arrays.update(nle=np.array(SCALING_NLE), n=np.array(SCALING_N))
        arrays.update({key: np.array(scaling[key]) for key in SCALING_ARRAYS})
    return arrays


def _scaling_curves(scaling: dict[str, Any] | None) -> dict[str, Any]:
    """The scaling panels' keyword arguments of :func:`nrmkit.plotting.benchmark` (all None
    without the scaling timings)."""
    import numpy as np

    sources = {
        "engine_vs_nle": "engine_ms_per_step_vs_nle",
        "reference_vs_nle": "reference_ms_per_step_vs_nle",
        "engine_vs_n": "engine_ms_per_step_vs_n",
        "reference_vs_n": "reference_ms_per_step_vs_n",
        "broadcast_vs_nle": "broadcast_reference_ms_per_step_vs_nle",
        "broadcast_vs_n": "broadcast_reference_ms_per_step_vs_n",
    }
    if scaling is None:
        return {"nle": None, "n": None, **dict.fromkeys(sources)}
    return {"nle": np.array(SCALING_NLE), "n": np.array(SCALING_N),
            **{argument: scaling[key] for argument, key in sources.items()}}
