"""The command line as users call it: exit codes, one-line errors, run directories."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from nrmkit.cli.main import cli
from nrmkit.core.registry import WORKFLOWS

SCRIPTS = ["nrmkit", "lyapu_convergence", "transition_2_chaos", "spectrum", "lyapu_benchmark",
           "train_rd_model", "train_rd_model_fixed_param", "train_flybrain_full",
           "train_flybrain_pop", "smnist", "train_glifr", "rate_to_lif"]
TINY = ["--n", "30", "--tsim", "4", "--ttrans", "2", "--quiet"]


def invoke(command, args, **kwargs):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False, **kwargs)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_answers_help(script):
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert "Traceback" not in done.stderr


def test_umbrella_lists_and_runs_workflows(tmp_path):
    listing = invoke(cli, ["--help"])
    for name in SCRIPTS[1:]:
        assert name in listing.output
    out = tmp_path / "run"
    result = invoke(cli, ["transition-2-chaos", "--gmin", "0.5", "--gmax", "2", "--m_g", "2",
                          "--n_samples", "2", *TINY, "--output-dir", out])
    assert result.exit_code == 0, result.output
    assert (out / "results.json").exists()


BAD_INPUTS = [
    (["--gmin", "3", "--gmax", "1"], "--gmin"),
    (["--gmin", "0.5", "--gmax", "1", "--m_g", "0"], "--m_g"),
    (["--gmin", "0.5", "--gmax", "1", "--n", "1"], "--n"),
    (["--gmin", "0.5", "--gmax", "1", "--n", "10", "--nle", "11"], "--nle"),
    (["--gmin", "0.5", "--gmax", "1", "--dt", "0"], "--dt"),
    (["--gmin", "0.5", "--gmax", "1", "--dt", "1.5"], "--dt"),
    (["--gmin", "0.5", "--gmax", "1", "--tons", "0.05"], "--tons"),
    (["--gmin", "0.5", "--gmax", "1", "--tsim", "0"], "--tsim"),
    (["--gmin", "0.5", "--gmax", "1", "--tsim", "-3"], "--tsim"),
    (["--gmin", "0.5", "--gmax", "1", "--activation", "sigmoid"], "--activation"),
    (["--gmin", "0.5", "--gmax", "1", "--n_samples", "0"], "--n_samples"),
    (["--gmin", "-1", "--gmax", "1"], "--gmin"),
    (["--gmin", "nan", "--gmax", "1"], "--gmin"),
    (["--gmin", "0.5", "--gmax", "1", "--parameter", "gains"], "--parameter"),
    (["--gmin", "0.5", "--gmax", "1", "--ttrans", "-1"], "--ttrans"),
    (["--gmin", "0.5", "--gmax", "1", "--n", "abc"], "--n"),
    (["--gmax", "1"], "--gmin"),
]


@pytest.mark.parametrize(("args", "option_name"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(args, option_name, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(["transition_2_chaos", *args, "--output-dir", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error:")
    assert option_name in lines[0]
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(("command", "args", "option_name"), [
    (WORKFLOWS.get("spectrum"), ["--nle", "0"], "--nle"),
    (WORKFLOWS.get("spectrum"), ["--g", "-2"], "--g"),
    (WORKFLOWS.get("spectrum"), ["--variance_max", "0"], "--variance_max"),
    (WORKFLOWS.get("lyapu_convergence"), ["--tons", "0.01"], "--tons"),
    (WORKFLOWS.get("lyapu_convergence"), ["--nle", "500"], "--nle"),
])
def test_bad_input_other_workflows(command, args, option_name):
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2
    assert option_name in result.output
    assert "Traceback" not in result.output


def test_divergence_exits_1_naming_parameters(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        ["transition_2_chaos", "--gmin", "4", "--gmax", "5", "--m_g", "2", "--n_samples", "1",
         "--n", "40", "--activation", "linear", "--tsim", "20", "--quiet",
         "--output-dir", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0]
    assert "g=4" in lines[0] and "g=5" in lines[0]
    assert "Traceback" not in done.stderr
    assert not out.exists(), "a failed run must not leave a half-written directory"


def test_transition_run_directory(tmp_path):
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("transition_2_chaos"), [
        "--gmin", "0.5", "--gmax", "2.5", "--m_g", "3", "--n_samples", "2", "--nle", "2",
        *TINY, "--seed", "7", "--output-dir", out])
    assert result.exit_code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["workflow"] == "transition_2_chaos"
    assert config["options"]["seed"] == 7 and config["options"]["m_g"] == 3
    assert config["options"]["dtype"] == "float32"
    assert "torch" in config["versions"]
    results = json.loads((out / "results.json").read_text())
    assert results["g"] == pytest.approx([0.5, 1.5, 2.5])
    assert np.array(results["lambda_max"]).shape == (3, 2)
    assert np.array(results["exponents"]).shape == (3, 2, 2)
    exponents = np.array(results["exponents"])
    assert np.all(exponents[..., 0] >= exponents[..., 1])
    # g = 0.5 is below the transition: λ_max = ln(1 - dt + dt·ρ)/dt with spectral radius ρ ≈ g
    assert all(value < -0.3 for value in results["lambda_max"][0])
    arrays = np.load(out / "lambda.npz")
    np.testing.assert_allclose(arrays["exponents"][..., 0], results["lambda_max"])
    for suffix in ("png", "pdf"):
        assert (out / "figures" / f"transition_2_chaos.{suffix}").stat().st_size > 1000


def test_same_seed_same_numbers_and_refusal_to_overwrite(tmp_path):
    args = ["--gmin", "1", "--gmax", "2", "--m_g", "2", "--n_samples", "2", *TINY]
    first, second = tmp_path / "a", tmp_path / "b"
    assert invoke(WORKFLOWS.get("transition_2_chaos"), [*args, "--output-dir",
                                                        first]).exit_code == 0
    assert invoke(WORKFLOWS.get("transition_2_chaos"), [*args, "--output-dir",
                                                        second]).exit_code == 0
    a = json.loads((first / "results.json").read_text())["lambda_max"]
    b = json.loads((second / "results.json").read_text())["lambda_max"]
    assert a == b
    refused = CliRunner().invoke(WORKFLOWS.get("transition_2_chaos"),
                                 [*args, "--output-dir", str(first)])
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    replaced = invoke(WORKFLOWS.get("transition_2_chaos"),
                      [*args, "--seed", "3", "--output-dir", first, "--overwrite"])
    assert replaced.exit_code == 0
    assert json.loads((first / "results.json").read_text())["lambda_max"] != a


def test_overwrite_never_clears_a_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(WORKFLOWS.get("transition_2_chaos"), [
        "--gmin", "1", "--gmax", "2", *TINY, "--output-dir", str(tmp_path), "--overwrite"])
    assert result.exit_code == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_independent_draws_and_float64(tmp_path):
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("transition_2_chaos"), [
        "--gmin", "0.5", "--gmax", "0.6", "--m_g", "2", "--n_samples", "3",
        "--independent-draws", "--dtype", "float64", *TINY, "--output-dir", out])
    assert result.exit_code == 0
    values = np.array(json.loads((out / "results.json").read_text())["lambda_max"])
    assert values.shape == (2, 3) and np.all(values < 0)
    assert len({round(v, 12) for v in values[0]}) == 3  # independent networks differ


def test_config_file_and_environment(tmp_path, monkeypatch):
    config = tmp_path / "sweep.toml"
    config.write_text('[transition_2_chaos]\ngmin = 0.5\ngmax = 1.5\nm_g = 2\n'
                      'n-samples = 1\nn = 30\ntsim = 4\nttrans = 2\n')
    monkeypatch.setenv("NRMKIT_SEED", "11")
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("transition_2_chaos"),
                    ["--config", config, "--m_g", "3", "--quiet", "--output-dir", out])
    assert result.exit_code == 0
    options = json.loads((out / "config.json").read_text())["options"]
    assert options["gmin"] == 0.5 and options["m_g"] == 3 and options["n_samples"] == 1
    assert options["seed"] == 11
    bad = tmp_path / "bad.toml"
    bad.write_text("gmim = 1\n")
    refused = CliRunner().invoke(WORKFLOWS.get("transition_2_chaos"), ["--config", str(bad)])
    assert refused.exit_code == 2 and "gmim" in refused.output


def test_config_file_top_level_keys_and_the_workflow_table_combine(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("n = 30\nseed = 3\ngmin = 1\ngmax = 2\nm_g = 2\nn_samples = 1\n"
                      "[smnist]\nnhid = 3\n"          # another workflow's table: skipped
                      "[transition_2_chaos]\ntsim = 4\nttrans = 2\nseed = 4\n")
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("transition_2_chaos"),
                    ["--config", config, "--quiet", "--output-dir", out])
    assert result.exit_code == 0, result.output
    options = json.loads((out / "config.json").read_text())["options"]
    assert (options["n"], options["tsim"], options["seed"]) == (30, 4.0, 4)


@pytest.mark.parametrize(("content", "reason"), [
    ("[transiton_2_chaos]\nn = 20\n", "unknown table [transiton_2_chaos]"),
    ("n = {a = 1}\n", "n = {…} in run.toml: a value is needed, not a table"),
    ("[transition_2_chaos]\nn = {a = 1}\n", "a number, a string or a boolean is needed"),
    ("tsim = [1, 2]\n", "tsim = [1, 2] in run.toml: one value is needed, not a list"),
    ("tsim = 1979-05-27\n", "tsim = 1979-05-27 in run.toml: a number, a string or a boolean"),
    ("n = 20.5\n", "an integer is needed"),
    ("tsim = true\n", "a number is needed, not a boolean"),
])
def test_config_file_entries_that_would_be_lost_or_crash_are_refused(tmp_path, monkeypatch,
                                                                      content, reason):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text(content)
    refused = CliRunner().invoke(WORKFLOWS.get("transition_2_chaos"),
                                 ["--config", "run.toml", "--quiet"])
    assert refused.exit_code == 2, refused.output
    assert reason in refused.output and "Traceback" not in refused.output
    assert refused.output.strip().splitlines()[-1].startswith("Error: Invalid value for "
                                                              "'--config'")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.toml"]


@pytest.mark.parametrize(("raised", "status", "line"), [
    ("EOFError", 1, "Error: unexpected EOFError:"),
    ("KeyboardInterrupt", 130, "Aborted."),
])
def test_end_of_file_is_a_failure_and_ctrl_c_one_line(raised, status, line):
    """Click would report an EOFError (a truncated file read by a library) as "Aborted!",
    like Ctrl-C, after an empty line; Ctrl-C before a run's own handlers: one line."""
    code = ("import click\n"
            "from nrmkit.cli.options import Command\n"
            "@click.command('reader', cls=Command)\n"
            "def reader():\n"
            f"    raise {raised}()\n"
            "reader.main(args=[], prog_name='reader')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith(line)


def test_parameter_gains_varies_the_gains_of_the_sweep(tmp_path):
    """`--parameter gains` reaches the networks: the same seed with and without it gives
    other exponents, and the option is recorded (what the gains do to the dynamics:
    tests/dynamics/test_connectivity.py)."""
    def lambda_max(*extra):
        out = tmp_path / "-".join(("run", *extra[1::2]))
        result = invoke(WORKFLOWS.get("transition_2_chaos"), [
            "--gmin", "0.5", "--gmax", "2", "--m_g", "2", "--n_samples", "1",
            "--activation", "strech", *TINY, "--parameter", "weights", *extra,
            "--output-dir", out])
        assert result.exit_code == 0, result.output
        options = json.loads((out / "config.json").read_text())["options"]
        return np.array(json.loads((out / "results.json").read_text())["lambda_max"]), options

    plain, plain_options = lambda_max()
    varied, options = lambda_max("--parameter", "gains")
    assert list(plain_options["parameter"]) == ["weights"]
    assert sorted(options["parameter"]) == ["gains", "weights"]
    assert np.all(np.abs(varied - plain) > 1e-6)


def test_save_false_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(WORKFLOWS.get("transition_2_chaos"), [
        "--gmin", "1", "--gmax", "2", "--m_g", "2", "--n_samples", "1", *TINY,
        "--save", "false"])
    assert result.exit_code == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variable", ["runs", "", " "])
def test_default_output_location(tmp_path, monkeypatch, variable):
    """``$NRMKIT_RUNS_DIR`` if set, ``./data/runs`` if unset or empty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NRMKIT_RUNS_DIR", str(tmp_path / variable) if variable.strip()
                       else variable)
    result = invoke(WORKFLOWS.get("transition_2_chaos"), [
        "--gmin", "1", "--gmax", "2", "--m_g", "2", "--n_samples", "1", *TINY])
    assert result.exit_code == 0
    root = tmp_path / "runs" if variable.strip() else tmp_path / "data" / "runs"
    runs = list((root / "transition_2_chaos").iterdir())
    assert len(runs) == 1 and (runs[0] / "results.json").exists()
    assert [path.name for path in tmp_path.iterdir()] == [root.relative_to(tmp_path).parts[0]]


def test_spectrum_run_directory(tmp_path):
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("spectrum"), [
        "--n", "100", "--g", "0.5", "--g", "6", "--n_samples", "2", "--tsim", "40",
        "--tons", "1", "--ttrans", "20", "--dtype", "float64", "--quiet", "--output-dir", out])
    assert result.exit_code == 0
    results = json.loads((out / "results.json").read_text())
    exponents = np.array(results["exponents"])
    assert exponents.shape == (2, 2, 100)
    assert np.all(np.diff(exponents, axis=-1) <= 1e-12), "exponents must be descending"
    # sum rule: the mean of a full spectrum is ln(1 - dt)/dt whatever g
    assert np.array(results["mean_exponent"]) == pytest.approx(math.log(0.9) / 0.1, abs=0.02)
    assert results["sum_rule_mean"] == pytest.approx(math.log(0.9) / 0.1)
    assert np.all(np.array(results["kaplan_yorke_dim"])[0] == 0)  # stable fixed point
    # chaotic at g = 6 (at N ≤ 80, g = 4 many networks settle on limit cycles instead)
    assert np.all(np.array(results["kaplan_yorke_dim"])[1] > 0)
    assert np.all(np.array(results["ks_entropy"])[1] > 0)
    assert results["tons_ok"] is True
    assert (out / "figures" / "spectrum.png").exists() and (out / "spectrum.npz").exists()


def test_spectrum_default_grid_is_powers_of_two():
    from nrmkit.experiments.lyapunov.spectrum import SpectrumConfig

    assert SpectrumConfig(variance_max=4).couplings == [1.0, 2.0, 4.0, 8.0]
    assert SpectrumConfig(n=10).nle == 10


def test_convergence_run_directory(tmp_path):
    out = tmp_path / "run"
    result = invoke(WORKFLOWS.get("lyapu_convergence"), [
        "--tons", "0.2", "--tons", "1", "--g", "3", "--n", "40", "--nle", "5",
        "--n_samples", "2", "--tsim", "30", "--ttrans", "10", "--quiet", "--output-dir", out])
    assert result.exit_code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["tons"] == pytest.approx([0.2, 1.0])
    finals = np.array(results["exponents"])
    assert finals.shape == (2, 2, 5)
    # the same networks and bases at two t_ONS: estimates agree within their errors
    np.testing.assert_allclose(finals[0], finals[1], atol=0.02)
    history = results["history"][0]
    assert np.array(history["lambda"]).shape == (len(history["time"]), 5)
    assert (out / "history_tons_0.2.npz").exists()
    assert (out / "figures" / "lyapu_convergence.pdf").exists()


def test_python_module_invocation_does_not_import_torch_for_help():
    code = ("import sys; from nrmkit.cli.main import cli; "
            "from nrmkit.cli.commands import lyapunov; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "False"


def test_every_registered_workflow_is_a_declared_console_script_with_a_summary():
    """pyproject's [project.scripts], the registry and the umbrella command's summaries name
    the same workflows."""
    import re
    from pathlib import Path

    from nrmkit.cli.main import _summary
    from nrmkit.core.registry import WORKFLOWS

    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]  # tomllib: 3.11+
    scripts = dict(re.findall(r'^(\w+) = "([^"]+)"$', section, flags=re.MULTILINE))
    for name in WORKFLOWS.names():
        assert scripts.get(name) == WORKFLOWS.location(name), name
        assert _summary(name), name
    assert set(scripts) == {*WORKFLOWS.names(), "nrmkit"}
