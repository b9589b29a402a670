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
    model_folder,
    read_rate_model_mat,
    write_rate_model_mat,
)
from nrmkit.nn.lif import LIFParameters, lif_rate_constant_current, simulate_lif
from nrmkit.nn.lif_perturbation import SPIKE_PEAK_MV, Stimulation

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
    name = mat_file_name("go-nogo", 200, (4, 20), "sigmoid", "2019_01_02_030405")
    assert name == "Task_go-nogo_N_200_Taus_4.0_20.0_Act_sigmoid_2019_01_02_030405.mat"
    stamp = datetime.datetime(2019, 1, 2, 3, 4, 5)
    assert mat_file_name("xor", 10, (2.5, 25.0), "relu", stamp) == \
        "Task_xor_N_10_Taus_2.5_25.0_Act_relu_2019_01_02_030405.mat"
    # a fixed τ: the published "Tau_<τ>", in the file and in the folder
    assert mat_file_name("mante", 250, (10,), "sigmoid", stamp) == \
        "Task_mante_N_250_Tau_10.0_Act_sigmoid_2019_01_02_030405.mat"
    assert model_folder("go-nogo", 0.2, (4.0, 20.0)).as_posix() == \
        "models/go-nogo/P_rec_0.2_Taus_4.0_20.0"
    assert model_folder("xor", 0.2, (10,), apply_dale=False).as_posix() == \
        "models/xor/NoDale/P_rec_0.2_Tau_10.0"


# ----------------------------------------------------------------------------- perturbations


def _stimulated(stimulation, *, drives=(0.0,), duration_ms=600.0, params=NOISELESS, seed=0,
                trials=1, **kwargs):
    """Unconnected neurons (read-out weight 1 each) at ``bias + drive``, optionally
    stimulated (Bernoulli draws on their own generator)."""
    drives = torch.as_tensor(drives, dtype=torch.float32)
    n = len(drives)
    inputs = torch.ones(round(duration_ms / params.rate_step_ms), trials, 1)
    return simulate_lif(torch.zeros(n, n), drives[:, None], torch.ones(n), 0.0,
                        torch.full((n,), 20.0), inputs, scaling=torch.tensor([1.0]),
                        params=params, generator=torch.Generator().manual_seed(seed),
                        stimulation=stimulation,
                        stim_generator=torch.Generator().manual_seed(seed + 1), **kwargs)


def test_stimulation_with_probability_one_is_a_current_of_a_tau_m_over_dt():
    """Each step adds A to v: v += k_m (I − v) + A = k_m (I + A/k_m − v), the Euler LIF at
    the current I + A·τ_m/dt. The kicks go on through the refractory period (as published:
    like the noise), so v leaves it at v_reset + n_ref·A: the same spike train as a neuron
    driven by I + A·τ_m/dt that resets to v_reset + n_ref·A."""
    coarse = LIFParameters(noise_std=0.0, dt=0.1)
    amplitude = 0.1                                    # A/k_m = 0.1 · 10 / 0.1 = 10 mV
    kicked = _stimulated(Stimulation("exc", (0.0, 300.0), (0,), amplitude, 1.0),
                         params=coarse, duration_ms=300.0)
    shifted = LIFParameters(noise_std=0.0, dt=0.1,
                            v_reset=coarse.v_reset + coarse.refractory_steps * amplitude)
    driven = _stimulated(None, drives=(10.0,), params=shifted, duration_ms=300.0)
    times, _ = kicked.spikes[0]
    assert abs(len(times) - len(driven.spikes[0][0])) <= 1
    assert len(times) > 15
    torch.testing.assert_close(times[:15], driven.spikes[0][0][:15], rtol=0, atol=0.101)
    measured = 1000.0 / _intervals(times)[1:].mean().item()
    expected = lif_rate_constant_current(NOISELESS.bias + 10.0, shifted)
    assert measured == pytest.approx(expected, rel=0.02)
    # hyperpolarising: the opposite current silences a neuron held 5 mV above threshold
    quiet = LIFParameters(noise_std=0.0, dt=0.1, v0_range=(-65.0, -60.0))
    assert _stimulated(None, drives=(5.0,), duration_ms=200.0, params=quiet).spike_counts.sum()
    silenced = _stimulated(Stimulation("inh", (0.0, 200.0), (0,), amplitude, 1.0),
                           drives=(5.0,), duration_ms=200.0, params=quiet)
    assert silenced.spike_counts.sum() == 0


def test_stimulation_acts_only_in_its_window_and_on_its_units():
    """Noise on, two trials, three neurons: nothing differs before the window (same noise and
    v0), exc raises and inh lowers the read-out of the stimulated unit in the window, and an
    unstimulated unconnected unit is never touched."""
    params = LIFParameters(dt=0.1)                # published noise 0.1 mV per step
    window = (100.0, 200.0)
    runs = {mode: _stimulated(None if mode == "none" else Stimulation(mode, window, (1,)),
                              drives=(0.0, 0.0, 0.0), params=params, trace_units=[0, 1, 2],
                              trace_trials=2, trials=2, duration_ms=250.0)
            for mode in ("none", "exc", "inh")}
    first = round(100.0 / params.dt)              # the first stimulated LIF step (1-based)
    for mode in ("exc", "inh"):
        # traces: identical up to the step before the window, different at its first step
        assert torch.equal(runs[mode].voltage[:first - 1], runs["none"].voltage[:first - 1])
        assert not torch.equal(runs[mode].voltage[first - 1:first + 20, 0, :, 1],
                               runs["none"].voltage[first - 1:first + 20, 0, :, 1])
        # the unstimulated units (0 and 2) are never touched
        assert torch.equal(runs[mode].voltage[..., [0, 2]], runs["none"].voltage[..., [0, 2]])
        before = round(100.0 / 5.0) - 1           # rate steps wholly before the window
        assert torch.equal(runs[mode].output[:before], runs["none"].output[:before])
    inside = slice(25, 40)                        # rate steps 125–200 ms
    assert runs["none"].output.shape == (50, 1, 2)
    mean = {mode: run.output[inside].mean().item() for mode, run in runs.items()}
    assert mean["exc"] > mean["none"] + 10.0      # read-out in Hz here (w_out = 1, λ = 1)
    assert mean["inh"] < mean["none"] - 1.0
    counts = {mode: run.spike_counts[0, :, 1].sum().item() for mode, run in runs.items()}
    assert counts["exc"] > counts["none"] > counts["inh"]


def test_traces_have_the_documented_shape_and_leave_the_dynamics_alone():
    w_eff, w_in, w_out, taus = _random_network(n=12)
    inputs = torch.randn(10, 3, 2, generator=torch.Generator().manual_seed(1)) * 10.0
    params = LIFParameters(noise_std=0.5)
    scaling = torch.tensor([0.5, 1.0])

    def run(**kwargs):
        return simulate_lif(w_eff, w_in, w_out, 0.3, taus, inputs, scaling=scaling,
                            params=params, generator=torch.Generator().manual_seed(2),
                            **kwargs)

    plain = run()
    assert plain.voltage is None
    traced = run(trace_units=[0, 3, 7], trace_trials=2)
    # off-window, zero-amplitude and zero-probability stimulations change nothing either
    late = run(stimulation=Stimulation("exc", (60.0, 90.0), (0, 1)),
               stim_generator=torch.Generator().manual_seed(3))
    silent = run(stimulation=Stimulation("inh", (0.0, 50.0), (0, 1), 0.0),
                 stim_generator=torch.Generator().manual_seed(3))
    for other in (traced, late, silent):
        assert torch.equal(other.output, plain.output)
        assert torch.equal(other.spike_counts, plain.spike_counts)
    assert traced.voltage.shape == (10 * 100, 2, 2, 3)     # (T_lif, L, trace_trials, K)
    # spikes are drawn at the 30 mV peak, exactly at the raster's spike steps
    for ell in range(2):
        peaks = traced.voltage[:, ell, 0, :] == SPIKE_PEAK_MV
        assert torch.equal(peaks, traced.raster(ell)[:, [0, 3, 7]])
        below = traced.voltage[:, ell, 0, :][~peaks]
        assert below.max() < params.v_threshold
    with pytest.raises(ValueError, match="stim_generator"):
        run(stimulation=Stimulation("exc", (0.0, 10.0), (0,)))
    with pytest.raises(ValueError, match="units"):
        run(stimulation=Stimulation("exc", (0.0, 10.0), (12,)),
            stim_generator=torch.Generator())


@pytest.mark.parametrize("tau_rise", [2.0, 0.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_event_and_dense_propagation_agree_on_a_scaling_grid(tau_rise, dtype):
    """Adding the jump rows of the spiking neurons only (events) is the spike matrix times the
    jumps (dense): same spikes in every step — none, a few, or a third of a network at once —
    and outputs equal to round-off (float64 at 1e-12; float32 at its ε)."""
    w_eff, w_in, w_out, taus = (x.to(dtype) for x in _random_network())
    inputs = (torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(5)) * 10.0).to(dtype)
    params = LIFParameters(noise_std=0.5, tau_rise=tau_rise)
    scaling = torch.tensor([0.5, 1.0, 3.0, 10.0], dtype=dtype)

    def run(propagation):
        return simulate_lif(w_eff, w_in, w_out, 0.3, taus, inputs, scaling=scaling,
                            params=params, generator=torch.Generator().manual_seed(9),
                            propagation=propagation)

    events, dense, default = run("events"), run("dense"), run(None)
    assert torch.equal(default.output, events.output)            # CPU default: events
    assert torch.equal(events.spike_counts, dense.spike_counts)
    for ell in range(len(scaling)):
        assert torch.equal(events.spikes[ell][0], dense.spikes[ell][0])
        assert torch.equal(events.spikes[ell][1], dense.spikes[ell][1])
        per_step = events.raster(ell).sum(1)
        assert (per_step == 0).any() and per_step.max() >= 30 // 3   # silent and busy steps
    tol = 1e-12 if dtype == torch.float64 else 10 * torch.finfo(dtype).eps
    scale = events.output.abs().max()
    torch.testing.assert_close(dense.output, events.output, rtol=tol, atol=tol * scale)
    with pytest.raises(ValueError, match="propagation"):
        run("sparse")


def test_event_gate_keeps_a_neuron_that_spikes_again_while_refractory_closed():
    """Kicks of 30 mV every step drive stimulated neurons over threshold while refractory:
    the event path's gate (a state closed at each spike) must follow the last spike exactly
    as the dense clamp formula does — same spikes, including the refractory re-spikes."""
    w_eff, w_in, w_out, taus = _random_network()
    inputs = torch.randn(4, 2, 2, generator=torch.Generator().manual_seed(1)) * 10.0
    kick = Stimulation("exc", (2.0, 15.0), (0, 1, 2), amplitude_mv=30.0, probability=1.0)
    params = LIFParameters(noise_std=0.2)

    def run(propagation):
        return simulate_lif(w_eff, w_in, w_out, 0.0, taus, inputs,
                            scaling=torch.tensor([1.0, 4.0]), params=params,
                            generator=torch.Generator().manual_seed(2), stimulation=kick,
                            stim_generator=torch.Generator().manual_seed(3),
                            propagation=propagation)

    events, dense = run("events"), run("dense")
    assert torch.equal(events.spike_counts, dense.spike_counts)
    for ell in range(2):
        assert torch.equal(events.spikes[ell][0], dense.spikes[ell][0])
        times, neurons = events.spikes[ell]
        gaps = [_intervals(times[neurons == unit]) for unit in range(3)]
        assert min(float(g.min()) for g in gaps) <= params.t_ref   # re-spikes while refractory


def test_refractory_gate_equals_the_clamp_of_the_last_spike_step():
    """RefractoryGate after random spike steps equals clamp(step − n_ref − s_last, 0, 1)."""
    from nrmkit.nn.lif_propagation import RefractoryGate

    generator = torch.Generator().manual_seed(4)
    shape, n_ref = (3, 5), 4
    gate = RefractoryGate(shape, n_ref, device="cpu", dtype=torch.float32)
    neg_last = torch.full(shape, math.inf)
    for step in range(1, 60):
        gate.open_due(step, neg_last)
        expected = (neg_last + float(step - n_ref)).clamp(0.0, 1.0)
        assert torch.equal(gate.gate, expected), step
        idx = (torch.rand(shape, generator=generator) < 0.15).view(-1).nonzero().squeeze(1)
        if idx.numel():
            neg_last.view(-1)[idx] = -float(step)
            gate.close(step, idx)


def test_spiking_indices_equal_the_scan_of_the_comparison():
    from nrmkit.nn.lif_propagation import spiking_indices

    v = torch.randn(7, 11, generator=torch.Generator().manual_seed(5))
    v[2, 3] = float("nan")
    for threshold in (-10.0, 0.5, 1.5, 10.0):
        found = spiking_indices(v, threshold)
        expected = (v >= threshold).view(-1).nonzero().squeeze(1)
        if expected.numel():
            assert torch.equal(found, expected)
        else:
            assert found is None


@pytest.mark.parametrize("rise", [0.0, math.exp(-0.05 / 2.0)])
def test_window_readout_equals_the_step_by_step_filter(rise):
    """WindowReadout's closed form against the per-step recurrence in float64: read-out sums
    over three rate steps with spikes (some neurons twice in a step window) and the state."""
    from nrmkit.nn.lif_readout import WindowReadout

    generator = torch.Generator().manual_seed(6)
    m, n, steps, delta = 4, 5, 9, 5e-5
    decay = torch.exp(-0.05 / (4.0 + 16.0 * torch.rand(n, generator=generator))).double()
    jump = 1.0 + torch.rand(n, generator=generator, dtype=torch.float64)
    inv_scale = torch.tensor([1.0, 0.5, 0.25, 0.1], dtype=torch.float64)
    w_out = torch.randn(n, generator=generator, dtype=torch.float64)
    readout = WindowReadout(decay, rise, delta, jump, inv_scale, w_out, steps)
    r = torch.zeros(m, n, dtype=torch.float64)
    h = torch.zeros_like(r)
    for _ in range(3):
        spikes = torch.rand(steps, m, n, generator=generator) < 0.2
        total = torch.zeros(m, dtype=torch.float64)
        for t in range(steps):
            impulse = spikes[t].double() * jump[None, :] * inv_scale[:, None]
            if rise:
                r = decay * r + delta * h
                h = rise * h + impulse
            else:
                r = decay * r + impulse
            total += r @ w_out
        flat = spikes.reshape(steps, -1)
        idx = torch.cat([row.nonzero().squeeze(1) for row in flat])
        within = torch.repeat_interleave(torch.arange(1, steps + 1), flat.sum(1))
        torch.testing.assert_close(readout.close(idx, within), total, rtol=1e-12, atol=0.0)
        torch.testing.assert_close(readout.r, r, rtol=1e-12, atol=1e-300)


def test_synaptic_jump_is_normalised_by_the_postsynaptic_decay():
    """A spike of neuron j adds W_ij/(τ_r·τ_d,i) (seconds) to the synaptic state of neuron i,
    which decays with τ_d,i: each spike then delivers the charge W_ij whatever the time
    constants. Normalising by the presynaptic τ_d,j instead would scale it by τ_d,i/τ_d,j."""
    from nrmkit.nn.lif import _synapse_constants

    w_eff = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.0, 3.0], [-4.0, 1.5, 0.0]],
                         dtype=torch.float64)
    taus = torch.tensor([4.0, 20.0, 50.0], dtype=torch.float64)        # ms, per neuron
    params = LIFParameters()
    jump, inv_scale, decay_d, decay_r = _synapse_constants(
        w_eff, taus, torch.tensor([25.0], dtype=torch.float64), 2, params)
    rise_s = params.tau_rise / 1000.0
    for i in range(3):                   # postsynaptic
        for j in range(3):               # presynaptic
            expected = w_eff[i, j].item() / (rise_s * taus[i].item() / 1000.0)
            assert jump[j, i].item() == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(jump[:, 3:], torch.diag(1.0 / (rise_s * taus / 1000.0)))
    torch.testing.assert_close(decay_d, torch.exp(-params.dt / taus).repeat(2))
    assert decay_r == pytest.approx(math.exp(-params.dt / params.tau_rise))
    torch.testing.assert_close(inv_scale, torch.full((2,), 1 / 25.0, dtype=torch.float64))
