"""LIF rate-to-spiking conversion (nrmkit.nn.lif) and the .mat model files."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest
import torch

from nrmkit.core.errors import DataError
from nrmkit.datasets.matfile import (
    effective_weights,
    mat_file_name,
    read_rate_model_mat,
    write_rate_model_mat,
)
from nrmkit.nn.lif import LIFParameters, lif_rate_constant_current, simulate_lif

NOISELESS = LIFParameters(noise_std=0.0)


def _single_neuron(drives, duration_ms=2000.0, params=NOISELESS, **kwargs):
    """One unconnected neuron per trial, held at total input ``bias + drive``."""
    drives = torch.as_tensor(drives, dtype=torch.float32)
    t_rate = round(duration_ms / params.rate_step_ms)
    inputs = drives[None, :, None].expand(t_rate, len(drives), 1)
    return simulate_lif(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1), 0.0,
                        torch.tensor([20.0]), inputs, scaling=torch.tensor([1.0]),
                        params=params, generator=torch.Generator().manual_seed(0), **kwargs)


def _intervals(times):
    return torch.diff(times.double())


def test_single_neuron_matches_analytic_rate():
    currents = [-38.0, -35.0, -25.0, -10.0, 0.0, 20.0]
    drives = [c - NOISELESS.bias for c in currents]
    res = _single_neuron(drives, record_spikes=False)
    counts = res.spike_counts[0, :, 0]
    assert torch.all(counts > 10)
    # one trial per current: the measured rate from the spike times of every trial
    for b, current in enumerate(currents):
        single = _single_neuron([drives[b]])
        times, neurons = single.spikes[0]
        assert torch.all(neurons == 0)
        measured = 1000.0 / _intervals(times)[1:].mean().item()   # skip the first interval
        expected = lif_rate_constant_current(current, NOISELESS)
        assert measured == pytest.approx(expected, rel=0.02), current
        # v0 differs between the batched and the single run: at most one spike apart
        assert abs(int(single.spike_counts[0, 0, 0]) - int(counts[b])) <= 1
    tensor_rates = lif_rate_constant_current(torch.tensor([*currents, -45.0]), NOISELESS)
    assert tensor_rates[-1] == 0
    assert tensor_rates[1].item() == pytest.approx(lif_rate_constant_current(-35.0, NOISELESS))


def test_subthreshold_input_gives_no_spikes():
    params = LIFParameters(v0_range=(-65.0, -45.0), noise_std=0.0)
    res = _single_neuron([0.0, -1.0, -20.0], duration_ms=500.0, params=params)
    assert res.spike_counts.sum() == 0
    assert len(res.spikes[0][0]) == 0
    assert torch.all(res.mean_rate_hz == 0)


def test_refractory_period_respected():
    params = LIFParameters(t_ref=2.0, noise_std=0.0)
    res = _single_neuron([400.0, 1e5], duration_ms=200.0, params=params)
    for drive in (400.0, 1e5):
        single = _single_neuron([drive], duration_ms=200.0, params=params)
        times, _ = single.spikes[0]
        gaps = _intervals(times)
        assert len(times) > 50
        assert gaps.min().item() > params.t_ref
    # driven without bound: fires on the first step after the refractory period
    assert gaps.min().item() == pytest.approx(params.t_ref + params.dt, abs=1e-3)
    assert gaps.max().item() == pytest.approx(params.t_ref + params.dt, abs=1e-3)
    assert res.spike_counts[0, 1, 0] >= 200.0 / (params.t_ref + params.dt) - 1


def _pair_counts(weight: float, post_drive: float) -> int:
    """Neuron 0 fires regularly (≈ 85 Hz); neuron 1 gets ``weight`` (mV·s) from it, a mean
    current of ``weight · 85`` mV; returns the spikes of neuron 1."""
    w = torch.tensor([[0.0, 0.0], [weight, 0.0]])
    w_in = torch.eye(2)
    t_rate = 200
    inputs = torch.tensor([15.0, post_drive])[None, None, :].expand(t_rate, 1, 2)
    res = simulate_lif(w, w_in, torch.zeros(2), 0.0, torch.tensor([10.0, 10.0]), inputs,
                       scaling=torch.tensor([1.0]), params=NOISELESS,
                       generator=torch.Generator().manual_seed(3))
    return int(res.spike_counts[0, 0, 1])


def test_excitatory_and_inhibitory_synapses():
    base = _pair_counts(0.0, 2.0)            # slightly above threshold alone
    assert base > 0
    assert _pair_counts(0.06, 2.0) > base + 20
    assert _pair_counts(-0.06, 2.0) < base - 5
    # an excitatory input can make a sub-threshold neuron fire at all
    assert _pair_counts(0.0, -3.0) == 0
    assert _pair_counts(0.1, -3.0) > 0


def _random_network(n=30, n_in=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    exc = torch.rand(n, generator=g) < 0.8
    w = torch.relu(torch.randn(n, n, generator=g)) * 0.015 / math.sqrt(n)
    w_eff = w * torch.where(exc, 1.0, -1.0)[None, :]
    w_in = torch.randn(n, n_in, generator=g) * 5.0
    w_out = torch.randn(n, generator=g)
    taus = 4.0 + 16.0 * torch.rand(n, generator=g)
    return w_eff, w_in, w_out, taus


@pytest.mark.parametrize("tau_rise", [2.0, 0.0])
def test_batched_scaling_equals_separate_runs(tau_rise):
    w_eff, w_in, w_out, taus = _random_network()
    g = torch.Generator().manual_seed(5)
    inputs = torch.randn(20, 3, 2, generator=g) * 10.0
    params = LIFParameters(noise_std=0.5, tau_rise=tau_rise)
    scaling = torch.tensor([0.5, 1.0, 3.0])
    batched = simulate_lif(w_eff, w_in, w_out, 0.3, taus, inputs, scaling=scaling,
                           params=params, generator=torch.Generator().manual_seed(9))
    assert batched.output.shape == (20, 3, 3)
    assert batched.spike_counts.shape == (3, 3, 30)
    assert batched.mean_rate_hz.shape == (3, 3)
    assert batched.spike_counts.sum() > 0
    for ell, lam in enumerate(scaling):
        alone = simulate_lif(w_eff, w_in, w_out, 0.3, taus, inputs, scaling=lam[None],
                             params=params, generator=torch.Generator().manual_seed(9))
        assert torch.equal(alone.spike_counts[0], batched.spike_counts[ell])
        torch.testing.assert_close(alone.output[:, 0], batched.output[:, ell], rtol=2e-5,
                                   atol=1e-5)
        assert torch.equal(alone.spikes[0][0], batched.spikes[ell][0])
        assert torch.equal(alone.spikes[0][1], batched.spikes[ell][1])
    # the raster of trial 0 agrees with the spike counts of trial 0
    raster = batched.raster(1)
    assert raster.shape == (20 * 100, 30)
    assert torch.equal(raster.sum(0), batched.spike_counts[1, 0])


@pytest.mark.parametrize("tau_rise", [0.0, 2.0])
def test_filtered_spike_train_normalisation(tau_rise):
    """A neuron firing at ν Hz has r → ν (readout w_out = 1, λ = 1, b_out = 0).

    Driven without bound with t_ref = 4.95 ms the neuron fires every 100 steps (5 ms, one
    rate step), so each rate-step average of r is exact once the transient has decayed.
    """
    params = LIFParameters(tau_rise=tau_rise, t_ref=4.95)
    tau_d = 20.0
    t_rate = 200
    inputs = torch.full((t_rate, 1, 1), 1e5)
    res = simulate_lif(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1), 0.0,
                       torch.tensor([tau_d]), inputs, scaling=torch.tensor([1.0]),
                       params=params, generator=torch.Generator().manual_seed(0))
    times, _ = res.spikes[0]
    gaps = _intervals(times)
    assert torch.allclose(gaps, torch.full_like(gaps, 5.0), atol=1e-3)
    nu = 200.0                                                     # Hz
    late = res.output[t_rate // 2:, 0, 0]
    dt = params.dt
    exact = nu * (dt / tau_d) / (1.0 - math.exp(-dt / tau_d))
    if tau_rise > 0:
        exact *= (dt / tau_rise) / (1.0 - math.exp(-dt / tau_rise))
    torch.testing.assert_close(late, torch.full_like(late, exact), rtol=1e-4, atol=0.0)
    assert late.mean().item() == pytest.approx(nu, rel=0.015)
    # λ divides the readout weights
    scaled = simulate_lif(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1), 0.5,
                          torch.tensor([tau_d]), inputs, scaling=torch.tensor([4.0]),
                          params=params, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scaled.output, res.output / 4.0 + 0.5)


def test_mean_rate_in_hz():
    res = _single_neuron([35.0], duration_ms=1000.0)              # I = −5 mV
    assert res.mean_rate_hz[0, 0].item() == pytest.approx(
        res.spike_counts[0, 0, 0].item(), rel=1e-6)


def test_invalid_parameters():
    with pytest.raises(ValueError):
        LIFParameters(rate_step_ms=5.01)
    with pytest.raises(ValueError):
        LIFParameters(v_reset=-30.0)
    with pytest.raises(ValueError):
        simulate_lif(torch.zeros(2, 2), torch.ones(2, 1), torch.ones(2), 0.0, torch.ones(2),
                     torch.zeros(3, 1, 1), scaling=torch.tensor([0.0]))


def _model_fields(n=6, n_in=2):
    rng = np.random.default_rng(0)
    inh = np.zeros(n, dtype=bool)
    inh[-2:] = True
    return {
        "w": np.abs(rng.normal(size=(n, n))),
        "w_in": rng.normal(size=(n, n_in)),
        "w_out": rng.normal(size=n),
        "b_out": 0.25,
        "w0": np.abs(rng.normal(size=(n, n))),
        "taus": np.array([4.0, 20.0]),
        "taus_gaus": rng.normal(size=n),
        "taus_gaus0": rng.normal(size=n),
        "m": np.diag(np.where(inh, -1.0, 1.0)),
        "som_m": np.ones((n, n)),
        "exc": ~inh,
        "inh": inh,
        "N": n,
        "som_N": 0,
        "tr": 1600,
        "losses": rng.uniform(size=50),
        "activation": "sigmoid",
        "eval_perf_mean": 0.95,
        "eval_loss_mean": 1.5,
        "task": "go-nogo",
    }


@pytest.mark.parametrize("n_in", [1, 2])
def test_mat_round_trip(tmp_path, n_in):
    fields = _model_fields(n_in=n_in)
    path = write_rate_model_mat(tmp_path / "model.mat", fields)
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.mat"]   # no temporary left
    back = read_rate_model_mat(path)
    assert set(back) == set(fields)
    for name, value in fields.items():
        if isinstance(value, np.ndarray):
            assert back[name].shape == value.shape, name
            assert back[name].dtype == value.dtype, name
            np.testing.assert_array_equal(back[name], value, err_msg=name)
        else:
            assert type(back[name]) is type(value), name
            assert back[name] == value, name
    w_eff = effective_weights(back)
    assert np.all(w_eff[:, back["exc"]] >= 0) and np.all(w_eff[:, back["inh"]] <= 0)


def test_mat_missing_field_and_unreadable(tmp_path):
    import scipy.io

    fields = _model_fields()
    del fields["taus_gaus"]
    scipy.io.savemat(tmp_path / "bad.mat", {k: v for k, v in fields.items()})
    with pytest.raises(DataError, match=r"missing required field.*taus_gaus"):
        read_rate_model_mat(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError):
        read_rate_model_mat(tmp_path / "junk.mat")
    with pytest.raises(DataError):
        read_rate_model_mat(tmp_path / "absent.mat")
    with pytest.raises(ValueError, match="taus_gaus"):
        write_rate_model_mat(tmp_path / "x.mat", fields)
    fields = _model_fields()
    fields["taus"] = np.array([4.0, 12.0, 20.0])
    write_rate_model_mat(tmp_path / "three.mat", fields)
    with pytest.raises(DataError, match="taus"):
        read_rate_model_mat(tmp_path / "three.mat")


def test_mat_file_name():
    name = mat_file_name("go-nogo", 200, 4, 20, "sigmoid", "2019_01_02_030405")
    assert name == "Task_go-nogo_N_200_Taus_4.0_20.0_Act_sigmoid_2019_01_02_030405.mat"
    stamp = datetime.datetime(2019, 1, 2, 3, 4, 5)
    assert mat_file_name("xor", 10, 2.5, 25.0, "relu", stamp) == \
        "Task_xor_N_10_Taus_2.5_25.0_Act_relu_2019_01_02_030405.mat"
