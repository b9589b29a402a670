"""GLIFR neurons: the step equations, the parameter transforms, parameter matching, and the
``train_glifr`` workflow as users call it."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS
from nrmkit.datasets.digit_sequences import load_splits
from nrmkit.datasets.sine import sine_task
from nrmkit.nn.glifr import GLIFRCell, heterogeneous_values
from nrmkit.nn.recurrent import SequenceModelSpec, build_sequence_model, run_cell
from nrmkit.nn.sizing import matched_hidden_size, parameter_count


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _cell(n_ascs: int, delay: int) -> GLIFRCell:
    cell = GLIFRCell(1, 2, dt=0.05, delay=delay, n_ascs=n_ascs, sigma_v=0.5).double()
    with torch.no_grad():
        cell.weight_in.copy_(torch.tensor([[0.7, -0.4]]))
        cell.weight_lat.copy_(torch.tensor([[0.2, 0.5], [-0.3, 0.1]]))
    values = {"v_th": torch.tensor([0.9, 1.1]), "k_m": torch.tensor([0.05, 0.4])}
    if n_ascs:
        values.update(k_j=torch.tensor([[2.0, 1.0], [0.5, 3.0]]),
                      r_j=torch.tensor([[0.3, -0.2], [0.1, 0.6]]),
                      a_j=torch.tensor([[0.5, -1.0], [2.0, 0.25]]))
    cell.load_neuron_values(values)
    return cell


@pytest.mark.parametrize(("n_ascs", "delay"), [(0, 1), (2, 1), (2, 3)])
def test_one_step_matches_the_equations_by_hand(n_ascs, delay):
    """I_syn = x W_in + r[t−d] W_lat; I_j, then V, then r — in that order (SPEC §3)."""
    cell = _cell(n_ascs, delay)
    dt, tau, resistance = 0.05, 0.05, 0.1
    rate = np.array([0.6, 0.2])
    voltage = np.array([0.4, -0.3])
    ascs = np.array([[0.1, -0.2], [0.3, 0.05]])[:n_ascs]
    buffer = np.array([[0.25, 0.75], [0.5, 0.1], [0.6, 0.2]])[-delay:]
    x = 1.5
    state = tuple(torch.tensor(a, dtype=torch.float64).unsqueeze(0)
                  for a in (rate, voltage, ascs.reshape(n_ascs, 2), buffer))
    new = [t[0].detach().numpy() for t in cell(torch.tensor([[x]], dtype=torch.float64),
                                               state)]
    w_in = np.array([0.7, -0.4])
    w_lat = np.array([[0.2, 0.5], [-0.3, 0.1]])
    delayed = buffer[0]                       # r[t − d]: the oldest entry
    synaptic = x * w_in + delayed @ w_lat
    k_m = np.array([0.05, 0.4])
    expected_ascs = np.zeros((0, 2))
    asc_sum = np.zeros(2)
    if n_ascs:
        k_j = np.array([[2.0, 1.0], [0.5, 3.0]])
        r_j = np.array([[0.3, -0.2], [0.1, 0.6]])
        a_j = np.array([[0.5, -1.0], [2.0, 0.25]])
        expected_ascs = (1 - dt * k_j) * ascs + dt / tau * rate * (r_j * ascs + a_j)
        asc_sum = expected_ascs.sum(0)
    expected_v = ((1 - dt * k_m) * voltage + synaptic + dt * k_m * resistance * asc_sum
                  - dt / tau * rate * (voltage - 0.0))
    expected_r = np.array([_sigmoid((v - th) / 0.5) for v, th in zip(expected_v, [0.9, 1.1],
                                                                       strict=True)])
    assert np.allclose(new[1], expected_v, atol=1e-6)
    assert np.allclose(new[0], expected_r, atol=1e-6)
    assert np.allclose(new[2], expected_ascs, atol=1e-6)
    assert np.allclose(new[3][-1], expected_r, atol=1e-6)      # newest rate appended
    if delay > 1:
        assert np.allclose(new[3][:-1], buffer[1:])             # the buffer shifts by one


def test_delay_postpones_the_recurrent_input_by_d_steps():
    for delay in (1, 4):
        cell = GLIFRCell(1, 3, delay=delay, n_ascs=0, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            cell.weight_in.zero_()
            cell.weight_lat.fill_(1.0)
        inputs = torch.zeros(8, 1, 1)
        _, trace = run_cell(cell, inputs, record=True)
        voltage = trace["voltage"][:, 0, 0]
        # with no input, V changes only through delayed rates: zero for the first d steps
        assert torch.all(voltage[:delay] == 0) and voltage[delay] > 0


def test_transforms_keep_parameters_in_range_whatever_the_raw_values():
    cell = GLIFRCell(2, 50, dt=0.1, n_ascs=2)
    with torch.no_grad():
        for parameter in (cell.raw_k_m, cell.raw_k_j, cell.raw_r_j):
            parameter.copy_(torch.linspace(-1e4, 1e4, parameter.numel()).reshape(
                parameter.shape))
    for values in (cell.k_m * cell.dt, cell.k_j * cell.dt):
        assert torch.all((values >= 0) & (values <= 1))
        assert torch.all(torch.isfinite(values))
    assert torch.all((cell.r_j >= -1) & (cell.r_j <= 1))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():       # raw values within ±15: open intervals hold in float32
        for parameter in (cell.raw_k_m, cell.raw_k_j, cell.raw_r_j):
            parameter.normal_(0, 5, generator=generator).clamp_(-15, 15)
    assert torch.all((cell.k_m * cell.dt > 0) & (cell.k_m * cell.dt < 1))
    assert torch.all((cell.k_j * cell.dt > 0) & (cell.k_j * cell.dt < 1))
    assert torch.all((cell.r_j > -1) & (cell.r_j < 1))


def test_homogeneous_init_values_and_variants_learn_flags():
    cell = GLIFRCell(1, 10, dt=0.05)
    assert torch.allclose(cell.v_th, torch.ones(10))
    assert torch.allclose(cell.k_m, torch.full((10,), 0.05), rtol=1e-4)
    assert torch.allclose(cell.k_j, torch.full((2, 10), 2.0), rtol=1e-4)
    assert cell.r_j.abs().max() <= 0.0101 and cell.a_j.abs().max() <= 0.01
    fixed = GLIFRCell(1, 10, learn_neuron=False)
    assert {name for name, _ in fixed.named_parameters()} == {"weight_in", "weight_lat"}


def test_heterogeneous_init_resamples_a_trained_run():
    trained = {"v_th": torch.tensor([1.0, 2.0, 3.0]), "k_m": torch.tensor([1.0, 2.0, 3.0]),
               "k_j": torch.ones(2, 3), "r_j": torch.zeros(2, 3), "a_j": torch.ones(2, 3)}
    values = heterogeneous_values(50, 2, dt=0.05, trained=trained,
                                  generator=torch.Generator().manual_seed(0))
    assert set(values["v_th"].tolist()) == {1.0, 2.0, 3.0}
    assert values["k_j"].shape == (2, 50)
    drawn = heterogeneous_values(200, 2, dt=0.05, generator=torch.Generator().manual_seed(0))
    assert drawn["v_th"].min() >= 0.5 and drawn["v_th"].max() <= 1.5
    assert drawn["v_th"].std() > 0.2


def test_parameter_matched_sizes_reproduce_the_published_pairs():
    """L-MNIST (28 inputs, 10 classes): RNN 256 → GLIFR with ASCs 252, LSTM 122."""
    budget = parameter_count("rnn", 256, inputs=28, outputs=10)
    assert matched_hidden_size("glifr", budget, inputs=28, outputs=10, n_ascs=2) == 252
    assert matched_hidden_size("lstm", budget, inputs=28, outputs=10) == 122
    assert matched_hidden_size("rnn", budget, inputs=28, outputs=10) == 256


@pytest.mark.parametrize(("kind", "net", "options"), [
    ("rnn", "RNN", {}), ("lstm", "LSTM", {}), ("glifr", "GLIFR", {"n_ascs": 2}),
    ("glifr", "GLIFR", {"n_ascs": 0})])
def test_parameter_count_formula_equals_the_models(kind, net, options):
    model = build_sequence_model(SequenceModelSpec(net_type=net, nonlin="tanh", input_size=28,
                                                   hidden_size=37, cell_options=options))
    n_ascs = options.get("n_ascs", 2)
    assert model.n_parameters() == parameter_count(kind, 37, inputs=28, outputs=10,
                                                   n_ascs=n_ascs)


# ----------------------------------------------------------------------------- workflow

def invoke(args):
    return CliRunner().invoke(WORKFLOWS.get("train_glifr"), [str(a) for a in args])


def results(path):
    return json.loads((path / "results.json").read_text())


SINE = ["--task", "sine", "--hidden", "24", "--epochs", "200", "--lr", "3e-3", "--ntrials",
        "2", "--quiet"]


def test_learned_heterogeneity_beats_fixed_homogeneous_neurons_on_sine(tmp_path):
    """The paper's central claim, at a small equal budget with fixed seeds."""
    scores = {}
    for variant in ("hom", "lhet"):
        out = tmp_path / variant
        done = invoke([*SINE, "--variant", variant, "--output-dir", out])
        assert done.exit_code == 0, done.output
        summary = results(out)
        scores[variant] = [trial["test_mse"] for trial in summary["trials"]]
        assert summary["parameter_counts"]["glifr"]["hidden"] == summary["hidden_size"]
    assert np.mean(scores["lhet"]) < np.mean(scores["hom"])
    recorded = results(tmp_path / "lhet")["task"]
    assert recorded["name"] == "sine"
    assert recorded["frequencies_khz"] == pytest.approx(sine_task()[2].tolist())
    for name in ("learning_curves", "sine_outputs", "neuron_parameters"):
        assert (tmp_path / "lhet" / "figures" / f"{name}.png").exists()
    learned = np.load(tmp_path / "lhet" / "neuron_parameters.npz")
    fixed = np.load(tmp_path / "hom" / "neuron_parameters.npz")
    assert learned["v_th"].shape == (2, results(tmp_path / "lhet")["hidden_size"])
    assert np.all(fixed["v_th"] == 1.0) and np.std(learned["v_th"]) > 0
    # rhet from the trained lhet run resamples its learned parameters
    out = tmp_path / "rhet"
    done = invoke([*SINE, "--ntrials", "1", "--epochs", "2", "--variant", "fhet",
                   "--lhet_run", tmp_path / "lhet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    resampled = np.load(out / "neuron_parameters.npz")["v_th"][0]
    assert set(np.round(resampled, 5)) <= set(np.round(learned["v_th"][0], 5))


def test_silencing_lowers_accuracy_monotonically(tmp_path):
    out = tmp_path / "run"
    done = invoke(["--task", "lmnist", "--hidden", "48", "--epochs", "8", "--lr", "3e-3",
                   "--batch", "32", "--delay", "0.05", "--silence", "0,0.3,0.6,0.9,1.0",
                   "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    curve = [summary["silencing"][f] for f in ("0.0", "0.3", "0.6", "0.9", "1.0")]
    assert curve[0] == pytest.approx(summary["trials"][0]["test_accuracy"])
    assert curve[0] > 0.5
    assert all(a > b for a, b in itertools.pairwise(curve[:4]))
    # every neuron silent: the read-out sees nothing, every digit gets the class of its bias,
    # the accuracy of always answering one class (chance level)
    labels = load_splits("digits", None).test_labels
    assert min(abs(curve[4] - np.mean(labels == c)) for c in range(10)) < 1e-6
    assert (out / "figures" / "silencing.png").exists()


def test_resume_equals_uninterrupted(tmp_path):
    args = ["--task", "sine", "--hidden", "8", "--lr", "3e-3", "--quiet", "--ntrials", "2"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert invoke([*args, "--epochs", "20", "--output-dir", straight]).exit_code == 0
    assert invoke([*args, "--epochs", "10", "--output-dir", split]).exit_code == 0
    assert invoke([*args, "--epochs", "20", "--output-dir", split, "--resume"]).exit_code == 0
    a, b = results(straight), results(split)
    assert [t["test_mse"] for t in a["trials"]] == [t["test_mse"] for t in b["trials"]]
    assert a["trials"][1]["learning_curve"] == b["trials"][1]["learning_curve"]


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_matched_baselines_run(tmp_path, model):
    out = tmp_path / model
    done = invoke(["--task", "sine", "--model", model, "--hidden", "16", "--epochs", "3",
                   "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    assert summary["hidden_size"] == summary["parameter_counts"][model]["hidden"]
    assert summary["parameter_counts"][model]["parameters"] <= summary["budget"]


def test_smnist_takes_glifr(tmp_path):

    out = tmp_path / "run"
    done = CliRunner().invoke(WORKFLOWS.get("smnist"), ["--net-type", "GLIFR", "--nhid", "16",
                                               "--input", "rows", "--epochs", "1",
                                               "--lyapunov", "2", "--lyapunov_steps", "20",
                                               "--quiet", "--output-dir", str(out)])
    assert done.exit_code == 0, done.output
    assert results(out)["model"]["net_type"] == "GLIFR"


BAD = [
    (["--task", "cifar"], "--task"),
    (["--variant", "xhet"], "--variant"),
    (["--delay", "0.01"], "--delay"),
    (["--dt", "0"], "--dt"),
    (["--sigma_v", "-1"], "--sigma_v"),
    (["--silence", "0,1.2"], "--silence"),
    (["--silence", "a,b"], "--silence"),
    (["--epochs", "0"], "--epochs"),
    (["--lhet_run", "/nonexistent"], "--lhet_run"),
]


@pytest.mark.parametrize(("args", "option"), BAD)
def test_bad_options_exit_2_naming_the_option(args, option, tmp_path):
    done = invoke([*args, "--output-dir", tmp_path / "run"])
    assert done.exit_code == 2, done.output
    assert option in done.output and "Traceback" not in done.output
    assert not (tmp_path / "run").exists()


def test_sine_task_frequencies_are_log_spaced_as_published():
    """Six frequencies 10^linspace(log10 0.08, log10 0.6, 6) kHz: a constant ratio between
    neighbours; inputs c_i = i/6 + 0.25; targets sin(2π f_i t) + c_i."""
    inputs, targets, frequencies = sine_task()
    assert frequencies[0] == pytest.approx(0.08) and frequencies[-1] == pytest.approx(0.6)
    ratios = frequencies[1:] / frequencies[:-1]
    assert ratios == pytest.approx(np.full(5, (0.6 / 0.08) ** 0.2))
    offsets = np.arange(6) / 6 + 0.25
    assert inputs[:, :, 0] == pytest.approx(np.broadcast_to(offsets, (100, 6)))
    time = np.arange(100)[:, None] * 0.05
    assert targets[:, :, 0] == pytest.approx(np.sin(2 * np.pi * frequencies * time) + offsets,
                                             abs=1e-6)
