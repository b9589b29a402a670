"""Part 1 of ``lyapu_benchmark``: the ``transition_2_chaos`` sweep and the independent draws.

**sweep** — ``m_g`` couplings × ``n_samples`` networks of ``N`` neurons (batch ``(S, m)``,
one matrix per sample reused across the couplings). The engine runs the whole sweep once
(state warm-up + basis transient + accumulation, :meth:`LyapunovSettings.engine_kwargs
<nrmkit.experiments.lyapunov.settings.LyapunovSettings.engine_kwargs>`); the references run
``--reference-steps`` tangent steps on ``--reference-networks`` of the same networks, from the
engine's final state and basis. Costs are ms per Euler step of one network; ``speedup`` =
reference / engine.

**independent draws** — the same engine on ``m_g × n_samples`` networks that each draw their
own matrix, ``--independent-steps`` tangent steps, against the sweep's reference costs.

On CUDA the engine replays its runs of steps as CUDA graphs (:mod:`nrmkit.dynamics.step_graphs`);
the sweep is then timed a second time with ``cuda_graphs=False``:
``engine_seconds_without_graphs`` and ``graph_speedup`` (None on a CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nrmkit.experiments.lyapunov.benchmark_harness import BenchmarkHarness, entry
from nrmkit.experiments.lyapunov.benchmark_timing import Clock, phase_rates, timed
from nrmkit.experiments.lyapunov.settings import naming_divergence

if TYPE_CHECKING:
    from nrmkit.experiments.lyapunov.lyapu_benchmark import BenchmarkConfig


def time_sweep(harness: BenchmarkHarness) -> dict[str, Any]:
    """The ``sweep`` entry of results.json: engine and reference costs of the sweep.

    ``engine_ms_per_step`` [ms per Euler step of all networks together],
    ``engine_ms_per_network_step`` = that / networks, ``reference_ms_per_network_step`` and
    ``broadcast_reference_ms_per_network_step`` [ms], ``reference_sweep_seconds_estimate``
    [s] = reference ms per network-step × networks × steps / 1000, and the like-for-like
    ``speedup_tangent_steps`` from the engine's progress timestamps (None where no
    timestamp separates the warm-up from the tangent steps).
    """
    config = harness.config
    couplings = config.couplings
    networks = config.m_g * config.n_samples
    model = harness.network(config.n, couplings, config.n_samples, "sweep network")
    engine_seconds, clock, sweep_result = _time_sweep_engine(harness, model)
    eager_seconds = (_time_sweep_engine(harness, model, cuda_graphs=False)[0]
                     if str(harness.device).startswith("cuda") else None)
    steps = clock.total
    warmup_steps = max(0, round(config.ttrans / config.dt))
    warm_rate, tangent_rate = phase_rates(clock.records, engine_seconds, steps,
                                          warmup_steps, config.steps_per_ons)
    engine_ms_per_step = 1e3 * engine_seconds / steps
    engine_ms_per_network_step = engine_ms_per_step / networks

    picks = reference_picks(networks, config.reference_networks)
    reference_ms, broadcast_ms = _time_sweep_references(harness, model, sweep_result, picks)
    speedup = reference_ms / engine_ms_per_network_step
    tangent_ms = None if tangent_rate is None else 1e3 * tangent_rate / networks
    warm_ms = None if warm_rate is None else 1e3 * warm_rate / networks
    sweep = {
        "networks": networks,
        "n": config.n,
        "nle": config.nle,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "tangent_steps": steps - warmup_steps,
        "engine_seconds": engine_seconds,
        "engine_ms_per_step": engine_ms_per_step,
        "engine_ms_per_network_step": engine_ms_per_network_step,
        "engine_ms_per_tangent_network_step": tangent_ms,
        "engine_ms_per_warmup_network_step": warm_ms,
        "engine_seconds_without_graphs": eager_seconds,
        "graph_speedup": None if eager_seconds is None else eager_seconds / engine_seconds,
        "reference_networks": len(picks),
        "reference_steps": config.reference_steps,
        "reference_ms_per_network_step": reference_ms,
        "reference_sweep_seconds_estimate": reference_ms * networks * steps / 1e3,
        "speedup": speedup,
        "speedup_tangent_steps": None if tangent_ms is None else reference_ms / tangent_ms,
        "broadcast_reference_ms_per_network_step": broadcast_ms,
        "speedup_vs_broadcast_reference": broadcast_ms / engine_ms_per_network_step,
    }
    _log_sweep(harness.context, sweep)
    return sweep


def _sweep_network_name(couplings: list[float]):
    """Names batch entry ``(sample, coupling)`` of the sweep in a divergence error."""
    def describe(index: tuple[int, ...]) -> str:
        return f"g={couplings[index[1]]:g}, sample {index[0]}"
    return describe


def _time_sweep_engine(harness: BenchmarkHarness, model,
                       cuda_graphs: bool = True) -> tuple[float, Clock, Any]:
    """``(seconds, clock, result)`` of one engine run of the whole sweep (after a warm-up of
    one interval of state warm-up and one of accumulation), its states from the stream
    ``"sweep states"``; ``clock`` holds the progress timestamps and the step count."""
    from nrmkit.dynamics import lyapunov_spectrum

    config, context = harness.config, harness.context
    interval = config.steps_per_ons * config.dt
    describe = _sweep_network_name(config.couplings)
    with naming_divergence(describe):
        lyapunov_spectrum(model, config.nle, generator=context.stream("sweep states"),
                          tsim=interval, tons=config.tons, ttrans=interval,
                          tbasis=0.0, cuda_graphs=cuda_graphs)  # warm-up
    clock = Clock(context.progress("engine sweep"))

    def sweep_call():
        clock.restart()
        return lyapunov_spectrum(model, config.nle, generator=context.stream("sweep states"),
                                 progress=clock, cuda_graphs=cuda_graphs,
                                 **config.engine_kwargs())

    with naming_divergence(describe):
        seconds, result = timed(sweep_call, harness.device)
    return seconds, clock, result


def reference_picks(networks: int, count: int) -> list[int]:
    """``count`` flat (sample-major) indices of the sweep's networks timed with the
    references: spread evenly over ``[0, networks)``, topped up from the start if rounding
    merged some."""
    import numpy as np

    picks = np.unique(np.linspace(0, networks - 1, count).round().astype(int))
    return list(dict.fromkeys([*picks.tolist(), *range(networks)]))[:count]


def _time_sweep_references(harness: BenchmarkHarness, model, result,
                           picks: list[int]) -> tuple[float, float]:
    """ms per network-step of the FlyStability and the broadcast references, each timed once
    (no repeats) on every picked network from the engine's final state and basis."""
    config = harness.config
    n_couplings = model.batch_shape[1]
    reference_seconds = {"product": 0.0, "broadcast": 0.0}
    for flat in picks:
        index = divmod(flat, n_couplings)
        state, basis = entry(result, index)
        for construction in reference_seconds:
            reference_seconds[construction] += harness.reference(
                model, index, config.nle, config.reference_steps, state, basis,
                repeat=False, jacobian=construction)
    reference_ms, broadcast_ms = (
        1e3 * reference_seconds[c] / (len(picks) * config.reference_steps)
        for c in ("product", "broadcast"))
    return reference_ms, broadcast_ms


def _log_sweep(context, sweep: dict[str, Any]) -> None:
    context.log(f"  sweep: engine {sweep['engine_seconds']:.1f} s for {sweep['steps']} steps "
                f"({sweep['engine_ms_per_step']:.2f} ms/step, "
                f"{sweep['engine_ms_per_network_step']:.4f} ms "
                f"per network-step); reference {sweep['reference_ms_per_network_step']:.3f} ms "
                f"per network-step "
                f"→ ≈{sweep['reference_sweep_seconds_estimate'] / 60:.1f} min; "
                f"speedup ×{sweep['speedup']:.0f} "
                f"(×{sweep['speedup_vs_broadcast_reference']:.0f} "
                f"against the broadcast dense Jacobian, "
                f"{sweep['broadcast_reference_ms_per_network_step']:.3f} ms)")
    if sweep["graph_speedup"] is not None:
        context.log(f"  sweep without CUDA graphs: {sweep['engine_seconds_without_graphs']:.2f} s"
                    f" → graphs ×{sweep['graph_speedup']:.2f}")


def time_independent_draws(harness: BenchmarkHarness, sweep: dict[str, Any]) -> dict[str, Any]:
    """The ``independent_draws`` entry of results.json: the engine on ``m_g × n_samples``
    networks that each draw their own matrix (stream ``"independent networks"``, batch
    ``(m_g·S, 1)`` sample-major), ``--independent-steps`` tangent steps from the stream
    ``"independent states"``; ``ms_per_network_step`` [ms] and the speedups against the
    sweep's reference costs."""
    config = harness.config
    networks = config.m_g * config.n_samples
    independent = harness.network(config.n, config.couplings, config.n_samples,
                                  "independent networks", shared=False)
    with naming_divergence(_independent_network_name(config)):
        seconds, steps, _ = harness.engine(independent, config.nle, config.independent_steps,
                                           purpose="independent states")
    del independent
    independent_ms = 1e3 * seconds / (steps * networks)
    draws = {
        "networks": networks,
        "steps": steps,
        "seconds": seconds,
        "ms_per_step": 1e3 * seconds / steps,
        "ms_per_network_step": independent_ms,
        "speedup": sweep["reference_ms_per_network_step"] / independent_ms,
        "speedup_vs_broadcast_reference":
            sweep["broadcast_reference_ms_per_network_step"] / independent_ms,
    }
    harness.context.log(f"  independent draws: {independent_ms:.4f} ms per network-step, "
                        f"speedup ×{draws['speedup']:.0f}")
    return draws


def _independent_network_name(config: BenchmarkConfig):
    """Names batch entry ``(sample-major flat index, 0)`` of the independent draws."""
    couplings = config.couplings

    def describe(index: tuple[int, ...]) -> str:
        sample, g_index = divmod(index[0], config.m_g)
        return f"g={couplings[g_index]:g}, sample {sample} (independent draws)"
    return describe
