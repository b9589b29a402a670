"""The memory estimate of ``lyapu_benchmark`` (without torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrmkit.core.base import MemoryTerm
from nrmkit.experiments.lyapunov.benchmark_quick_start import MAIN_MEMORY_BYTES
from nrmkit.experiments.lyapunov.benchmark_scaling import (
    SCALING_N,
    SCALING_N_AT_NLE,
    SCALING_NLE,
)
from nrmkit.experiments.lyapunov.settings import (
    DRAW_BYTES_PER_ENTRY,
    ENGINE_FLOATS_PER_ROW_ENTRY,
    engine_memory,
    memory_term,
    plural,
    raised,
    weight_memory,
)

if TYPE_CHECKING:
    from nrmkit.experiments.lyapunov.lyapu_benchmark import BenchmarkConfig

#: peak N×N arrays of a dense-Jacobian reference (:mod:`nrmkit.dynamics.reference`): the
#: scaled matrix, its sign mask and magnitudes, and per step the signed matrix, the scaled
#: identity, diag(Δt φ'), their product and the Jacobian (the O(N³) FlyStability product
#: needs no N×N×N array).
REFERENCE_MATRICES = 9


def benchmark_memory_terms(config: BenchmarkConfig, *, itemsize: int) -> list[MemoryTerm]:
    """The phases run one after the other; their terms are added (an overestimate of at
    most the number of phases). ``S = n_samples``, ``m = m_g``, ``k = nle``, ``F =
    full-spectrum-n``, ``i = itemsize`` (bytes):

    * sweep: weights ``S · N² · (16 + i)``, engine on ``B = m·S`` networks
      ``7 · B·(k+1)·N · i + B·k² · i`` and history ``2 · n_ons · B · k · 8``
      (:func:`~nrmkit.experiments.lyapunov.settings.engine_memory`), references ``9 · N² · i``;
    * independent draws: weights ``m·S · N² · (16 + i)``;
    * the float64 logs of the other timings, ``2 · (steps / steps per t_ONS) · networks
      · k · 8``;
    * full spectrum, held throughout: weights and final basis ``2 · F² · i``, the
      operands of the timed matrix product ``2 · F² · (4 + i)``; and the largest of the
      phases that come and go: the draw ``16 · F²``, the engine ``8 · F² · i``, the
      references ``9 · F² · i``;
    * scaling (unless ``--no-scaling``): the same for its largest network (N = 1000,
      k = 10);
    * the main-memory bandwidth buffer of the quick-start timing (256 MiB).

    Measured (float32, peak RSS above the same run at N = F = 20, ``--no-scaling``,
    a few steps): ``--n 2000 --m_g 4 --n_samples 4 --full-spectrum-n 600``: 1261 MiB for
    1685 estimated (the independent draws dominate; the sweep's terms come on top);
    ``--full-spectrum-n 1500``: 135 MiB for 129.
    """
    samples, m, n, k, i = config.n_samples, config.m_g, config.n, config.nle, itemsize
    networks = m * samples
    working, history = engine_memory(networks=networks, n=n, nle=k, n_ons=config.n_ons,
                                     itemsize=i)
    n_grow = raised(config, "--n")
    batch = {"--m_g": raised(config, "--m_g"), "--n_samples": raised(config, "--n_samples")}
    terms = [
        memory_term({"--n": n_grow ** 2, "--n_samples": batch["--n_samples"]},
                    weight_memory(n, samples, i),
                    f"the {n}×{n} weight matrices of {plural(samples, 'sample')}"),
        memory_term({"--n": n_grow, **batch, "--nle": raised(config, "--nle")},
                    working + REFERENCE_MATRICES * n * n * i,
                    f"the states and {plural(k, 'tangent vector')} of "
                    f"{plural(networks, 'network')} of {n} neurons, and the dense "
                    "reference Jacobians"),
        memory_term({"--tsim": raised(config, "--tsim"),
                     "--tons": raised(config, "--tons", -1), **batch,
                     "--nle": raised(config, "--nle")}, history,
                    f"the float64 logs of {plural(config.n_ons, 're-orthonormalisation')}"
                    f" of {plural(networks, 'network')}"),
        memory_term({"--n": n_grow ** 2, **batch}, weight_memory(n, networks, i),
                    f"the {networks} {n}×{n} weight matrices of the independent draws"),
        _full_spectrum_term(config, i),
        MemoryTerm("--n", MAIN_MEMORY_BYTES,
                   "the buffer that measures the main-memory bandwidth"),
    ]
    timings = {"--independent-steps": (config.independent_steps, networks, k),
               "--full-spectrum-steps": (config.full_spectrum_steps, 1,
                                         config.full_spectrum_n)}
    if config.scaling:
        terms.append(_scaling_term(i))
        timings["--scaling-steps"] = (config.scaling_steps, 1, max(SCALING_NLE))
    terms.append(_timing_logs_term(config, timings, i))
    return terms


def _full_spectrum_term(config: BenchmarkConfig, i: int) -> MemoryTerm:
    """Held throughout: the weights and final basis (2 F² i) and the operands of the timed
    product (drawn in float32, then cast); then the largest of what comes and goes: the
    draw, the engine's step, the reference's matrices (9 F² i)."""
    full = config.full_spectrum_n
    full_bytes = full * full * (2 * i + 2 * (4 + i) + max(
        DRAW_BYTES_PER_ENTRY, ENGINE_FLOATS_PER_ROW_ENTRY * i + i, REFERENCE_MATRICES * i))
    return memory_term({"--full-spectrum-n": raised(config, "--full-spectrum-n", 2)},
                       full_bytes, f"the {full}×{full} matrices of the full-spectrum timing")


def _scaling_term(i: int) -> MemoryTerm:
    """The weights, engine and references of the largest scaling network."""
    largest, k_largest = max(SCALING_N), SCALING_N_AT_NLE
    scaling_working, _ = engine_memory(networks=1, n=largest, nle=k_largest, n_ons=1,
                                       itemsize=i)
    return MemoryTerm(
        "--scaling", weight_memory(largest, 1, i) + scaling_working
        + REFERENCE_MATRICES * largest * largest * i,
        f"the {largest}×{largest} matrices of the scaling timings")


def _timing_logs_term(config: BenchmarkConfig, timings: dict[str, tuple[int, int, int]],
                      i: int) -> MemoryTerm:
    """The float64 logs of the timings ``{option: (steps, networks, k)}`` (no transients)."""
    def timing_history(steps: int, networks: int, k: int) -> float:
        return engine_memory(networks=networks, n=1, nle=k, n_ons=steps
                             / config.steps_per_ons, itemsize=i)[1]
    return memory_term(
        {name: raised(config, name) for name in timings},
        sum(timing_history(*timing) for timing in timings.values()),
        "the float64 logs of the timings (" + ", ".join(
            f"{steps} {name[2:].replace('-steps', '')}"
            for name, (steps, _, _) in timings.items()) + " steps)")
