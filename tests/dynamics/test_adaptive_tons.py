"""``tons="auto"`` / ``--tons auto``: the re-orthonormalisation interval chosen from a pilot run.

The chosen interval keeps ``t_ONS·(λ_1 − λ_k)`` within the precision limit of the dtype
(ORACLES 8), is longer in float64 than in float32, gives the exponents of a short fixed
interval within their standard errors and the exact exponents of a linear network
(ORACLES 3); the workflows record it, and refuse anything else that is not a number."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS, workflow_named
from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.lyapunov import (
    DEFAULT_TONS_SAFETY,
    TONS_SPREAD_LIMIT,
    choose_tons,
    tons_spread_limit,
)
from nrmkit.dynamics.theory import euler_sum_rule_mean, linear_exponents
from nrmkit.experiments.lyapunov import (
    lyapu_convergence,
    spectrum,
)
from nrmkit.nn.connectivity import gaussian_coupling
from nrmkit.nn.rate_rnn import RateRNN, random_rate_network

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def chaotic_network(dtype=F64, n: int = 100):
    return random_rate_network(n, [3.0], 1, generator=seeded(4), dtype=dtype)


# -- the engine --------------------------------------------------------------------------------

def test_auto_equals_a_short_fixed_interval_within_standard_errors():
    """N = 100, g = 3, all 100 exponents, the same network, initial state and basis."""
    model = chaotic_network()
    kwargs = {"tsim": 100.0, "ttrans": 20.0}
    auto = lyapunov_spectrum(model, 100, tons="auto", generator=seeded(1), **kwargs).sorted()
    fixed = lyapunov_spectrum(model, 100, tons=0.2, generator=seeded(1), **kwargs).sorted()
    choice = auto.tons_choice
    assert auto.tons == pytest.approx(choice.tons) and auto.tons > 5 * fixed.tons
    error = (auto.standard_error**2 + fixed.standard_error**2).sqrt()
    assert torch.all((auto.exponents - fixed.exponents).abs() < 4 * error + 1e-3)
    sum_rule = euler_sum_rule_mean(0.1)
    assert float(auto.exponents.mean()) == pytest.approx(sum_rule, abs=0.005)
    # within the limit, also with the spread the fixed run measured
    spread = float(fixed.exponents[..., 0] - fixed.exponents[..., -1])
    assert auto.tons * spread <= TONS_SPREAD_LIMIT[F64]
    assert choice.spread_product <= DEFAULT_TONS_SAFETY * choice.limit + 1e-9
    assert choice.spread == pytest.approx(spread, rel=0.25)


def test_auto_equals_one_step_intervals_on_the_same_trajectory():
    """From the pilot's state and basis, a QR every step over the same steps gives the same
    exponents to round-off: QR of a product of Jacobians does not depend on how it is
    grouped, so the chosen interval loses nothing."""
    model = chaotic_network(n=60)
    auto = lyapunov_spectrum(model, 60, tsim=30.0, tbasis=5.0, tons="auto", ttrans=10.0,
                             generator=seeded(3))
    choice = auto.tons_choice
    assert choice.steps_per_ons > 10
    transient = round(5.0 / auto.tons) * auto.tons
    every_step = lyapunov_spectrum(model, 60, tsim=auto.t_accumulated, tbasis=transient,
                                   tons=0.1, ttrans=0.0, state=choice.state,
                                   basis=choice.basis)
    torch.testing.assert_close(auto.exponents, every_step.exponents, rtol=0, atol=1e-9)
    torch.testing.assert_close(auto.state, every_step.state)


def test_pilot_steps_are_not_accumulated():
    model = chaotic_network(n=30)
    reports: list[tuple[int, int]] = []
    result = lyapunov_spectrum(model, 5, tsim=20.0, tons="auto", ttrans=2.0, tbasis=1.0,
                               generator=seeded(2), progress=lambda *r: reports.append(r))
    choice = result.tons_choice
    steps = choice.steps_per_ons
    assert result.tons == pytest.approx(steps * 0.1) and choice.pilot_steps == 100
    n_ons = round(20.0 / result.tons)
    assert result.log_increments.shape[0] == n_ons
    assert result.t_accumulated == pytest.approx(n_ons * result.tons)
    torch.testing.assert_close(result.exponents, result.log_increments.sum(0)
                               / result.t_accumulated)
    warm, basis = 20, round(1.0 / result.tons) * steps
    assert reports[-1] == (warm + 100 + basis + n_ons * steps,) * 2


def test_float64_chooses_a_longer_interval_than_float32():
    intervals = {}
    for dtype in (torch.float32, F64):
        model = chaotic_network(dtype)
        state = lyapunov_spectrum(model, 1, tsim=1.0, tons=1.0, ttrans=20.0,
                                  generator=seeded(1)).state
        choice = choose_tons(model, 100, state=state, generator=seeded(2))
        assert choice.bound == "spread"
        assert choice.spread_product <= DEFAULT_TONS_SAFETY * tons_spread_limit(dtype) + 1e-9
        assert choice.spread_product > DEFAULT_TONS_SAFETY * tons_spread_limit(dtype) - 0.1 * 3
        intervals[dtype] = choice.tons
    assert intervals[F64] > 2 * intervals[torch.float32]          # 35/15 of the same spread
    assert intervals[torch.float32] >= 0.1


def test_one_exponent_and_the_bounds():
    model = chaotic_network(n=40)
    state = model.initial_state(seeded(1))
    choice = choose_tons(model, 1, state=state, generator=seeded(2))
    assert choice.spread == 0 and choice.bound == "tons_max" and choice.tons == pytest.approx(10)
    choice = choose_tons(model, 1, state=state, generator=seeded(2), tsim=40.0)
    assert choice.bound == "blocks" and choice.tons == pytest.approx(2.0)
    choice = choose_tons(model, 40, state=state, generator=seeded(2), safety=1e-3)
    assert choice.bound == "one step" and choice.steps_per_ons == 1
    with pytest.raises(ValueError, match="tons"):
        lyapunov_spectrum(model, 1, tsim=1.0, tons="often")


@pytest.mark.parametrize("g", [0.9, 1.3])
def test_linear_network_is_exact_with_auto(g):
    """φ(x) = x: λ_k = ln|1 − dt + dt μ_k|/dt, μ_k the eigenvalues of W (stable or not)."""
    unit = gaussian_coupling(40, generator=seeded(10), dtype=F64)
    model = RateRNN(unit, coupling=g, activation="linear")
    result = lyapunov_spectrum(model, 40, tsim=400.0, tons="auto", ttrans=0.0,
                               generator=seeded(10)).sorted()
    expected = linear_exponents(np.linalg.eigvals((g * unit).numpy()), dt=0.1)
    np.testing.assert_allclose(result.exponents[0, 0].numpy(), expected, atol=0.01)
    assert result.tons > 0.5 and result.tons * (expected[0] - expected[-1]) <= 35


# -- the workflows -----------------------------------------------------------------------------

def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def results(path):
    return json.loads((path / "results.json").read_text())


def test_workflows_record_the_interval(tmp_path):
    tiny = ["--n", "30", "--tsim", "20", "--ttrans", "5", "--tons", "auto", "--quiet"]
    done = invoke(WORKFLOWS.get("spectrum"), *tiny, "--g", "3", "--n_samples", "2", "--output-dir",
                  tmp_path / "spectrum")
    assert done.exit_code == 0, done.output
    found = results(tmp_path / "spectrum")
    assert len(found["tons_per_sample"]) == 2
    assert found["tons_effective"] == max(found["tons_per_sample"]) >= 0.1
    assert found["tons_ok"] and found["tons_spread_product"] <= 0.5 * 15 * 1.3
    for value in found["tons_per_sample"]:
        assert value / 0.1 == pytest.approx(round(value / 0.1))   # whole steps
    options = json.loads((tmp_path / "spectrum" / "config.json").read_text())["options"]
    assert options["tons"] == "auto"

    done = invoke(WORKFLOWS.get("lyapu_convergence"), *tiny, "--tons", "0.2", "--nle", "5",
                  "--n_samples", "2", "--g", "3", "--output-dir", tmp_path / "convergence")
    assert done.exit_code == 0, done.output
    found = results(tmp_path / "convergence")
    assert found["tons_requested"] == ["auto", 0.2]
    choice = found["tons_choice"][0]
    assert choice["bound"] in ("spread", "blocks") and found["tons_choice"][1] is None
    assert found["tons"][0] * choice["spread"] == pytest.approx(choice["spread_product"])
    assert (tmp_path / "convergence" / "history_tons_auto.npz").is_file()

    done = invoke(WORKFLOWS.get("transition_2_chaos"), *tiny, "--gmin", "1", "--gmax", "3", "--m_g",
                  "2", "--n_samples", "2", "--output-dir", tmp_path / "transition")
    assert done.exit_code == 0, done.output
    found = results(tmp_path / "transition")
    assert found["tons_per_sample"] == [1.0, 1.0]     # λ_max alone: tsim / 20 blocks


@pytest.mark.parametrize(("command", "args", "text"), [
    (WORKFLOWS.get("spectrum"), ["--tons", "often"], "neither a number"),
    (WORKFLOWS.get("lyapu_convergence"), ["--tons", "0.2", "--tons", "fast"], "neither a number"),
    (WORKFLOWS.get("transition_2_chaos"), ["--gmin", "1", "--gmax", "2", "--tons", "x"], "neither"),
    (WORKFLOWS.get("train_rd_model"), ["--tons", "auto"], "training"),
    (WORKFLOWS.get("lyapu_benchmark"), ["--tons", "auto"], "fixed interval"),
    (WORKFLOWS.get("spectrum"), ["--tons", "0.01"], "at least --dt"),
])
def test_tons_that_is_not_a_number_or_auto_is_a_usage_error(command, args, text, tmp_path):
    done = invoke(command, *args, "--quiet", "--output-dir", tmp_path / "out")
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'--tons'" in lines[0] and text in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_memory_estimate_counts_auto_as_one_step():
    config = spectrum.SpectrumConfig(tons="auto")
    fixed = spectrum.SpectrumConfig(tons=0.1)
    assert config.n_ons == fixed.n_ons == 2000
    auto_terms = workflow_named("spectrum").memory_terms(config, itemsize=4)
    fixed_terms = workflow_named("spectrum").memory_terms(fixed, itemsize=4)
    assert [t.nbytes for t in auto_terms] == [t.nbytes for t in fixed_terms]
    convergence = lyapu_convergence.ConvergenceConfig(tons_values=(1.0, "AUTO"))
    assert convergence.tons_values == (1.0, "auto") and convergence.tons == "auto"
    assert math.isclose(convergence.tons_effective, 0.1)
