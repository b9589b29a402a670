"""The timing scripts of bash/: bad options are one-line usage errors (exit 2), and a tiny run
prints the documented JSON with consistent ratios."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BASH = Path(__file__).resolve().parents[1] / "bash"
PSMNIST = BASH / "psmnist_epoch_benchmark.py"
LIF = BASH / "rate_to_lif_benchmark.py"


def run(script: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *arguments], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("script", "arguments", "message"), [
    (PSMNIST, ["--steps", "0"], "argument --steps: must be at least 1, got 0"),
    (PSMNIST, ["--nhid", "x"], "argument --nhid: must be an integer, got 'x'"),
    (PSMNIST, ["--nonlin", "foo"], "--nonlin: unknown nonlinearity 'foo'"),
    (LIF, ["--trials", "0"], "argument --trials: must be at least 1, got 0"),
    (LIF, ["--model", "/nonexistent/model.pt"], "--model: /nonexistent/model.pt does not exist"),
])
def test_bad_options_are_usage_errors(script, arguments, message):
    done = run(script, *arguments)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_psmnist_benchmark_reports_updates_against_the_bound():
    done = run(PSMNIST, "--seq", "3", "--nhid", "8", "--batch", "4", "--steps", "2",
               "--warmup", "0", "--gemm-size", "64", "--threads", "1")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["update_gflop"] == pytest.approx(
        (3 * 2 * 3 * 4 * 8 * 8 + 2 * 2 * 3 * 4 * 8 + 3 * 2 * 4 * 8 * 10) / 1e9)
    assert report["bound_s_per_update"] == pytest.approx(
        report["update_gflop"] / report["gemm_gflops_per_s"])
    assert report["updates_per_epoch"] == 50000 / 4  # 50 000 training images, batch 4
    for way in ("loop", "fused"):
        timing = report[way]
        assert timing["s_per_update"] > 0
        assert math.isclose(timing["epoch_over_bound"],
                            timing["s_per_update"] / report["bound_s_per_update"])
        assert math.isclose(timing["s_per_epoch"], timing["s_per_update"] * 12500)
        assert 0 < timing["best_s_per_update"] <= timing["s_per_update"]
        assert math.isclose(timing["best_over_bound"],
                            timing["best_s_per_update"] / report["bound_s_per_update"])
