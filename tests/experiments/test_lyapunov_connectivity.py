"""``--connectivity`` and the activity figure of the Lyapunov workflows, as users call them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS

SHORT = ["--tsim", "10", "--ttrans", "5", "--tons", "0.5", "--quiet"]
T2C = ["--gmin", "0.5", "--gmax", "2", "--m_g", "2", "--n_samples", "2", "--n", "20",
       "--nle", "2", *SHORT]


def invoke(name, args):
    return CliRunner().invoke(WORKFLOWS.get(name), [str(a) for a in args])


def run(name, out, *args) -> dict:
    result = invoke(name, [*args, "--output-dir", out])
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())


def test_default_connectivity_gives_the_numbers_of_before(tmp_path, one_thread):
    """The i.i.d. Gaussian default reproduces the exponents written before the ensembles
    existed (same seed, same options; float32), and ``--connectivity gaussian`` is the
    default."""
    before = [[-0.548249680477721, -0.5158303645741394],
              [-0.47093626909966557, -0.4002879731345551]]
    default = run("transition_2_chaos", tmp_path / "a", *T2C)
    np.testing.assert_allclose(default["lambda_max"], before, rtol=1e-6)
    explicit = run("transition_2_chaos", tmp_path / "b", *T2C, "--connectivity", "gaussian")
    assert explicit["lambda_max"] == default["lambda_max"]
    assert default["connectivity"] == {"ensemble": "gaussian"}
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert json.dumps(config).count('"connectivity": "gaussian"') == 1


def test_symmetric_transition_records_the_ensemble_and_its_linear_theory(tmp_path, one_thread):
    """At g = 0.5 (below the semicircle's edge 1/√2) the theory is the linearisation with
    top eigenvalue √2·g; at g = 2 there is none (null)."""
    results = run("transition_2_chaos", tmp_path, *T2C, "--connectivity", "symmetric")
    assert results["connectivity"] == {"ensemble": "symmetric"}
    theory = results["mean_field_lambda_max"]
    assert theory[0] == pytest.approx(math.log(0.9 + 0.1 * 0.5 * math.sqrt(2)) / 0.1)
    assert theory[1] is None
    assert (tmp_path / "figures" / "transition_2_chaos.png").exists()


def test_ei_spectrum_keeps_the_sum_rule(tmp_path, one_thread):
    """A balanced E/I matrix has a zero diagonal, so the mean of a full spectrum is still
    ln(1 − dt)/dt + O(1/N) whatever g."""
    results = run("spectrum", tmp_path, "--g", "2", "--g", "5", "--n_samples", "1",
                  "--n", "20", "--connectivity", "ei", "--connection_prob", "0.3",
                  "--frac_exc", "0.75", *SHORT)
    assert results["connectivity"] == {"ensemble": "ei", "frac_exc": 0.75,
                                       "connection_prob": 0.3}
    mean = np.array(results["mean_exponent"])
    np.testing.assert_allclose(mean, math.log(0.9) / 0.1, atol=0.01)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "0.75" in json.dumps(config) and '"ei"' in json.dumps(config)


@pytest.mark.parametrize(("args", "option"), [
    (["--connectivity", "scale_free"], "--connectivity"),
    (["--connectivity", "ei", "--connection_prob", "0.001"], "--connection_prob"),
    (["--connectivity", "ei", "--connection_prob", "1.5"], "--connection_prob"),
    (["--connectivity", "ei", "--frac_exc", "1.0"], "--frac_exc"),
    (["--connectivity", "ei", "--frac_exc", "0.98"], "--frac_exc"),
])
def test_bad_connectivity_options_name_the_option(args, option):
    result = invoke("transition_2_chaos", [*T2C, *args])
    assert result.exit_code == 2
    assert option in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["spectrum", "lyapu_convergence"])
def test_connectivity_is_refused_with_a_model(name, tmp_path):
    result = invoke(name, ["--model", tmp_path, "--connectivity", "ei"])
    assert result.exit_code == 2
    assert "--connectivity" in result.output and "--model" in result.output


def test_convergence_writes_the_activity_figure(tmp_path, one_thread):
    results = run("lyapu_convergence", tmp_path, "--n", "24", "--nle", "2", "--n_samples",
                  "3", "--g", "2", "--connectivity", "symmetric", "--activity_neurons", "4",
                  "--activity_time", "20", *SHORT)
    assert results["connectivity"] == {"ensemble": "symmetric"}
    arrays = np.load(tmp_path / "activity.npz")
    time = arrays["time"]
    assert time[0] == 0 and time[-1] == pytest.approx(20.0)
    assert arrays["states"].shape == (len(time), 4)
    assert arrays["population"].shape == (len(time), 3)
    assert arrays["image"].shape == (len(time), 24)
    assert results["activity"]["neurons"] == arrays["neurons"].tolist()
    # the population activity of network 0 is the mean of its image (φ of every neuron)
    np.testing.assert_allclose(arrays["population"][:, 0], arrays["image"].mean(1), rtol=1e-5)
    for suffix in ("png", "pdf"):
        assert (tmp_path / "figures" / f"activity.{suffix}").stat().st_size > 1000


def test_activity_can_be_switched_off_and_is_checked(tmp_path):
    results = run("lyapu_convergence", tmp_path, "--n", "12", "--nle", "1", "--n_samples",
                  "1", "--activity_neurons", "0", *SHORT)
    assert results["activity"] is None
    assert not (tmp_path / "activity.npz").exists()
    assert not (tmp_path / "figures" / "activity.png").exists()
    for args, option in ((["--activity_neurons", "13"], "--activity_neurons"),
                         (["--activity_time", "-1"], "--activity_time")):
        refused = invoke("lyapu_convergence", ["--n", "12", "--nle", "1", *args, *SHORT])
        assert refused.exit_code == 2 and option in refused.output
