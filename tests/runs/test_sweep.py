"""Executors of sweep workflows: serial, local subprocesses (submitit), array tasks + collect,
resumption without recomputation, and the errors of a missing submitit or sbatch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from nrmkit.cli.main import cli
from nrmkit.core.registry import WORKFLOWS
from nrmkit.runs import sweep

SWEEP = ["--gmin", "0.5", "--gmax", "2.5", "--m_g", "3", "--n_samples", "5", "--n", "30",
         "--tsim", "10", "--ttrans", "3", "--quiet"]


def _run(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def _results(path):
    results = json.loads((path / "results.json").read_text())
    results.pop("elapsed_seconds")
    results.pop("seconds_per_epoch", None)  # timings of training runs
    return results


def test_chunks_cover_every_unit_once():
    for n_units in (1, 5, 17):
        for n_chunks in (1, 2, 3, 8, 40):
            pieces = sweep.chunks(list(range(n_units)), n_chunks)
            assert [u for piece in pieces for u in piece] == list(range(n_units))
            assert len(pieces) == min(n_chunks, n_units)
            assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_local_executor_and_array_tasks_equal_serial(tmp_path):
    serial = tmp_path / "serial"
    assert _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--output-dir", serial).exit_code == 0
    local = tmp_path / "local"
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--executor", "local", "--jobs", "2",
                "--output-dir", local)
    assert done.exit_code == 0, done.output
    assert len(list((local / "parts").rglob("unit-*.npz"))) == 5
    assert list((local / "submitit").glob("*_log.out"))               # real subprocesses
    array = tmp_path / "array"
    for index in range(3):
        done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--task_count", 3, "--task_index",
                    index, "--output-dir", array)
        assert done.exit_code == 0, done.output
        assert not (array / "results.json").exists()
    collected = _run(cli, "collect", array, "--quiet")
    assert collected.exit_code == 0, collected.output
    expected = _results(serial)
    assert _results(local) == expected
    assert _results(array) == expected
    for folder in (local, array):
        assert (folder / "lambda.npz").exists()
        assert (folder / "figures" / "transition_2_chaos.png").exists()
    record = json.loads((local / "config.json").read_text())
    assert record["executor"]["executor"] == "local" and record["executor"]["jobs"] == 2


def test_array_task_index_from_slurm_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--task_count", 2, "--output-dir",
                tmp_path / "run")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "run" / "parts").rglob("*.npz")) == \
        ["unit-00003.npz", "unit-00004.npz"]                            # chunk 1 of [0-2], [3-4]
    missing = _run(cli, "collect", tmp_path / "run")
    assert missing.exit_code == 1
    assert "3 of 5 sample(s) missing" in missing.output and "0-2" in missing.output
    assert not (tmp_path / "run" / "results.json").exists()


def test_interrupted_sweep_resumes_without_recomputing(tmp_path, monkeypatch):
    """A serial sweep (one chunk) failing at sample 3 keeps samples 0-2, each stored as soon
    as it was done; --resume computes only samples 3 and 4."""
    from nrmkit.core.errors import DivergenceError
    from nrmkit.experiments.lyapunov import coupling_sweep

    original = coupling_sweep.iter_coupling_sweep
    computed: list[int] = []

    def failing(*args, samples, **kwargs):
        for sample in samples:
            if sample == 3:
                raise DivergenceError("simulated failure")
            computed.append(sample)
            yield from original(*args, samples=[sample], **kwargs)

    monkeypatch.setattr(coupling_sweep, "iter_coupling_sweep", failing)
    run = tmp_path / "run"
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--output-dir", run)
    assert done.exit_code == 1
    assert "kept" in done.output and "--resume" in done.output
    assert computed == [0, 1, 2]
    finished = {p: p.stat().st_mtime_ns for p in (run / "parts").rglob("*.npz")}
    assert len(finished) == 3

    def counting(*args, samples, **kwargs):
        computed.extend(samples)
        yield from original(*args, samples=samples, **kwargs)

    monkeypatch.setattr(coupling_sweep, "iter_coupling_sweep", counting)
    computed.clear()
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--resume", "--output-dir", run)
    assert done.exit_code == 0, done.output
    assert computed == [3, 4]                                           # only the missing ones
    for path, stamp in finished.items():
        assert path.stat().st_mtime_ns == stamp
    serial = tmp_path / "serial"
    monkeypatch.setattr(coupling_sweep, "iter_coupling_sweep", original)
    assert _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--output-dir", serial).exit_code == 0
    assert _results(run) == _results(serial)


def test_training_sweep_local_equals_serial(tmp_path):
    """train_glifr trials as units: two local subprocess jobs give the serial numbers."""
    args = ["--task", "sine", "--hidden", "6", "--epochs", "3", "--lr", "3e-3", "--ntrials",
            "3", "--quiet"]
    assert _run(WORKFLOWS.get("train_glifr"), *args, "--output-dir",
                tmp_path / "serial").exit_code == 0
    done = _run(WORKFLOWS.get("train_glifr"), *args, "--executor", "local", "--jobs", "2",
                "--output-dir", tmp_path / "local")
    assert done.exit_code == 0, done.output
    serial, local = _results(tmp_path / "serial"), _results(tmp_path / "local")
    assert local == serial
    assert len(serial["trials"]) == 3
    assert [t["trial"] for t in serial["trials"]] == [0, 1, 2]
    for name in ("model.pt", "neuron_parameters.npz", "sine_outputs.npz",
                 "figures/learning_curves.png"):
        assert (tmp_path / "local" / name).exists(), name


TRAIN = ["--n", "16", "--g", "4", "--nle", "2", "--n_samples", "3", "--tsim", "6",
         "--ttrans", "2", "--n_epochs", "3", "--spectrum_every", "2", "--spectrum_nle", "3",
         "--quiet"]


def test_spectrum_training_local_and_array_tasks_equal_serial(tmp_path):
    """train_rd_model samples as units: local jobs equal serial, and batches of two samples
    (whole batches per chunk) in 3 array tasks + collect equal serial with the same batches:
    results, files and the trained model bit for bit."""
    import numpy as np

    from nrmkit.training.checkpoint import load_trained_model

    args = [*TRAIN, "--train_weights", "true"]
    runs = {
        "serial": [],
        "local": ["--executor", "local", "--jobs", "2"],
        "serial_pairs": ["--samples_per_batch", "2"],
    }
    for name, extra in runs.items():
        done = _run(WORKFLOWS.get("train_rd_model"), *args, *extra, "--output-dir", tmp_path / name)
        assert done.exit_code == 0, done.output
    array = tmp_path / "array_pairs"
    for index in range(3):                 # 2 batches over 3 tasks: the last has nothing
        done = _run(WORKFLOWS.get("train_rd_model"), *args, "--samples_per_batch", "2",
                    "--task_count",
                    3, "--task_index", index, "--output-dir", array)
        assert done.exit_code == 0, done.output
    assert _run(cli, "collect", array, "--quiet").exit_code == 0
    for folder, reference in ((tmp_path / "local", tmp_path / "serial"),
                              (array, tmp_path / "serial_pairs")):
        expected = _results(reference)
        assert len(expected["samples"]) == 3 and expected["epochs"] == 3
        assert _results(folder) == expected
        assert (folder / "training_log.csv").read_text() == \
            (reference / "training_log.csv").read_text()
        for name in ("gains", "shifts", "weights"):
            np.testing.assert_array_equal(np.load(folder / "trained_parameters.npz")[name],
                                          np.load(reference / "trained_parameters.npz")[name])
        assert load_trained_model(folder).weight.shape[0] == 3
        assert (folder / "figures" / "training.png").exists()
    samples = _results(tmp_path / "serial")["samples"]
    pairs = _results(tmp_path / "serial_pairs")["samples"]
    # each sample its own network; in batches the same networks (initial spectra equal to
    # float32 round-off of the batched products)
    assert samples[0]["spectrum_initial"] != samples[1]["spectrum_initial"]
    np.testing.assert_allclose([s["spectrum_initial"] for s in pairs],
                               [s["spectrum_initial"] for s in samples], atol=1e-4)


def test_fixed_param_masks_per_sample_do_not_depend_on_chunks(tmp_path):
    import numpy as np

    args = [*TRAIN, "--n_samples", "2", "--n_epochs", "1", "--number_param", "10", "3", "2"]
    assert _run(WORKFLOWS.get("train_rd_model_fixed_param"), *args, "--output-dir",
                tmp_path / "one").exit_code == 0
    assert _run(WORKFLOWS.get("train_rd_model_fixed_param"), *args, "--jobs", "2", "--output-dir",
                tmp_path / "two").exit_code == 0
    one, two = (np.load(tmp_path / name / "masks.npz") for name in ("one", "two"))
    for name in ("weights", "gains", "shifts"):
        np.testing.assert_array_equal(one[name], two[name])
    assert not np.array_equal(one["gains"][0], one["gains"][1])    # each sample its own draw


def test_training_interrupted_mid_sample_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A sample that fails after some epochs keeps its epoch checkpoint; finished samples
    keep their parts; --resume completes to the uninterrupted numbers."""
    from nrmkit.core.errors import DivergenceError
    from nrmkit.training.spectrum import SpectrumTrainer

    original = SpectrumTrainer.train_epoch
    calls = {"n": 0}

    def failing(self, epoch):
        calls["n"] += 1
        if calls["n"] == 5:                    # sample 0: 3 epochs, sample 1: epoch 2 fails
            raise DivergenceError("simulated failure")
        return original(self, epoch)

    run = tmp_path / "run"
    monkeypatch.setattr(SpectrumTrainer, "train_epoch", failing)
    done = _run(WORKFLOWS.get("train_rd_model"), *TRAIN, "--output-dir", run)
    assert done.exit_code == 1 and "sample 1" in done.output and "--resume" in done.output
    assert len(list((run / "parts").rglob("unit-*.npz"))) == 1
    assert len(list((run / "checkpoints").rglob("batch-*.pt"))) == 2
    counted: list[int] = []

    def counting(self, epoch):
        counted.append(epoch)
        return original(self, epoch)

    monkeypatch.setattr(SpectrumTrainer, "train_epoch", counting)
    done = _run(WORKFLOWS.get("train_rd_model"), *TRAIN, "--resume", "--output-dir", run)
    assert done.exit_code == 0, done.output
    assert counted == [1, 2, 0, 1, 2]         # sample 1 from epoch 1, sample 2 from scratch
    monkeypatch.setattr(SpectrumTrainer, "train_epoch", original)
    assert _run(WORKFLOWS.get("train_rd_model"), *TRAIN, "--output-dir", tmp_path / "serial") \
        .exit_code == 0
    assert _results(run) == _results(tmp_path / "serial")


def test_spectrum_in_chunks_equals_serial(tmp_path):
    args = ["--n", "12", "--g", "2", "--g", "4", "--n_samples", "3", "--tsim", "8",
            "--ttrans", "2", "--tons", "1", "--quiet"]
    assert _run(WORKFLOWS.get("spectrum"), *args, "--output-dir", tmp_path / "a").exit_code == 0
    assert _run(WORKFLOWS.get("spectrum"), *args, "--jobs", 3, "--output-dir",
                tmp_path / "b").exit_code == 0
    assert _results(tmp_path / "a") == _results(tmp_path / "b")


def test_slurm_without_sbatch_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--executor", "slurm", "--output-dir",
                tmp_path / "run")
    assert done.exit_code == 2
    assert "sbatch was not found" in done.output
    assert "Traceback" not in done.output


def test_missing_submitit_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit":
            raise ModuleNotFoundError("No module named 'submitit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, "--executor", "local", "--output-dir",
                tmp_path / "run")
    assert done.exit_code == 2
    assert "pip install 'nrmkit[slurm]'" in done.output


@pytest.mark.parametrize("args, name", [
    (["--jobs", "0"], "--jobs"),
    (["--task_count", "3"], "--task_index"),
    (["--task_count", "3", "--task_index", "3"], "--task_index"),
    (["--slurm_time", "0"], "--slurm_time"),
    (["--executor", "cloud"], "--executor"),
])
def test_bad_executor_options(tmp_path, args, name, monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    done = _run(WORKFLOWS.get("transition_2_chaos"), *SWEEP, *args, "--output-dir",
                tmp_path / "run")
    assert done.exit_code == 2, done.output
    assert name in done.output


def test_collect_refuses_a_folder_that_is_no_sweep(tmp_path):
    done = _run(cli, "collect", tmp_path)
    assert done.exit_code == 2 and "no nrmkit run" in done.output


BASH = Path(__file__).resolve().parents[2] / "bash"


@pytest.mark.parametrize("script", sorted(p.name for p in BASH.glob("*.sh")))
def test_batch_scripts_dry_run(script):
    done = subprocess.run(["bash", str(BASH / script), "--dry-run"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "SEEDS": "2"})
    assert done.returncode == 0, done.stderr
    assert "sbatch" in done.stdout
    commands = [line for line in done.stdout.splitlines() if "--seed" in line]
    assert commands and all("--output-dir" in line for line in commands)
    refused = subprocess.run(["bash", str(BASH / script), "--bogus"], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "usage" in refused.stderr


def test_killed_sweep_resumes_without_recomputing(tmp_path, monkeypatch):
    """SIGKILL a serial sweep after its first finished unit; --resume computes the rest."""
    import signal
    import time

    args = ["--gmin", "1", "--gmax", "3", "--m_g", "3", "--n_samples", "6", "--n", "100",
            "--tsim", "100", "--ttrans", "5", "--quiet"]
    run = tmp_path / "run"
    process = subprocess.Popen(["transition_2_chaos", *args, "--output-dir", str(run)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not list(run.glob("parts/*/unit-*.npz")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p: p.stat().st_mtime_ns for p in run.glob("parts/*/unit-*.npz")}
    assert 1 <= len(finished) < 6
    assert not (run / "results.json").exists()
    computed: list[int] = []
    from nrmkit.experiments.lyapunov import coupling_sweep

    original = coupling_sweep.iter_coupling_sweep

    def counting(*positional, samples, **kwargs):
        computed.extend(samples)
        yield from original(*positional, samples=samples, **kwargs)

    monkeypatch.setattr(coupling_sweep, "iter_coupling_sweep", counting)
    done = _run(WORKFLOWS.get("transition_2_chaos"), *args, "--resume", "--output-dir", run)
    assert done.exit_code == 0, done.output
    done_units = {int(p.stem.split("-")[1]) for p in finished}
    assert sorted(computed) == sorted(set(range(6)) - done_units)
    for path, stamp in finished.items():
        assert path.stat().st_mtime_ns == stamp
    assert len(json.loads((run / "results.json").read_text())["lambda_max"][0]) == 6
