"""Part 2 of ``lyapu_benchmark``: the full spectrum of one network, against the matmul limit.

One network of ``F = --full-spectrum-n`` neurons at the coupling ``gmax``, all ``F``
exponents, ``--full-spectrum-steps`` engine steps. The engine's work is counted as
``2·F·F·(F+1)`` flops per step (the shared state + tangent product; the QR not counted); the
limit is the best of :data:`MATMUL_REPEATS` ``(F+1)×F @ F×F`` products timed in this run.
"""

from __future__ import annotations

from typing import Any

from nrmkit.experiments.lyapunov.benchmark_harness import BenchmarkHarness, entry
from nrmkit.experiments.lyapunov.benchmark_timing import timed
from nrmkit.experiments.lyapunov.settings import naming_divergence

#: repetitions of the (N+1)×N @ N×N product that measures the matrix-product limit.
MATMUL_REPEATS = 5


def time_full_spectrum(harness: BenchmarkHarness) -> dict[str, Any]:
    """The ``full_spectrum`` entry of results.json: ``ms_per_step`` [ms], ``gflops``
    [GFLOP/s], ``matmul_limit_gflops``, ``fraction_of_limit`` = gflops / limit, and
    ``reference_ms_per_step`` / ``broadcast_reference_ms_per_step`` [ms] (the references
    with ``k = F``, timed once each from the engine's final state and basis).

    Streams: ``"full-spectrum network"`` (the weights), ``"full-spectrum states"`` (state
    and basis), ``"reference left"`` / ``"reference right"`` (the matmul operands).
    """
    config = harness.config
    n_full = config.full_spectrum_n
    model = harness.network(n_full, [config.gmax], 1, "full-spectrum network")
    with naming_divergence(lambda index: f"g={config.gmax:g}, the full-spectrum network "
                           f"of N={n_full}"):
        seconds, full_steps, result = harness.engine(model, n_full, config.full_spectrum_steps,
                                                     purpose="full-spectrum states")
    full_ms = 1e3 * seconds / full_steps
    flops = 2.0 * n_full * n_full * (n_full + 1)
    gflops = flops * full_steps / seconds / 1e9
    limit = flops / matmul_seconds(harness, n_full) / 1e9
    state, basis = entry(result, (0, 0))
    del result
    reference_full, broadcast_full = (
        harness.reference(model, (0, 0), n_full, config.full_spectrum_steps, state, basis,
                          repeat=False, jacobian=construction)
        for construction in ("product", "broadcast"))
    full_spectrum = {
        "n": n_full,
        "nle": n_full,
        "steps": full_steps,
        "ms_per_step": full_ms,
        "gflops": gflops,
        "matmul_limit_gflops": limit,
        "fraction_of_limit": gflops / limit,
        "reference_ms_per_step": 1e3 * reference_full / config.full_spectrum_steps,
        "broadcast_reference_ms_per_step": 1e3 * broadcast_full / config.full_spectrum_steps,
    }
    del model
    harness.context.log(
        f"  full spectrum N={n_full}: engine {full_ms:.1f} ms/step "
        f"({gflops:.0f} GFLOP/s of a measured {limit:.0f} GFLOP/s matmul limit, "
        f"{100 * gflops / limit:.0f}%); reference "
        f"{full_spectrum['reference_ms_per_step']:.1f} ms/step")
    return full_spectrum


def matmul_seconds(harness: BenchmarkHarness, n: int) -> float:
    """Best of :data:`MATMUL_REPEATS` timings [s] of an ``(n+1)×n @ n×n`` product in the run's
    dtype and device (operands drawn in float32 from the streams ``"reference left"`` and
    ``"reference right"``, then cast; one untimed warm-up product)."""
    import torch

    context = harness.context
    device, dtype = context.device, context.torch_dtype
    left = torch.randn(n + 1, n, generator=context.stream("reference left")).to(device, dtype)
    right = torch.randn(n, n, generator=context.stream("reference right")).to(device, dtype)
    torch.matmul(left, right)  # warm-up
    return min(timed(lambda: torch.matmul(left, right), device)[0]
               for _ in range(MATMUL_REPEATS))
