"""Every file nrmkit reads back is validated: a truncated, foreign or non-finite file ends in
one ``Error:`` line naming the file (and the option, for a path the user gave), never a
traceback; and the memory estimates refuse absurd sizes while accepting the defaults."""

from __future__ import annotations

import fractions
import io
import pickle
import random
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.errors import DataError
from nrmkit.core.registry import WORKFLOWS, workflow_named
from nrmkit.datasets import connectome
from nrmkit.datasets.matfile import write_rate_model_mat
from nrmkit.experiments.glifr import train_glifr
from nrmkit.experiments.rate_to_lif import rate_to_lif
from nrmkit.experiments.sequences import smnist
from nrmkit.experiments.sequences.single_run import CHECKPOINT
from nrmkit.nn import sizing
from nrmkit.nn.dale import DaleRateRNN, DaleSpec, mat_fields
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.training.checkpoint import (
    load_checkpoint,
    load_trained_model,
    restore_checkpoint,
    save_checkpoint,
    save_dale_network,
    save_model,
)

SMALL_SMNIST = ["--nhid", "8", "--input", "rows", "--batch", "64", "--no-fractional_order",
                "--quiet"]
GIB = 2**30


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def assert_one_line_error(result, *, exit_code: int, names: tuple[str, ...]):
    """Exit status, exactly one ``Error:`` line on stderr holding every name, no traceback
    and none of torch's or numpy's advice to load unsafely."""
    assert result.exit_code == exit_code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for name in names:
        assert name in errors[0], (name, errors[0])
    for text in ("Traceback", "weights_only", "allow_pickle"):
        assert text not in result.output, result.output
    return errors[0]


def junk_torch_files(folder):
    """Files torch cannot read as a checkpoint, by kind."""
    folder.mkdir(exist_ok=True)
    files = {"junk": folder / "junk.pt", "empty": folder / "empty.pt",
             "text": folder / "text.pt", "object": folder / "object.pt"}
    files["junk"].write_bytes(random.Random(0).randbytes(300))
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a model\n")
    torch.save({"weights": fractions.Fraction(1, 3)}, files["object"])
    return files


# ----------------------------------------------------------------------------- torch files

def test_load_checkpoint_turns_every_damage_into_one_data_error(tmp_path):
    good = tmp_path / "good.pt"
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(good, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "epoch": 3, "history": [{"loss": 1.0}]})
    data = good.read_bytes()
    rng = random.Random(1)
    damaged = tmp_path / "damaged.pt"
    refused = 0
    for trial in range(150):
        corrupt = bytearray(data)
        if trial % 2:
            corrupt = corrupt[:rng.randrange(len(corrupt))]
        else:
            start = rng.randrange(len(corrupt))
            corrupt[start:start + 8] = rng.randbytes(8)
        damaged.write_bytes(bytes(corrupt))
        try:
            load_checkpoint(damaged)
        except DataError as error:
            refused += 1
            assert "\n" not in str(error) and "damaged.pt" in str(error)
    assert refused > 100
    for kind, path in junk_torch_files(tmp_path).items():
        with pytest.raises(DataError, match=path.name) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert "\n" not in message and "weights_only" not in message
        if kind == "object":
            assert "refused for safety" in message and "fractions.Fraction" in message
        else:
            assert "truncated or not a torch file" in message
    with pytest.raises(DataError, match=r"cannot read .*absent\.pt"):
        load_checkpoint(tmp_path / "absent.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")


def test_restore_checkpoint_names_the_file_and_says_what_to_do(tmp_path):
    model = torch.nn.Linear(4, 3)
    save_checkpoint(tmp_path / "other.pt", {"weight": torch.ones(5, 5)})
    with pytest.raises(DataError) as info:
        restore_checkpoint(tmp_path / "other.pt", model)
    assert "other.pt does not fit this run" in str(info.value)
    assert "delete it" in str(info.value) and "\n" not in str(info.value)
    save_checkpoint(tmp_path / "keyed.pt", {"trainer": model.state_dict()})
    assert "trainer" in restore_checkpoint(tmp_path / "keyed.pt", model, key="trainer")
    with pytest.raises(DataError, match="no entry 'trainer'"):
        restore_checkpoint(tmp_path / "other.pt", model, key="trainer")


def test_non_finite_weights_of_a_trained_model_are_refused(tmp_path):
    weight = torch.randn(1, 6, 6, dtype=torch.float64) / 3
    model = RateRNN(weight)
    save_model(tmp_path / "model.pt", model)
    assert load_trained_model(tmp_path).weight.shape[-1] == 6
    state = load_checkpoint(tmp_path / "model.pt")
    state["weight"]["dense"][0, 1, :3] = float("nan")
    save_checkpoint(tmp_path / "model.pt", state)
    with pytest.raises(DataError, match=r"model\.pt: weight holds 3 non-finite values"):
        load_trained_model(tmp_path)
    save_checkpoint(tmp_path / "model.pt", {"weight": {"dense": weight}})
    with pytest.raises(DataError, match=r"model\.pt is not an nrmkit model file .*coupling"):
        load_trained_model(tmp_path)


# ----------------------------------------------------------------------------- smnist

@pytest.fixture(scope="module")
def smnist_run(tmp_path_factory):
    """A one-epoch smnist run with its checkpoint and model.pt."""
    out = tmp_path_factory.mktemp("smnist") / "run"
    done = invoke(WORKFLOWS.get("smnist"), *SMALL_SMNIST, "--epochs", "1", "--output-dir", out)
    assert done.exit_code == 0, done.output
    return out


def test_truncated_checkpoint_on_resume(smnist_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smnist_run, run)
    checkpoint = run / CHECKPOINT
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[:len(data) // 2])
    done = invoke(WORKFLOWS.get("smnist"), *SMALL_SMNIST, "--epochs", "2", "--output-dir", run,
                  "--resume")
    line = assert_one_line_error(done, exit_code=1, names=("last.pt", "truncated"))
    assert "delete it" in line
    save_checkpoint(checkpoint, {"model": {"weight": torch.ones(2)}})      # another run's
    done = invoke(WORKFLOWS.get("smnist"), *SMALL_SMNIST, "--epochs", "2", "--output-dir", run,
                  "--resume")
    assert_one_line_error(done, exit_code=1, names=("last.pt", "does not fit this run"))


def test_test_mode_refuses_junk_and_non_finite_models(smnist_run, tmp_path):
    for kind, path in junk_torch_files(tmp_path).items():
        done = invoke(WORKFLOWS.get("smnist"), "--test", "--model", path, "--quiet",
                      "--no-fractional_order", "--output-dir", tmp_path / kind)
        assert_one_line_error(done, exit_code=2, names=("--model", path.name))
        assert not (tmp_path / kind).exists()
    record = load_checkpoint(smnist_run / smnist.MODEL_FILE)
    name = next(key for key in record["state_dict"] if key.endswith("recurrent.weight"))
    record["state_dict"][name][0, :2] = float("inf")
    save_checkpoint(tmp_path / "inf.pt", record)
    done = invoke(WORKFLOWS.get("smnist"), "--test", "--model", tmp_path / "inf.pt", "--quiet",
                  "--no-fractional_order", "--output-dir", tmp_path / "inf")
    assert_one_line_error(done, exit_code=2,
                          names=("--model", "inf.pt", f"{name} holds 2 non-finite"))


def test_console_script_prints_one_line(tmp_path):
    """The installed entry point as a shell calls it."""
    junk = junk_torch_files(tmp_path)["junk"]
    done = subprocess.run([sys.executable, "-m", "nrmkit", "smnist", "--test", "--model",
                           str(junk), "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("Error:") == 1 and "--model" in done.stderr
    assert "junk.pt" in done.stderr and "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- rate_to_lif

def _dale_network(n=12):
    return DaleRateRNN(DaleSpec(n=n, n_inputs=1), generator=torch.Generator().manual_seed(3))


def test_rate_to_lif_refuses_junk_and_non_finite_models(tmp_path):
    eval_args = ["--mode", "eval", "--lambda", "30", "--lif_trials", "2", "--quiet"]
    for kind, path in junk_torch_files(tmp_path).items():
        done = invoke(WORKFLOWS.get("rate_to_lif"), *eval_args, "--model", path, "--output-dir",
                      tmp_path / kind)
        assert_one_line_error(done, exit_code=2, names=("--model", path.name))
        assert not (tmp_path / kind).exists()
    fields = mat_fields(_dale_network())
    fields["w"][2, :3] = np.nan
    write_rate_model_mat(tmp_path / "nan.mat", {**fields, "task": "go-nogo"})
    done = invoke(WORKFLOWS.get("rate_to_lif"), *eval_args, "--model", tmp_path / "nan.mat",
                  "--output-dir", tmp_path / "nan")
    assert_one_line_error(done, exit_code=2,
                          names=("--model", "nan.mat", "w holds 3 non-finite values"))
    fields = mat_fields(_dale_network())
    fields["taus"] = [-4.0, 20.0]
    write_rate_model_mat(tmp_path / "negative.mat", {**fields, "task": "go-nogo"})
    done = invoke(WORKFLOWS.get("rate_to_lif"), *eval_args, "--model", tmp_path / "negative.mat",
                  "--output-dir", tmp_path / "negative")
    assert_one_line_error(done, exit_code=2, names=("--model", "negative.mat", "taus must"))
    (tmp_path / "junk.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    done = invoke(WORKFLOWS.get("rate_to_lif"), *eval_args, "--model", tmp_path / "junk.mat",
                  "--output-dir", tmp_path / "junk-mat")
    assert_one_line_error(done, exit_code=2, names=("--model", "junk.mat"))
    network = _dale_network()
    with torch.no_grad():
        network.w_out[0] = float("inf")
    save_dale_network(tmp_path / "model.pt", network, {"task": "go-nogo"})
    done = invoke(WORKFLOWS.get("rate_to_lif"), *eval_args, "--model", tmp_path / "model.pt",
                  "--output-dir", tmp_path / "inf")
    assert_one_line_error(done, exit_code=2, names=("--model", "model.pt", "w_out holds 1"))


# ----------------------------------------------------------------------------- train_glifr

def test_lhet_run_with_non_finite_or_junk_values(tmp_path):
    folder = tmp_path / "lhet"
    folder.mkdir()
    values = {"v_th": [[1.0, np.nan]], "k_m": [[1.0, 1.0]], "k_j": np.ones((1, 2, 2)),
              "r_j": np.zeros((1, 2, 2)), "a_j": np.zeros((1, 2, 2))}
    np.savez(folder / "neuron_parameters.npz", **values)
    np.savez(folder / "weights.npz", weight_in=np.ones((1, 1, 2)),
             weight_lat=np.ones((1, 2, 2)))
    args = ["--variant", "fhet", "--lhet_run", folder, "--hidden", "4", "--epochs", "1",
            "--quiet"]
    done = invoke(WORKFLOWS.get("train_glifr"), *args, "--output-dir", tmp_path / "nan")
    assert_one_line_error(done, exit_code=2, names=("--lhet_run", "neuron_parameters.npz",
                                                    "v_th holds 1 non-finite value"))
    with (folder / "neuron_parameters.npz").open("wb") as handle:
        pickle.dump({"v_th": [1.0]}, handle)
    done = invoke(WORKFLOWS.get("train_glifr"), *args, "--output-dir", tmp_path / "pickle")
    assert_one_line_error(done, exit_code=2, names=("--lhet_run", "neuron_parameters.npz"))


# ----------------------------------------------------------------------------- ROI pickles

def _roi_folder(folder, fibers):
    """A three-neuron FlyStability ROI folder whose cell-body-fibre file holds ``fibers``
    (already pickled bytes)."""
    folder.mkdir()
    np.save(folder / "adjacency_scc.npy", np.array([[0, 1, 0], [2, 0, 3], [0, 4, 0]], float))
    np.save(folder / "ei_neuron_types.npy", np.array([1, 0, 1]))
    np.save(folder / "nid_scc.npy", np.array([11, 12, 13]))
    (folder / "neurotransmitter_assignments.pkl").write_bytes(
        pickle.dumps({11: "acetylcholine", 12: "gaba", 13: float("nan")}))
    (folder / "cell_body_fiber_assignments.pkl").write_bytes(fibers)
    return folder


def test_roi_pickle_bomb_is_refused_at_once(tmp_path):
    nested: list = []
    for _ in range(40):         # every level holds the previous one twice: 2**40 leaves
        nested = [nested, nested]
    bomb = pickle.dumps({11: "PDM25", 12: nested})
    assert len(bomb) < 1000
    folder = _roi_folder(tmp_path / "EB", bomb)
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        connectome.read_roi_folder(folder)
    assert time.perf_counter() - started < 0.5
    message = str(info.value)
    assert "cell_body_fiber_assignments.pkl" in message and "is a list" in message
    assert "\n" not in message


@pytest.mark.parametrize(("payload", "reason"), [
    (b"c__builtin__\nstr\n(lp0\ntR.", "refusing to unpickle __builtin__.str"),
    (pickle.dumps({(1, 2): "PDM25"}), "must be integers or strings"),
    (pickle.dumps({11: {"nested": "dict"}}), "is a dict"),
    (b"\x80\x04\x8d" + (2**40).to_bytes(8, "little") + b"x", "truncated"),
])
def test_roi_pickles_other_than_flat_labels_are_refused(tmp_path, payload, reason):
    folder = _roi_folder(tmp_path / "EB", payload)
    with pytest.raises(DataError, match=reason) as info:
        connectome.read_roi_folder(folder)
    assert "cell_body_fiber_assignments.pkl" in str(info.value)


def test_roi_pickle_size_is_bounded_before_unpickling(tmp_path, monkeypatch):
    folder = _roi_folder(tmp_path / "EB", pickle.dumps({11: "PDM25", 12: "x" * 5000}))
    monkeypatch.setattr(connectome, "MAX_LABEL_PICKLE_BYTES", 1000)
    with pytest.raises(DataError, match=r"cell_body_fiber_assignments\.pkl: 5,0\d\d bytes"):
        connectome.read_roi_folder(folder)
    monkeypatch.undo()
    roi = connectome.read_roi_folder(folder)
    assert roi.labels["neurotransmitter"].tolist() == ["acetylcholine", "gaba", ""]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("exc", 3.0, "'exc' is malformed (only 0 and 1"),
    ("N", 12.5, "'N' is malformed (a whole number is needed, got 12.5"),
])
def test_mat_fields_that_would_be_rounded_are_refused(tmp_path, field, value, reason):
    """A flag of 3 is not silently "excitatory", nor N = 12.5 silently 12."""
    import scipy.io

    from nrmkit.datasets.matfile import read_rate_model_mat

    write_rate_model_mat(tmp_path / "net.mat", mat_fields(_dale_network()))
    raw = {name: value for name, value in scipy.io.loadmat(tmp_path / "net.mat").items()
           if not name.startswith("__")}
    raw[field] = raw[field].astype(np.float64)
    raw[field].flat[0] = value
    scipy.io.savemat(tmp_path / "edited.mat", raw)
    with pytest.raises(DataError, match=re.escape(reason)):
        read_rate_model_mat(tmp_path / "edited.mat")


# ----------------------------------------------------------------------------- .mat writer

def test_mat_files_are_written_through_the_atomic_writer(tmp_path, monkeypatch):
    from nrmkit.datasets import matfile

    written = []
    monkeypatch.setattr(matfile, "atomic_write_bytes",
                        lambda path, data: written.append((path, data)))
    matfile.write_rate_model_mat(tmp_path / "net.mat", mat_fields(_dale_network()))
    (path, data), = written
    assert path == tmp_path / "net.mat" and data.startswith(b"MATLAB 5.0 MAT-file")
    assert not list(tmp_path.iterdir())
    import scipy.io

    assert scipy.io.loadmat(io.BytesIO(data))["N"].item() == 12


# ----------------------------------------------------------------------------- memory

def _total(workflow, config, itemsize=4):
    terms = workflow.memory_terms(config, itemsize=itemsize)
    return sum(term.nbytes for term in terms), terms


def _largest(terms):
    return max(terms, key=lambda term: term.nbytes).option


@pytest.mark.parametrize("config", [
    smnist.SmnistConfig(), smnist.SmnistConfig(net_type="ANRU"),
    smnist.SmnistConfig(net_type="LSTM", dataset="mnist", input="rows"),
    smnist.SmnistConfig(n_seeds=5),
    train_glifr.GlifrConfig(), train_glifr.GlifrConfig(task="pmnist"),
    train_glifr.GlifrConfig(task="lmnist", model="lstm"),
    rate_to_lif.RateToLifConfig(), rate_to_lif.RateToLifConfig(mode="train"),
], ids=lambda config: type(config).__name__)
def test_memory_estimates_accept_the_defaults(config):
    workflow = {smnist.SmnistConfig: workflow_named("smnist"),
                train_glifr.GlifrConfig: workflow_named("train_glifr"),
                rate_to_lif.RateToLifConfig: workflow_named("rate_to_lif")}[type(config)]
    for itemsize in (4, 8):
        total, terms = _total(workflow, config, itemsize)
        assert terms and 0 < total < 12 * GIB, [(t.option, t.nbytes) for t in terms]


@pytest.mark.parametrize(("workflow", "config", "option"), [
    (workflow_named("smnist"), smnist.SmnistConfig(nhid=2_000_000), "--nhid"),
    (workflow_named("smnist"), smnist.SmnistConfig(net_type="ANRU", batch=50_000), "--batch"),
    (workflow_named("smnist"), smnist.SmnistConfig(n_seeds=4, nhid=100_000), "--nhid"),
    (workflow_named("train_glifr"), train_glifr.GlifrConfig(hidden=2_000_000), "--hidden"),
    (workflow_named("rate_to_lif"), rate_to_lif.RateToLifConfig(n=2_000_000), "--n"),
    (workflow_named("rate_to_lif"), rate_to_lif.RateToLifConfig(lif_trials=10_000_000),
     "--lif_trials"),
])
def test_memory_estimates_refuse_absurd_sizes(workflow, config, option):
    started = time.perf_counter()
    total, terms = _total(workflow, config)
    assert time.perf_counter() - started < 1.0
    assert total > 64 * GIB and _largest(terms) == option


def test_memory_of_a_saved_model_comes_from_its_file(tmp_path):
    fields = mat_fields(_dale_network(n=30))
    write_rate_model_mat(tmp_path / "net.mat", {**fields, "task": "go-nogo"})
    config = rate_to_lif.RateToLifConfig(mode="eval", model=str(tmp_path / "net.mat"))
    total, terms = _total(workflow_named("rate_to_lif"), config)
    assert "30×30" in terms[0].what and 0 < total < GIB
    save_dale_network(tmp_path / "model.pt", _dale_network(n=30))
    config = rate_to_lif.RateToLifConfig(mode="eval", model=str(tmp_path / "model.pt"))
    assert workflow_named("rate_to_lif").memory_terms(config, itemsize=4) == []


def test_memory_estimates_import_no_torch():
    code = ("import sys\n"
            "from nrmkit.experiments.sequences import smnist\n"
            "from nrmkit.experiments.glifr import train_glifr\n"
            "smnist.Smnist().memory_terms(smnist.SmnistConfig(), itemsize=4)\n"
            "train_glifr.TrainGlifr().memory_terms(train_glifr.GlifrConfig(task='pmnist'),"
            " itemsize=4)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def test_matched_hidden_size_is_exact_without_a_loop():
    def by_loop(model, budget, **sizes):
        hidden = 1
        while sizing.parameter_count(model, hidden + 1, **sizes) <= budget:
            hidden += 1
        return hidden

    for model in ("rnn", "lstm", "glifr"):
        for budget in (0, 3, 50, 999, 12_345, 70_001):
            for inputs, outputs in ((1, 1), (8, 10), (28, 10)):
                assert sizing.matched_hidden_size(
                    model, budget, inputs=inputs, outputs=outputs) == by_loop(
                    model, budget, inputs=inputs, outputs=outputs)
