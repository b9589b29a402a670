"""The engine against results known independently of it (see the oracle table in the README).

Exact cases (linear networks, the fixed point below the transition), exact identities (the
sum rule, the twin-trajectory exponent), mean-field theory, and finite differences of the
gradients. Tests marked ``slow`` take a few seconds each at N = 200–1000.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nrmkit.dynamics import kaplan_yorke_dimension, ks_entropy, lyapunov_spectrum, mean_exponent
from nrmkit.dynamics.brute_force import twin_trajectory_lambda_max
from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.dynamics.theory import (
    MEAN_FIELD_LAMBDA_MAX,
    euler_sum_rule_mean,
    linear_exponents,
    mean_field_lambda_max,
)
from nrmkit.nn.connectivity import gaussian_coupling
from nrmkit.nn.rate_rnn import RateRNN, random_rate_network

F64 = torch.float64


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- exact spectra -------------------------------------------------------------------------
@pytest.mark.parametrize("g", [0.9, 1.3])
def test_linear_network_spectrum_is_exact(g):
    """φ(x) = x: λ_k = ln|1 − dt + dt μ_k|/dt, μ_k the eigenvalues of W (stable or not)."""
    generator = seeded(10)
    unit = gaussian_coupling(40, generator=generator, dtype=F64)
    model = RateRNN(unit, coupling=g, activation="linear")
    result = lyapunov_spectrum(model, 40, tsim=400.0, tons=1.0, ttrans=0.0,
                               generator=generator).sorted()
    expected = linear_exponents(np.linalg.eigvals((g * unit).numpy()), dt=0.1)
    np.testing.assert_allclose(result.exponents[0, 0].numpy(), expected, atol=0.01)
    if g > 1:
        assert expected[0] > 0  # the unstable case is really covered


def test_spectrum_below_the_transition_is_exact():
    """g < 1: the state falls onto h = 0, where the exponents are those of the linear map."""
    generator = seeded(11)
    model = random_rate_network(100, [0.5], 2, generator=generator, dtype=F64)
    result = lyapunov_spectrum(model, 100, tsim=400.0, tons=1.0, ttrans=200.0,
                               generator=generator).sorted()
    assert result.state.abs().max() < 1e-12
    for sample in range(2):
        eigenvalues = np.linalg.eigvals((0.5 * model.weight[sample]).numpy())
        np.testing.assert_allclose(result.exponents[sample, 0].numpy(),
                                   linear_exponents(eigenvalues, dt=0.1), atol=0.012)


def test_linear_exponents_with_gain_and_shift():
    """A linear network with gains a: the map's matrix is (1 − dt)I + dt·W·diag(a)."""
    generator = seeded(12)
    unit = gaussian_coupling(30, generator=generator, dtype=F64)
    gain = 0.5 + torch.rand(30, generator=generator, dtype=F64)
    model = RateRNN(unit, coupling=0.8, gain=gain, shift=0.3, activation="linear")
    result = lyapunov_spectrum(model, 30, tsim=400.0, tons=1.0, ttrans=0.0,
                               generator=generator).sorted()
    effective = (0.8 * unit * gain[None, :]).numpy()
    np.testing.assert_allclose(result.exponents[0, 0].numpy(),
                               linear_exponents(np.linalg.eigvals(effective), dt=0.1), atol=0.01)


# -- identities in the chaotic regime --------------------------------------------------------
@pytest.mark.parametrize(("activation", "vary", "couplings", "dt", "chaotic"), [
    ("tanh", ("weights",), [3.0, 6.0], 0.1, True),
    ("tanh_stretch", ("weights", "gains", "shifts"), [6.0, 12.0], 0.1, True),
    # positive rates with shifts near 1 rarely become chaotic: the rule holds all the same
    ("tanh_pos", ("weights", "gains", "shifts"), [3.0, 6.0], 0.1, False),
    ("tanh", ("weights",), [3.0, 6.0], 0.05, True),
])
def test_sum_rule_of_the_full_spectrum(activation, vary, couplings, dt, chaotic):
    """Mean of all N exponents = ln(1 − dt)/dt + O(1/N), whatever the gains and shifts.

    trace(J_t) = N(1 − dt) for a zero-diagonal W, so only O(1) of the volume contraction
    depends on the state.
    """
    generator = seeded(13)
    model = random_rate_network(100, couplings, 2, vary=vary, activation=activation, dt=dt,
                                generator=generator, dtype=F64)
    result = lyapunov_spectrum(model, 100, tsim=100.0, tons=0.5, ttrans=50.0,
                               generator=generator)
    if chaotic:
        assert result.exponents[..., 0].min() > 0, "the networks must be chaotic here"
    means = mean_exponent(result.exponents)
    np.testing.assert_allclose(means.numpy(), euler_sum_rule_mean(dt), atol=0.005)


def test_point_symmetry_of_the_spectrum():
    """λ_i + λ_{N+1−i} ≈ 2·(mean exponent) away from the very ends of the spectrum."""
    generator = seeded(14)
    model = random_rate_network(100, [3.0, 6.0], 2, generator=generator, dtype=F64)
    exponents = lyapunov_spectrum(model, 100, tsim=200.0, tons=0.5, ttrans=50.0,
                                  generator=generator).sorted().exponents.numpy()
    pairs = exponents + exponents[..., ::-1]
    mean = exponents.mean(-1, keepdims=True)
    assert np.abs(pairs - 2 * mean)[..., 5:-5].max() < 0.15


def test_qr_lambda_max_equals_twin_trajectories_exactly():
    """Started along the first basis row, the twin pair (nonlinear map only, no tangent map)
    must give the same λ_1 as the QR engine (measured: relative difference < 1e-5)."""
    generator = seeded(15)
    model = random_rate_network(80, [6.0, 12.0], 2, vary=("weights", "gains", "shifts"),
                                activation="tanh_stretch", generator=generator, dtype=F64)
    state = model.initial_state(generator)
    for _ in range(500):
        state = model.step(state)
    basis = random_basis(model.batch_shape, 3, 80, generator=generator, dtype=F64)
    kwargs = {"tsim": 50.0, "tons": 1.0, "ttrans": 0.0, "tbasis": 20.0, "state": state}
    qr = lyapunov_spectrum(model, 3, basis=basis, **kwargs).exponents[..., 0]
    twin = twin_trajectory_lambda_max(model, direction=basis[..., 0, :], **kwargs)
    assert qr.max() > 0.1
    torch.testing.assert_close(twin, qr, rtol=1e-4, atol=1e-5)


def test_qr_lambda_max_agrees_with_independent_twin_trajectories():
    """With a random twin direction the two estimates agree within their statistical error."""
    generator = seeded(16)
    model = random_rate_network(200, [3.0], 2, generator=generator, dtype=F64)
    state = model.initial_state(generator)
    kwargs = {"tsim": 300.0, "tons": 1.0, "ttrans": 50.0, "state": state}
    result = lyapunov_spectrum(model, 1, generator=generator, **kwargs)
    twin = twin_trajectory_lambda_max(model, generator=generator, **kwargs)
    error = result.standard_error[..., 0]
    assert torch.all((twin - result.exponents[..., 0]).abs() < 0.1 * twin.abs() + 2 * error)


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("parameter", ["gains", "shifts", "weights"])
def test_autograd_gradient_equals_finite_differences(parameter):
    """d(weighted top-3 spectrum)/d(parameter set) along random directions, float64."""
    generator = seeded(17)
    model = random_rate_network(12, [2.5], 1, vary=("weights", "gains", "shifts"),
                                activation="tanh_stretch", generator=generator, dtype=F64)
    model.set_trainable(**{parameter: True})
    tensor = {"gains": model.gain, "shifts": model.shift, "weights": model.weight}[parameter]
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, 3, 12, generator=generator, dtype=F64)
    weights = torch.tensor([1.0, -0.7, 0.4], dtype=F64)

    def loss() -> torch.Tensor:
        result = lyapunov_spectrum(model, 3, tsim=6.0, tons=0.5, ttrans=2.0, tbasis=1.0,
                                   state=state, basis=basis)
        return (result.exponents * weights).sum()

    (gradient,) = torch.autograd.grad(loss(), tensor)
    if parameter == "weights":
        assert torch.all(gradient.diagonal(dim1=-2, dim2=-1) == 0)
    epsilon = 1e-6
    for _ in range(3):
        direction = torch.randn(tensor.shape, generator=generator, dtype=F64)
        if parameter == "weights":
            direction.diagonal(dim1=-2, dim2=-1).zero_()
        with torch.no_grad():
            tensor.add_(epsilon * direction)
            plus = loss()
            tensor.sub_(2 * epsilon * direction)
            minus = loss()
            tensor.add_(epsilon * direction)
        numeric = (plus - minus) / (2 * epsilon)
        analytic = (gradient * direction).sum()
        assert abs(numeric) > 1e-4, "the direction must matter for the test to mean anything"
        torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)


# -- metrics ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("exponents", "dimension"), [
    ([1.0, 0.5, -3.0], 2.5),          # k = 2, S_2 = 1.5, D = 2 + 1.5/3
    ([0.3, -0.1, -0.4], 2.5),         # S = 0.3, 0.2, −0.2 → k = 2, D = 2 + 0.2/0.4
    ([-3.0, 0.3, -0.1, -0.4][1:], 2.5),
    ([-0.4, 0.3, -0.1], 2.5),         # unsorted input is sorted first
    ([-0.1, -1.0], 0.0),              # λ_1 < 0: a stable fixed point
    ([0.5, 0.2, 0.1], 3.0),           # partial sums never negative: all exponents
    ([0.2, -0.5, -1.0], 1.4),
])
def test_kaplan_yorke_dimension(exponents, dimension):
    assert kaplan_yorke_dimension(np.array(exponents)) == pytest.approx(dimension)
    assert float(kaplan_yorke_dimension(torch.tensor(exponents))) == pytest.approx(dimension)


def test_metrics_are_batched_and_keep_the_array_type():
    values = np.array([[[1.0, 0.5, -3.0]], [[-0.1, -0.2, -1.0]]])
    np.testing.assert_allclose(kaplan_yorke_dimension(values), [[2.5], [0.0]])
    np.testing.assert_allclose(ks_entropy(values), [[1.5], [0.0]])
    np.testing.assert_allclose(mean_exponent(values), [[-1.5 / 3], [-1.3 / 3]])
    assert isinstance(ks_entropy(values), np.ndarray)
    assert isinstance(ks_entropy(torch.tensor(values)), torch.Tensor)


def test_theory_tables():
    assert mean_field_lambda_max(2.0) == pytest.approx(0.1125)
    assert mean_field_lambda_max(0.5) == pytest.approx(-0.5)
    assert mean_field_lambda_max(0.5, dt=0.1) == pytest.approx(math.log(0.95) / 0.1)
    assert np.isnan(mean_field_lambda_max(12.0))
    values = mean_field_lambda_max(np.array(list(MEAN_FIELD_LAMBDA_MAX)))
    assert np.all(np.diff(values) > 0)
    assert euler_sum_rule_mean(0.1) == pytest.approx(-1.0536, abs=1e-4)
    assert euler_sum_rule_mean(0.02) == pytest.approx(-1.0101, abs=1e-4)


# -- large networks against mean-field theory --------------------------------------------------
@pytest.mark.slow
def test_lambda_max_at_g2_matches_mean_field():
    """N = 1000, g = 2: the mean λ_max of 8 networks lies within 20 % of the mean-field 0.1125
    (measured with long runs: 0.1015 at N = 1000)."""
    generator = seeded(18)
    model = random_rate_network(1000, [2.0], 8, generator=generator)
    result = lyapunov_spectrum(model, 1, tsim=300.0, tons=0.5, ttrans=100.0,
                               generator=generator)
    mean = float(result.exponents[..., 0].mean())
    assert mean == pytest.approx(0.1125, rel=0.2)
    assert mean < 0.1125, "finite networks sit below the N → ∞ value"


@pytest.mark.slow
def test_transition_to_chaos_at_g_equal_one():
    """N = 400: λ_max < 0 at g ≤ 0.9 for every network, > 0 at g ≥ 1.5 for most.

    (A finite network near the transition can settle on a stable non-zero fixed point or a
    limit cycle: at g = 1.5 one network of three here does. Far above it none does.)
    """
    generator = seeded(19)
    couplings = [0.6, 0.9, 1.5, 2.5]
    model = random_rate_network(400, couplings, 3, generator=generator)
    result = lyapunov_spectrum(model, 1, tsim=200.0, tons=0.5, ttrans=200.0,
                               generator=generator)
    lambda_max = result.exponents[..., 0]  # (sample, g)
    median = lambda_max.median(0).values
    assert torch.all(lambda_max[:, :2] < 0)
    assert median[2] > 0 and torch.all(lambda_max[:, 3] > 0)
    # the subcritical values are those of the fixed point: ln(1 − dt + dt·g·ρ)/dt, ρ ≈ 1
    expected = torch.log(torch.tensor([0.9 + 0.1 * 0.6, 0.9 + 0.1 * 0.9])) / 0.1
    torch.testing.assert_close(median[:2].float(), expected, atol=0.03, rtol=0)
    theory = torch.tensor(mean_field_lambda_max(np.array(couplings[2:])), dtype=torch.float64)
    assert torch.all(median[2:] < theory * 1.1)


@pytest.mark.slow
def test_attractor_dimension_and_entropy_grow_with_g():
    """Full spectra at N = 200: D/N and H/N near the published values and growing with g."""
    generator = seeded(20)
    model = random_rate_network(200, [3.0, 6.0, 10.0], 2, generator=generator, dtype=F64)
    exponents = lyapunov_spectrum(model, 200, tsim=500.0, tons=1.0, ttrans=100.0,
                                  generator=generator).sorted().exponents
    dimension = kaplan_yorke_dimension(exponents).mean(0) / 200
    entropy = ks_entropy(exponents).mean(0) / 200
    assert torch.all(torch.diff(dimension) > 0) and torch.all(torch.diff(entropy) > 0)
    # published (N = 200–400, 1000 τ): D/N .064–.066, .092, .094–.100; H/N .0026–.0031,
    # .0082, .0122. Finite, short runs sit a little below.
    np.testing.assert_allclose(dimension.numpy(), [0.065, 0.092, 0.097], rtol=0.25)
    np.testing.assert_allclose(entropy.numpy(), [0.0028, 0.0082, 0.0122], rtol=0.4)
    np.testing.assert_allclose(mean_exponent(exponents).numpy(), math.log(0.9) / 0.1,
                               atol=0.005)


def test_twin_trajectories_refuse_an_unresolvable_separation():
    model = random_rate_network(20, [3.0], 1, generator=seeded(21))  # float32
    with pytest.raises(ValueError, match="float64"):
        twin_trajectory_lambda_max(model, tsim=5.0, tons=1.0, ttrans=1.0, generator=seeded(21))
