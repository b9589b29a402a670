"""The fused rate-network step (one autograd node, analytic adjoint) against plain autograd.

``RateRNN._reference_step`` / ``_reference_step_with_tangent`` are the same maps written as
plain tensor ops; autograd through them is the reference for every value and gradient here.
"""

from __future__ import annotations

import pytest
import torch

from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.lyapunov import orthonormalize
from nrmkit.nn.activations import Activation, get_activation
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.nn.tangent_step import tangent_step

F64 = torch.float64
ACTIVATIONS = ["tanh", "tanh_stretch", "tanh_pos", "linear"]


def _model(generator, *, activation="tanh_stretch", sparse=False, population=False,
           shared=False, n=9, couplings=(1.5, 3.0), dtype=F64):
    samples = 1 if sparse else 2
    batch = (samples, len(couplings))
    weight = torch.randn((samples, n, n), generator=generator, dtype=dtype) / n**0.5
    if sparse:
        weight = (weight[0] * (torch.rand((n, n), generator=generator) < 0.4)).to_sparse_coo()
    index = torch.arange(n) % 3 if population else None
    width = 1 if shared else (3 if population else n)
    gain = 1.0 + 0.3 * torch.randn((*batch, width), generator=generator, dtype=dtype)
    shift = 0.4 * torch.randn((*batch, width), generator=generator, dtype=dtype)
    coupling = torch.tensor([couplings], dtype=dtype).expand(*batch)
    return RateRNN(weight, coupling=coupling, gain=gain, shift=shift, population=index,
                   activation=activation)


def _inputs(model, generator, k=3, drive_shape=None):
    shape = (*model.batch_shape, model.state_dim)
    state = torch.randn(shape, generator=generator, dtype=F64).requires_grad_()
    vectors = torch.randn((*model.batch_shape, k, model.state_dim), generator=generator,
                          dtype=F64).requires_grad_()
    drive = None
    if drive_shape is not None:
        drive = 0.1 * torch.randn(drive_shape, generator=generator, dtype=F64)
        drive.requires_grad_()
    return state, vectors, drive


def _gradients(outputs, cotangents, inputs):
    loss = sum((o * c).sum() for o, c in zip(outputs, cotangents, strict=True))
    return torch.autograd.grad(loss, inputs, allow_unused=True)


def _assert_same(actual, expected, rtol=1e-10):
    for a, e in zip(actual, expected, strict=True):
        if e is None:
            assert a is None or not a.any()
            continue
        scale = e.abs().max().clamp_min(1e-300)
        assert (a - e).abs().max() <= rtol * scale, (a - e).abs().max() / scale


@pytest.mark.parametrize("with_slope", [False, True])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_pullback_equals_autograd(name, with_slope, generator):
    activation = get_activation(name)
    x, gain, shift = (torch.randn(40, generator=generator, dtype=F64) for _ in range(3))
    gain = (0.5 + gain.abs()).requires_grad_()
    x.requires_grad_()
    shift.requires_grad_()
    value, slope, saved = activation.linearize(x, gain, shift)
    expected_value, expected_slope = activation.value_and_derivative(x, gain, shift)
    assert torch.equal(value, expected_value) and torch.equal(slope, expected_slope)
    grad_value = torch.randn(40, generator=generator, dtype=F64)
    grad_slope = torch.randn(40, generator=generator, dtype=F64) if with_slope else None
    loss = (expected_value * grad_value).sum()
    if with_slope:
        loss = loss + (expected_slope * grad_slope).sum()
    expected = torch.autograd.grad(loss, (x, gain, shift), allow_unused=True)
    actual = activation.pullback(saved, grad_value, grad_slope, True)
    _assert_same(actual, expected, rtol=1e-13)


@pytest.mark.parametrize("population", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_values_and_gradients_equal_autograd_of_plain_ops(activation, sparse, population,
                                                          generator):
    model = _model(generator, activation=activation, sparse=sparse, population=population)
    model.set_trainable(weights=not sparse, gains=True, shifts=True)
    state, vectors, drive = _inputs(model, generator, drive_shape=(model.state_dim,))
    inputs = [state, vectors, drive, *(p for p in model.parameters() if p.requires_grad)]
    cotangents = (torch.randn_like(state), torch.randn_like(vectors))

    fused = model.step_with_tangent(state, vectors, drive)
    plain = model._reference_step_with_tangent(state, vectors, drive)
    for a, e in zip(fused, plain, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-14)
    _assert_same(_gradients(fused, cotangents, inputs), _gradients(plain, cotangents, inputs))

    fused_state = model.step(state, drive)
    plain_state = model._reference_step(state, drive)
    torch.testing.assert_close(fused_state, plain_state, rtol=0, atol=1e-14)
    _assert_same(_gradients((fused_state,), cotangents[:1], inputs),
                 _gradients((plain_state,), cotangents[:1], inputs))


@pytest.mark.parametrize("drive_shape", [None, (1, 1, 9), (2, 2, 9)])
@pytest.mark.parametrize("shared", [False, True])
def test_shared_parameters_and_drive_shapes(shared, drive_shape, generator):
    model = _model(generator, shared=shared).set_trainable(gains=True, shifts=True)
    state, vectors, drive = _inputs(model, generator, drive_shape=drive_shape)
    inputs = [state, vectors, model.gain, model.shift] + ([] if drive is None else [drive])
    cotangents = (torch.randn_like(state), torch.randn_like(vectors))
    fused = model.step_with_tangent(state, vectors, drive)
    plain = model._reference_step_with_tangent(state, vectors, drive)
    _assert_same(_gradients(fused, cotangents, inputs), _gradients(plain, cotangents, inputs))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "tanh_stretch", "tanh_pos", "linear"])
def test_gradcheck(activation, sparse, generator):
    model = _model(generator, activation=activation, sparse=sparse, population=True, n=5,
                   couplings=(2.0,))
    plan = model._plan()
    state, vectors, drive = _inputs(model, generator, k=2, drive_shape=(5,))
    gain = model.gain.detach().clone().requires_grad_()
    shift = model.shift.detach().clone().requires_grad_()
    weight = None if sparse else model.weight.detach().clone().requires_grad_()

    def with_tangent(h, q, a, s, u, *w):
        return tangent_step(plan, h, q, a, s, w[0] if w else None, u)

    def state_only(h, a, s, u, *w):
        return tangent_step(plan, h, None, a, s, w[0] if w else None, u)

    extra = () if sparse else (weight,)
    assert torch.autograd.gradcheck(with_tangent, (state, vectors, gain, shift, drive, *extra))
    assert torch.autograd.gradcheck(state_only, (state, gain, shift, drive, *extra))


def test_sparse_and_dense_weights_give_the_same_step_and_gradients(generator):
    sparse = _model(generator, sparse=True, population=True)
    dense = RateRNN(sparse.weight.to_dense(), coupling=sparse.coupling, gain=sparse.gain,
                    shift=sparse.shift, population=sparse.population, activation="tanh_stretch")
    state, vectors, _ = _inputs(sparse, generator)
    cotangents = (torch.randn_like(state), torch.randn_like(vectors))
    results = []
    for model in (sparse, dense):
        model.set_trainable(gains=True, shifts=True)
        outputs = model.step_with_tangent(state, vectors)
        grads = _gradients(outputs, cotangents, [state, vectors, model.gain, model.shift])
        results.append((*outputs, *grads))
    for a, e in zip(*results, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-13)


def test_population_gradients_are_sums_over_their_neurons(generator):
    model = _model(generator, population=True).set_trainable(gains=True, shifts=True)
    per_neuron = RateRNN(model.weight.detach(), coupling=model.coupling,
                         gain=model.neuron_gain().detach(), shift=model.neuron_shift().detach(),
                         activation=model.activation).set_trainable(gains=True, shifts=True)
    state, vectors, _ = _inputs(model, generator)
    cotangents = (torch.randn_like(state), torch.randn_like(vectors))
    shared = _gradients(model.step_with_tangent(state, vectors), cotangents,
                        [model.gain, model.shift])
    expanded = _gradients(per_neuron.step_with_tangent(state, vectors), cotangents,
                          [per_neuron.gain, per_neuron.shift])
    for grad, grad_per_neuron in zip(shared, expanded, strict=True):
        summed = torch.zeros_like(grad).index_add_(-1, model.population, grad_per_neuron)
        torch.testing.assert_close(grad, summed, rtol=1e-12, atol=1e-14)


def test_trainable_weight_gradient_keeps_a_zero_diagonal(generator):
    model = _model(generator).set_trainable(weights=True)
    state, vectors, _ = _inputs(model, generator)
    next_state, next_vectors = model.step_with_tangent(state, vectors)
    (next_state.square().sum() + next_vectors.square().sum()).backward()
    grad = model.weight.grad
    assert torch.all(grad.diagonal(dim1=-2, dim2=-1) == 0)
    assert grad.abs().sum() > 0
    assert model.gain.grad is None  # not trainable: no gradient


@pytest.mark.parametrize("sparse", [False, True])
def test_without_gradients_no_graph_and_same_values(sparse, generator):
    model = _model(generator, sparse=sparse, population=True)
    state, vectors, _ = _inputs(model, generator)
    state, vectors = state.detach(), vectors.detach()
    plain = model._reference_step_with_tangent(state, vectors)
    fused = model.step_with_tangent(state, vectors)  # nothing requires a gradient
    assert all(t.grad_fn is None for t in fused)
    for a, e in zip(fused, plain, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-14)
    model.set_trainable(gains=True)
    with torch.no_grad():
        fused = model.step_with_tangent(state, vectors)
        fused_state = model.step(state)
    assert all(t.grad_fn is None for t in (*fused, fused_state))
    torch.testing.assert_close(fused_state, model._reference_step(state), rtol=0, atol=1e-14)


def test_spectrum_gradient_equals_autograd_through_the_plain_step(generator):
    model = _model(generator, sparse=True, population=True, n=12, couplings=(3.0,))
    model.set_trainable(gains=True, shifts=True)
    state = model.initial_state(generator)
    basis = orthonormalize(torch.randn((1, 1, 4, 12), generator=generator, dtype=F64))[0]
    kwargs = dict(tsim=3.0, tons=0.2, ttrans=0.0, tbasis=0.0, state=state, basis=basis)
    grads = []
    for reference in (False, True):
        if reference:
            model.step_with_tangent = model._reference_step_with_tangent
        result = lyapunov_spectrum(model, 4, **kwargs)
        grads.append(torch.autograd.grad(result.exponents.square().sum(),
                                         [model.gain, model.shift]))
    for a, e in zip(*grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-13)


def test_activation_without_pullback_falls_back_to_autograd(generator):
    base = get_activation("tanh_stretch")
    plain = Activation("plain", base.formula, base.value_and_derivative, uses_gain_shift=True)
    model = _model(generator, population=True)
    model.activation = plain
    model.set_trainable(gains=True)
    assert model._plan() is None
    state, vectors, _ = _inputs(model, generator)
    next_state, _ = model.step_with_tangent(state, vectors)
    assert type(next_state.grad_fn).__name__ != "_TangentStepBackward"
    torch.testing.assert_close(next_state,
                               model._reference_step_with_tangent(state, vectors)[0])


def test_cached_configuration_follows_in_place_changes(generator):
    for sparse in (False, True):
        model = _model(generator, sparse=sparse)
        state, vectors, _ = _inputs(model, generator)
        state, vectors = state.detach(), vectors.detach()
        model.step_with_tangent(state, vectors)  # fills the cache
        model.coupling.mul_(0.5)
        if sparse:
            model.weight.values().mul_(-1.0)
        model.dt = 0.2
        for a, e in zip(model.step_with_tangent(state, vectors),
                        model._reference_step_with_tangent(state, vectors), strict=True):
            torch.testing.assert_close(a, e, rtol=0, atol=1e-14)


@pytest.mark.parametrize("sparse", [False, True])
def test_step_and_step_with_tangent_follow_bitwise_the_same_trajectory(sparse, generator):
    model = _model(generator, sparse=sparse, population=True, couplings=(3.0, 6.0))
    state, vectors, _ = _inputs(model, generator)
    alone, paired = state.detach(), state.detach()
    vectors = vectors.detach()
    for _ in range(20):
        alone = model.step(alone)
        paired, vectors = model.step_with_tangent(paired, vectors)
        vectors = orthonormalize(vectors)[0]
    assert torch.equal(alone, paired)


def test_a_state_of_another_batch_is_rejected(generator):
    model = _model(generator)  # batch (2, 2)
    state, vectors, _ = _inputs(model, generator)
    with pytest.raises(ValueError, match="do not match the batch"):
        model.step(state[:, :1])
    with pytest.raises(ValueError, match="do not match the batch"):
        model.step_with_tangent(state, vectors[:, :1])


# -- a window as one autograd node (nrmkit.nn.tangent_window) -------------------------------


def _window_case(generator, *, sparse, weights):
    model = _model(generator, sparse=sparse, population=sparse, n=12,
                   couplings=(3.0,) if sparse or weights else (1.5, 3.0))
    model.set_trainable(weights=weights, gains=not weights, shifts=True)
    state = model.initial_state(generator)
    basis = orthonormalize(torch.randn((*model.batch_shape, 4, 12), generator=generator,
                                       dtype=F64))[0]
    return model, state, basis


@pytest.mark.parametrize("sparse, weights", [(True, False), (False, False), (False, True)])
def test_window_node_equals_the_step_by_step_engine(sparse, weights, generator):
    """Same values bit for bit, and the gradients of every trainable set, of the final
    state and of the final basis equal autograd through the separate step and QR nodes."""
    from nrmkit.dynamics.lyapunov import window_spectrum

    model, state, basis = _window_case(generator, sparse=sparse, weights=weights)
    state.requires_grad_()
    parameters = [p for p in model.parameters() if p.requires_grad]
    results = []
    for fast in (True, False):
        if fast:
            result = window_spectrum(model, 4, tsim=3.0, tons=0.3, state=state, basis=basis)
        else:
            result = lyapunov_spectrum(model, 4, tsim=3.0, tons=0.3, ttrans=0.0, tbasis=0.0,
                                       state=state, basis=basis)
        loss = (result.exponents.square().sum() + result.state.sin().sum()
                + (result.basis * torch.linspace(0, 1, 12, dtype=F64)).sum())
        results.append((result, torch.autograd.grad(loss, [*parameters, state])))
    (fast, fast_grads), (engine, engine_grads) = results
    assert fast.log_increments.grad_fn is not None
    assert torch.equal(fast.log_increments.detach(), engine.log_increments.detach())
    assert torch.equal(fast.state.detach(), engine.state.detach())
    assert torch.equal(fast.basis.detach(), engine.basis.detach())
    assert (fast.tons, fast.t_accumulated) == (engine.tons, engine.t_accumulated)
    for a, e in zip(fast_grads, engine_grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12)


def test_window_node_gradcheck(generator):
    from nrmkit.nn.tangent_window import tangent_window

    model, state, basis = _window_case(generator, sparse=True, weights=False)
    plan, gain, shift, _ = model._fused()
    inputs = (state.clone().requires_grad_(), basis.clone().requires_grad_(),
              gain.detach().clone().requires_grad_(), shift.detach().clone().requires_grad_())

    def window(state, basis, gain, shift):
        final_state, final_basis, logs = tangent_window(plan, state, basis, gain, shift, None,
                                                        3, 2)
        return final_state, final_basis, logs

    assert torch.autograd.gradcheck(window, inputs)


def test_window_node_without_gradients_records_nothing(generator):
    model, state, basis = _window_case(generator, sparse=True, weights=False)
    with torch.no_grad():
        final_state, final_basis, logs = model.tangent_window(state, basis, 2, 3)
    assert all(t.grad_fn is None for t in (final_state, final_basis, logs))
    assert logs.shape == (2, 1, 1, 4) and logs.dtype == F64
    # one exponent: no window node (the engine normalises instead of factorising)
    assert model.tangent_window(state, basis[..., :1, :], 2, 3) is None
