"""lyapu_benchmark: a tiny end-to-end run and a refused option."""

from __future__ import annotations

import json
import math

from click.testing import CliRunner

from nrmkit.cli.commands.lyapunov import lyapu_benchmark as command

TINY = ["--n", "60", "--m_g", "2", "--n_samples", "2", "--tsim", "2", "--ttrans", "1",
        "--reference-steps", "5", "--independent-steps", "5", "--full-spectrum-n", "40",
        "--full-spectrum-steps", "2", "--no-scaling", "--quiet"]


def test_tiny_benchmark_writes_timings_and_figures(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(command, [*TINY, "--output-dir", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    for key in ("sweep", "speedup", "independent_draws", "full_spectrum", "scaling",
                "torch_threads"):
        assert key in results
    assert results["scaling"] is None
    sweep = results["sweep"]
    assert sweep["networks"] == 4
    assert sweep["steps"] == 10 + (1 + 10) * 2  # warm-up + (basis + accumulation) intervals
    for key in ("engine_seconds", "engine_ms_per_step", "engine_ms_per_network_step",
                "reference_ms_per_network_step", "reference_sweep_seconds_estimate",
                "broadcast_reference_ms_per_network_step", "speedup_vs_broadcast_reference"):
        assert sweep[key] > 0, key
    assert math.isfinite(results["speedup"]) and results["speedup"] > 0
    assert results["speedup"] == sweep["speedup"]
    assert sweep["engine_seconds_without_graphs"] is None and sweep["graph_speedup"] is None
    quick = results["quick_start"]
    assert (quick["samples"], quick["couplings"]) == (2, 2)
    assert quick["steps_per_sample"] > sweep["steps"] - 10  # the --tons auto pilot adds steps
    for key in ("ms_per_step", "two_pass_ms_per_step", "stream_ms", "stream_gb_per_s",
                "memory_stream_ms", "memory_gb_per_s", "product_ms", "warm_up_product_ms",
                "products_ms", "products_to_bound", "peak_gflops", "arithmetic_ms",
                "sweep_seconds_estimate"):
        assert quick[key] > 0, key
    assert quick["bound_ms"] == max(quick["stream_ms"], quick["arithmetic_ms"])
    assert math.isclose(quick["ratio_to_bound"], quick["ms_per_step"] / quick["bound_ms"])
    assert math.isclose(quick["ratio_to_stream"], quick["ms_per_step"] / quick["stream_ms"])
    assert math.isclose(quick["ratio_to_product"], quick["ms_per_step"] / quick["product_ms"])
    # the call's products: its warm-up steps' and later steps' products, weighted by count
    low, high = sorted((quick["warm_up_product_ms"], quick["product_ms"]))
    assert low * (1 - 1e-12) <= quick["products_ms"] <= high * (1 + 1e-12)
    assert math.isclose(quick["products_to_bound"], quick["products_ms"] / quick["bound_ms"])
    assert math.isclose(quick["ratio_to_memory_stream"],
                        quick["ms_per_step"] / quick["memory_stream_ms"])
    assert math.isclose(quick["memory_gb_per_s"], 60 * 60 * 4 / (quick["memory_stream_ms"] * 1e6))
    assert math.isclose(quick["speedup_vs_two_pass"],
                        quick["two_pass_ms_per_step"] / quick["ms_per_step"])
    assert math.isclose(quick["stream_gb_per_s"], 60 * 60 * 4 / (quick["stream_ms"] * 1e6))
    assert results["independent_draws"]["ms_per_network_step"] > 0
    assert math.isfinite(results["independent_draws"]["speedup"])
    full = results["full_spectrum"]
    assert full["n"] == 40
    for key in ("ms_per_step", "gflops", "matmul_limit_gflops", "fraction_of_limit",
                "reference_ms_per_step", "broadcast_reference_ms_per_step"):
        assert full[key] > 0, key
    assert results["torch_threads"] >= 1
    assert (out / "benchmark.npz").exists()
    for suffix in ("png", "pdf"):
        assert (out / "figures" / f"lyapu_benchmark.{suffix}").stat().st_size > 0


def test_zero_reference_networks_is_a_usage_error(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(command, [*TINY, "--reference-networks", "0",
                                          "--output-dir", str(out)])
    assert result.exit_code == 2
    assert "--reference-networks" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
