"""The NonlinMod analyses against exact values: Mixed-KSG information against closed forms,
the step-Jacobian norm against autograd, λ₁ under a step against explicit Jacobian products,
gradient norms; and the workflows as users call them: ``smnist_grid`` (each point equal to
the single smnist run with that fixed shape and seed) and ``smnist_analysis``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS
from nrmkit.dynamics.information import gaussian_channel_information, mixed_ksg
from nrmkit.dynamics.nonlinmod_analysis import (
    gradient_norms,
    input_output_information,
    rnn_trace,
    step_jacobian_norms,
    step_lyapunov,
    with_gamma_shape,
)
from nrmkit.nn.recurrent import RNNCell, SequenceModelSpec, build_sequence_model

TINY = ["--nhid", "6", "--batch", "128", "--lr", "3e-3", "--input", "rows", "--epochs", "1"]


def invoke(name, args):
    return CliRunner().invoke(WORKFLOWS.get(name), [str(a) for a in args])


def results(path):
    return json.loads((path / "results.json").read_text())


# ------------------------------------------------------------------ information

@pytest.mark.parametrize("noise", [0.5, 1.0])
def test_mixed_ksg_matches_the_gaussian_channel(noise):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000)
    y = x + noise * rng.standard_normal(2000)
    exact = gaussian_channel_information(1.0, noise**2)       # ½ ln(1 + 1/σ²)
    assert mixed_ksg(x, y) == pytest.approx(exact, abs=0.04)


def test_mixed_ksg_on_discrete_and_independent_variables():
    rng = np.random.default_rng(1)
    symbols = rng.integers(0, 4, 1000).astype(float)
    assert mixed_ksg(symbols, symbols) == pytest.approx(math.log(4), abs=0.01)  # atoms
    assert abs(mixed_ksg(rng.standard_normal(1000), rng.standard_normal(1000))) < 0.03


def test_network_information_of_a_linear_gaussian_map():
    """x_t ~ N(0, 1) through h = (2x + z, −x + z'), z, z' ~ N(0, 1): I = ½ ln(1 + 2² + 1²)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(50, 40, 1, generator=gen, dtype=torch.float64)
    noise = torch.randn(50, 40, 2, generator=gen, dtype=torch.float64)
    hidden = torch.cat([2 * x, -x], -1) + noise
    estimate = input_output_information(x, hidden, pairs=1500,
                                        generator=np.random.default_rng(0))
    assert estimate == pytest.approx(0.5 * math.log(1 + 4 + 1), abs=0.06)


# ------------------------------------------------------------------ Jacobian, λ₁, gradients

def _cell(nonlin="gamma", **kwargs):
    gen = torch.Generator().manual_seed(3)
    return RNNCell(2, 7, nonlin=nonlin, rinit="xavier", iinit="xavier", random=False,
                   gain=3.0, saturation=0.4, generator=gen, **kwargs).double()


def test_step_jacobian_norm_equals_autograd():
    cell = _cell()
    gen = torch.Generator().manual_seed(4)
    inputs = torch.randn(5, 3, 2, generator=gen, dtype=torch.float64)
    pre, hidden = rnn_trace(cell, inputs)
    norms = step_jacobian_norms(cell, pre)
    assert norms.shape == (5, 3)
    for t in range(1, 5):
        for b in range(3):
            jac = torch.autograd.functional.jacobian(
                lambda h, t=t, b=b: cell(inputs[t, b:b + 1], (h,))[0], hidden[t - 1, b:b + 1])
            exact = torch.linalg.matrix_norm(jac.reshape(7, 7), ord=float("inf"))
            torch.testing.assert_close(norms[t, b], exact)


def test_step_lyapunov_equals_explicit_jacobian_products():
    cell = _cell()
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(9, 2, 2, generator=gen, dtype=torch.float64)
    window = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0, 0])
    running = step_lyapunov(cell, inputs, window, 2.0,
                            generator=torch.Generator().manual_seed(6))
    assert running.shape == (4, 2)
    vector = torch.randn((2, 7), generator=torch.Generator().manual_seed(6),
                         dtype=torch.float64)
    for b in range(2):
        h, v = torch.zeros(1, 7, dtype=torch.float64), vector[b] / vector[b].norm()
        total = 0.0
        for t in range(7):
            drive = 2.0 * torch.ones(1, 7, dtype=torch.float64) if window[t] else None
            jac = torch.autograd.functional.jacobian(
                lambda s, x=inputs[t, b:b + 1], d=drive: cell(x, (s,), d)[0], h).reshape(7, 7)
            v = jac @ v
            if t >= 3:
                total += math.log(float(v.norm()))
                assert running[t - 3, b] == pytest.approx(total / (t - 2), rel=1e-9)
            v = v / v.norm()
            h = cell(inputs[t, b:b + 1], (h,), drive)[0]


def test_gradient_norm_is_zero_after_one_step_and_matches_a_directional_derivative():
    spec = SequenceModelSpec(net_type="RNN", nonlin="tanh", input_size=2, hidden_size=5,
                             rinit="xavier", iinit="xavier")
    model = build_sequence_model(spec, generator=torch.Generator().manual_seed(7)).double()
    gen = torch.Generator().manual_seed(8)
    inputs = torch.randn(6, 4, 2, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3])
    norms = gradient_norms(model, inputs, labels, [1, 6])
    assert norms[0] == 0.0                          # h_0 = 0: V has no effect on step 1
    weight = model.cell.recurrent.weight
    loss = torch.nn.functional.cross_entropy(model(inputs), labels)
    (grad,) = torch.autograd.grad(loss, weight)
    direction = grad / grad.norm()
    eps = 1e-6
    with torch.no_grad():
        losses = []
        for sign in (1, -1):
            weight.add_(sign * eps * direction)
            losses.append(float(torch.nn.functional.cross_entropy(model(inputs), labels)))
            weight.sub_(sign * eps * direction)
    assert norms[1] == pytest.approx((losses[0] - losses[1]) / (2 * eps), rel=1e-6)


def test_with_gamma_shape_keeps_the_weights_and_sets_the_shape():
    spec = SequenceModelSpec(net_type="RNN", nonlin="ReLU", input_size=2, hidden_size=5)
    model = build_sequence_model(spec, generator=torch.Generator().manual_seed(9))
    shaped = with_gamma_shape(model, 4.0, 0.25)
    assert torch.equal(shaped.cell.recurrent.weight, model.cell.recurrent.weight)
    x = torch.linspace(-2, 2, 9)
    sig = torch.sigmoid(4 * x)
    expected = 0.75 * torch.nn.functional.softplus(4 * x) / 4 + 0.25 * sig
    torch.testing.assert_close(shaped.cell.nonlinearity(x), expected)
    assert model.cell.nonlinearity.__class__.__name__ != "GammaActivation"


# ------------------------------------------------------------------ workflows

@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "run"
    done = invoke("smnist_grid", [*TINY, "--gains", 5, "--saturations", 0,
                                  "--saturations", 0.5, "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    return out


def test_grid_point_equals_the_single_smnist_run(grid_run, tmp_path):
    summary = results(grid_run)
    assert summary["gains"] == [5.0] and summary["saturations"] == [0.0, 0.5]
    single = tmp_path / "single"
    assert json.loads((grid_run / "config.json").read_text())["options"]["permute"] is True
    done = invoke("smnist", [*TINY, "-p", "--nonlin", "gamma", "--no-learn_params",
                             "--no-fractional_order", "--no-random", "--gain", 5,
                             "--saturation", 0.5, "--quiet", "--output-dir", single])
    assert done.exit_code == 0, done.output
    alone = results(single)
    for key in ("test_accuracy", "test_accuracy_sine", "test_accuracy_step", "test_loss"):
        assert summary[key][0][1] == alone[key]
    point = results(grid_run / "grid" / "n-5_s-0.5")
    assert point["history"] == [{**entry, "seconds": point["history"][0]["seconds"]}
                                for entry in alone["history"]]
    assert summary["per_point"][1]["run_dir"] == "grid/n-5_s-0.5"
    assert summary["best"]["test_accuracy"] == max(summary["test_accuracy"][0])
    for name in ("accuracy_grid.png", "accuracy_grid.pdf"):
        assert (grid_run / "figures" / name).stat().st_size > 5000
    with np.load(grid_run / "grid.npz") as arrays:
        assert arrays["test_accuracy"].shape == (1, 2)


def test_grid_array_tasks_and_collect_equal_serial(grid_run, tmp_path):
    """The two points as two array tasks (as SLURM runs them) and `nrmkit collect`: the
    same numbers as the serial sweep."""
    from nrmkit.cli.main import cli

    out = tmp_path / "array"
    for index in (0, 1):
        done = invoke("smnist_grid", [*TINY, "--gains", 5, "--saturations", 0,
                                      "--saturations", 0.5, "--task_count", 2, "--task_index",
                                      index, "--quiet", "--output-dir", out])
        assert done.exit_code == 0, done.output
        assert not (out / "results.json").exists()
    collected = CliRunner().invoke(cli, ["collect", str(out), "--quiet"])
    assert collected.exit_code == 0, collected.output
    serial, array = results(grid_run), results(out)
    for key in ("test_accuracy", "test_accuracy_sine", "test_accuracy_step", "test_loss"):
        assert array[key] == serial[key]
    assert (out / "grid" / "n-5_s-0.5" / "model.pt").is_file()
    assert (out / "figures" / "accuracy_grid.png").is_file()


def test_grid_interrupted_resumes_only_the_missing_points(grid_run, tmp_path, monkeypatch):
    """A grid failing at its second point keeps the first; --resume runs only the second,
    leaves the first point's files untouched, and gives the serial run's numbers."""
    from nrmkit.core.errors import DivergenceError
    from nrmkit.experiments.sequences import smnist_grid

    original = smnist_grid.SmnistGrid._run_point
    computed: list[int] = []

    def failing(self, config, context, unit):
        if unit == 1:
            raise DivergenceError("simulated failure")
        computed.append(unit)
        return original(self, config, context, unit)

    monkeypatch.setattr(smnist_grid.SmnistGrid, "_run_point", failing)
    out = tmp_path / "run"
    args = [*TINY, "--gains", 5, "--saturations", 0, "--saturations", 0.5, "--quiet"]
    done = invoke("smnist_grid", [*args, "--output-dir", out])
    assert done.exit_code == 1 and "--resume" in done.output, done.output
    assert computed == [0]
    first = out / "grid" / "n-5_s-0" / "results.json"
    stamp = first.stat().st_mtime_ns

    def counting(self, config, context, unit):
        computed.append(unit)
        return original(self, config, context, unit)

    monkeypatch.setattr(smnist_grid.SmnistGrid, "_run_point", counting)
    computed.clear()
    done = invoke("smnist_grid", [*args, "--resume", "--output-dir", out])
    assert done.exit_code == 0, done.output
    assert computed == [1] and first.stat().st_mtime_ns == stamp
    resumed, serial = results(out), results(grid_run)
    for key in ("test_accuracy", "test_accuracy_sine", "test_accuracy_step", "test_loss"):
        assert resumed[key] == serial[key]


@pytest.mark.parametrize(("args", "option"), [
    (["--gains", -1], "--gains"), (["--saturations", 1.5], "--saturations"),
    (["--nonlin", "tanh"], "--nonlin"), (["--net-type", "LSTM"], "--nonlin")])
def test_grid_bad_options_exit_2_naming_the_option(args, option, tmp_path):
    done = invoke("smnist_grid", [*TINY, *args, "--output-dir", tmp_path / "run"])
    assert done.exit_code == 2 and option in done.output, done.output


def test_analysis_of_a_grid_point(grid_run, tmp_path):
    out = tmp_path / "analysis"
    done = invoke("smnist_analysis", ["--model", grid_run / "grid" / "n-5_s-0", "--samples",
                                      40, "--gains", 1, "--gains", 5, "--saturations", 0,
                                      "--saturations", 1, "--amplitudes", 0, "--amplitudes",
                                      5, "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    mi, norms = np.array(summary["mutual_information"]), np.array(summary["jacobian_norm"])
    assert mi.shape == norms.shape == (2, 2)
    # the grid point (5, 0) is the shape the network was trained with
    assert mi[1, 0] == pytest.approx(summary["trained"]["mutual_information"], rel=1e-9)
    assert norms[1, 0] == pytest.approx(summary["trained"]["jacobian_norm"], rel=1e-6)
    assert np.all(mi > 0) and np.all(norms > 0)
    assert len(summary["lyapunov_vs_amplitude"]) == 2
    assert summary["lengths"] == list(range(1, 9)) and summary["gradient_norm"][0] == 0.0
    for name in ("mutual_information", "jacobian_norm", "lyapunov_step", "gradient_norm"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000


def test_analysis_refuses_missing_or_unsuitable_models(tmp_path):
    done = invoke("smnist_analysis", ["--model", tmp_path, "--output-dir", tmp_path / "a"])
    assert done.exit_code == 2 and "--model" in done.output
    lstm = tmp_path / "lstm"
    assert invoke("smnist", [*TINY, "--net-type", "LSTM", "--no-fractional_order", "--quiet",
                             "--output-dir", lstm]).exit_code == 0
    done = invoke("smnist_analysis", ["--model", lstm, "--output-dir", tmp_path / "b"])
    assert done.exit_code == 2 and "--model" in done.output and "LSTM" in done.output


def test_analysis_of_an_anru_model_runs_the_analyses_it_has(tmp_path):
    """An ANRU has no gamma shape: the grid analyses are null, the others are computed."""
    trained = tmp_path / "anru"
    done = invoke("smnist", [*TINY, "--net-type", "ANRU", "--quiet", "--output-dir", trained])
    assert done.exit_code == 0, done.output
    out = tmp_path / "analysis"
    done = invoke("smnist_analysis", ["--model", trained, "--samples", 40, "--amplitudes", 0,
                                      "--amplitudes", 5, "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    assert summary["mutual_information"] is None and summary["jacobian_norm"] is None
    assert summary["trained"]["jacobian_norm"] is None
    assert summary["trained"]["mutual_information"] > 0
    assert len(summary["lyapunov_vs_amplitude"]) == 2
    assert all(np.isfinite(value) for value in summary["gradient_norm"])
    for name in ("lyapunov_step", "gradient_norm"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000
    assert not (out / "figures" / "mutual_information.png").exists()
