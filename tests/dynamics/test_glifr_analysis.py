"""f–I curves of isolated GLIFR neurons against the fixed point of the voltage equation and an
independent numpy simulation; the Calinski–Harabasz index against hand values; Ward
clustering recovering known groups."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.special import expit

from nrmkit.dynamics.glifr_analysis import (
    PUBLISHED_CURRENTS,
    calinski_harabasz,
    fi_curves,
    neuron_features,
    ward_clustering,
)
from nrmkit.nn.glifr import GLIFRCell

#: tiny matrices: one BLAS thread (the conftest fixture), else thread hand-offs dominate.
pytestmark = pytest.mark.usefixtures("one_thread")

#: constants away from the defaults, so that each must reach the simulation.
CONSTANTS = {"dt": 1.0, "tau": 2.0, "sigma_v": 0.5, "resistance": 0.3, "i0": 2.0,
             "v_reset": -0.5}


def cell_without_ascs(v_th, k_m, **constants) -> GLIFRCell:
    """Trained-looking neurons without after-spike currents and with nonzero weights."""
    values = {"v_th": torch.tensor(v_th), "k_m": torch.tensor(k_m)}
    return GLIFRCell(2, len(v_th), n_ascs=0, neuron_values=values,
                     generator=torch.Generator().manual_seed(3), **{**CONSTANTS, **constants})


def fixed_point_rate(cell: GLIFRCell, neuron: int, current: float, injection: str) -> float:
    """r at the root of V = (1 − dt k_m)V + I_syn + dt k_m R (I_0 + I_mem)
    − (dt/τ) σ((V − V_th)/σ_V)(V − V_reset), found by brentq."""
    dt, tau, resistance = cell.dt, cell.tau, cell.resistance
    k_m = float(cell.k_m[neuron].detach())
    v_th, sigma_v = float(cell.v_th[neuron].detach()), float(cell.sigma_v)
    synaptic, membrane = (current, 0.0) if injection == "synaptic" else (0.0, current)

    def residual(v):
        rate = expit((v - v_th) / sigma_v)
        return (-dt * k_m * v + synaptic + dt * k_m * resistance * (cell.i0 + membrane)
                - dt / tau * rate * (v - cell.v_reset))

    root = brentq(residual, -1e3, 1e3, xtol=1e-14)
    return float(expit((root - v_th) / sigma_v))


@pytest.mark.parametrize("injection", ["synaptic", "membrane"])
def test_long_runs_reach_the_fixed_point_of_the_voltage_equation(injection):
    cell = cell_without_ascs([0.5, 1.0, 2.0], [0.2, 0.1, 0.3])
    currents = np.array([-2.0, -0.5, 0.0, 0.4, 1.0, 3.0]) * (
        1.0 if injection == "synaptic" else 10.0)
    rates = fi_curves(cell, currents, duration_ms=600.0, window_ms=5.0, injection=injection)
    assert rates.shape == (3, len(currents))
    expected = [[fixed_point_rate(cell, h, c, injection) for c in currents] for h in range(3)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-8)


def reference_rates(cell, currents, n_steps, n_window, injection):
    """The published step written out in numpy, one neuron at a time."""
    p = {name: value.detach().double().numpy() for name, value in cell.neuron_parameters().items()}
    dt, spike = cell.dt, cell.dt / cell.tau
    out = np.zeros((cell.hidden_size, len(currents)))
    for h, (c, current) in itertools.product(range(cell.hidden_size), enumerate(currents)):
        drive = (current, 0.0) if injection == "synaptic" else (0.0, current)
        r = v = 0.0
        asc = np.zeros(cell.n_ascs)
        rates = []
        for _ in range(n_steps):
            asc = (1 - dt * p["k_j"][:, h]) * asc + spike * r * (p["r_j"][:, h] * asc
                                                                 + p["a_j"][:, h])
            v = ((1 - dt * p["k_m"][h]) * v + drive[0]
                 + dt * p["k_m"][h] * cell.resistance * (asc.sum() + cell.i0 + drive[1])
                 - spike * r * (v - cell.v_reset))
            r = expit((v - p["v_th"][h]) / float(cell.sigma_v))
            rates.append(r)
        out[h, c] = np.mean(rates[-n_window:])
    return out


@pytest.mark.parametrize("injection", ["membrane", "synaptic"])
def test_isolated_neurons_with_after_spike_currents_follow_the_published_step(injection):
    """Heterogeneous ASCs, short windows (transients included): every neuron is simulated on
    its own, its network weights ignored."""
    generator = torch.Generator().manual_seed(7)
    values = {"v_th": torch.tensor([0.5, 1.0, 1.5]), "k_m": torch.tensor([0.05, 0.2, 0.1]),
              "k_j": torch.tensor([[0.5, 0.1, 0.3], [0.05, 0.4, 0.2]]),
              "r_j": torch.tensor([[0.5, -0.8, 0.0], [-0.3, 0.9, 0.2]]),
              "a_j": torch.tensor([[-2.0, 1.0, 0.5], [3.0, -1.0, -0.5]])}
    cell = GLIFRCell(2, 3, n_ascs=2, neuron_values=values, generator=generator, **CONSTANTS)
    with torch.no_grad():
        cell.weight_lat.mul_(50.0)
    currents = np.array([-1.0, 0.0, 0.7, 2.0]) * (1.0 if injection == "synaptic" else 8.0)
    rates = fi_curves(cell, currents, duration_ms=30.0, window_ms=7.0, injection=injection)
    expected = reference_rates(cell, currents, 30, 7, injection)
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-9)
    whole = fi_curves(cell, currents, duration_ms=30.0, window_ms=30.0, injection=injection)
    np.testing.assert_allclose(whole, reference_rates(cell, currents, 30, 30, injection),
                               rtol=1e-5, atol=1e-9)


def test_rates_rise_with_current_and_a_higher_threshold_shifts_the_curve_right():
    cell = cell_without_ascs([0.5, 1.5], [0.1, 0.1], dt=0.05, tau=None, sigma_v=1.0,
                             resistance=0.1, i0=0.0, v_reset=0.0)
    rates = fi_curves(cell, PUBLISHED_CURRENTS, duration_ms=5.0, window_ms=5.0)
    assert rates.shape == (2, 200)
    assert np.all(np.diff(rates, axis=1) > 0)
    assert np.all(rates[1] < rates[0])
    half = [np.interp(0.5, row, PUBLISHED_CURRENTS) for row in rates]
    assert half[1] > half[0] + 100.0


def test_the_published_protocol_leaves_the_cell_and_the_random_stream_alone():
    cell = GLIFRCell(2, 4, dt=0.05, generator=torch.Generator().manual_seed(0))
    before = {name: value.detach().clone() for name, value in cell.state_dict().items()}
    torch.manual_seed(11)
    state = torch.get_rng_state()
    rates = fi_curves(cell, [-1e4, 0.0, 1e4], duration_ms=5.0, window_ms=5.0)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[name], value) for name, value in cell.state_dict().items())
    assert rates.shape == (4, 3) and np.all((rates > 0) & (rates < 1))
    with pytest.raises(ValueError):
        fi_curves(cell, [0.0], duration_ms=1.0, window_ms=2.0)
    with pytest.raises(ValueError):
        fi_curves(cell, [0.0], duration_ms=1.0, window_ms=1.0, injection="lateral")


# -- Calinski–Harabasz -----------------------------------------------------------------------
def test_calinski_harabasz_matches_hand_computed_values():
    # 1-D: clusters {0, 2} and {10, 12}: mean 6, B = 2·25 + 2·25 = 100, W = 4 → 100/4 · 2/1
    assert calinski_harabasz(np.array([0.0, 2.0, 10.0, 12.0]), [5, 5, 9, 9]) == pytest.approx(50)
    # 2-D, sizes 1, 2, 3: points (0,0) | (4,0),(4,2) | (0,6),(2,6),(1,9); mean (11/6, 23/6)
    points = np.array([[0, 0], [4, 0], [4, 2], [0, 6], [2, 6], [1, 9]], dtype=float)
    labels = np.array(["a", "b", "b", "c", "c", "c"])
    mean = np.array([11 / 6, 23 / 6])
    centroids = {"a": (0, 0), "b": (4, 1), "c": (1, 7)}
    between = sum(n * np.sum((np.array(centroids[c]) - mean) ** 2)
                  for c, n in (("a", 1), ("b", 2), ("c", 3)))
    within = 0 + 2 * 1 + (1 + 1 + 1 + 1 + 0 + 4)  # b: (0,∓1); c: (∓1,−1), (0,2)
    assert calinski_harabasz(points, labels) == pytest.approx(between / within * 3 / 2)
    # a relabelling changes nothing
    assert calinski_harabasz(points, [2, 0, 0, 1, 1, 1]) == pytest.approx(between / within * 1.5)


def test_calinski_harabasz_is_large_for_separated_blobs_and_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 20)
    blobs = rng.normal(size=(60, 4)) + 50.0 * np.eye(4)[truth]
    assert calinski_harabasz(blobs, truth) > 1000.0
    assert calinski_harabasz(blobs, rng.permutation(truth)) < 10.0
    metrics = pytest.importorskip("sklearn.metrics")
    for labels in (truth, rng.integers(0, 5, 60)):
        assert calinski_harabasz(blobs, labels) == pytest.approx(
            metrics.calinski_harabasz_score(blobs, labels), rel=1e-10)
    with pytest.raises(ValueError):
        calinski_harabasz(blobs, np.zeros(60))


# -- Ward clustering ---------------------------------------------------------------------------
def same_partition(a, b) -> bool:
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist(), strict=True))
    return len(pairs) == len(set(a)) == len(set(b))


def test_ward_clustering_recovers_three_separated_groups():
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1, 2], [8, 12, 10])
    features = rng.normal(scale=0.3, size=(30, 8)) + 10.0 * rng.normal(size=(3, 8))[truth]
    order = rng.permutation(30)
    result = ward_clustering(features[order], n_clusters=range(2, 8))
    assert result["n_clusters"].tolist() == [2, 3, 4, 5, 6, 7]
    assert result["labels"].shape == (6, 30) and result["found"].tolist() == [2, 3, 4, 5, 6, 7]
    assert result["best"] == 3
    assert same_partition(result["best_labels"], truth[order])
    assert same_partition(result["labels"][1], truth[order])
    assert result["linkage"].shape == (29, 4)
    np.testing.assert_allclose(result["scores"][1],
                               calinski_harabasz(features[order], truth[order]))


def test_ward_clustering_matches_scikit_learn_and_standardises_on_request():
    cluster = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(2)
    features = rng.normal(size=(40, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 1.0])
    result = ward_clustering(features)
    assert result["n_clusters"].tolist() == list(range(2, 12))
    for k, labels in zip(result["n_clusters"], result["labels"], strict=True):
        expected = cluster.AgglomerativeClustering(n_clusters=int(k), linkage="ward")
        assert same_partition(labels, expected.fit_predict(features))
    # groups set apart only along a small-scale column: found only after z-scoring
    truth = np.repeat([0, 1], 20)
    features = np.column_stack([rng.normal(scale=100.0, size=40),
                                truth + rng.normal(scale=0.01, size=40)])
    assert not same_partition(ward_clustering(features, [2])["best_labels"], truth)
    assert same_partition(ward_clustering(features, [2], standardize=True)["best_labels"], truth)
    with pytest.raises(ValueError):
        ward_clustering(features, [1, 2])


def test_neuron_features_in_the_published_column_order():
    cell = GLIFRCell(1, 5, n_ascs=2, generator=torch.Generator().manual_seed(0))
    matrix, names = neuron_features(cell.neuron_parameters())
    assert names == ["v_th", "k_m", "r_1", "r_2", "k_1", "k_2", "a_1", "a_2"]
    assert matrix.shape == (5, 8) and matrix.dtype == np.float64
    params = cell.neuron_parameters()
    np.testing.assert_allclose(matrix[:, 1], params["k_m"].detach().numpy(), rtol=1e-7)
    np.testing.assert_allclose(matrix[:, 3], params["r_j"][1].detach().numpy(), rtol=1e-7)
    np.testing.assert_allclose(matrix[:, 6], params["a_j"][0].detach().numpy(), rtol=1e-7)
    plain, names = neuron_features({"v_th": np.ones(4), "k_m": np.full(4, 0.05),
                                    "k_j": np.zeros((0, 4)), "r_j": np.zeros((0, 4)),
                                    "a_j": np.zeros((0, 4))})
    assert names == ["v_th", "k_m"] and plain.shape == (4, 2)
