"""Part 3 of ``lyapu_benchmark``: cost per step against the number of exponents and the size.

One network at the coupling ``gmax`` per grid point, ``--scaling-steps`` tangent steps each,
engine and both references [ms per step]: versus the number of exponents ``k`` in
:data:`SCALING_NLE` at ``N =`` :data:`SCALING_NLE_AT_N`, and versus ``N`` in
:data:`SCALING_N` at ``k =`` :data:`SCALING_N_AT_NLE`. Grid point ``i`` (``k`` points first,
then ``N`` points) draws its network and its state and basis from the streams
``("scaling network", unit=i)`` and ``("scaling states", unit=i)``.
"""

from __future__ import annotations

from typing import Any

from nrmkit.experiments.lyapunov.benchmark_harness import BenchmarkHarness, entry
from nrmkit.experiments.lyapunov.settings import naming_divergence

#: scaling grid: exponents k at N = SCALING_NLE_AT_N, and sizes N at k = SCALING_N_AT_NLE.
SCALING_NLE = (1, 10, 50, 100, 200)


SCALING_NLE_AT_N = 200


SCALING_N = (100, 200, 500, 1000)


SCALING_N_AT_NLE = 10


def scaling_points() -> list[tuple[int, int]]:
    """The grid ``(N, k)``: the ``k`` points, then the ``N`` points."""
    return [(SCALING_NLE_AT_N, k) for k in SCALING_NLE] + [
        (n, SCALING_N_AT_NLE) for n in SCALING_N]


def time_scaling(harness: BenchmarkHarness) -> dict[str, Any]:
    """The ``scaling`` entry of results.json: engine, FlyStability and broadcast reference
    ms per step at every grid point, split into the ``*_vs_nle`` and ``*_vs_n`` lists."""
    progress = harness.context.progress("scaling")
    points = scaling_points()
    engine_costs, reference_costs, broadcast_costs = [], [], []
    for number, (n, k) in enumerate(points):
        engine_ms, reference_ms, broadcast_ms = _time_scaling_point(harness, number, n, k)
        engine_costs.append(engine_ms)
        reference_costs.append(reference_ms)
        broadcast_costs.append(broadcast_ms)
        progress(number + 1, len(points))
    split = len(SCALING_NLE)
    scaling = {
        "n_for_nle": SCALING_NLE_AT_N,
        "nle": list(SCALING_NLE),
        "engine_ms_per_step_vs_nle": engine_costs[:split],
        "reference_ms_per_step_vs_nle": reference_costs[:split],
        "broadcast_reference_ms_per_step_vs_nle": broadcast_costs[:split],
        "nle_for_n": SCALING_N_AT_NLE,
        "n": list(SCALING_N),
        "engine_ms_per_step_vs_n": engine_costs[split:],
        "reference_ms_per_step_vs_n": reference_costs[split:],
        "broadcast_reference_ms_per_step_vs_n": broadcast_costs[split:],
        "steps": harness.config.scaling_steps,
    }
    _log_scaling(harness.context, scaling)
    return scaling


def _time_scaling_point(harness: BenchmarkHarness, number: int, n: int,
                        k: int) -> tuple[float, float, float]:
    """ms per step of the engine, the FlyStability and the broadcast reference on grid
    point ``number`` (a network of ``n`` neurons, ``k`` exponents; best of three when short),
    the references from the engine's final state and basis."""
    config = harness.config
    model = harness.network(n, [config.gmax], 1, "scaling network", unit=number)
    with naming_divergence(lambda index: f"g={config.gmax:g}, the "
                           f"scaling network of N={n}, k={k}"):
        seconds, n_steps, result = harness.engine(model, k, config.scaling_steps,
                                                  purpose="scaling states", unit=number)
    engine_ms = 1e3 * seconds / n_steps
    state, basis = entry(result, (0, 0))
    reference_ms, broadcast_ms = (
        1e3 * harness.reference(model, (0, 0), k, config.scaling_steps, state, basis,
                                jacobian=construction) / config.scaling_steps
        for construction in ("product", "broadcast"))
    return engine_ms, reference_ms, broadcast_ms


def _log_scaling(context, scaling: dict[str, Any]) -> None:
    """One line per axis: ``label=value: engine/FlyStability/broadcast`` ms per step."""
    for label, values, key in (("k", SCALING_NLE, "nle"), ("N", SCALING_N, "n")):
        pairs = ", ".join(
            f"{label}={v}: {e:.3f}/{r:.3f}/{b:.3f}" for v, e, r, b in zip(
                values, scaling[f"engine_ms_per_step_vs_{key}"],
                scaling[f"reference_ms_per_step_vs_{key}"],
                scaling[f"broadcast_reference_ms_per_step_vs_{key}"], strict=True))
        context.log(f"  scaling vs {label} (engine/FlyStability/broadcast ms per "
                    f"step): {pairs}")
