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
