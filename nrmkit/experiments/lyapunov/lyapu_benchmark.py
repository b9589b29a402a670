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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nrmkit.core.base import MemoryTerm, Workflow
from nrmkit.core.checks import check
from nrmkit.experiments.lyapunov.settings import (
    DRAW_BYTES_PER_ENTRY,
    ENGINE_FLOATS_PER_ROW_ENTRY,
    MAX_STEPS,
    LyapunovSettings,
    check_coupling_grid,
    coupling_grid,
    engine_memory,
    memory_term,
    naming_divergence,
    plural,
    raised,
    weight_memory,
)

#: scaling grid: exponents k at N = SCALING_NLE_AT_N, and sizes N at k = SCALING_N_AT_NLE.
SCALING_NLE = (1, 10, 50, 100, 200)


SCALING_NLE_AT_N = 200


SCALING_N = (100, 200, 500, 1000)


SCALING_N_AT_NLE = 10


#: repetitions of the (N+1)×N @ N×N product that measures the matrix-product limit.
MATMUL_REPEATS = 5


#: a timed call shorter than this [s] is repeated (best of three) to tame timer noise.
SHORT_MEASUREMENT = 0.2


#: peak N×N arrays of a dense-Jacobian reference (:mod:`nrmkit.dynamics.reference`): the
#: scaled matrix, its sign mask and magnitudes, and per step the signed matrix, the scaled
#: identity, diag(Δt φ'), their product and the Jacobian (the O(N³) FlyStability product
#: needs no N×N×N array).
REFERENCE_MATRICES = 9


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


class _Clock:
    """A progress callback that records ``(done_steps, seconds since start)`` and forwards."""

    def __init__(self, forward: Callable[[int, int], None] | None = None):
        self.forward = forward
        self.records: list[tuple[int, float]] = []
        self.total = 0
        self.start = time.perf_counter()

    def restart(self) -> None:
        self.records.clear()
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        self.records.append((done, time.perf_counter() - self.start))
        self.total = total
        if self.forward is not None:
            self.forward(done, total)


class LyapunovBenchmark(Workflow):
    name = "lyapu_benchmark"
    config_class = BenchmarkConfig

    def memory_terms(self, config: BenchmarkConfig, *, itemsize: int) -> list[MemoryTerm]:
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
          k = 10).

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
        full = config.full_spectrum_n
        # held throughout: the weights and final basis (2 F² i) and the operands of the timed
        # product (drawn in float32, then cast); then the largest of what comes and goes:
        # the draw, the engine's step, the reference's matrices (9 F² i)
        full_bytes = full * full * (2 * i + 2 * (4 + i) + max(
            DRAW_BYTES_PER_ENTRY, ENGINE_FLOATS_PER_ROW_ENTRY * i + i, REFERENCE_MATRICES * i))

        def timing_history(steps: int, networks: int, k: int) -> float:
            """The float64 logs of a timing of ``steps`` steps (no transients)."""
            return engine_memory(networks=networks, n=1, nle=k, n_ons=steps
                                 / config.steps_per_ons, itemsize=i)[1]
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
            memory_term({"--full-spectrum-n": raised(config, "--full-spectrum-n", 2)},
                        full_bytes, f"the {full}×{full} matrices of the full-spectrum timing"),
        ]
        timings = {"--independent-steps": (config.independent_steps, networks, k),
                   "--full-spectrum-steps": (config.full_spectrum_steps, 1, full)}
        if config.scaling:
            largest, k_largest = max(SCALING_N), SCALING_N_AT_NLE
            scaling_working, _ = engine_memory(networks=1, n=largest, nle=k_largest, n_ons=1,
                                               itemsize=i)
            terms.append(MemoryTerm(
                "--scaling", weight_memory(largest, 1, i) + scaling_working
                + REFERENCE_MATRICES * largest * largest * i,
                f"the {largest}×{largest} matrices of the scaling timings"))
            timings["--scaling-steps"] = (config.scaling_steps, 1, max(SCALING_NLE))
        terms.append(memory_term(
            {name: raised(config, name) for name in timings},
            sum(timing_history(*timing) for timing in timings.values()),
            "the float64 logs of the timings (" + ", ".join(
                f"{steps} {name[2:].replace('-steps', '')}"
                for name, (steps, _, _) in timings.items()) + " steps)"))
        return terms

    def run(self, config: BenchmarkConfig, context) -> dict:
        import numpy as np
        import torch

        from nrmkit import plotting
        from nrmkit.dynamics import lyapunov_spectrum
        from nrmkit.dynamics.lyapunov import random_basis
        from nrmkit.dynamics.reference import dense_jacobian_spectrum
        from nrmkit.nn.rate_rnn import random_rate_network

        device, dtype = context.device, context.torch_dtype
        per_ons = config.steps_per_ons
        dt = config.dt

        def synchronize() -> None:
            if str(device).startswith("cuda"):
                torch.cuda.synchronize()

        def timed(function: Callable[[], Any]) -> tuple[float, Any]:
            synchronize()
            start = time.perf_counter()
            value = function()
            synchronize()
            return time.perf_counter() - start, value

        def best_of(function: Callable[[], Any]) -> tuple[float, Any]:
            """Seconds of ``function`` (best of three when a call is short)."""
            seconds, value = timed(function)
            if seconds < SHORT_MEASUREMENT:
                for _ in range(2):
                    seconds = min(seconds, timed(function)[0])
            return seconds, value

        def network(n: int, couplings: list[float], n_samples: int, purpose: str,
                    shared: bool = True, unit: int = 0):
            return random_rate_network(
                n, couplings, n_samples, shared_matrix=shared, activation=config.activation,
                dt=dt, generator=context.stream(purpose, unit=unit), dtype=dtype, device=device,
            )

        def engine(model, k: int, steps: int, *, purpose: str, unit: int = 0,
                   clock: _Clock | None = None):
            """``steps`` tangent steps (no transients); returns (seconds, steps run, result)."""
            # the initial state and basis are drawn outside the timed call: only steps count
            generator = context.stream(purpose, unit=unit)
            state = model.initial_state(generator)
            basis = random_basis(model.batch_shape, k, model.state_dim, generator=generator,
                                 dtype=state.dtype, device=state.device)
            kwargs = {"tsim": steps * dt, "tons": config.tons, "ttrans": 0.0, "tbasis": 0.0,
                      "state": state, "basis": basis}
            lyapunov_spectrum(model, k, **{**kwargs, "tsim": per_ons * dt})  # warm-up
            clock = clock or _Clock()

            def call():
                clock.restart()
                return lyapunov_spectrum(model, k, progress=clock, **kwargs)

            seconds, result = best_of(call)
            return seconds, clock.total, result

        def reference(model, index: tuple[int, int], k: int, steps: int, state, basis,
                      *, repeat: bool = True, jacobian: str = "product") -> float:
            """Seconds of ``steps`` reference steps on batch entry ``index`` of ``model``."""
            s, g = index
            weight = model.weight.detach()[s]
            kwargs = {
                "n_exponents": k, "steps_per_ons": per_ons, "dt": dt,
                "coupling": float(model.coupling[s, g]),
                "gain": model.neuron_gain().detach()[s, g],
                "shift": model.neuron_shift().detach()[s, g],
                "activation": config.activation, "state": state, "basis": basis,
                "jacobian": jacobian,
            }
            dense_jacobian_spectrum(weight, n_steps=per_ons, **kwargs)  # warm-up
            function = lambda: dense_jacobian_spectrum(weight, n_steps=steps, **kwargs)  # noqa: E731
            return (best_of(function) if repeat else timed(function))[0]

        def entry(result, index: tuple[int, int]):
            """Final state ``(N,)`` and basis columns ``(N, k)`` of one batch entry."""
            return (result.state.detach()[index].clone(),
                    result.basis.detach()[index].transpose(0, 1).contiguous())

        couplings = config.couplings
        networks = config.m_g * config.n_samples
        threads = torch.get_num_threads()
        context.log(f"lyapu_benchmark: N={config.n}, {config.m_g} couplings × "
                    f"{config.n_samples} samples = {networks} networks, nle={config.nle}, "
                    f"on {device} ({context.dtype}, {threads} threads)")

        # 1. the sweep ------------------------------------------------------------------
        model = network(config.n, couplings, config.n_samples, "sweep network")

        def sweep_network(index: tuple[int, ...]) -> str:  # batch (sample, coupling)
            return f"g={couplings[index[1]]:g}, sample {index[0]}"

        with naming_divergence(sweep_network):
            lyapunov_spectrum(model, config.nle, generator=context.stream("sweep states"),
                              tsim=per_ons * dt, tons=config.tons, ttrans=per_ons * dt,
                              tbasis=0.0)  # warm-up
        clock = _Clock(context.progress("engine sweep"))

        def sweep_call():
            clock.restart()
            return lyapunov_spectrum(model, config.nle, generator=context.stream("sweep states"),
                                     progress=clock, **config.engine_kwargs())

        with naming_divergence(sweep_network):
            engine_seconds, sweep_result = timed(sweep_call)
        steps = clock.total
        warmup_steps = max(0, round(config.ttrans / dt))
        tangent_steps = steps - warmup_steps
        warm_rate, tangent_rate = _phase_rates(clock.records, engine_seconds, steps,
                                               warmup_steps, per_ons)
        engine_ms_per_step = 1e3 * engine_seconds / steps
        engine_ms_per_network_step = engine_ms_per_step / networks

        n_couplings = model.batch_shape[1]
        picks = np.unique(np.linspace(0, networks - 1, config.reference_networks).round()
                          .astype(int))
        picks = list(dict.fromkeys([*picks.tolist(), *range(networks)]))[
            :config.reference_networks]
        reference_seconds = {"product": 0.0, "broadcast": 0.0}
        for flat in picks:
            index = divmod(flat, n_couplings)
            state, basis = entry(sweep_result, index)
            for construction in reference_seconds:
                reference_seconds[construction] += reference(
                    model, index, config.nle, config.reference_steps, state, basis,
                    repeat=False, jacobian=construction)
        reference_ms, broadcast_ms = (
            1e3 * reference_seconds[c] / (len(picks) * config.reference_steps)
            for c in ("product", "broadcast"))
        speedup = reference_ms / engine_ms_per_network_step
        tangent_ms = None if tangent_rate is None else 1e3 * tangent_rate / networks
        warm_ms = None if warm_rate is None else 1e3 * warm_rate / networks
        sweep = {
            "networks": networks,
            "n": config.n,
            "nle": config.nle,
            "steps": steps,
            "warmup_steps": warmup_steps,
            "tangent_steps": tangent_steps,
            "engine_seconds": engine_seconds,
            "engine_ms_per_step": engine_ms_per_step,
            "engine_ms_per_network_step": engine_ms_per_network_step,
            "engine_ms_per_tangent_network_step": tangent_ms,
            "engine_ms_per_warmup_network_step": warm_ms,
            "reference_networks": len(picks),
            "reference_steps": config.reference_steps,
            "reference_ms_per_network_step": reference_ms,
            "reference_sweep_seconds_estimate": reference_ms * networks * steps / 1e3,
            "speedup": speedup,
            "speedup_tangent_steps": None if tangent_ms is None else reference_ms / tangent_ms,
            "broadcast_reference_ms_per_network_step": broadcast_ms,
            "speedup_vs_broadcast_reference": broadcast_ms / engine_ms_per_network_step,
        }
        del sweep_result
        context.log(f"  sweep: engine {engine_seconds:.1f} s for {steps} steps "
                    f"({engine_ms_per_step:.2f} ms/step, {engine_ms_per_network_step:.4f} ms "
                    f"per network-step); reference {reference_ms:.3f} ms per network-step "
                    f"→ ≈{sweep['reference_sweep_seconds_estimate'] / 60:.1f} min; "
                    f"speedup ×{speedup:.0f} (×{sweep['speedup_vs_broadcast_reference']:.0f} "
                    f"against the broadcast dense Jacobian, {broadcast_ms:.3f} ms)")

        # independent draws: a fresh matrix per (g, sample) ---------------------------------
        del model
        independent = network(config.n, couplings, config.n_samples, "independent networks",
                              shared=False)
        def independent_network(index: tuple[int, ...]) -> str:  # sample-major (m_g·S, 1)
            sample, g_index = divmod(index[0], config.m_g)
            return f"g={couplings[g_index]:g}, sample {sample} (independent draws)"

        with naming_divergence(independent_network):
            seconds, independent_steps, _ = engine(independent, config.nle,
                                                   config.independent_steps,
                                                   purpose="independent states")
        del independent
        independent_ms = 1e3 * seconds / (independent_steps * networks)
        independent_draws = {
            "networks": networks,
            "steps": independent_steps,
            "seconds": seconds,
            "ms_per_step": 1e3 * seconds / independent_steps,
            "ms_per_network_step": independent_ms,
            "speedup": reference_ms / independent_ms,
            "speedup_vs_broadcast_reference": broadcast_ms / independent_ms,
        }
        context.log(f"  independent draws: {independent_ms:.4f} ms per network-step, "
                    f"speedup ×{independent_draws['speedup']:.0f}")

        # 2. full spectrum --------------------------------------------------------------
        n_full = config.full_spectrum_n
        model = network(n_full, [config.gmax], 1, "full-spectrum network")
        with naming_divergence(lambda index: f"g={config.gmax:g}, the full-spectrum network "
                               f"of N={n_full}"):
            seconds, full_steps, result = engine(model, n_full, config.full_spectrum_steps,
                                                 purpose="full-spectrum states")
        full_ms = 1e3 * seconds / full_steps
        flops = 2.0 * n_full * n_full * (n_full + 1)
        gflops = flops * full_steps / seconds / 1e9
        left = torch.randn(n_full + 1, n_full,
                           generator=context.stream("reference left")).to(device, dtype)
        right = torch.randn(n_full, n_full,
                            generator=context.stream("reference right")).to(device, dtype)
        torch.matmul(left, right)  # warm-up
        matmul_seconds = min(timed(lambda: torch.matmul(left, right))[0]
                             for _ in range(MATMUL_REPEATS))
        limit = flops / matmul_seconds / 1e9
        state, basis = entry(result, (0, 0))
        del result
        reference_full, broadcast_full = (
            reference(model, (0, 0), n_full, config.full_spectrum_steps, state, basis,
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
        context.log(f"  full spectrum N={n_full}: engine {full_ms:.1f} ms/step "
                    f"({gflops:.0f} GFLOP/s of a measured {limit:.0f} GFLOP/s matmul limit, "
                    f"{100 * gflops / limit:.0f}%); reference "
                    f"{full_spectrum['reference_ms_per_step']:.1f} ms/step")

        # 3. scaling --------------------------------------------------------------------
        scaling = None
        if config.scaling:
            progress = context.progress("scaling")
            points = [(SCALING_NLE_AT_N, k) for k in SCALING_NLE] + [
                (n, SCALING_N_AT_NLE) for n in SCALING_N]
            engine_costs, reference_costs, broadcast_costs = [], [], []
            for number, (n, k) in enumerate(points):
                model = network(n, [config.gmax], 1, "scaling network", unit=number)
                with naming_divergence(lambda index, n=n, k=k: f"g={config.gmax:g}, the "
                                       f"scaling network of N={n}, k={k}"):
                    seconds, n_steps, result = engine(model, k, config.scaling_steps,
                                                      purpose="scaling states", unit=number)
                engine_costs.append(1e3 * seconds / n_steps)
                state, basis = entry(result, (0, 0))
                for costs, construction in ((reference_costs, "product"),
                                            (broadcast_costs, "broadcast")):
                    seconds = reference(model, (0, 0), k, config.scaling_steps, state, basis,
                                        jacobian=construction)
                    costs.append(1e3 * seconds / config.scaling_steps)
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
                "steps": config.scaling_steps,
            }
            for label, values, key in (("k", SCALING_NLE, "nle"), ("N", SCALING_N, "n")):
                pairs = ", ".join(
                    f"{label}={v}: {e:.3f}/{r:.3f}/{b:.3f}" for v, e, r, b in zip(
                        values, scaling[f"engine_ms_per_step_vs_{key}"],
                        scaling[f"reference_ms_per_step_vs_{key}"],
                        scaling[f"broadcast_reference_ms_per_step_vs_{key}"], strict=True))
                context.log(f"  scaling vs {label} (engine/FlyStability/broadcast ms per "
                            f"step): {pairs}")

        # outputs -----------------------------------------------------------------------
        labels = ["reference\nFlyStability", "reference\nbroadcast", "engine\nshared J",
                  "engine\nindependent J"]
        bars = [reference_ms, broadcast_ms, engine_ms_per_network_step, independent_ms]
        arrays = {
            "labels": np.array([label.replace("\n", " ") for label in labels]),
            "ms_per_network_step": np.array(bars),
            "full_spectrum": np.array([full_ms, full_spectrum["reference_ms_per_step"],
                                       full_spectrum["broadcast_reference_ms_per_step"],
                                       gflops, limit]),
        }
        if scaling is not None:
            arrays.update(
                nle=np.array(SCALING_NLE), n=np.array(SCALING_N),
                engine_ms_per_step_vs_nle=np.array(scaling["engine_ms_per_step_vs_nle"]),
                reference_ms_per_step_vs_nle=np.array(scaling["reference_ms_per_step_vs_nle"]),
                engine_ms_per_step_vs_n=np.array(scaling["engine_ms_per_step_vs_n"]),
                reference_ms_per_step_vs_n=np.array(scaling["reference_ms_per_step_vs_n"]),
                broadcast_reference_ms_per_step_vs_nle=np.array(
                    scaling["broadcast_reference_ms_per_step_vs_nle"]),
                broadcast_reference_ms_per_step_vs_n=np.array(
                    scaling["broadcast_reference_ms_per_step_vs_n"]),
            )
        context.run_dir.write_arrays("benchmark.npz", **arrays)
        figure = plotting.benchmark(
            labels, bars,
            nle=None if scaling is None else np.array(SCALING_NLE),
            engine_vs_nle=None if scaling is None else scaling["engine_ms_per_step_vs_nle"],
            reference_vs_nle=None if scaling is None
            else scaling["reference_ms_per_step_vs_nle"],
            n=None if scaling is None else np.array(SCALING_N),
            engine_vs_n=None if scaling is None else scaling["engine_ms_per_step_vs_n"],
            reference_vs_n=None if scaling is None else scaling["reference_ms_per_step_vs_n"],
            broadcast_vs_nle=None if scaling is None
            else scaling["broadcast_reference_ms_per_step_vs_nle"],
            broadcast_vs_n=None if scaling is None
            else scaling["broadcast_reference_ms_per_step_vs_n"],
            nle_at_n=SCALING_NLE_AT_N, n_at_nle=SCALING_N_AT_NLE,
            title=f"{config.activation}, N={config.n}, {networks} networks, nle={config.nle}, "
                  f"{device} {context.dtype}, {threads} threads",
        )
        context.run_dir.save_figure(figure, "lyapu_benchmark")
        return {
            "sweep": sweep,
            "speedup": speedup,
            "independent_draws": independent_draws,
            "full_spectrum": full_spectrum,
            "scaling": scaling,
            "torch_threads": threads,
            "device": str(device),
            "dtype": context.dtype,
        }


def _phase_rates(records: list[tuple[int, float]], seconds: float, total: int,
                 warmup_steps: int, steps_per_ons: int) -> tuple[float | None, float | None]:
    """Seconds per step of the state warm-up and of the tangent phase, from progress records.

    The warm-up rate comes from the last record inside the warm-up, the tangent rate from
    the first record after it to the end of the run; None where no record separates them.
    """
    warm = [(done, t) for done, t in records if 0 < done <= warmup_steps]
    warm_rate = warm[-1][1] / warm[-1][0] if warm and warmup_steps > 0 else None
    if warmup_steps == 0:
        return None, seconds / total
    after = [(done, t) for done, t in records if warmup_steps + steps_per_ons <= done < total]
    tangent_rate = ((seconds - after[0][1]) / (total - after[0][0])) if after else None
    if tangent_rate is not None and not math.isfinite(tangent_rate):
        tangent_rate = None
    return warm_rate, tangent_rate
