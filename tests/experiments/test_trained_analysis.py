"""``spectrum --model RUN_DIR`` and ``lyapu_convergence --model RUN_DIR``: the networks a
training run saved, analysed with the workflows of random networks — the same numbers as a
direct engine call, the sum rule, before vs after training, resumption, and every bad input as
one usage-error line that leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS, workflow_named
from nrmkit.core.streams import torch_generator
from nrmkit.dynamics import kaplan_yorke_dimension, ks_entropy, lyapunov_spectrum
from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.dynamics.theory import euler_sum_rule_mean
from nrmkit.experiments.lyapunov import spectrum as spectrum_experiment
from nrmkit.experiments.lyapunov.trained_models import STATES_STREAM, TRAINED_MODEL_WORKFLOWS
from nrmkit.nn.connectivity import normal_like
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.training.checkpoint import load_trained_model, save_model

F64 = torch.float64
TRAIN = ["--n", "20", "--nle", "2", "--tsim", "10", "--ttrans", "2", "--n_epochs", "2",
         "--n_samples", "2", "--samples_per_batch", "2", "--lr", "0.05", "--quiet"]
#: a short analysis in float64 (the sum rule and the comparison with a direct call).
ANALYSIS = ["--tsim", "40", "--ttrans", "10", "--tons", "0.5", "--dtype", "float64",
            "--seed", "3", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(command, *args, env=None):
    return CliRunner().invoke(command, [str(a) for a in args], env=env)


def results(path):
    return json.loads((path / "results.json").read_text())


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("training") / "run"
    done = invoke(WORKFLOWS.get("train_rd_model"), *TRAIN, "--output-dir", run)
    assert done.exit_code == 0, done.output
    assert (run / "model.pt").is_file() and (run / "model_initial.pt").is_file()
    return run


def direct_spectrum(path, *, seed: int, nle: int, tsim: float, tons: float, ttrans: float):
    """The exponents of every network of the model file ``path`` in one engine call, from
    the states and bases the workflow draws for them (network i: stream (seed, i, states))."""
    model = load_trained_model(path).to(dtype=F64)
    states, bases = [], []
    for network in range(model.batch_shape.numel()):
        generator = torch_generator(seed, network, STATES_STREAM)
        states.append(model.initial_std * normal_like((1, model.n_neurons),
                                                      generator=generator, dtype=F64))
        bases.append(random_basis((1,), nle, model.n_neurons, generator=generator, dtype=F64))
    shape = model.batch_shape
    state = torch.cat(states).reshape(*shape, -1)
    basis = torch.cat(bases).reshape(*shape, nle, -1)
    result = lyapunov_spectrum(model, nle, tsim=tsim, tons=tons, ttrans=ttrans, state=state,
                               basis=basis).sorted()
    return result.exponents.reshape(-1, nle).numpy()


# -- what a run gives ------------------------------------------------------------------------

def test_spectrum_of_a_trained_run(trained_run, tmp_path):
    out = tmp_path / "analysis"
    done = invoke(WORKFLOWS.get("spectrum"), "--model", trained_run, *ANALYSIS, "--output-dir", out)
    assert done.exit_code == 0, done.output
    found = results(out)
    assert found["model"] == {**found["model"], "path": str((trained_run / "model.pt").resolve()),
                              "run": str(trained_run.resolve()), "workflow": "train_rd_model",
                              "trained": True, "file": "model.pt", "networks": 2}
    exponents = np.array(found["exponents"])
    assert exponents.shape == (2, 20) and found["nle"] == found["n"] == 20
    assert found["dt"] == 0.1 and found["activation"] == "tanh_stretch"
    assert np.all(np.diff(exponents, axis=1) <= 0)
    # the sum rule: the mean of all N exponents is ln(1 − dt)/dt + O(1/N)
    assert found["sum_rule_mean"] == pytest.approx(euler_sum_rule_mean(0.1))
    np.testing.assert_allclose(found["mean_exponent"], euler_sum_rule_mean(0.1), atol=0.01)
    np.testing.assert_allclose(found["kaplan_yorke_dim"], kaplan_yorke_dimension(exponents))
    np.testing.assert_allclose(found["ks_entropy"], ks_entropy(exponents))
    assert found["tons_per_network"] == [0.5, 0.5] and found["tons_ok"]
    # the same numbers as the engine called directly on the loaded model
    expected = direct_spectrum(trained_run / "model.pt", seed=3, nle=20, tsim=40.0, tons=0.5,
                               ttrans=10.0)
    np.testing.assert_allclose(exponents, expected, rtol=1e-9, atol=1e-11)
    with np.load(out / "spectrum.npz") as arrays:
        np.testing.assert_allclose(arrays["exponents"], exponents)
    assert (out / "figures" / "spectrum.png").is_file()
    options = json.loads((out / "config.json").read_text())["options"]
    assert options["model"] == str(trained_run.resolve()) and options["n"] == 20
    assert options["model_sha256"] == found["model"]["sha256"]


def test_untrained_networks_differ_from_the_trained_ones(trained_run, tmp_path):
    args = ["--model", trained_run, "--nle", "4", *ANALYSIS]
    assert invoke(WORKFLOWS.get("spectrum"), *args, "--output-dir",
                  tmp_path / "after").exit_code == 0
    done = invoke(WORKFLOWS.get("spectrum"), *args, "--untrained", "--output-dir",
                  tmp_path / "before")
    assert done.exit_code == 0, done.output
    before, after = results(tmp_path / "before"), results(tmp_path / "after")
    assert before["model"]["trained"] is False and before["model"]["file"] == "model_initial.pt"
    assert before["model"]["sha256"] != after["model"]["sha256"]
    assert np.abs(np.array(before["exponents"]) - np.array(after["exponents"])).max() > 1e-4
    expected = direct_spectrum(trained_run / "model_initial.pt", seed=3, nle=4, tsim=40.0,
                               tons=0.5, ttrans=10.0)
    np.testing.assert_allclose(before["exponents"], expected, rtol=1e-9, atol=1e-11)


def test_convergence_of_a_trained_run(trained_run, tmp_path):
    out = tmp_path / "convergence"
    done = invoke(WORKFLOWS.get("lyapu_convergence"), "--model", trained_run, "--nle", "3",
                  "--tons", "0.2", "--tons", "auto", "--tsim", "10", "--ttrans", "5",
                  "--quiet", "--output-dir", out)
    assert done.exit_code == 0, done.output
    found = results(out)
    assert found["model"]["workflow"] == "train_rd_model" and found["model"]["trained"]
    assert found["g"] is None and found["n"] == 20
    assert found["tons_requested"] == [0.2, "auto"]
    assert found["tons"][0] == pytest.approx(0.2) and found["tons_choice"][0] is None
    assert found["tons_choice"][1]["spread_product"] <= 0.5 * 15 + 1e-9
    assert np.array(found["exponents"]).shape == (2, 2, 3)           # [tons][network][k]
    with np.load(out / "history_tons_auto.npz") as arrays:
        assert arrays["lambda"].shape[1:] == (2, 3)


def test_resume_computes_only_the_missing_networks(trained_run, tmp_path, monkeypatch):
    from nrmkit.core.errors import DivergenceError

    args = ["--model", trained_run, "--nle", "3", "--tsim", "10", "--ttrans", "2", "--quiet"]
    original = spectrum_experiment.iter_trained_networks
    computed: list[int] = []

    def failing(name, config, context, units):
        for unit in units:
            if unit == 1:
                raise DivergenceError("simulated failure")
            computed.append(unit)
            yield from original(name, config, context, [unit])

    monkeypatch.setattr(spectrum_experiment, "iter_trained_networks", failing)
    run = tmp_path / "run"
    done = invoke(WORKFLOWS.get("spectrum"), *args, "--output-dir", run)
    assert done.exit_code == 1 and "--resume" in done.output
    assert computed == [0] and len(list(run.glob("parts/*/unit-*.npz"))) == 1

    def counting(name, config, context, units):
        computed.extend(units)
        yield from original(name, config, context, units)

    monkeypatch.setattr(spectrum_experiment, "iter_trained_networks", counting)
    computed.clear()
    done = invoke(WORKFLOWS.get("spectrum"), *args, "--resume", "--output-dir", run)
    assert done.exit_code == 0, done.output
    assert computed == [1]
    monkeypatch.setattr(spectrum_experiment, "iter_trained_networks", original)
    assert invoke(WORKFLOWS.get("spectrum"), *args, "--output-dir",
                  tmp_path / "serial").exit_code == 0
    first, second = results(run), results(tmp_path / "serial")
    first.pop("elapsed_seconds")
    second.pop("elapsed_seconds")
    assert first == second


def test_connectome_run_with_populations(tmp_path):
    """A sparse matrix shared by the networks, gains and shifts per population, as the
    connectome training workflows save them."""
    generator = torch.Generator().manual_seed(5)
    n = 30
    dense = torch.randn((n, n), generator=generator, dtype=F64) * 3 / n**0.5
    dense *= torch.rand((n, n), generator=generator, dtype=F64) < 0.4
    population = torch.arange(n) % 3
    model = RateRNN(dense.to_sparse_coo(), coupling=torch.ones((1, 2), dtype=F64),
                    gain=1 + 0.2 * torch.randn((1, 2, 3), generator=generator, dtype=F64),
                    shift=0.1 * torch.randn((1, 2, 3), generator=generator, dtype=F64),
                    population=population, activation="tanh_pos")
    run = tmp_path / "fly"
    make_run(run, "train_flybrain_pop", model)
    out = tmp_path / "analysis"
    done = invoke(WORKFLOWS.get("spectrum"), "--model", run, *ANALYSIS, "--output-dir", out)
    assert done.exit_code == 0, done.output
    found = results(out)
    assert found["model"]["sparse"] and found["model"]["workflow"] == "train_flybrain_pop"
    assert np.array(found["exponents"]).shape == (2, n)
    np.testing.assert_allclose(found["mean_exponent"], euler_sum_rule_mean(0.1), atol=0.015)
    expected = direct_spectrum(run / "model.pt", seed=3, nle=n, tsim=40.0, tons=0.5,
                               ttrans=10.0)
    np.testing.assert_allclose(found["exponents"], expected, rtol=1e-9, atol=1e-11)


def make_run(folder, workflow: str, model, *, initial: bool = True):
    """A run folder as a training workflow leaves it: the marker and the model files."""
    (folder / ".nrmkit").mkdir(parents=True)
    (folder / ".nrmkit" / "run.json").write_text(json.dumps(
        {"format": 1, "workflow": workflow, "nrmkit": "test"}))
    save_model(folder / "model.pt", model)
    if initial:
        save_model(folder / "model_initial.pt", model)


def test_the_four_training_workflows_are_accepted():
    names = {workflow_named(name).name for name in (
        "train_rd_model", "train_rd_model_fixed_param", "train_flybrain_full",
        "train_flybrain_pop")}
    assert names == set(TRAINED_MODEL_WORKFLOWS)


def test_memory_estimate_of_a_trained_run(trained_run):
    config = spectrum_experiment.SpectrumConfig(model=str(trained_run), tons="auto")
    terms = workflow_named("spectrum").memory_terms(config, itemsize=4)
    size = (trained_run / "model.pt").stat().st_size
    assert terms[0].option == "--model" and terms[0].nbytes >= 4 * size
    # auto counts as one step: the most re-orthonormalisations it may make
    assert config.n_ons == round(config.tsim / config.dt)
    assert "2000 re-orthonormalisations" in " ".join(term.what for term in terms)


# -- bad input: one line, exit 2, nothing written ---------------------------------------------

def bad_runs(trained_run, tmp_path):
    """Folders that --model must refuse, by case: (args, names in the error line)."""
    not_a_run = tmp_path / "not_a_run"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("hello\n")
    other = tmp_path / "other"
    make_run(other, "spectrum", load_trained_model(trained_run))
    unfinished = tmp_path / "unfinished"
    shutil.copytree(trained_run, unfinished)
    (unfinished / "model.pt").unlink()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained_run, corrupt)
    data = (corrupt / "model.pt").read_bytes()
    (corrupt / "model.pt").write_bytes(data[:len(data) // 2])
    non_finite = tmp_path / "non_finite"
    model = load_trained_model(trained_run)
    with torch.no_grad():
        model.gain[0, 0, 3] = float("nan")
    make_run(non_finite, "train_rd_model", model)
    no_initial = tmp_path / "no_initial"
    make_run(no_initial, "train_rd_model", load_trained_model(trained_run), initial=False)
    return {
        "missing": (["--model", tmp_path / "nowhere"], ("--model", "does not exist")),
        "file": (["--model", trained_run / "model.pt"], ("--model", "not a folder")),
        "not a run": (["--model", not_a_run], ("--model", "not an nrmkit run folder")),
        "other workflow": (["--model", other], ("--model", "spectrum run", "train_rd_model")),
        "unfinished": (["--model", unfinished], ("--model", "no model.pt")),
        "corrupt": (["--model", corrupt], ("--model", "model.pt", "truncated")),
        "non-finite": (["--model", non_finite], ("--model", "gain holds 1 non-finite")),
        "no initial": (["--model", no_initial, "--untrained"],
                       ("--untrained", "model_initial.pt")),
        "untrained alone": (["--untrained"], ("--untrained", "--model")),
        "nle": (["--model", trained_run, "--nle", "21"], ("--nle", "[1, 20]")),
        "--n": (["--model", trained_run, "--n", "20"], ("--n'", "not with --model")),
        "--dt": (["--model", trained_run, "--dt", "0.05"], ("--dt", "not with --model")),
        "--activation": (["--model", trained_run, "--activation", "tanh"], ("--activation",)),
        "--g": (["--model", trained_run, "--g", "3"], ("--g", "not with --model")),
        "--n_samples": (["--model", trained_run, "--n_samples", "4"], ("--n_samples",)),
    }


SPECTRUM_ONLY = {"--variance_max": ["--variance_max", "3"], "--parameter":
                 ["--parameter", "weights"], "--independent-draws": ["--independent-draws"]}


@pytest.mark.parametrize("command", [WORKFLOWS.get("spectrum"), WORKFLOWS.get("lyapu_convergence")],
                         ids=["spectrum", "lyapu_convergence"])
def test_bad_input_is_one_line_and_leaves_nothing(trained_run, tmp_path, command):
    cases = bad_runs(trained_run, tmp_path)
    if command is WORKFLOWS.get("spectrum"):
        cases.update({name: (["--model", trained_run, *args], (name, "not with --model"))
                      for name, args in SPECTRUM_ONLY.items()})
    before = sorted(p.relative_to(trained_run) for p in trained_run.rglob("*"))
    for case, (args, names) in cases.items():
        out = tmp_path / "out"
        done = invoke(command, *args, "--quiet", "--output-dir", out)
        assert done.exit_code == 2, (case, done.output)
        assert isinstance(done.exception, SystemExit), (case, done.exception)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: Invalid value for '"), \
            (case, done.stderr)
        for name in names:
            assert name in lines[0], (case, name, lines[0])
        assert "Traceback" not in done.output
        assert not out.exists(), case
    assert sorted(p.relative_to(trained_run) for p in trained_run.rglob("*")) == before


def test_conflict_from_the_environment_is_named(trained_run, tmp_path):
    done = invoke(WORKFLOWS.get("spectrum"), "--model", trained_run, "--quiet", "--output-dir",
                  tmp_path / "out", env={"NRMKIT_N": "30"})
    assert done.exit_code == 2
    assert "'--n'" in done.stderr and "environment" in done.stderr
    assert not (tmp_path / "out").exists()


def test_console_script_prints_one_line(tmp_path):
    """As a shell calls it: a folder that is no run."""
    done = subprocess.run([sys.executable, "-m", "nrmkit", "spectrum", "--model",
                           str(tmp_path), "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "--model" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
