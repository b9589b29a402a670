"""The rate RNN and the Lyapunov engine: exact identities, checked to round-off.

Every test here would fail if the tangent map, the activation derivatives, the batching,
the QR bookkeeping or the time normalisation were wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nrmkit.core.errors import DivergenceError
from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.lyapunov import LyapunovResult, orthonormalize, random_basis
from nrmkit.dynamics.reference import dense_jacobian_spectrum
from nrmkit.nn.activations import get_activation
from nrmkit.nn.connectivity import gaussian_coupling
from nrmkit.nn.rate_rnn import RateRNN, random_rate_network

F64 = torch.float64
#: engine tests that take ``device`` run on the CPU and, where present, on CUDA.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _network(generator, *, n=20, samples=2, couplings=(1.5, 3.0), activation="tanh_stretch",
             per_population=False, sparse=False, dtype=F64):
    weight = gaussian_coupling(n, batch=(1 if sparse else samples,), generator=generator,
                               dtype=dtype)
    batch = (1 if sparse else samples, len(couplings))
    population = None
    width = n
    if per_population:
        population = torch.arange(n) % 3
        width = 3
    gain = 1.0 + 0.3 * torch.randn((*batch, width), generator=generator, dtype=dtype)
    shift = 0.5 * torch.randn((*batch, width), generator=generator, dtype=dtype)
    if sparse:
        weight = weight[0] * (torch.rand((n, n), generator=generator) < 0.3)
        weight = weight.to_sparse_coo()
    return RateRNN(weight, coupling=torch.tensor([couplings], dtype=dtype).expand(*batch),
                   gain=gain, shift=shift, population=population, activation=activation)


# -- activations ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "tanh_stretch", "tanh_pos", "linear"])
def test_analytic_derivative_equals_autograd(name, generator):
    activation = get_activation(name)
    x = torch.randn(50, generator=generator, dtype=F64, requires_grad=True)
    gain = 0.5 + torch.rand(50, generator=generator, dtype=F64)
    shift = torch.randn(50, generator=generator, dtype=F64)
    value, derivative = activation.value_and_derivative(x, gain, shift)
    (autograd,) = torch.autograd.grad(value.sum(), x)
    torch.testing.assert_close(derivative, autograd, rtol=1e-12, atol=1e-12)


def test_activation_formulas_and_aliases():
    x = torch.linspace(-2, 2, 9, dtype=F64)
    a, s = 1.7, 0.4
    torch.testing.assert_close(get_activation("strech")(x, a, s), torch.tanh(a * (x - s)))
    torch.testing.assert_close(get_activation("pos")(x, a, s),
                               0.5 * (1 + torch.tanh(a * (x - s))))
    torch.testing.assert_close(get_activation("std")(x, a, s), torch.tanh(x))
    # the published code's derivative a·sech²(x) is wrong whenever s ≠ 0: ours is not that
    wrong = a / torch.cosh(x) ** 2
    assert not torch.allclose(get_activation("tanh_stretch").derivative(x, a, s), wrong)


# -- the tangent map -----------------------------------------------------------------------
@pytest.mark.parametrize("per_population", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "tanh_stretch", "tanh_pos"])
def test_jacobian_free_tangent_equals_explicit_jacobian(activation, sparse, per_population,
                                                        generator):
    model = _network(generator, activation=activation, sparse=sparse,
                     per_population=per_population)
    state = model.initial_state(generator)
    vectors = torch.randn((*model.batch_shape, 4, model.state_dim), generator=generator,
                          dtype=F64)
    jacobian = model.dense_jacobian(state)  # (S, G, N, N), for this test only
    expected = torch.einsum("sgij,sgkj->sgki", jacobian, vectors)
    torch.testing.assert_close(model.tangent(state, vectors), expected)
    next_state, next_vectors = model.step_with_tangent(state, vectors)
    torch.testing.assert_close(next_vectors, expected)
    torch.testing.assert_close(next_state, model.step(state))


def test_explicit_jacobian_matches_autograd_of_the_step(generator):
    """The dense Jacobian itself (used above) is d(step)/d(state), with gains and shifts."""
    model = _network(generator, samples=1, couplings=(2.0,), activation="tanh_pos")
    state = model.initial_state(generator)
    autograd = torch.autograd.functional.jacobian(lambda h: model.step(h)[0, 0], state)
    torch.testing.assert_close(model.dense_jacobian(state)[0, 0], autograd[:, 0, 0, :])


def test_step_follows_the_euler_equation(generator):
    model = _network(generator, samples=1, couplings=(2.5,), activation="tanh_stretch")
    h = model.initial_state(generator)
    drive = 0.1 * torch.randn(h.shape, generator=generator, dtype=F64)
    a, s = model.gain, model.shift
    w = 2.5 * model.weight[0]
    expected = 0.9 * h + 0.1 * torch.tanh(a * (h - s)) @ w.T + drive
    torch.testing.assert_close(model.step(h, drive), expected)


def test_diagonal_is_zeroed_and_kept_zero_under_training(generator):
    weight = torch.randn((6, 6), generator=generator, dtype=F64)
    model = RateRNN(weight).set_trainable(weights=True)
    assert torch.all(model.weight.diagonal(dim1=-2, dim2=-1) == 0)
    loss = model.step(model.initial_state(generator)).square().sum()
    loss.backward()
    assert torch.all(model.weight.grad.diagonal(dim1=-2, dim2=-1) == 0)
    sparse = RateRNN(weight.to_sparse_coo())
    assert torch.all(sparse.weight.to_dense().diagonal() == 0)


def test_population_parameters_equal_their_per_neuron_expansion(generator):
    shared = _network(generator, per_population=True)
    expanded = RateRNN(shared.weight.detach(), coupling=shared.coupling,
                       gain=shared.neuron_gain().detach(), shift=shared.neuron_shift().detach(),
                       activation="tanh_stretch")
    state = shared.initial_state(generator)
    torch.testing.assert_close(shared.step(state), expanded.step(state))


def test_sparse_and_dense_networks_agree(generator):
    sparse = _network(generator, sparse=True)
    dense = RateRNN(sparse.weight.to_dense(), coupling=sparse.coupling, gain=sparse.gain,
                    shift=sparse.shift, activation="tanh_stretch")
    kwargs = {"tsim": 20.0, "tons": 0.5, "ttrans": 5.0}
    a = lyapunov_spectrum(sparse, 5, generator=torch.Generator().manual_seed(3), **kwargs)
    b = lyapunov_spectrum(dense, 5, generator=torch.Generator().manual_seed(3), **kwargs)
    torch.testing.assert_close(a.exponents, b.exponents, rtol=1e-9, atol=1e-9)


# -- the QR engine -------------------------------------------------------------------------
@pytest.mark.parametrize("construction", ["product", "broadcast"])
def test_engine_equals_the_dense_jacobian_reference(construction, generator):
    """Same network, state and basis: the batched engine and the one-network reference."""
    model = random_rate_network(30, [2.0, 4.0], 2, vary=("weights", "gains", "shifts"),
                                activation="tanh_pos", generator=generator, dtype=F64)
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, 6, 30, generator=generator, dtype=F64)
    result = lyapunov_spectrum(model, 6, tsim=10.0, tons=0.3, ttrans=0.0, tbasis=0.0,
                               state=state, basis=basis)
    for s in range(2):
        for g in range(2):
            reference = dense_jacobian_spectrum(
                model.weight[s], n_exponents=6, n_steps=round(10.0 / 0.3) * 3,
                steps_per_ons=3, coupling=float(model.coupling[s, g]),
                gain=model.gain[s, g], shift=model.shift[s, g], activation="tanh_pos",
                state=state[s, g], basis=basis[s, g].T, jacobian=construction,
            )
            torch.testing.assert_close(result.exponents[s, g], reference, rtol=1e-10,
                                       atol=1e-10)


def test_batched_networks_are_independent(generator):
    """A network's exponents do not depend on which other networks share its batch."""
    model = random_rate_network(25, [1.5, 3.0], 3, generator=generator, dtype=F64)
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, 4, 25, generator=generator, dtype=F64)
    kwargs = {"tsim": 20.0, "tons": 1.0, "ttrans": 5.0}
    together = lyapunov_spectrum(model, 4, state=state, basis=basis, **kwargs)
    alone = RateRNN(model.weight[1].detach(), coupling=3.0, dt=0.1)
    single = lyapunov_spectrum(alone, 4, state=state[1:2, 1:2], basis=basis[1:2, 1:2], **kwargs)
    torch.testing.assert_close(together.exponents[1, 1], single.exponents[0, 0])


def test_result_bookkeeping(generator):
    model = random_rate_network(20, [3.0], 2, generator=generator, dtype=F64)
    result = lyapunov_spectrum(model, 5, tsim=10.0, tons=0.25, ttrans=2.0, generator=generator)
    # tons is rounded to whole steps (0.25 → 2 steps = 0.2 τ) and the time is what was
    # accumulated, not including transients
    assert result.tons == pytest.approx(0.2)
    assert result.log_increments.shape == (50, 2, 1, 5)
    assert result.t_accumulated == pytest.approx(10.0)
    torch.testing.assert_close(result.history[-1], result.exponents)
    torch.testing.assert_close(result.exponents, result.log_increments.sum(0) / 10.0)
    assert torch.all(result.standard_error > 0)
    ordered = result.sorted()
    assert torch.all(ordered.exponents[..., :-1] >= ordered.exponents[..., 1:])
    q, log_r = orthonormalize(result.basis)
    torch.testing.assert_close(q @ q.transpose(-1, -2), torch.eye(5, dtype=F64).expand(2, 1, 5, 5))
    torch.testing.assert_close(log_r, torch.zeros_like(log_r), atol=1e-12, rtol=0)


def test_history_at_time_t_is_the_estimate_of_a_run_that_stops_at_t():
    """λ(t) of the convergence history equals the exponents of the same run (same network,
    initial state, basis and transients) accumulated for t only, at every checked t."""
    def run(tsim):
        gen = torch.Generator().manual_seed(21)
        model = random_rate_network(30, [2.0, 3.0], 1, generator=gen, dtype=F64)
        return lyapunov_spectrum(model, 3, tsim=tsim, tons=0.5, ttrans=5.0, tbasis=2.0,
                                 generator=gen)     # (the default basis transient scales with tsim)

    full = run(20.0)
    for t in (0.5, 4.0, 10.0):
        step = round(t / full.tons) - 1
        torch.testing.assert_close(full.history[step], run(t).exponents, rtol=1e-12, atol=0)


def test_standard_error_of_hand_made_blocks():
    """Four intervals of 0.5 τ in two blocks: block rates (0.1 + 0.3)/2/0.5 = 0.4 and
    (0.2 + 0.6)/2/0.5 = 0.8, so s.e. = |0.8 − 0.4|/√2/√2 = 0.2."""
    increments = torch.tensor([0.1, 0.3, 0.2, 0.6], dtype=F64).reshape(4, 1)
    result = LyapunovResult(exponents=increments.sum(0) / 2.0, log_increments=increments,
                            tons=0.5, t_accumulated=2.0, state=torch.zeros(1, 3),
                            basis=torch.zeros(1, 1, 3), n_blocks=2)
    torch.testing.assert_close(result.standard_error, torch.tensor([0.2], dtype=F64))


def test_standard_error_predicts_the_spread_over_initial_states():
    """One chaotic network (N = 100, g = 3) from 12 independent initial states: the scatter of
    λ₁ between the runs is what the block standard error of each run says (ratio in
    [0.5, 2]; a missing 1/√n_blocks would make it ≈ 0.2)."""
    gen = torch.Generator().manual_seed(11)
    model = random_rate_network(100, [3.0] * 12, 1, generator=gen, dtype=F64)
    result = lyapunov_spectrum(model, 1, tsim=200.0, tons=1.0, ttrans=20.0, generator=gen)
    lambda_1 = result.exponents[0, :, 0]
    ratio = float(lambda_1.std() / result.standard_error[0, :, 0].mean())
    assert 0.5 < ratio < 2.0, ratio


def test_seed_reproducibility(generator):
    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        model = random_rate_network(30, [2.0, 3.0], 2, generator=gen)
        return lyapunov_spectrum(model, 3, tsim=5.0, tons=0.2, ttrans=1.0,
                                 generator=gen).exponents

    torch.testing.assert_close(run(5), run(5), rtol=0, atol=0)
    assert not torch.allclose(run(5), run(6))


def test_drive_enters_the_update(generator):
    model = random_rate_network(10, [0.5], 1, generator=generator, dtype=F64)
    constant = torch.full((1, 1, 10), 0.3, dtype=F64)
    result = lyapunov_spectrum(model, 2, tsim=50.0, tons=1.0, ttrans=100.0, drive=constant,
                               generator=generator)
    # below the transition the driven network settles on h* = W tanh(h*) + u/dt
    h = result.state
    residual = -0.1 * h + 0.1 * model.propagate(torch.tanh(h).unsqueeze(-2)).squeeze(-2) + constant
    assert residual.abs().max() < 1e-8
    assert h.abs().min() > 0.5


def test_divergence_names_the_networks(generator):
    weight = gaussian_coupling(20, generator=generator, dtype=torch.float32)
    model = RateRNN(weight, coupling=torch.tensor([[0.5, 40.0]]), activation="linear")
    with pytest.raises(DivergenceError) as caught:
        lyapunov_spectrum(model, 1, tsim=50.0, tons=1.0, ttrans=0.0, generator=generator)
    assert caught.value.batch_indices == [(0, 1)]


@pytest.mark.parametrize("device", DEVICES)
def test_float32_agrees_with_float64(device):
    """Chaotic trajectories part ways, so the two are independent estimates of the same
    exponents: they must agree within their statistical errors."""
    def run(dtype):
        gen = torch.Generator().manual_seed(8)
        model = random_rate_network(100, [3.0], 2, generator=gen, dtype=dtype, device=device)
        result = lyapunov_spectrum(model, 3, tsim=200.0, tons=0.5, ttrans=50.0, generator=gen)
        return result.exponents.double().cpu(), result.standard_error.cpu()

    (single, single_error), (double, double_error) = run(torch.float32), run(F64)
    combined = (single_error**2 + double_error**2).sqrt()
    assert torch.all((single - double).abs() < 4 * combined + 0.005)


@pytest.mark.gpu
def test_cuda_equals_cpu():
    def run(device):
        gen = torch.Generator().manual_seed(2)
        model = random_rate_network(60, [2.0, 3.0], 2, vary=("weights", "gains"),
                                    activation="tanh_stretch", generator=gen, dtype=F64,
                                    device=device)
        return lyapunov_spectrum(model, 60, tsim=10.0, tons=0.5, ttrans=5.0,
                                 generator=gen).exponents.cpu()

    torch.testing.assert_close(run("cuda"), run("cpu"), rtol=1e-7, atol=1e-7)


def test_random_network_distributions(generator):
    """W = g·J has N(0, g²/N) entries; gains and shifts N(1, g²/N) when varied."""
    n, g = 400, 3.0
    model = random_rate_network(n, [g], 1, vary=("weights", "gains", "shifts"),
                                activation="tanh_stretch", generator=generator, dtype=F64)
    weight = (model.coupling[0, 0] * model.weight[0]).numpy()
    off = weight[~np.eye(n, dtype=bool)]
    assert off.std() == pytest.approx(g / math.sqrt(n), rel=0.01)
    assert abs(off.mean()) < 0.01 * g / math.sqrt(n) * 5
    assert np.all(np.diag(weight) == 0)
    for values in (model.gain, model.shift):
        values = values.numpy().ravel()
        assert values.mean() == pytest.approx(1.0, abs=4 * g / n)
        assert values.std() == pytest.approx(g / math.sqrt(n), rel=0.15)
    independent = random_rate_network(n, [1.0, 2.0], 3, shared_matrix=False,
                                      generator=generator, dtype=F64)
    assert independent.batch_shape == (6, 1)
    assert not torch.allclose(independent.weight[0], independent.weight[1])


def test_single_vector_orthonormalisation_equals_qr(generator):
    rows = torch.randn((3, 2, 1, 40), generator=generator, dtype=F64)
    q, log_r = orthonormalize(rows)
    reference_q, reference_r = torch.linalg.qr(rows.transpose(-1, -2))
    torch.testing.assert_close(q.abs(), reference_q.transpose(-1, -2).abs())
    torch.testing.assert_close(log_r, reference_r.diagonal(dim1=-2, dim2=-1).abs().log())
