"""Sizes checked before anything is allocated, and failures named in one line.

* time spans of more than ``MAX_STEPS`` Euler steps are refused naming the option;
* the memory estimates (``Workflow.memory_terms``) of absurd sizes exceed any machine and
  name the option that made them large, while the defaults stay small (and need no torch);
* options that would train nothing, or compare the loss with NaN, are refused;
* a diverged simulation exits 1 with one line naming the coupling and sample(s).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from nrmkit.core.errors import ConfigError
from nrmkit.core.registry import workflow_named
from nrmkit.experiments.lyapunov import (
    lyapu_benchmark,
    lyapu_convergence,
    spectrum,
    transition_2_chaos,
)
from nrmkit.experiments.lyapunov.settings import MAX_STEPS
from nrmkit.experiments.spectrum_training import (
    train_flybrain_full,
    train_flybrain_pop,
    train_rd_model,
    train_rd_model_fixed_param,
)

GIB = 1024.0**3
TIB = 1024.0**4

#: workflow module → its config class.
CONFIGS = {
    transition_2_chaos: transition_2_chaos.TransitionConfig,
    spectrum: spectrum.SpectrumConfig,
    lyapu_convergence: lyapu_convergence.ConvergenceConfig,
    lyapu_benchmark: lyapu_benchmark.BenchmarkConfig,
    train_rd_model: train_rd_model.RandomTrainingConfig,
    train_rd_model_fixed_param: train_rd_model_fixed_param.FixedParamConfig,
    train_flybrain_full: train_flybrain_full.FlybrainConfig,
    train_flybrain_pop: train_flybrain_pop.FlybrainPopConfig,
}
WORKFLOWS = {
    transition_2_chaos: workflow_named("transition_2_chaos"),
    spectrum: workflow_named("spectrum"),
    lyapu_convergence: lyapu_convergence.Convergence(),
    lyapu_benchmark: lyapu_benchmark.LyapunovBenchmark(),
    train_rd_model: workflow_named("train_rd_model"),
    train_rd_model_fixed_param: workflow_named("train_rd_model_fixed_param"),
    train_flybrain_full: workflow_named("train_flybrain_full"),
    train_flybrain_pop: workflow_named("train_flybrain_pop"),
}


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(done: subprocess.CompletedProcess, status: int,
                          *expected: str) -> str:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def total_and_largest(module, itemsize: int = 4, **options):
    config = CONFIGS[module](**options)
    terms = WORKFLOWS[module].memory_terms(config, itemsize=itemsize)
    assert terms and all(term.nbytes >= 0 and term.what for term in terms)
    return sum(term.nbytes for term in terms), max(terms, key=lambda term: term.nbytes)


# -- step bound ----------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "option_name"), [
    (["--tsim", "1e308"], "--tsim"),
    (["--dt", "1e-300"], "--dt"),
    (["--ttrans", "1e12"], "--ttrans"),
    (["--tbasis", "1e12"], "--tbasis"),
])
def test_more_steps_than_the_maximum_exit_2_naming_the_option(args, option_name):
    done = run_script("transition_2_chaos", "--gmin", "1", "--gmax", "2", *args, timeout=60)
    line = assert_one_line_error(done, 2, option_name, "Euler steps")
    assert f"{MAX_STEPS:.0e}" in line


@pytest.mark.parametrize("module", list(CONFIGS))
def test_every_lyapunov_workflow_bounds_its_steps(module):
    with pytest.raises(ConfigError) as caught:
        CONFIGS[module](tsim=1e308)
    assert caught.value.option == "--tsim"
    with pytest.raises(ConfigError) as caught:
        CONFIGS[module](dt=1e-300)
    assert caught.value.option == "--dt"
    with pytest.raises(ConfigError) as caught:
        CONFIGS[module](tbasis=float("inf"))
    assert caught.value.option == "--tbasis"


def test_the_step_bound_lets_the_maximum_through():
    at_bound = (MAX_STEPS - 1) * 0.1  # with ttrans = tbasis = 0: MAX_STEPS − 1 steps
    transition_2_chaos.TransitionConfig(tsim=at_bound, ttrans=0.0, tbasis=0.0)
    with pytest.raises(ConfigError):
        transition_2_chaos.TransitionConfig(tsim=2 * at_bound, ttrans=0.0, tbasis=0.0)


@pytest.mark.parametrize("name", ["reference_steps", "independent_steps",
                                  "full_spectrum_steps", "scaling_steps"])
def test_benchmark_step_counts_are_bounded(name):
    with pytest.raises(ConfigError) as caught:
        lyapu_benchmark.BenchmarkConfig(**{name: MAX_STEPS + 1})
    assert caught.value.option == "--" + name.replace("_", "-")


# -- memory estimates ----------------------------------------------------------------------

@pytest.mark.parametrize("module", list(CONFIGS))
def test_defaults_need_little_memory(module):
    total, _ = total_and_largest(module)
    assert total < 2 * GIB
    total64, _ = total_and_largest(module, itemsize=8)
    assert total < total64 < 4 * GIB


@pytest.mark.parametrize(("module", "options", "option_name"), [
    (transition_2_chaos, {"n": 1_000_000}, "--n"),
    (transition_2_chaos, {"m_g": 100_000_000}, "--m_g"),
    (transition_2_chaos, {"m_g": 100_000, "independent_draws": True}, "--m_g"),
    (transition_2_chaos, {"m_g": 1000, "tsim": 5e7, "tons": 0.1}, "--tsim"),
    (spectrum, {"n": 100_000}, "--n"),
    (spectrum, {"g": tuple(range(1, 1_000_001))}, "--g"),
    (lyapu_convergence, {"n_samples": 10_000_000}, "--n_samples"),
    (lyapu_benchmark, {"n": 1_000_000}, "--n"),
    (lyapu_benchmark, {"full_spectrum_n": 1_000_000}, "--full-spectrum-n"),
    (train_rd_model, {"n_samples": 100_000_000, "samples_per_batch": 100_000_000},
     "--samples_per_batch"),
    (train_rd_model, {"n": 1_000_000, "nle": 1}, "--n"),
    (train_rd_model, {"tsim": 5e7, "samples_per_batch": 1000, "n_samples": 1000}, "--tsim"),
    (train_rd_model_fixed_param, {"n": 1_000_000, "nle": 1}, "--n"),
    (train_flybrain_full, {"n_samples": 10_000_000, "samples_per_batch": 10_000_000},
     "--samples_per_batch"),
    (train_flybrain_pop, {"nle": 2000, "samples_per_batch": 1000, "n_samples": 1000},
     "--samples_per_batch"),
])
def test_absurd_sizes_exceed_any_machine_naming_the_option(module, options, option_name):
    total, largest = total_and_largest(module, **options)
    assert total > 1 * TIB
    assert largest.option == option_name, largest


def test_independent_draws_count_one_matrix_per_coupling():
    shared, _ = total_and_largest(transition_2_chaos, n=4000, m_g=10)
    independent, largest = total_and_largest(transition_2_chaos, n=4000, m_g=10,
                                             independent_draws=True)
    assert independent > 8 * shared
    assert "10 4000×4000 weight matrices" in largest.what


def test_trained_weights_count_gradients_and_adam_moments():
    n, itemsize = 2000, 4
    gains, _ = total_and_largest(train_rd_model, n=n, nle=1, tsim=1.0)
    weights, largest = total_and_largest(train_rd_model, n=n, nle=1, tsim=1.0,
                                         train_weights=True)
    assert weights - gains >= 4 * n * n * itemsize and "Adam" in largest.what


def test_memory_estimates_do_not_import_torch():
    code = ("import sys\n"
            "from nrmkit.experiments.lyapunov import transition_2_chaos as t\n"
            "from nrmkit.experiments.spectrum_training import train_rd_model as r\n"
            "t.TransitionToChaos().memory_terms(t.TransitionConfig(n=5000), itemsize=4)\n"
            "r.TrainRandomModel().memory_terms(r.RandomTrainingConfig(n=5000), itemsize=4)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = run_script(sys.executable, "-c", code, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_run_too_large_for_memory_exits_2_naming_the_option(tmp_path):
    out = tmp_path / "run"
    done = run_script("transition_2_chaos", "--gmin", "1", "--gmax", "2", "--n", "1000000",
                      "--output-dir", out, timeout=60)
    assert_one_line_error(done, 2, "--n", "1000000×1000000 weight matrix")
    assert not out.exists()


# -- options that cannot work ----------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--number_param", "0", "0", "0"],
    ["--number_param", "0", "5", "5", "--train_gains", "false", "--train_shifts", "false",
     "--train_weights", "true"],
    ["--number_param", "10", "0", "0"],  # weights not trained: gains and shifts get none
])
def test_fixed_param_that_trains_nothing_exits_2(args, tmp_path):
    done = run_script("train_rd_model_fixed_param", "--n", "10", *args,
                      "--output-dir", tmp_path / "run", timeout=60)
    assert_one_line_error(done, 2, "--number_param", "nothing would be trained")
    assert not (tmp_path / "run").exists()


def test_fixed_param_with_a_trainable_entry_is_accepted():
    train_rd_model_fixed_param.FixedParamConfig(n=10, number_param=(0, 1, 0))
    train_rd_model_fixed_param.FixedParamConfig(
        n=10, number_param=(3, 0, 0), train_weights=True, train_gains=False,
        train_shifts=False)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_early_stopping_must_be_finite(value):
    done = run_script("train_rd_model", "--n", "10", "--early_stopping", value, timeout=60)
    assert_one_line_error(done, 2, "--early_stopping", "finite")


# -- divergence messages ---------------------------------------------------------------------

TRAIN = ["--nle", "2", "--tsim", "4", "--ttrans", "2", "--n_epochs", "2", "--quiet"]
LINEAR = ["--activation", "linear", "--train_weights", "true", "--train_gains", "false",
          "--train_shifts", "false"]
FLY = ["--cell_classes", "APL,MBON", "--g", "1000", "--activation", "linear",
       "--spectrum_nle", "3"]


@pytest.mark.parametrize(("script", "args", "named"), [
    ("lyapu_benchmark",
     ["--n", "20", "--m_g", "2", "--n_samples", "2", "--gmin", "40", "--gmax", "50",
      "--activation", "linear", "--tsim", "10", "--ttrans", "5", "--reference-steps", "5",
      "--independent-steps", "5", "--full-spectrum-n", "10", "--full-spectrum-steps", "2",
      "--no-scaling", "--quiet"],
     ["g=40, sample 0", "g=50, sample 1"]),
    ("train_rd_model",
     ["--n", "10", "--g", "50", *LINEAR, "--n_samples", "2", "--samples_per_batch", "2",
      *TRAIN],
     ["g=50, sample 0", "g=50, sample 1"]),
    ("train_rd_model_fixed_param",
     ["--n", "10", "--g", "50", *LINEAR, "--number_param", "5", "2", "2", "--n_samples", "3",
      "--samples_per_batch", "1", *TRAIN],
     ["g=50, sample 0"]),
    ("train_flybrain_full", [*FLY, "--n_samples", "2", "--samples_per_batch", "2", *TRAIN],
     ["g=1000, sample 0", "g=1000, sample 1"]),
    ("train_flybrain_pop", [*FLY, *TRAIN], ["g=1000, sample 0"]),
])
def test_divergence_exits_1_naming_coupling_and_samples(script, args, named, tmp_path):
    out = tmp_path / "run"
    done = run_script(script, *args, "--output-dir", out)
    line = assert_one_line_error(done, 1, "diverged", *named)
    assert "--dt" in line  # the hint
    assert not (out / "results.json").exists()


def test_divergence_during_training_names_the_epoch(tmp_path):
    # a stable linear network whose weights a huge learning rate makes explode
    done = run_script("train_rd_model", "--n", "10", "--g", "0.5", *LINEAR, "--lr", "1000",
                      "--nle", "2", "--tsim", "10", "--ttrans", "2", "--n_epochs", "5",
                      "--quiet", "--save", "false")
    assert_one_line_error(done, 1, "diverged", "g=0.5, sample 0, epoch 2", "--lr")


def test_training_says_what_it_builds_before_building(tmp_path):
    done = run_script("train_rd_model", "--n", "10", "--nle", "1", "--tsim", "1",
                      "--ttrans", "1", "--n_epochs", "1", "--n_samples", "2",
                      "--samples_per_batch", "2", "--spectrum_nle", "1",
                      "--output-dir", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    building = next(i for i, line in enumerate(lines) if "building 2 networks" in line)
    first_epoch = next(i for i, line in enumerate(lines) if "epoch" in line and "loss" in line)
    assert building < first_epoch
    assert "2 per batch" in " ".join(lines[:building])


MEASURE_PEAK = """
import sys
from pathlib import Path
from click.testing import CliRunner
from nrmkit.cli.commands.lyapunov import transition_2_chaos
common = ["--gmin", "1", "--gmax", "3", "--m_g", "7", "--n_samples", "1", "--tsim", "2",
          "--ttrans", "1", "--independent-draws", "--save", "false", "--quiet"]
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
assert CliRunner().invoke(transition_2_chaos, [*common, "--n", "20"]).exit_code == 0
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts at the current RSS
before = status("VmRSS")
assert CliRunner().invoke(transition_2_chaos, [*common, "--n", sys.argv[1]]).exit_code == 0
print(status("VmHWM") - before)
"""


def test_estimate_matches_the_measured_peak():
    """The estimate of a sweep of 7 independent 2500×2500 matrices is not below the peak
    resident memory the run adds (measured in a fresh process, after its imports and a tiny
    run), and not above it by more than a factor of 1.6."""
    n = 2500
    done = run_script(sys.executable, "-c", MEASURE_PEAK, str(n), timeout=300)
    assert done.returncode == 0, done.stderr
    measured = float(done.stdout.split()[-1])
    estimated, _ = total_and_largest(transition_2_chaos, n=n, m_g=7, gmin=1.0, gmax=3.0,
                                     n_samples=1, tsim=2.0, ttrans=1.0, independent_draws=True)
    assert measured > 200 * 2**20, "the run must be large enough to measure"
    assert estimated / 1.6 < measured < estimated * 1.1, (measured, estimated)
