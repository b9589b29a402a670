"""Part 1b of ``lyapu_benchmark``: the quick-start path against the bounds of its work.

``transition_2_chaos`` runs every sample in its own engine call (so that a sample's numbers
do not depend on how a sweep is chunked), batched over the ``m_g`` couplings, with the
state and the tangent vectors in one product per step (``one_pass``): each step reads the
sample's ``N×N`` matrix once. For tanh networks in float32 on a CPU with ``nle = 1`` the
steps run through the compiled kernel (:mod:`nrmkit.nn.tangent_native`; ``kernel`` names
what ran), elsewhere through PyTorch operations and the kernel packed for the product
(:class:`~nrmkit.nn.tangent_product.PackedWeight`). Here the first
:data:`QUICK_START_SAMPLES` samples of the sweep run exactly so (the sweep's ``tsim``,
``tons``, ``ttrans``), and, on the same samples, through the PyTorch one-pass step
(``packed_*``) and with the two products per step of the default engine (``two_pass_*``).

Per Euler step of one sample (all its couplings; each path the best of
:data:`QUICK_START_REPEATS` calls per sample), in the same run:

* ``stream_ms`` — the best time to stream the sample's matrix once (``W.sum()``,
  ``N²·itemsize`` bytes; ``stream_gb_per_s``): from the cache where the matrix fits in it
  (a 4 MB matrix in a 32 MB L3), so this is the bandwidth the step can actually draw on;
* ``arithmetic_ms`` — the arithmetic bound: the step's ``2·m·N²`` flops (``m = m_g`` rows
  in the warm-up, ``m_g(k+1)`` after it, averaged over the call's steps) at
  ``peak_gflops``, the best rate of a :data:`PEAK_SIZE`-square product through the packed
  PyTorch kernel;
* ``bound_ms`` = max of the two (the roofline of the step's product);
* ``memory_stream_ms`` — the main-memory bandwidth bound: the matrix's bytes at the rate of
  streaming a :data:`MAIN_MEMORY_BYTES` buffer, far larger than any cache
  (``memory_gb_per_s``), the bound of a step that had to read its matrix from memory;
* ``product_ms`` — the bare product of a step after the warm-up, ``m_g(k+1)×N @ N×N``,
  through the packed PyTorch kernel; ``warm_up_product_ms`` — that of a warm-up step,
  ``m_g×N @ N×N``;
* ``products_ms`` — the two averaged like ``arithmetic_ms``: the time of the call's
  products alone through that kernel, the floor of any step built on it, and
  ``products_to_bound`` its quotient by ``bound_ms``;
* ``ms_per_step`` — the quick-start path; ``ratio_to_bound``, ``ratio_to_stream``,
  ``ratio_to_memory_stream`` and ``ratio_to_product`` are its quotients by the bounds;
  ``packed_ms_per_step`` and ``packed_ratio_to_bound`` — the PyTorch one-pass step;
  ``speedup_vs_two_pass`` = two-pass / quick-start time.
"""

from __future__ import annotations

import time
from typing import Any

from nrmkit.experiments.lyapunov.benchmark_harness import BenchmarkHarness
from nrmkit.experiments.lyapunov.benchmark_timing import Clock, synchronize, timed

#: samples of the sweep timed through the quick-start path.
QUICK_START_SAMPLES = 2
#: timed calls per sample and path (the best counts).
QUICK_START_REPEATS = 3
#: repetitions of the bound measurements (the best counts).
BOUND_REPEATS = 50
#: size of the square product that measures the arithmetic peak.
PEAK_SIZE = 1024
#: repetitions of the peak measurement (the best counts).
PEAK_REPEATS = 5
#: the timed paths: the quick start as it runs (compiled where it applies), the PyTorch
#: one-pass step and the default engine's two products per step.
PATHS = {"quick_start": {"one_pass": True, "native": True},
         "packed": {"one_pass": True, "native": False},
         "two_pass": {"one_pass": False, "native": False}}
#: bytes of the buffer that measures the main-memory bandwidth (8 × a 32 MB L3 cache).
MAIN_MEMORY_BYTES = 256 * 2**20
#: repetitions of the main-memory measurement (the best counts).
MAIN_MEMORY_REPEATS = 5


def time_quick_start(harness: BenchmarkHarness) -> dict[str, Any]:
    """The ``quick_start`` entry of results.json (module docstring; times in ms or s)."""
    from nrmkit.nn import native

    config = harness.config
    samples = min(QUICK_START_SAMPLES, config.n_samples)
    seconds = dict.fromkeys(PATHS, 0.0)
    steps = 0
    bounds = {"stream": 0.0, "product": 0.0, "warm_up_product": 0.0}
    for sample in range(samples):
        model = harness.network(config.n, config.couplings, 1, "quick start network",
                                unit=sample)
        for path, engine_options in PATHS.items():
            elapsed, steps = _time_sample(harness, model, sample, engine_options)
            seconds[path] += elapsed
        for name, seconds_of_sample in _bounds(model, config.nle, harness.device).items():
            bounds[name] += seconds_of_sample / samples
    kernel = (native.describe() if model.native_runs(config.nle) is not None
              else "PyTorch operations")
    stream, product = bounds["stream"], bounds["product"]
    ms_per_step, packed_ms, two_pass_ms = (1e3 * seconds[path] / (samples * steps)
                                           for path in PATHS)
    itemsize = model.weight.element_size()
    peak = _peak_gflops(model.weight.dtype, harness.device)
    memory_rate = _main_memory_bytes_per_s(harness.device)
    memory_stream_ms = 1e3 * config.n ** 2 * itemsize / memory_rate
    warm_steps = min(steps, round(config.ttrans / config.dt))
    rows = config.m_g * (warm_steps + (config.nle + 1) * (steps - warm_steps)) / steps
    arithmetic_ms = 2 * rows * config.n ** 2 / (peak * 1e6)
    bound_ms = max(1e3 * stream, arithmetic_ms)
    products_ms = 1e3 * (warm_steps * bounds["warm_up_product"]
                         + (steps - warm_steps) * product) / steps
    entry = {
        "samples": samples,
        "couplings": config.m_g,
        "steps_per_sample": steps,
        "kernel": kernel,
        "ms_per_step": ms_per_step,
        "packed_ms_per_step": packed_ms,
        "packed_ratio_to_bound": packed_ms / bound_ms,
        "two_pass_ms_per_step": two_pass_ms,
        "speedup_vs_two_pass": two_pass_ms / ms_per_step,
        "stream_ms": 1e3 * stream,
        "stream_gb_per_s": config.n ** 2 * itemsize / stream / 1e9,
        "memory_stream_ms": memory_stream_ms,
        "memory_gb_per_s": memory_rate / 1e9,
        "product_ms": 1e3 * product,
        "warm_up_product_ms": 1e3 * bounds["warm_up_product"],
        "products_ms": products_ms,
        "products_to_bound": products_ms / bound_ms,
        "peak_gflops": peak,
        "arithmetic_ms": arithmetic_ms,
        "bound_ms": bound_ms,
        "ratio_to_bound": ms_per_step / bound_ms,
        "ratio_to_stream": ms_per_step / (1e3 * stream),
        "ratio_to_memory_stream": ms_per_step / memory_stream_ms,
        "ratio_to_product": ms_per_step / (1e3 * product),
        "sweep_seconds_estimate": ms_per_step * steps * config.n_samples / 1e3,
    }
    _log_quick_start(harness.context, entry)
    return entry


def _log_quick_start(context, entry: dict[str, Any]) -> None:
    """One log line of the ``quick_start`` entry: the step, its bounds and its ratios."""
    e = entry  # short, for the long line below
    context.log(
        f"  quick start (one engine call per sample, {e['couplings']} couplings, "
        f"{e['kernel']}): {e['ms_per_step']:.3f} ms/step (PyTorch one-pass step "
        f"{e['packed_ms_per_step']:.3f} ms, ×{e['packed_ratio_to_bound']:.2f} the bound; two "
        f"products per step {e['two_pass_ms_per_step']:.3f} ms); bound "
        f"{e['bound_ms']:.3f} ms (streaming the matrix {e['stream_ms']:.3f} ms at "
        f"{e['stream_gb_per_s']:.1f} GB/s, its flops {e['arithmetic_ms']:.3f} ms at "
        f"{e['peak_gflops']:.0f} GFLOP/s) → ×{e['ratio_to_bound']:.2f} the bound; bare "
        f"product {e['product_ms']:.3f} ms → ×{e['ratio_to_product']:.2f}; the call's "
        f"products alone {e['products_ms']:.3f} ms, ×{e['products_to_bound']:.2f} the bound; "
        f"the matrix from main memory {e['memory_stream_ms']:.3f} ms at "
        f"{e['memory_gb_per_s']:.1f} GB/s → ×{e['ratio_to_memory_stream']:.2f}")


def _time_sample(harness: BenchmarkHarness, model, sample: int,
                 engine_options: dict[str, bool]) -> tuple[float, int]:
    """``(seconds, steps)`` of one quick-start engine call on ``model`` (warm-up, basis
    transient, accumulation) with ``engine_options`` (:data:`PATHS`), its state and basis
    from ``("quick start states", sample)``, after a short untimed call: the best of
    :data:`QUICK_START_REPEATS` identical calls, as the bounds are best-of measurements."""
    from nrmkit.dynamics import lyapunov_spectrum

    config = harness.config
    kwargs = {**config.engine_kwargs(), **engine_options}
    interval = config.steps_per_ons * config.dt
    lyapunov_spectrum(model, config.nle, tsim=interval, tons=config.tons, ttrans=interval,
                      tbasis=0.0, **engine_options,
                      generator=harness.context.stream("quick start states", unit=sample))
    clock = Clock()

    def call():
        clock.restart()
        generator = harness.context.stream("quick start states", unit=sample)
        return lyapunov_spectrum(model, config.nle, generator=generator, progress=clock,
                                 **kwargs)

    best = min(timed(call, harness.device)[0] for _ in range(QUICK_START_REPEATS))
    return best, clock.total


def _bounds(model, k: int, device: Any) -> dict[str, float]:
    """Best seconds of streaming ``model``'s matrix once (``stream``) and of the bare
    products of a step after the warm-up (``product``) and of a warm-up step
    (``warm_up_product``), through the step's kernel."""
    import torch

    from nrmkit.nn.tangent_product import PackedWeight

    weight = model.weight.detach()
    packed = PackedWeight(weight)
    couplings = model.batch_shape[1]
    rows = {count: torch.ones((1, count, weight.shape[-1]), dtype=weight.dtype,
                              device=weight.device) for count in (couplings * (k + 1), couplings)}
    with torch.no_grad():
        return {"stream": _best(lambda: weight.sum(), device),
                "product": _best(lambda: packed.product(rows[couplings * (k + 1)]), device),
                "warm_up_product": _best(lambda: packed.product(rows[couplings]), device)}


def _peak_gflops(dtype: Any, device: Any) -> float:
    """The best GFLOP/s of a :data:`PEAK_SIZE`-square product through the step's kernel."""
    import torch

    from nrmkit.nn.tangent_product import PackedWeight

    size = PEAK_SIZE
    square = torch.ones((1, size, size), dtype=dtype, device=device)
    packed = PackedWeight(square)
    with torch.no_grad():
        seconds = _best(lambda: packed.product(square), device, PEAK_REPEATS)
    return 2 * size ** 3 / seconds / 1e9


def _main_memory_bytes_per_s(device: Any) -> float:
    """The best bytes per second of summing a :data:`MAIN_MEMORY_BYTES` float32 buffer."""
    import torch

    buffer = torch.ones(MAIN_MEMORY_BYTES // 4, dtype=torch.float32, device=device)
    with torch.no_grad():
        seconds = _best(lambda: buffer.sum(), device, MAIN_MEMORY_REPEATS)
    return MAIN_MEMORY_BYTES / seconds


def _best(function, device: Any, repeats: int = BOUND_REPEATS) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best
