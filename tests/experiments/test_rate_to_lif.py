"""Dale rate networks, their training, .mat files, Lyapunov exponents and the rate_to_lif CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.io
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS
from nrmkit.datasets.cognitive import GO_NOGO, MANTE, XOR_TASK
from nrmkit.datasets.matfile import read_rate_model_mat, write_rate_model_mat
from nrmkit.dynamics.lyapunov import lyapunov_spectrum
from nrmkit.nn.dale import (
    DaleDynamics,
    DaleRateRNN,
    DaleSpec,
    initial_mat_fields,
    loss_per_trial,
    mat_fields,
    network_from_mat_fields,
)
from nrmkit.nn.lif import simulate_lif
from nrmkit.training.checkpoint import load_dale_network, save_dale_network
from nrmkit.training.rate_task import RateTaskTrainer


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _network(**overrides) -> DaleRateRNN:
    values = {"n": 40, "n_inputs": 2, "som_n": 2, **overrides}
    return DaleRateRNN(DaleSpec(**values), generator=_gen(1))


def _invoke(*args):
    return CliRunner().invoke(WORKFLOWS.get("rate_to_lif"), [str(a) for a in args])


# ----------------------------------------------------------------------------- the model


def test_published_scaling_grids_and_time_constants():
    """SPEC §4: λ ∈ {20, 25, …, 75} for sigmoid networks, 4:2:26 for softplus and ReLU; the
    decay τ = σ(τ̃)·(20 − 4) + 4 steps of 5 ms: 12 steps = 60 ms at τ̃ = 0."""
    from nrmkit.core.registry import TRANSFER_FUNCTIONS

    assert TRANSFER_FUNCTIONS.get("sigmoid").lif_scaling_grid == tuple(
        float(v) for v in range(20, 80, 5))
    for name in ("softplus", "clipped_relu"):
        assert TRANSFER_FUNCTIONS.get(name).lif_scaling_grid == tuple(
            float(v) for v in range(4, 28, 2))
    net = _network()
    with torch.no_grad():
        net.taus_gaus.zero_()
    torch.testing.assert_close(net.taus_ms(), torch.full_like(net.taus_ms(), 60.0))
    with torch.no_grad():
        net.taus_gaus.fill_(1.0)
    expected = (4 + 16 / (1 + math.exp(-1.0))) * 5.0
    torch.testing.assert_close(net.taus_ms(), torch.full_like(net.taus_ms(), expected))


def test_initialisation_statistics():
    net = DaleRateRNN(DaleSpec(n=400, p_inh=0.2, p_rec=0.2, gain=1.5), generator=_gen())
    assert net.inhibitory.float().mean().item() == pytest.approx(0.2, abs=0.05)
    w = net.w.detach()
    assert (w > 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert torch.all(w >= 0)
    nonzero = w[w > 0]
    # |N(0,1)|·g/√(N p): mean g/√(N p)·√(2/π)
    expected = 1.5 / math.sqrt(400 * 0.2) * math.sqrt(2 / math.pi)
    assert nonzero.mean().item() == pytest.approx(expected, rel=0.03)
    taus = net.taus_ms()
    assert torch.all((taus >= 20) & (taus <= 100))
    assert net.w_out.abs().mean().item() < 0.02 and net.b_out.item() == 0.0


def test_som_units_receive_no_inhibition():
    net = _network(som_n=3)
    som = net.som_units
    assert len(som) == 3 and torch.all(net.inhibitory[som])
    w_eff = net.effective_weights().detach()
    inhibitory = net.inhibitory
    assert torch.all(w_eff[som][:, inhibitory] == 0)
    others = torch.ones(net.spec.n, dtype=torch.bool)
    others[som] = False
    assert (w_eff[others][:, inhibitory] < 0).any()


def test_forward_matches_the_update_by_hand():
    net = _network(activation="softplus")
    inputs = torch.randn(6, 3, 2, generator=_gen(2))
    x0 = torch.randn(3, 40, generator=_gen(3)) / 100
    outputs, rates = net(inputs, noise_std=0.0, state=x0, record_rates=True)
    alpha = 1.0 / net.taus_steps()
    w_eff = net.effective_weights()
    x = x0
    for t in range(6):
        r = torch.nn.functional.softplus(x).clamp(max=20)
        x = (1 - alpha) * x + alpha * (r @ w_eff.t() + inputs[t] @ net.w_in.t())
        torch.testing.assert_close(rates[t], torch.nn.functional.softplus(x).clamp(max=20))
        torch.testing.assert_close(outputs[t], rates[t] @ net.w_out + net.b_out)


def test_loss_per_trial():
    outputs = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    targets = torch.zeros(2, 2)
    torch.testing.assert_close(loss_per_trial(outputs, targets), torch.tensor([10 ** 0.5, 2.0]))
    torch.testing.assert_close(loss_per_trial(outputs, targets, "l1"), torch.tensor([4.0, 2.0]))


@pytest.mark.parametrize("apply_dale", [True, False])
def test_dale_principle_holds_after_training(apply_dale):
    net = _network(n=30, n_inputs=1, apply_dale=apply_dale)
    before = net.effective_weights().detach().clone()
    taus_before = net.taus_steps().detach().clone()
    trainer = RateTaskTrainer(net, GO_NOGO, n_trials=30, batch=4, lr=0.05, generator=_gen(4))
    trainer.fit_until_rule()
    w_eff = net.effective_weights().detach()
    assert not torch.equal(w_eff, before)
    assert not torch.allclose(net.taus_steps().detach(), taus_before)   # τ trains
    assert torch.all((net.taus_steps() >= 4) & (net.taus_steps() <= 20))
    if apply_dale:
        assert net.dale_violations() == 0
        assert torch.all(w_eff[:, ~net.inhibitory] >= 0)
        assert torch.all(w_eff[:, net.inhibitory] <= 0)
        # an absent connection stays absent (the ReLU has no gradient at 0)
        assert torch.all(w_eff[before == 0] == 0)
    else:
        assert (net.w.detach() < 0).any()


def test_fixed_tau_does_not_train():
    net = _network(taus=(10.0,))
    assert "taus_gaus" not in dict(net.named_parameters())
    assert torch.all(net.taus_steps() == 10.0)


def test_trainer_resume_equals_uninterrupted():
    def trainer():
        net = _network(n=20, n_inputs=1)
        return net, RateTaskTrainer(net, GO_NOGO, n_trials=30, batch=2, generator=_gen(5),
                                    eval_every=10, eval_trials=8)

    net_a, a = trainer()
    a.fit(3)
    _, b = trainer()
    b.fit(1)
    state = b.state_dict()
    net_c, c = trainer()
    c.load_state_dict(state)
    c.fit(3)
    assert c.updates == a.updates == 30
    assert c.trials_used == 60
    torch.testing.assert_close(net_c.w, net_a.w, rtol=0, atol=0)
    assert c.losses == a.losses
    assert not a.stopping_rule_met          # Go-NoGo needs more than 1500 updates


def test_dynamics_tangent_matches_autograd():
    net = _network().double()
    model = DaleDynamics(net, 3)
    state = torch.randn(3, 40, dtype=torch.float64, generator=_gen(6))
    drive = torch.randn(3, 2, dtype=torch.float64, generator=_gen(7))
    vectors = torch.randn(3, 5, 40, dtype=torch.float64, generator=_gen(8))
    stepped, pushed = model.step_with_tangent(state, vectors, drive)
    for b in range(3):
        def step(x, b=b):
            return model.step(x[None], drive[b:b + 1])[0]

        jac = torch.autograd.functional.jacobian(step, state[b])
        torch.testing.assert_close(pushed[b], vectors[b] @ jac.t())
    torch.testing.assert_close(stepped, model.step(state, drive))


def test_lyapunov_of_an_unconnected_network_is_exact():
    """W = 0: x ↦ (1 − 1/τ)x, so the exponents are ln(1 − 1/τ_i)/Δt (Δt = 5 ms)."""
    net = _network(n=4, n_inputs=1, som_n=0).double()
    taus = torch.tensor([12.0, 5.0, 18.0, 8.0], dtype=torch.float64)
    with torch.no_grad():
        net.w.zero_()
        net.taus_gaus.copy_(torch.logit((taus - 4.0) / 16.0))
    result = lyapunov_spectrum(DaleDynamics(net, 2), 4, tsim=2.0, tons=0.025, ttrans=0.1,
                               tbasis=1.0, generator=_gen(9)).sorted()
    exact = torch.sort(torch.log(1 - 1 / taus) / 0.005, descending=True).values
    torch.testing.assert_close(result.exponents, exact.expand(2, 4), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- files


def test_mat_round_trip_of_a_network(tmp_path):
    net = _network()
    path = write_rate_model_mat(tmp_path / "net.mat", {**mat_fields(net), "task": "xor"})
    fields = read_rate_model_mat(path)
    back = network_from_mat_fields(fields)
    assert back.spec.n == 40 and back.spec.som_n == 2 and back.spec.taus == (4.0, 20.0)
    torch.testing.assert_close(back.effective_weights(), net.effective_weights().detach())
    torch.testing.assert_close(back.taus_ms(), net.taus_ms().detach())
    inputs = XOR_TASK.trials(3, _gen(10)).inputs
    x0 = torch.zeros(3, 40)
    torch.testing.assert_close(back(inputs, noise_std=0.0, state=x0)[0],
                               net(inputs, noise_std=0.0, state=x0)[0].detach())
    saved = save_dale_network(tmp_path / "model.pt", net, {"task": "xor"})
    native, record = load_dale_network(saved)
    assert record["task"] == "xor"
    torch.testing.assert_close(native.effective_weights(), net.effective_weights().detach())


def _published_mat(path, net: DaleRateRNN) -> None:
    """A file laid out as the published TensorFlow code writes it (scipy, no nrmkit writer)."""
    w = torch.relu(net.w).detach().numpy().astype(np.float32)
    scipy.io.savemat(path, {
        "w": w, "w0": w, "w_in": net.w_in.numpy().astype(np.float32),
        "w_out": net.w_out.detach().numpy()[None, :].astype(np.float32),
        "b_out": np.float32(net.b_out.item()), "taus": [4.0, 20.0],
        "taus_gaus": net.taus_gaus.detach().numpy()[:, None].astype(np.float32),
        "taus_gaus0": net.taus_gaus.detach().numpy()[:, None].astype(np.float32),
        "m": torch.diag(net.sign).numpy().astype(np.float32),
        "som_m": net.som_mask.numpy().astype(np.float32),
        "exc": (~net.inhibitory).numpy()[:, None], "inh": net.inhibitory.numpy()[:, None],
        "N": net.spec.n, "som_N": 0, "eval_perf_mean": np.array([1.0]),
        "eval_loss_mean": np.array([2.0]), "tr": 1700, "activation": "sigmoid",
    })


def test_convert_reads_a_published_mat_and_eval_uses_its_best_lambda(tmp_path):
    net = DaleRateRNN(DaleSpec(n=30, som_n=0), generator=_gen(11))
    _published_mat(tmp_path / "Task_go-nogo_N_30.mat", net)
    out = tmp_path / "convert"
    done = _invoke("--mode", "convert", "--model", tmp_path / "Task_go-nogo_N_30.mat",
                   "--lambdas", 20, "--lambdas", 40, "--lif_trials", 4, "--quiet",
                   "--output-dir", out)
    assert done.exit_code == 0, done.output
    results = json.loads((out / "results.json").read_text())
    assert set(results["lif_accuracy"]) == {"20", "40"}
    assert results["best_lambda"] in (20.0, 40.0)
    assert 0 <= results["best_lif_accuracy"] <= 1 and results["mean_firing_rate_hz"] > 0
    assert results["n"] == 30
    for name in ("lif_grid.npz", "figures/lambda_grid.png", "figures/lambda_grid.pdf"):
        assert (out / name).exists(), name
    # a model file without a stored λ needs --lambda for eval
    refused = _invoke("--mode", "eval", "--model", tmp_path / "Task_go-nogo_N_30.mat",
                      "--lif_trials", 2, "--quiet", "--output-dir", tmp_path / "ev")
    assert refused.exit_code == 2 and "--lambda" in refused.output
    assert not (tmp_path / "ev" / "results.json").exists()
    done = _invoke("--mode", "eval", "--model", tmp_path / "Task_go-nogo_N_30.mat",
                   "--lambda", 30, "--lif_trials", 3, "--quiet", "--output-dir",
                   tmp_path / "ev2")
    assert done.exit_code == 0, done.output
    evaluation = json.loads((tmp_path / "ev2" / "results.json").read_text())["lif_eval"]
    assert evaluation["lambda"] == 30 and evaluation["trials"] == 3
    assert evaluation["inhibitory_rate_hz"] > 0 and evaluation["excitatory_rate_hz"] > 0
    for name in ("lif_eval.npz", "figures/lif_raster.png", "figures/lif_outputs.pdf"):
        assert (tmp_path / "ev2" / name).exists(), name


def test_bad_inputs_give_one_line_errors(tmp_path):
    cases = [
        (["--task", "sine"], "--task"),
        (["--p_inh", "1.5"], "--p_inh"),
        (["--p_inh", "-0.1"], "--p_inh"),
        (["--decay_taus", "4 20 30"], "--decay_taus"),
        (["--decay_taus", "20 4"], "--decay_taus"),
        (["--decay_taus", "0.5"], "--decay_taus"),
        (["--decay_taus", "four"], "--decay_taus"),
        (["--act", "tanh"], "--act"),
        (["--mode", "convert"], "--model"),
        (["--mode", "eval", "--model", tmp_path / "absent.mat"], "--model"),
        (["--lambdas", "0"], "--lambdas"),
        (["--lif_dt", "0.03"], "--lif_dt"),
        (["--n", "1"], "--n"),
        (["--n_trials", "0"], "--n_trials"),
        (["--lyapunov", "500"], "--lyapunov"),
    ]
    for args, name in cases:
        done = _invoke(*args, "--output-dir", tmp_path / "never")
        assert done.exit_code == 2, (args, done.output)
        assert name in done.output, (args, done.output)
        assert "Traceback" not in done.output
    assert not (tmp_path / "never").exists()
    # a .mat missing required fields: a usage error on --model (exit 2) naming them
    fields = mat_fields(_network(n=10, n_inputs=1))
    del fields["taus_gaus"], fields["som_m"]
    scipy.io.savemat(tmp_path / "broken.mat", fields)
    done = _invoke("--mode", "convert", "--model", tmp_path / "broken.mat", "--output-dir",
                   tmp_path / "broken")
    assert done.exit_code == 2 and "--model" in done.output
    assert "missing required field(s): taus_gaus, som_m" in done.output
    assert not (tmp_path / "broken").exists()
    # a file that is not a model at all
    (tmp_path / "junk.pt").write_bytes(bytes(range(100)))
    done = _invoke("--mode", "convert", "--model", tmp_path / "junk.pt", "--output-dir",
                   tmp_path / "junk")
    assert done.exit_code == 2 and "--model" in done.output
    assert "not a rate_to_lif model" in done.output
    assert "Traceback" not in done.output
    # a model with the wrong number of inputs for the task
    write_rate_model_mat(tmp_path / "xor.mat", mat_fields(_network(n=10, n_inputs=2)))
    done = _invoke("--mode", "convert", "--model", tmp_path / "xor.mat", "--output-dir",
                   tmp_path / "wrong")
    assert done.exit_code == 2 and "--task" in done.output


def test_stimulation_through_the_cli(tmp_path):
    """exc and inh stimulation of the excitatory units move a positive read-out up and down in
    the window, change nothing before it (same trials and noise), and the traces, arrays and
    figures are written with the documented shapes."""
    net = DaleRateRNN(DaleSpec(n=30, som_n=0), generator=_gen(11))
    with torch.no_grad():
        net.w_out.fill_(0.05)
    _published_mat(tmp_path / "net.mat", net)
    changes = {}
    for mode in ("exc", "inh"):
        out = tmp_path / mode
        done = _invoke("--mode", "eval", "--model", tmp_path / "net.mat", "--lambda", 30,
                       "--lif_trials", 3, "--lif_dt", 0.25, "--stim_mode", mode,
                       "--stim_window", 300, 600, "--stim_units", "exc", "--trace_units", "0,4",
                       "--trace_units", 9, "--trace_trials", 2, "--quiet", "--output-dir", out)
        assert done.exit_code == 0, done.output
        evaluation = json.loads((out / "results.json").read_text())["lif_eval"]
        stimulation = evaluation["stimulation"]
        assert stimulation["units"] == [int(i) for i in (~net.inhibitory).nonzero()]
        assert stimulation["window_ms"] == [300.0, 600.0]
        assert stimulation["max_abs_change_before_window"] == 0.0
        changes[mode] = stimulation["readout_change_in_window"]
        without, with_stim = stimulation["stimulated_units_rate_hz"]
        assert (with_stim > without) == (mode == "exc")
        assert evaluation["traces"] == {"units": [0, 4, 9], "trials": 2,
                                        "shape": [4000, 2, 3]}
        arrays = np.load(out / "lif_traces.npz")
        assert arrays["voltage_mv"].shape == arrays["voltage_stimulated_mv"].shape \
            == (4000, 2, 3)
        assert arrays["time_ms"][0] == pytest.approx(0.25)
        stim = np.load(out / "lif_stimulation.npz")
        before = 300 // 5 - 1
        np.testing.assert_array_equal(stim["outputs_with"][:before],
                                      stim["outputs_without"][:before])
        for name in ("lif_stimulation", "lif_traces"):
            assert (out / "figures" / f"{name}.png").exists(), name
    assert changes["exc"] > 0 > changes["inh"]


def test_perturbation_options_are_checked(tmp_path):
    old = tmp_path / "old.mat"                      # a file written before w0 was saved
    write_rate_model_mat(old, mat_fields(_network(n=10, n_inputs=1, som_n=0)))
    cases = [
        (["--mode", "eval", "--model", old, "--lambda", 30, "--use_initial_weights"],
         "--use_initial_weights", "holds no initial weights w0"),
        (["--mode", "train", "--use_initial_weights"], "--use_initial_weights", "convert or eval"),
        (["--mode", "eval", "--model", old, "--stim_mode", "exc", "--stim_units", "0"],
         "--stim_window", "START END"),
        (["--mode", "eval", "--model", old, "--stim_mode", "inh", "--stim_window", 10, 20],
         "--stim_units", "units"),
        (["--mode", "eval", "--model", old, "--stim_window", 10, 20], "--stim_window",
         "--stim_mode exc or inh"),
        (["--mode", "eval", "--model", old, "--stim_mode", "exc", "--stim_window", 20, 10,
          "--stim_units", "0"], "--stim_window", "START < END"),
        (["--mode", "eval", "--model", old, "--stim_mode", "exc", "--stim_window", 0, 10,
          "--stim_units", "a,b"], "--stim_units", "indices"),
        (["--mode", "eval", "--model", old, "--stim_mode", "exc", "--stim_window", 0, 10,
          "--stim_units", "exc:0"], "--stim_units", "positive integer"),
        (["--mode", "eval", "--model", old, "--lambda", 30, "--stim_mode", "exc",
          "--stim_window", 0, 10, "--stim_units", "3,10"], "--stim_units", "< N = 10"),
        (["--mode", "eval", "--model", old, "--lambda", 30, "--stim_mode", "exc",
          "--stim_window", 2000, 2100, "--stim_units", "3"], "--stim_window", "after the trial"),
        (["--stim_mode", "exc", "--stim_window", 0, 10, "--stim_units", "0"], "--stim_mode",
         "--mode eval"),
        (["--mode", "eval", "--model", old, "--stim_mode", "exc", "--stim_window", 0, 10,
          "--stim_units", "0", "--stim_prob", 2], "--stim_prob", "[0, 1]"),
        (["--trace_units", 1], "--trace_units", "--mode eval"),
        (["--mode", "eval", "--model", old, "--lambda", 30, "--trace_units", 10],
         "--trace_units", "< N = 10"),
        (["--mode", "eval", "--model", old, "--trace_units", "x"], "--trace_units", "'x'"),
        (["--mode", "eval", "--model", old, "--trace_trials", 5, "--lif_trials", 2],
         "--trace_trials", "--lif_trials"),
    ]
    for args, name, reason in cases:
        done = _invoke(*args, "--lif_trials", 2, "--output-dir", tmp_path / "never") \
            if "--lif_trials" not in args else _invoke(*args, "--output-dir", tmp_path / "never")
        assert done.exit_code == 2, (args, done.output)
        assert name in done.output and reason in done.output, (args, done.output)
        assert "Traceback" not in done.output
        assert not (tmp_path / "never" / "results.json").exists()


def test_published_fields_round_trip(tmp_path):
    """w0, taus_gaus0 and the per-trial fields are written in the published layout and read
    back squeezed; XOR labels as the published strings."""
    net = _network(n=12, n_inputs=2, som_n=0)
    trial = XOR_TASK.trials(1, _gen(30))
    states, rates, outputs = net.trajectory(trial.inputs, generator=_gen(31))
    forward, _ = net(trial.inputs, generator=_gen(31))
    torch.testing.assert_close(outputs, forward.detach())        # the same run as forward
    assert states.shape == rates.shape == (XOR_TASK.n_steps + 1, 1, 12)
    initial = initial_mat_fields(net)
    record = {**initial, "x0": states[:, 0].numpy(), "r0": rates[:, 0].numpy(),
              "o": outputs[:, 0].numpy(), "u": trial.inputs[:, 0].t().numpy(),
              "target": trial.targets[:, 0].numpy(), "eval_os": np.zeros((3, 300)),
              "eval_labels": np.array(["same", "diff", "same"])}
    write_rate_model_mat(tmp_path / "m.mat", {**mat_fields(net), **record})
    raw = scipy.io.loadmat(tmp_path / "m.mat")
    assert raw["w0"].shape == (12, 12) and raw["taus_gaus0"].shape == (12, 1)
    assert raw["x0"].shape == (301, 12, 1) and raw["o"].shape == (300, 1, 1)
    assert raw["u"].shape == (2, 300) and raw["target"].shape == (1, 300)
    back = read_rate_model_mat(tmp_path / "m.mat")
    np.testing.assert_allclose(back["w0"], torch.relu(net.w).detach().numpy(), rtol=1e-7)
    np.testing.assert_allclose(back["taus_gaus0"], net.taus_gaus.detach().numpy(), rtol=1e-7)
    np.testing.assert_allclose(back["x0"], record["x0"], rtol=1e-7)
    np.testing.assert_allclose(back["o"], record["o"], rtol=1e-7)
    assert back["eval_labels"] == ["same", "diff", "same"]
    # with --use_initial_weights the network holds w0 (its τ and read-out stay trained)
    from nrmkit.experiments.rate_to_lif.models import with_initial_weights

    changed = network_from_mat_fields({**back, "w0": back["w"] * 0.5})
    with_initial_weights(changed, {**back, "w0": back["w"] * 0.5}, tmp_path / "m.mat")
    torch.testing.assert_close(changed.effective_weights(),
                               network_from_mat_fields(back).effective_weights() * 0.5)


# ----------------------------------------------------------------------------- end to end


def test_go_nogo_end_to_end(tmp_path):
    """A Go-NoGo rate network reaches ≥ 95 % and its best-λ LIF network ≥ 90 % (fixed seed)."""
    out = tmp_path / "run"
    done = _invoke("--task", "go-nogo", "--n", 100, "--n_trials", 800, "--lif_trials", 50,
                   "--lambdas", 20, "--lambdas", 25, "--lambdas", 30, "--lambdas", 35,
                   "--lambdas", 40,
                   "--lyapunov", 3, "--seed", 0, "--quiet", "--output-dir", out)
    assert done.exit_code == 0, done.output
    results = json.loads((out / "results.json").read_text())
    assert results["rate_accuracy"] >= 0.95, results
    assert results["best_lif_accuracy"] >= 0.90, results
    assert results["lif_eval"]["accuracy"] >= 0.85, results     # fresh trials at the best λ
    assert results["dale_violations"] == 0
    assert results["updates"] == 800 and results["trials_used"] == 8000
    assert not results["stopping_rule_met"] or results["updates"] > 1500
    assert len(results["lyapunov_exponents"]["mean_per_s"]) == 3
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["decay_taus"] == [4.0, 20.0]
    # the published folder and file name, where the published MATLAB scripts look
    mat = list((out / "models" / "go-nogo" / "P_rec_0.2_Taus_4.0_20.0").iterdir())
    assert len(mat) == 1 and mat[0].name.startswith("Task_go-nogo_N_100_Taus_4.0_20.0_Act_sigmoid_")
    assert (out / results["mat_file"]) == mat[0]
    fields = read_rate_model_mat(mat[0])
    assert fields["opt_scaling_factor"].item() == results["best_lambda"]
    assert fields["losses"].shape == (800,)
    _check_published_fields(fields, out)
    for name in ("model.pt", "training.npz", "rate_outputs.npz", "lif_grid.npz",
                 "lif_eval.npz", "figures/training.png", "figures/rate_outputs.png",
                 "figures/lambda_grid.png", "figures/lif_raster.png", "figures/lif_outputs.png"):
        assert (out / name).exists(), name
    # a run of mode all has no parts: collect says so instead of failing
    from nrmkit.cli.main import cli

    refused = CliRunner().invoke(cli, ["collect", str(out)])
    assert refused.exit_code == 2 and "nothing to collect" in refused.output
    # the run folder converts again, and its .mat gives the same network
    again = _invoke("--mode", "eval", "--model", out, "--lif_trials", 5, "--quiet",
                    "--output-dir", tmp_path / "again")
    assert again.exit_code == 0, again.output
    evaluation = json.loads((tmp_path / "again" / "results.json").read_text())["lif_eval"]
    assert evaluation["lambda"] == results["best_lambda"]
    native, _ = load_dale_network(out / "model.pt")
    from_mat = network_from_mat_fields(fields)
    torch.testing.assert_close(from_mat.effective_weights(), native.effective_weights(),
                               rtol=1e-6, atol=1e-7)
    # the untrained weights (w0, trained τ and read-out, as the published LIF function):
    # the control fails the task that the trained weights solve
    control = _invoke("--mode", "eval", "--model", out, "--use_initial_weights",
                      "--lif_trials", 20, "--quiet", "--output-dir", tmp_path / "control")
    assert control.exit_code == 0, control.output
    control = json.loads((tmp_path / "control" / "results.json").read_text())
    assert control["use_initial_weights"] and control["lif_eval"]["use_initial_weights"]
    assert control["lif_eval"]["lambda"] == results["best_lambda"]
    assert control["lif_eval"]["accuracy"] <= 0.75, control["lif_eval"]
    assert results["lif_eval"]["accuracy"] >= 0.9


def _check_published_fields(fields: dict, out) -> None:
    """The fields the published code writes and its MATLAB LIF function reads."""
    n, steps = 100, GO_NOGO.n_steps
    w, w0 = fields["w"], fields["w0"]
    assert w0.shape == (n, n) and fields["taus_gaus0"].shape == (n,)
    assert np.all(w0 >= 0) and not np.allclose(w, w0)
    assert np.all(w[w0 == 0] == 0)                 # an absent connection stays absent
    assert not np.allclose(fields["taus_gaus"], fields["taus_gaus0"])     # τ trained
    np.testing.assert_array_equal(fields["w_in0"], fields["w_in"])        # W_in is fixed
    assert fields["x0"].shape == fields["r0"].shape == (steps + 1, n)
    np.testing.assert_allclose(fields["r0"], 1 / (1 + np.exp(-fields["x0"])), rtol=1e-6)
    assert fields["x"].shape == (steps + 1, n) and fields["o"].shape == (steps,)
    assert fields["u"].shape == (1, steps) and fields["target"].shape == (steps,)
    assert fields["eval_os"].shape == (100, steps) and fields["eval_labels"].shape == (100,)
    assert set(np.unique(fields["eval_labels"])) <= {0.0, 1.0}
    # model.pt keeps the same initial weights
    _, record = load_dale_network(out / "model.pt")
    np.testing.assert_allclose(record["initial"]["w0"].numpy(), w0, rtol=1e-6)
    np.testing.assert_allclose(record["initial"]["taus_gaus0"].numpy(), fields["taus_gaus0"],
                               rtol=1e-6)


@pytest.mark.parametrize("task", [XOR_TASK, MANTE])
def test_every_task_trains_and_converts(task):
    """Smoke test of the longer tasks: a few updates, then their LIF network is scored."""
    net = DaleRateRNN(DaleSpec(n=12, n_inputs=task.n_inputs), generator=_gen(12))
    trainer = RateTaskTrainer(net, task, n_trials=2, batch=2, generator=_gen(13),
                              eval_every=2, eval_trials=4)
    trainer.fit_until_rule()
    assert trainer.updates == 2 and len(trainer.history) == 1
    assert math.isfinite(trainer.history[0]["eval_loss"])
    trials = task.trials(2, _gen(14))
    with torch.no_grad():
        lif = simulate_lif(net.effective_weights(), net.w_in, net.w_out, float(net.b_out),
                           net.taus_ms(), trials.inputs, scaling=torch.tensor([25.0]),
                           generator=_gen(15), record_spikes=False)
    assert lif.output.shape == (task.n_steps, 1, 2)
    assert task.correct(lif.output, trials.labels, spiking=True).shape == (1, 2)


def test_convert_in_chunks_of_lambda_equals_one_batch(tmp_path):
    net = DaleRateRNN(DaleSpec(n=20), generator=_gen(16))
    write_rate_model_mat(tmp_path / "net.mat", mat_fields(net))
    args = ["--mode", "convert", "--model", tmp_path / "net.mat", "--lambdas", 20,
            "--lambdas", 30, "--lambdas", 40, "--lif_trials", 3, "--quiet"]
    assert _invoke(*args, "--output-dir", tmp_path / "one").exit_code == 0
    done = _invoke(*args, "--jobs", 3, "--output-dir", tmp_path / "three")
    assert done.exit_code == 0, done.output
    one, three = (json.loads((tmp_path / name / "results.json").read_text())
                  for name in ("one", "three"))
    one.pop("elapsed_seconds")
    three.pop("elapsed_seconds")
    assert one == three
    assert len(list((tmp_path / "three" / "parts").rglob("unit-*.npz"))) == 3
    refused = _invoke("--mode", "train", "--executor", "local", "--output-dir",
                      tmp_path / "never")
    assert refused.exit_code == 2 and "--mode convert" in refused.output


@pytest.mark.gpu
def test_rate_and_lif_networks_on_cuda_match_cpu():
    """The same network on CUDA (float64): the noise-free rate outputs agree to round-off and
    the LIF networks (same CPU-drawn noise) fire the same spikes in a short run."""
    net = DaleRateRNN(DaleSpec(n=30), generator=_gen(20)).double()
    trials = GO_NOGO.trials(4, _gen(21))
    x0 = torch.zeros(4, 30, dtype=torch.float64)
    cpu, _ = net(trials.inputs.double(), noise_std=0.0, state=x0)
    cuda_net = DaleRateRNN(DaleSpec(n=30), generator=_gen(20)).double().cuda()
    gpu, _ = cuda_net(trials.inputs.double().cuda(), noise_std=0.0, state=x0.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu.detach(), rtol=1e-9, atol=1e-9)
    inputs = trials.inputs[:20].double()
    with torch.no_grad():
        runs = [simulate_lif(n.effective_weights(), n.w_in, n.w_out, float(n.b_out),
                             n.taus_ms(), inputs.to(device), scaling=torch.tensor([25.0]),
                             generator=_gen(22), record_spikes=False)
                for n, device in ((net, "cpu"), (cuda_net, "cuda"))]
    assert torch.equal(runs[0].spike_counts, runs[1].spike_counts.cpu())


@pytest.mark.gpu
def test_stimulation_and_traces_on_cuda_match_cpu():
    """The perturbation hooks on CUDA (float64, CPU-drawn noise and coin flips): the same
    spikes and voltage traces as on the CPU."""
    from nrmkit.nn.lif_perturbation import Stimulation

    net = DaleRateRNN(DaleSpec(n=30), generator=_gen(23)).double()
    inputs = GO_NOGO.trials(3, _gen(24)).inputs[:20].double()
    stimulation = Stimulation("exc", (20.0, 60.0), (0, 3, 5))
    with torch.no_grad():
        runs = [simulate_lif(net.effective_weights(), net.w_in, net.w_out, float(net.b_out),
                             net.taus_ms(), inputs.to(device), scaling=torch.tensor([25.0]),
                             generator=_gen(25), record_spikes=False, stimulation=stimulation,
                             stim_generator=_gen(26), trace_units=[0, 1], trace_trials=2)
                for device in ("cpu", "cuda")]
    assert torch.equal(runs[0].spike_counts, runs[1].spike_counts.cpu())
    torch.testing.assert_close(runs[1].voltage.cpu(), runs[0].voltage, rtol=1e-9, atol=1e-9)
