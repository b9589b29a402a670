"""The training workflows as users call them: run directories, resume, masks, populations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS
from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.training.checkpoint import load_trained_model

TINY = ["--n", "24", "--g", "4", "--nle", "2", "--n_samples", "2", "--tsim", "10",
        "--ttrans", "5", "--spectrum_every", "2", "--spectrum_nle", "4", "--quiet"]
FLY = ["--cell_classes", "APL,MBON", "--nle", "2", "--tsim", "4", "--ttrans", "2",
       "--n_epochs", "2", "--spectrum_nle", "3", "--g", "3", "--quiet"]


def invoke(command, args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def results(path):
    return json.loads((path / "results.json").read_text())


def test_train_rd_model_run_directory(tmp_path):
    out = tmp_path / "run"
    assert invoke(WORKFLOWS.get("train_rd_model"), [*TINY, "--n_epochs", "4", "--output-dir",
                                                    out]) \
        .exit_code == 0
    result = results(out)
    assert len(result["samples"]) == 2 and result["epochs"] == 4
    sample = result["samples"][0]
    assert len(sample["loss"]) == 4 and len(sample["lambda_max"]) == 4
    assert len(sample["spectrum_initial"]) == 4 and len(sample["spectrum_final"]) == 4
    assert sample["n_trainable"] == {"weights": 0, "gains": 24, "shifts": 24}
    assert sample["epochs_run"] == 4 and sample["stopped_early"] is False
    assert set(result["spectra"]) == {"2", "4"}
    # the evaluated losses are those of the evaluated spectra (MSE of the top nle = 2 exponents
    # against target 0), and the trained networks' spectrum is not the untrained one
    for key in ("initial", "final"):
        top = np.array(sample[f"spectrum_{key}"][:2])
        evaluation = sample["evaluation"]
        assert evaluation[f"loss_{key}"] == pytest.approx(float(np.mean(top**2)), rel=1e-9)
        assert evaluation[f"lambda_max_{key}"] == top[0]
    assert sample["spectrum_final"] != sample["spectrum_initial"]
    log = (out / "training_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,sample,loss,lambda_max") and len(log) == 1 + 4 * 2
    for name in ("training", "trained_parameters", "activity"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    model = load_trained_model(out)
    # the activity of the trained networks: one population trace per network, 50 τ
    activity = np.load(out / "activity.npz")
    assert activity["population"].shape[1] == 2
    assert activity["time"][-1] == pytest.approx(50.0)
    trained = np.load(out / "trained_parameters.npz")
    np.testing.assert_array_equal(model.gain.detach().reshape(2, -1).numpy(), trained["gains"])
    spectrum = lyapunov_spectrum(model, 2, tsim=5.0, tons=0.2, ttrans=1.0,
                                 generator=torch.Generator().manual_seed(0))
    assert spectrum.exponents.shape == (2, 1, 2)


def test_resume_continues_to_the_uninterrupted_result(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert invoke(WORKFLOWS.get("train_rd_model"), [*TINY, "--n_epochs", "5", "--output-dir",
                                                    straight]) \
        .exit_code == 0
    assert invoke(WORKFLOWS.get("train_rd_model"), [*TINY, "--n_epochs", "2", "--output-dir",
                                                    split]) \
        .exit_code == 0
    resumed = invoke(WORKFLOWS.get("train_rd_model"), [*TINY, "--n_epochs", "5", "--resume",
                                              "--output-dir", split])
    assert resumed.exit_code == 0
    a, b = results(straight)["samples"], results(split)["samples"]
    for first, second in zip(a, b, strict=True):
        assert first["loss"] == second["loss"]
        assert first["spectrum_final"] == second["spectrum_final"]
    changed = CliRunner().invoke(WORKFLOWS.get("train_rd_model"), [*TINY, "--n_epochs", "6", "--lr",
                                                         "0.5", "--resume", "--output-dir",
                                                         str(split)])
    assert changed.exit_code == 2 and "--lr" in changed.output
    missing = CliRunner().invoke(WORKFLOWS.get("train_rd_model"), [*TINY, "--resume",
                                                                   "--output-dir",
                                                         str(tmp_path / "none")])
    assert missing.exit_code == 2 and "--resume" in missing.output


def test_fixed_param_masks_keep_other_entries(tmp_path):
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("train_rd_model_fixed_param"), [
        *TINY, "--n_epochs", "3", "--number_param", "30", "5", "3", "--train_weights", "true",
        "--output-dir", out])
    assert result.exit_code == 0
    masks = np.load(out / "masks.npz")
    assert masks["gains"].reshape(2, -1).sum(1).tolist() == [5, 5]
    assert masks["weights"].reshape(2, -1).sum(1).tolist() == [30, 30]
    assert not masks["weights"][:, np.arange(24), np.arange(24)].any()
    trained = np.load(out / "trained_parameters.npz")
    gains, shifts = trained["gains"], trained["shifts"]
    assert np.all(gains[~masks["gains"].reshape(2, -1)] == 1.0)
    assert np.all(shifts[~masks["shifts"].reshape(2, -1)] == 0.0)
    assert np.any(gains[masks["gains"].reshape(2, -1)] != 1.0)
    assert results(out)["samples"][0]["n_trainable"] == {"weights": 30, "gains": 5,
                                                       "shifts": 3}
    bad = CliRunner().invoke(WORKFLOWS.get("train_rd_model_fixed_param"),
                             [*TINY, "--number_param", "1", "99", "1"])
    assert bad.exit_code == 2 and "--number_param" in bad.output


def test_population_sharing_really_shares(tmp_path):
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("train_flybrain_pop"), [*FLY, "--subpopulation",
                                                          "neurotransmitter",
                                                 "--output-dir", out])
    assert result.exit_code == 0
    summary = results(out)
    names = summary["populations"]
    assert names == sorted(set(names)) and len(names) >= 2
    assert summary["samples"][0]["n_trainable"] == {"weights": 0, "gains": len(names),
                                                    "shifts": len(names)}
    model = load_trained_model(out)
    assert model.sparse and model.gain.shape[-1] == len(names)
    assert (out / "figures" / "trained_parameters.pdf").exists()
    # one trajectory per network by default on a connectome (four on random networks)
    options = json.loads((out / "config.json").read_text())["options"]
    assert options["replicas"] == 1


def test_replicas_defaults_per_workflow():
    from click.testing import CliRunner

    for command, default in ((WORKFLOWS.get("train_flybrain_pop"), 1),
                             (WORKFLOWS.get("train_flybrain_full"), 1),
                             (WORKFLOWS.get("train_rd_model"), 4)):
        text = CliRunner().invoke(command, ["--help"], terminal_width=200).output
        line = next(line for line in text.splitlines() if "--replicas" in line)
        assert f"[default: {default};" in line or f"[default: {default}]" in line, line


def test_flybrain_full_trains_per_neuron_parameters_with_fixed_weights(tmp_path):
    out = tmp_path / "run"
    assert invoke(WORKFLOWS.get("train_flybrain_full"), [*FLY, "--output-dir", out]).exit_code == 0
    model = load_trained_model(out)
    n = model.n_neurons
    assert results(out)["samples"][0]["n_trainable"] == {"weights": 0, "gains": n, "shifts": n}


@pytest.mark.parametrize(("command", "args", "option_name"), [
    (WORKFLOWS.get("train_flybrain_pop"), ["--roi", "nowhere"], "--roi"),
    (WORKFLOWS.get("train_flybrain_pop"), ["--cell_classes", "NOPE"], "--cell_classes"),
    (WORKFLOWS.get("train_flybrain_full"), ["--nle", "100000"], "--nle"),
    (WORKFLOWS.get("train_rd_model"), ["--activation", "tanh"], "--activation"),
    (WORKFLOWS.get("train_rd_model"), ["--n", "10", "--nle", "11"], "--nle"),
    (WORKFLOWS.get("train_rd_model"), ["--train_gains", "false", "--train_shifts", "false"],
     "--train_gains"),
    (WORKFLOWS.get("train_rd_model"), ["--loss", "huber"], "--loss"),
    (WORKFLOWS.get("train_rd_model"), ["--n_samples", "2", "--samples_per_batch", "3"],
     "--samples_per_batch"),
])
def test_bad_training_options_exit_2(command, args, option_name, tmp_path):
    result = CliRunner().invoke(command, [*args, "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert option_name in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("normalization", ["rows", "sinkhorn"])
def test_connectome_network_is_normalised_and_signed_by_dale(normalization):
    """The network the connectome workflows train: with ``rows`` (default) every neuron's
    absolute input sums to 1 before the coupling g; with ``sinkhorn`` the excitatory and the
    inhibitory inputs each sum to ½ wherever a neuron has both; a column's sign is its
    presynaptic neuron's (Dale's law), and the coupling is g."""
    from types import SimpleNamespace

    from nrmkit.experiments.spectrum_training.train_flybrain_full import (
        FlybrainConfig,
        connectome_batch,
        load_selected,
    )

    config = FlybrainConfig(cell_classes="ALPN,APL,MBON", g=2.0, normalization=normalization)
    assert FlybrainConfig(cell_classes="APL,MBON").normalization == "rows"
    connectome = load_selected(config.roi, config.cell_classes)
    context = SimpleNamespace(torch_dtype=torch.float64, device="cpu")
    model = connectome_batch(config, context, populations_by=None).model
    weight = model.weight.detach().to_dense().numpy()
    assert torch.all(model.coupling == 2.0)
    has_input = np.abs(weight).sum(1) > 0
    assert has_input.sum() > 100
    if normalization == "rows":
        np.testing.assert_allclose(np.abs(weight).sum(1)[has_input], 1.0, rtol=1e-12)
    else:
        excitatory = np.clip(weight, 0, None).sum(1)
        inhibitory = -np.clip(weight, None, 0).sum(1)
        both = (excitatory > 0) & (inhibitory > 0)
        assert both.sum() > 10
        np.testing.assert_allclose(excitatory[both], 0.5, atol=1e-6)
        np.testing.assert_allclose(inhibitory[both], 0.5, atol=1e-6)
    signs = np.sign(weight)
    expected = np.where(connectome.excitatory, 1.0, -1.0)
    nonzero = signs != 0
    np.testing.assert_array_equal(signs[nonzero], np.broadcast_to(expected, weight.shape)[nonzero])
