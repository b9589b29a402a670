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
from nrmkit.datasets.sine import block_constant_floor, sine_task
from nrmkit.experiments.glifr.train_glifr import GlifrConfig
from nrmkit.nn.glifr import GLIFRCell, heterogeneous_values, resampled_values
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
    # the rates r[t−d], …, r[t−1]; the last is the cell's rate, the others its delay line
    buffer = np.array([[0.25, 0.75], [0.5, 0.1], [0.6, 0.2]])[-delay:]
    x = 1.5
    state = tuple(torch.tensor(a, dtype=torch.float64).unsqueeze(0)
                  for a in (rate, voltage, ascs.reshape(n_ascs, 2), *buffer[:-1]))
    new = [t[0].detach().numpy() for t in cell(torch.tensor([[x]], dtype=torch.float64),
                                               state)]
    assert len(new) == 3 + delay - 1
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
    if delay > 1:                       # the line shifts by one and takes the old rate
        assert np.allclose(np.stack(new[3:]), buffer[1:])


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
    frames = GLIFRCell(1, 10, dt=1.0)       # N-MNIST: dt·k_j = 0.1 as published, not 2
    assert torch.allclose(frames.k_j * frames.dt, torch.full((2, 10), 0.1), rtol=1e-4)
    assert torch.allclose(frames.k_m, torch.full((10,), 0.05), rtol=1e-4)
    assert cell.r_j.abs().max() <= 0.0101 and cell.a_j.abs().max() <= 0.01
    fixed = GLIFRCell(1, 10, learn_neuron=False)
    assert {name for name, _ in fixed.named_parameters()} == {"weight_in", "weight_lat"}


def test_heterogeneous_init_resamples_every_entry_from_the_trained_values():
    """As published (np.random.choice per parameter): each entry drawn with replacement from
    all trained entries of the same parameter, after-spike currents pooled, weights too."""
    trained = {"v_th": torch.tensor([1.0, 2.0, 3.0]), "k_m": torch.tensor([0.01, 0.02, 0.03]),
               "k_j": torch.tensor([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]),
               "weight_lat": torch.arange(9.0).reshape(3, 3)}
    shapes = {"v_th": (500,), "k_m": (500,), "k_j": (2, 500), "weight_lat": (500, 500)}
    drawn = resampled_values(trained, shapes, generator=torch.Generator().manual_seed(0))
    for name, shape in shapes.items():
        assert drawn[name].shape == shape
        assert set(drawn[name].unique().tolist()) == set(trained[name].reshape(-1).tolist())
    # both rows of k_j draw from the pooled six values (not row j from row j)
    assert set(drawn["k_j"][0].unique().tolist()) == {4.0, 5.0, 6.0, 7.0, 8.0, 9.0}
    # entries independent: a neuron's v_th does not fix its k_m
    pairs = {(float(v), float(k)) for v, k in zip(drawn["v_th"], drawn["k_m"], strict=True)}
    assert len(pairs) == 9
    frequencies = np.bincount(drawn["weight_lat"].reshape(-1).long().numpy()) / 500 ** 2
    assert np.allclose(frequencies, 1 / 9, atol=0.01)
    with pytest.raises(ValueError, match="k_j"):
        resampled_values({"k_j": torch.zeros(0, 3)}, {"k_j": (2, 4)})


def test_heterogeneous_init_without_a_run_draws_the_published_hetinit_ranges():
    drawn = heterogeneous_values(20000, 2, generator=torch.Generator().manual_seed(0))
    for name, low, high in (("v_th", -1.0, 1.0), ("k_m", 0.04, 0.06), ("k_j", 1.5, 2.5),
                            ("r_j", -0.1, 0.1), ("a_j", -0.1, 0.1)):
        values = drawn[name].reshape(-1)
        assert values.min() >= low and values.max() <= high
        assert values.mean() == pytest.approx((low + high) / 2, abs=0.01 * (high - low))
        assert values.std() == pytest.approx((high - low) / math.sqrt(12), rel=0.03)
    assert drawn["k_j"].shape == (2, 20000)


def test_parameter_matched_sizes_reproduce_the_published_pairs():
    """L-MNIST (28 inputs, 10 classes): RNN 256 → GLIFR with ASCs 252, LSTM 122."""
    budget = parameter_count("rnn", 256, inputs=28, outputs=10)
    assert matched_hidden_size("glifr", budget, inputs=28, outputs=10, n_ascs=2) == 252
    assert matched_hidden_size("lstm", budget, inputs=28, outputs=10) == 122
    assert matched_hidden_size("rnn", budget, inputs=28, outputs=10) == 256


@pytest.mark.parametrize(("kind", "net", "options"), [
    ("rnn", "RNN", {"delay": 3, "bias_init": "uniform"}), ("lstm", "LSTM", {"init": "pytorch"}),
    ("glifr", "GLIFR", {"n_ascs": 2}), ("glifr", "GLIFR", {"n_ascs": 0}),
    ("glifr", "GLIFR", {"n_ascs": 2, "learn_neuron": False})])
def test_parameter_count_formula_equals_the_models(kind, net, options):
    model = build_sequence_model(SequenceModelSpec(net_type=net, nonlin="tanh", input_size=28,
                                                   hidden_size=37, cell_options=options))
    assert model.n_parameters() == parameter_count(
        kind, 37, inputs=28, outputs=10, n_ascs=options.get("n_ascs", 2),
        learn_neuron=options.get("learn_neuron", True))


def test_parameter_matched_sizes_reproduce_the_published_configurations():
    """GLIFS_ASC config/*_task.yaml, from each task's default budget: sine RNN 128 → GLIFR
    124 (learned ASCs), 127 (no ASCs), 128 (fixed neurons), LSTM 63; pmnist RNN 256 → GLIFR
    252, 255, 256, LSTM 128."""
    sine = parameter_count("rnn", GlifrConfig(task="sine").hidden, inputs=1, outputs=1)
    assert matched_hidden_size("lstm", sine, inputs=1, outputs=1) == 63
    for n_ascs, learn, size in ((2, True, 124), (0, True, 127), (2, False, 128)):
        assert matched_hidden_size("glifr", sine, inputs=1, outputs=1, n_ascs=n_ascs,
                                   learn_neuron=learn) == size
    pixels = parameter_count("rnn", GlifrConfig(task="pmnist").hidden, inputs=1, outputs=10)
    assert matched_hidden_size("lstm", pixels, inputs=1, outputs=10) == 128
    for n_ascs, learn, size in ((2, True, 252), (0, True, 255), (2, False, 256)):
        assert matched_hidden_size("glifr", pixels, inputs=1, outputs=10, n_ascs=n_ascs,
                                   learn_neuron=learn) == size


def test_default_delay_of_the_digit_tasks_keeps_its_share_of_a_sequence():
    """The published delays (1 ms = 20 of 28 rows, 15 ms = 300 of 784 pixels) would exceed
    the 8 rows and 64 pixels of the bundled digits: no lateral input would ever arrive."""
    assert GlifrConfig(task="lmnist").delay_steps == 6
    assert GlifrConfig(task="pmnist").delay_steps == 24
    assert GlifrConfig(task="lmnist").delay == 0.3
    assert GlifrConfig(task="lmnist", dataset="mnist").delay_steps == 20
    assert GlifrConfig(task="pmnist", dataset="mnist").delay_steps == 300
    assert GlifrConfig(task="lmnist", delay=1.0).delay_steps == 20     # as given
    assert GlifrConfig(task="sine").delay_steps == 20


# ----------------------------------------------------------------------------- workflow

def invoke(args):
    return CliRunner().invoke(WORKFLOWS.get("train_glifr"), [str(a) for a in args])


def results(path):
    return json.loads((path / "results.json").read_text())


SINE = ["--task", "sine", "--hidden", "16", "--epochs", "300", "--lr", "3e-2", "--quiet"]


def _offset_only_mse() -> float:
    """The MSE of a model that outputs each sequence's offset: the targets' variance about
    it (0.515 over the 5-ms window)."""
    inputs, targets, _ = sine_task()
    return float(((targets - inputs) ** 2).mean())


def test_glifr_and_its_baselines_learn_sine_generation(tmp_path):
    """hom, lhet and the published RNN baseline (U(±1/√H), synaptic delay of 20 steps) all
    learn the task at a small budget: test MSE far below the target's variance."""
    for name, extra in (("hom", ["--variant", "hom"]), ("lhet", ["--ntrials", "2"]),
                        ("rnn", ["--model", "rnn"])):
        done = invoke([*SINE, *extra, "--output-dir", tmp_path / name])
        assert done.exit_code == 0, done.output
        summary = results(tmp_path / name)
        assert summary["test_metric"] < 0.4 * _offset_only_mse(), (name, summary["test_metric"])
        assert summary["parameter_counts"][summary["model"]]["hidden"] == summary["hidden_size"]
    rnn = results(tmp_path / "rnn")
    assert rnn["delay_steps"] == 20 and rnn["hidden_size"] == 16
    # its output is constant on 20-step blocks: never below the best such staircase
    assert rnn["test_metric"] >= block_constant_floor(sine_task()[1], 20) - 1e-6
    assert results(tmp_path / "hom")["hidden_size"] == 16      # fixed neurons: RNN's size
    assert results(tmp_path / "lhet")["hidden_size"] == 13
    recorded = results(tmp_path / "lhet")["task"]
    assert recorded["name"] == "sine"
    assert recorded["frequencies_khz"] == pytest.approx(sine_task()[2].tolist())
    _check_glifr_run_outputs(tmp_path / "lhet", tmp_path / "hom")
    _check_heterogeneous_variants_draw_trial_k_from_lhet_trial_k(tmp_path)


def _check_glifr_run_outputs(lhet, hom):
    summary = results(lhet)
    for name in ("learning_curves", "sine_outputs", "neuron_parameters", "fi_curves",
                 "clustering", "parameter_trajectories"):
        assert (lhet / "figures" / f"{name}.png").exists(), name
    learned = np.load(lhet / "neuron_parameters.npz")
    fixed = np.load(hom / "neuron_parameters.npz")
    assert learned["v_th"].shape == (2, summary["hidden_size"])
    assert np.all(fixed["v_th"] == 1.0) and np.std(learned["v_th"]) > 0
    weights = np.load(lhet / "weights.npz")
    assert weights["weight_lat"].shape == (2, 13, 13)
    # trajectories: every epoch up to 300 (at most ~1000 records), ending at the learned values
    trajectory = np.load(lhet / "parameter_trajectories" / "trial1.npz")
    assert trajectory["epochs"].tolist() == list(range(1, 301))
    assert np.allclose(trajectory["v_th"][-1], learned["v_th"][1])
    assert np.abs(trajectory["v_th"][-1] - trajectory["v_th"][0]).max() > 0
    assert not (hom / "parameter_trajectories").exists()    # fixed neurons: nothing to track
    # f–I curves with the published protocol, one per neuron; clustering scores per k
    fi = np.load(lhet / "fi_curves.npz")
    assert fi["currents"].shape == (200,) and fi["rates"].shape == (2, 13, 200)
    assert np.all(np.diff(fi["rates"][0], axis=-1) >= -1e-9)       # rate rises with current
    clustering = summary["trials"][0]["clustering"]
    assert clustering["n_clusters"] == list(range(2, 12))
    assert clustering["best"] in clustering["n_clusters"]
    assert fi["cluster_labels"].shape == (2, 13)


def _check_heterogeneous_variants_draw_trial_k_from_lhet_trial_k(tmp_path):
    """fhet (fixed neurons) from the 2-trial lhet run: trial k's neuron parameters and
    weights are drawn from lhet trial k's (an almost zero learning rate keeps the weights)."""
    learned = np.load(tmp_path / "lhet" / "neuron_parameters.npz")
    learned_weights = np.load(tmp_path / "lhet" / "weights.npz")
    out = tmp_path / "fhet"
    done = invoke(["--task", "sine", "--hidden", "16", "--epochs", "1", "--lr", "1e-12",
                   "--ntrials", "3", "--variant", "fhet", "--lhet_run", tmp_path / "lhet",
                   "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    resampled = np.load(out / "neuron_parameters.npz")
    weights = np.load(out / "weights.npz")
    assert resampled["v_th"].shape == (3, 16)
    for trial, source in ((0, 0), (1, 1), (2, 0)):      # a third trial cycles to lhet trial 0
        for name, drawn, pool in (("v_th", resampled, learned), ("k_j", resampled, learned),
                                  ("weight_lat", weights, learned_weights)):
            values = drawn[name][trial].ravel()
            assert _all_among(values, pool[name][source]), (trial, name)
            assert not _all_among(values, pool[name][1 - source]), (trial, name)


def _all_among(values, pool) -> bool:
    """Every value equals one of ``pool`` (to float32 round-off of the transforms)."""
    pool = np.asarray(pool, dtype=np.float64).ravel()
    distance = np.abs(np.asarray(values, dtype=np.float64)[:, None] - pool[None]).min(1)
    return bool(np.all(distance <= 1e-5 * np.maximum(1.0, np.abs(values))))


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
    (["--dropout_prob", "1"], "--dropout_prob"),
    (["--dropout_prob", "-0.1"], "--dropout_prob"),
    (["--task", "nmnist"], "--data-dir"),
    (["--task", "nmnist", "--data-dir", "/nonexistent"], "--data-dir"),
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


def test_dropout_trains_resumes_exactly_and_is_off_at_evaluation(tmp_path):
    args = ["--task", "sine", "--hidden", "8", "--lr", "3e-3", "--quiet", "--dropout_prob",
            "0.2"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert invoke([*args, "--epochs", "20", "--output-dir", straight]).exit_code == 0
    assert invoke([*args, "--epochs", "10", "--output-dir", split]).exit_code == 0
    assert invoke([*args, "--epochs", "20", "--output-dir", split, "--resume"]).exit_code == 0
    a, b = results(straight), results(split)
    assert a["dropout_prob"] == 0.2
    assert a["trials"][0]["learning_curve"] == b["trials"][0]["learning_curve"]
    without = tmp_path / "without"
    assert invoke([*args[:-2], "--epochs", "20", "--output-dir", without]).exit_code == 0
    assert results(without)["trials"][0]["learning_curve"] != a["trials"][0]["learning_curve"]


def test_dropout_masks_scale_kept_rates_and_leave_evaluation_alone():
    spec = SequenceModelSpec(net_type="GLIFR", nonlin="tanh", input_size=1, hidden_size=400,
                             n_classes=1, per_step=True, dropout_prob=0.25)
    model = build_sequence_model(spec, generator=torch.Generator().manual_seed(0))
    inputs = torch.ones(30, 2, 1)
    model.eval()
    assert torch.equal(model(inputs), model(inputs))            # no dropout: deterministic
    model.train()
    with pytest.raises(ValueError, match="dropout_generator"):
        model(inputs)
    model.dropout_generator = torch.Generator().manual_seed(1)
    _, trace = model.run(inputs, record=True)
    rates = trace["h"]
    dropped = (rates == 0).float().mean()
    assert dropped == pytest.approx(0.25, abs=0.02)
    model.eval()
    _, clean = model.run(inputs, record=True)
    assert torch.all(clean["h"] > 0)


def test_sigma_v_annealing_is_linear_from_sigma_v_to_a_thousandth(tmp_path):
    out = tmp_path / "run"
    done = invoke(["--task", "sine", "--hidden", "8", "--epochs", "5", "--anneal_sigma_v",
                   "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    model = torch.load(out / "model.pt", weights_only=True)
    sigma_v = [v for k, v in model["state_dict"].items() if k.endswith("sigma_v")]
    assert float(sigma_v[0]) == pytest.approx(1e-3)              # the last epoch's value


def test_a_delayed_rnn_is_constant_on_blocks_of_its_delay():
    """h_t = tanh(U c + V h_{t−d} + b) from h = 0 under a constant input c takes one value per
    block of d steps, whatever the weights: the floor of the RNN baseline on sine."""
    inputs, targets, _ = sine_task()
    spec = SequenceModelSpec(net_type="RNN", nonlin="tanh", input_size=1, hidden_size=32,
                             n_classes=1, rinit="uniform", iinit="uniform",
                             readout_init="uniform", per_step=True,
                             cell_options={"delay": 20, "bias_init": "uniform"})
    for seed in range(3):
        model = build_sequence_model(spec, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            model.cell.recurrent.weight.mul_(4.0)        # strongly recurrent
            outputs = model(torch.as_tensor(inputs)).numpy()
        blocks = outputs.reshape(5, 20, 6, 1)
        assert np.all(blocks == blocks[:, :1])
        assert not np.allclose(blocks[0, 0], blocks[1, 0])
        mse = float(((outputs - targets) ** 2).mean())
        assert mse >= block_constant_floor(targets, 20) - 1e-7
    assert block_constant_floor(targets, 20) == pytest.approx(0.128, abs=5e-4)
    assert block_constant_floor(targets, 1) == 0.0
    # one block: each sequence's variance about its own mean
    assert block_constant_floor(targets, 100) == pytest.approx(
        float(((targets - targets.mean(0)) ** 2).mean()), rel=1e-6)


def test_rnn_baseline_delays_its_recurrent_input_and_is_initialised_uniformly():
    from nrmkit.nn.recurrent import LSTMCell, RNNCell

    cell = RNNCell(1, 3, nonlin="tanh", rinit="uniform", iinit="uniform", delay=4,
                   bias_init="uniform", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cell.input_layer.weight.zero_()
        cell.input_layer.bias.fill_(0.5)
    kick = torch.zeros(10, 1, 3)
    _, trace = run_cell(cell, torch.zeros(10, 1, 1), record=True)
    # h_t = tanh(b + V h_{t-4}): constant until the first output comes back after 4 steps
    assert torch.allclose(trace["h"][:4], torch.tanh(kick[:4] + 0.5))
    assert not torch.allclose(trace["h"][4], trace["h"][3])
    big = RNNCell(5, 400, nonlin="tanh", rinit="uniform", iinit="uniform", bias_init="uniform",
                  generator=torch.Generator().manual_seed(0))
    lstm = LSTMCell(5, 400, init="pytorch", generator=torch.Generator().manual_seed(0))
    for tensor in (big.recurrent.weight, big.input_layer.weight, big.input_layer.bias,
                   lstm.gates.weight, lstm.gates.bias, lstm.hidden_bias):
        assert tensor.abs().max() <= 1 / 20 + 1e-7                 # 1/√400
        assert float(tensor.std()) == pytest.approx(1 / 20 / math.sqrt(3), rel=0.05)


def test_nmnist_task_reads_event_files(tmp_path):
    from nrmkit.datasets.nmnist import encode_events

    data = tmp_path / "nmnist"
    rng = np.random.default_rng(0)
    for split, count in (("Train", 6), ("Test", 2)):
        for digit in range(10):
            for index in range(count):
                n = 40
                events = np.stack([rng.integers(0, 34, n), rng.integers(0, 34, n),
                                   rng.integers(0, 2, n), np.sort(rng.integers(0, 15000, n))],
                                  1)
                path = data / split / str(digit) / f"{index:05d}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(encode_events(events))
    out = tmp_path / "run"
    done = invoke(["--task", "nmnist", "--data-dir", data, "--hidden", "8", "--epochs", "1",
                   "--batch", "16", "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    assert summary["task"] == {"name": "nmnist"} and 0 <= summary["test_metric"] <= 1
    assert np.load(out / "weights.npz")["weight_in"].shape[1] == 2312


def test_glifr_without_after_spike_currents(tmp_path):
    """--no-ascs runs end to end (no ASC entries to summarise), and an lhet run without
    currents cannot seed a heterogeneous network that has them (exit 2, --lhet_run)."""
    out = tmp_path / "lhet"
    done = invoke(["--task", "sine", "--no-ascs", "--hidden", "8", "--epochs", "2", "--quiet",
                   "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    assert set(summary["trials"][0]["neuron_parameters"]) == {"v_th", "k_m"}
    assert np.load(out / "neuron_parameters.npz")["k_j"].shape == (1, 0, summary["hidden_size"])
    done = invoke(["--task", "sine", "--variant", "rhet", "--lhet_run", out, "--hidden", "8",
                   "--epochs", "1", "--quiet", "--output-dir", tmp_path / "rhet"])
    assert done.exit_code == 2 and "--lhet_run" in done.output and "k_j" in done.output
