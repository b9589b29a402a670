"""``lyapu_benchmark``: the Lyapunov engine against dense-Jacobian references, in one run.

Everything is measured on this machine, in this run, with ``time.perf_counter`` after a
warm-up call (CUDA is synchronised around every timed call). Times are wall-clock.

Two dense-Jacobian references are timed on the same networks, one network at a time
(:func:`nrmkit.dynamics.reference.dense_jacobian_spectrum`): **FlyStability**, the
published algorithm, which forms the Jacobian with a dense ``N×N×N`` product every step
(``reference_*`` keys; ``speedup`` is against it), and **broadcast**, an economical dense
construction with ``O(N²)`` work per step (``broadcast_reference_*`` keys,
``speedup_vs_broadcast_reference``).

1. **sweep** — the default ``transition_2_chaos`` sweep (``m_g`` couplings in
   ``[gmin, gmax]`` × ``n_samples`` networks of ``N`` neurons, one random matrix per sample
   reused across the couplings). The batched engine
   (:func:`nrmkit.dynamics.lyapunov_spectrum`) runs the whole sweep once, state warm-up +
   basis transient + accumulation: ``engine_seconds`` [s], ``engine_ms_per_step`` [ms per
   Euler step of all networks together] and ``engine_ms_per_network_step`` [ms per Euler
   step of one network]. The references run ``--reference-steps`` tangent steps on
   ``--reference-networks`` of the *same* networks (same weights, coupling, gains, shifts,
   dtype, starting from the engine's final state and basis):
   ``reference_ms_per_network_step`` [ms]. ``speedup`` = reference ms per network-step /
   engine ms per network-step; ``reference_sweep_seconds_estimate`` [s] = reference ms per
   network-step × networks × the engine run's step count. Because the engine's warm-up
   steps advance the state only, the like-for-like ratio of tangent steps is also given
   (``speedup_tangent_steps``, from the engine's progress timestamps).
   **independent_draws** — the same engine on ``m_g × n_samples`` networks that each draw
   their own matrix, for ``--independent-steps`` tangent steps (no transients):
   ``ms_per_network_step`` [ms] and ``speedup`` against the same reference figures.
   **quick_start** — the path of ``transition_2_chaos`` (one engine call per sample, the
   state and tangent vectors in one pass per step, through the compiled kernel where it
   applies) on the first samples, against the roofline of its product measured in the same
   run (streaming each sample's matrix once per step, and its flops at the peak rate) and
   the PyTorch one-pass step (``benchmark_quick_start``).
2. **full_spectrum** — one network of ``--full-spectrum-n`` neurons, all ``N`` exponents,
   ``--full-spectrum-steps`` engine steps: ``ms_per_step`` [ms], ``gflops`` [GFLOP/s,
   counting ``2·N·N·(N+1)`` flops per step for the shared state + tangent product, the QR
   not counted], ``matmul_limit_gflops`` (the best of a few ``(N+1)×N @ N×N`` products
   timed in this run), ``fraction_of_limit``, and ``reference_ms_per_step`` /
   ``broadcast_reference_ms_per_step`` [ms] (the references with ``k = N``).
3. **scaling** (``--no-scaling`` skips it) — one network, ``--scaling-steps`` tangent steps
   each, engine and both references [ms per step]: versus the number of exponents ``k`` at
   ``N = 200`` and versus ``N`` at ``k = 10``.

Initial states and bases are drawn outside the timed calls of 2 and 3 (only steps count).
The single-network measurements (2, 3) use the coupling ``gmax``.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/lyapu_benchmark.md``), and a test checks them against what the workflow writes.
Arrays: ``benchmark.npz``. Figures: ``figures/lyapu_benchmark.{png,pdf}``.

The parts live beside this module: the timed calls (``benchmark_timing``), the networks,
engine and reference timings that every part shares (``benchmark_harness``), parts 1–3
(``benchmark_sweep``, ``benchmark_full_spectrum``, ``benchmark_scaling``), the arrays and
figure (``benchmark_outputs``) and the memory estimate (``benchmark_memory``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nrmkit.core.base import MemoryTerm, Workflow
from nrmkit.core.checks import check
from nrmkit.experiments.lyapunov.benchmark_full_spectrum import (
    time_full_spectrum,
)
from nrmkit.experiments.lyapunov.benchmark_harness import BenchmarkHarness
from nrmkit.experiments.lyapunov.benchmark_memory import (
    benchmark_memory_terms,
)
from nrmkit.experiments.lyapunov.benchmark_outputs import write_outputs
from nrmkit.experiments.lyapunov.benchmark_quick_start import time_quick_start
from nrmkit.experiments.lyapunov.benchmark_scaling import (
    time_scaling,
)
from nrmkit.experiments.lyapunov.benchmark_sweep import time_independent_draws, time_sweep
from nrmkit.experiments.lyapunov.settings import (
    MAX_STEPS,
    LyapunovSettings,
    check_coupling_grid,
    coupling_grid,
)


@dataclass(frozen=True)
class BenchmarkConfig(LyapunovSettings):
    """Options of ``lyapu_benchmark``: the sweep to time and the sizes of the comparisons."""

    gmin: float = 0.5
    gmax: float = 3.0
    m_g: int = 7
    n_samples: int = 10
    reference_networks: int = 2
    reference_steps: int = 100
    independent_steps: int = 200
    full_spectrum_n: int = 1000
    full_spectrum_steps: int = 20
    scaling: bool = True
    scaling_steps: int = 100

    def __post_init__(self):
        super().__post_init__()
        check_coupling_grid(self.gmin, self.gmax, self.m_g, self.n_samples)
        networks = self.m_g * self.n_samples
        check(1 <= self.reference_networks <= networks, "--reference-networks",
              f"must lie in [1, {networks}] (m_g × n_samples), got {self.reference_networks}")
        per_ons = self.steps_per_ons
        for name in ("reference_steps", "independent_steps", "full_spectrum_steps",
                     "scaling_steps"):
            value = getattr(self, name)
            check(value >= per_ons, "--" + name.replace("_", "-"),
                  f"must be at least one re-orthonormalisation interval ({per_ons} steps), "
                  f"got {value}")
            check(value <= MAX_STEPS, "--" + name.replace("_", "-"),
                  f"{value} Euler steps are more than the {MAX_STEPS:.0e} a run may take")
        check(self.full_spectrum_n >= 2, "--full-spectrum-n",
              f"a network needs at least 2 neurons, got {self.full_spectrum_n}")

    @property
    def couplings(self) -> list[float]:
        return coupling_grid(self.gmin, self.gmax, self.m_g)


class LyapunovBenchmark(Workflow):
    name = "lyapu_benchmark"
    config_class = BenchmarkConfig

    def memory_terms(self, config: BenchmarkConfig, *, itemsize: int) -> list[MemoryTerm]:
        """The terms of the phases, added
        (:func:`~nrmkit.experiments.lyapunov.benchmark_memory.benchmark_memory_terms`)."""
        return benchmark_memory_terms(config, itemsize=itemsize)

    def run(self, config: BenchmarkConfig, context) -> dict:
        """The sweep, the quick-start path and the independent draws (1), the full spectrum
        (2), the scaling (3, unless ``--no-scaling``), one after the other; then
        ``benchmark.npz`` and the figure. Returns the results.json entries."""
        import torch

        harness = BenchmarkHarness(config, context)
        threads = torch.get_num_threads()
        context.log(f"lyapu_benchmark: N={config.n}, {config.m_g} couplings × "
                    f"{config.n_samples} samples = {config.m_g * config.n_samples} networks, "
                    f"nle={config.nle}, on {context.device} ({context.dtype}, "
                    f"{threads} threads)")
        sweep = time_sweep(harness)
        quick_start = time_quick_start(harness)
        independent_draws = time_independent_draws(harness, sweep)
        full_spectrum = time_full_spectrum(harness)
        scaling = time_scaling(harness) if config.scaling else None
        write_outputs(harness, sweep, independent_draws, full_spectrum, scaling, threads)
        return {
            "sweep": sweep,
            "speedup": sweep["speedup"],
            "quick_start": quick_start,
            "independent_draws": independent_draws,
            "full_spectrum": full_spectrum,
            "scaling": scaling,
            "torch_threads": threads,
            "device": str(context.device),
            "dtype": context.dtype,
        }
