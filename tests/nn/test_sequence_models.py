"""Gamma activation, initialisers, recurrent cells, their tangent maps and the trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.nn import functional

from nrmkit.dynamics.lyapunov import lyapunov_spectrum
from nrmkit.dynamics.sequence_analysis import step_responses, trained_lyapunov
from nrmkit.nn import init
from nrmkit.nn.gamma import GammaActivation, gamma, gamma_slope, gamma_value
from nrmkit.nn.recurrent import (
    RecurrentDynamics,
    SequenceModelSpec,
    build_sequence_model,
)
from nrmkit.training.sequence import SequenceTrainer, evaluate

NET_TYPES = ["RNN", "ANRU", "LSTM", "GRU"]
NONLINS = ["gamma", "gamma2", "ReLU", "tanh"]


def _double(*shape, low=-3.0, high=3.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


# ----------------------------------------------------------------------------- gamma

@pytest.mark.parametrize("n", [0.5, 1.0, 4.0, 15.0])
def test_gamma_limits_are_softplus_and_sigmoid(n):
    x = _double(200)
    assert torch.allclose(gamma(x, n, 0.0), functional.softplus(n * x) / n, atol=1e-12)
    assert torch.allclose(gamma(x, n, 1.0), torch.sigmoid(n * x), atol=1e-12)
    mixed = gamma(x, n, 0.3)
    assert torch.allclose(mixed, 0.7 * functional.softplus(n * x) / n
                          + 0.3 * torch.sigmoid(n * x), atol=1e-12)


def test_gamma_tends_to_relu_at_large_gain():
    x = _double(100)
    assert torch.allclose(gamma(x, 200.0, 0.0), torch.relu(x), atol=math.log(2) / 200 + 1e-9)


@pytest.mark.parametrize("shape", [(), (6,), (5, 6)])
def test_gamma_analytic_derivatives_pass_gradcheck(shape):
    x = _double(5, 6).requires_grad_()
    n = _double(*shape, low=0.3, high=6.0, seed=1).requires_grad_()
    s = _double(*shape, low=0.0, high=1.0, seed=2).requires_grad_()
    assert gradcheck(gamma, (x, n, s))
    assert gradgradcheck(gamma, (x, n, s))


def test_gamma_derivatives_match_the_formulas_and_autograd_of_the_plain_expression():
    x = _double(50).requires_grad_()
    n = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    grads = torch.autograd.grad(gamma(x, n, s).sum(), (x, n, s))
    plain = torch.autograd.grad(gamma_value(x, n, s).sum(), (x, n, s))
    for ours, reference in zip(grads, plain, strict=True):
        assert torch.allclose(ours, reference, atol=1e-12)
    sig = torch.sigmoid(2.5 * x.detach())
    assert torch.allclose(grads[0], 0.6 * sig + 0.4 * 2.5 * sig * (1 - sig), atol=1e-12)
    assert torch.allclose(gamma_slope(x.detach(), 2.5, 0.4), grads[0], atol=1e-12)


def test_gamma_forward_mode_matches_the_slope():
    x = _double(4, 6)
    n, s = _double(6, low=1, high=5), _double(6, low=0, high=1, seed=3)
    vectors = _double(3, 4, 6, seed=4)
    pushed = torch.func.vmap(lambda v: torch.func.jvp(lambda z: gamma(z, n, s), (x,),
                                                       (v,))[1])(vectors)
    assert torch.allclose(pushed, vectors * gamma_slope(x, n, s), atol=1e-12)


def test_gamma_is_overflow_safe():
    x = torch.tensor([1e5, -1e5, 30.0, -30.0], requires_grad=True)
    value = gamma(x, torch.tensor(4.0), torch.tensor(0.25))
    value.sum().backward()
    assert torch.all(torch.isfinite(value)) and torch.all(torch.isfinite(x.grad))
    assert value[0].item() == pytest.approx(0.75 * 1e5 + 0.25, rel=1e-6)
    assert value[1].item() == pytest.approx(0.0, abs=1e-6)


def test_gamma_parameters_stay_valid_whatever_the_optimiser_does():
    layer = GammaActivation(8, per_neuron=True, gain=torch.full((8,), 5.0), saturation=0.0)
    assert layer.gain.shape == (8,)
    assert torch.allclose(layer.gain, torch.full((8,), 5.0))
    optimizer = torch.optim.SGD(layer.parameters(), lr=50.0)
    for direction in (1.0, -1.0):
        for _ in range(5):
            optimizer.zero_grad()
            (direction * (layer.gain.sum() + layer.saturation.sum())).backward()
            optimizer.step()
            layer.project_()
            assert torch.all(layer.gain > 0)
            assert torch.all((layer.saturation >= 0) & (layer.saturation <= 1))
    # the saturation moves at the edges exactly like projected gradient descent
    assert torch.all(layer.saturation == 1.0)


def test_gamma_per_layer_and_per_neuron_shapes_and_learn_flag():
    assert GammaActivation(5, per_neuron=False).gain.shape == ()
    frozen = GammaActivation(5, per_neuron=True, learn=False)
    assert list(frozen.parameters()) == []
    with pytest.raises(ValueError):
        GammaActivation(5, per_neuron=True, gain=-1.0)
    with pytest.raises(ValueError):
        GammaActivation(5, per_neuron=True, saturation=1.5)


def test_random_gamma2_init_is_per_neuron():
    model = build_sequence_model(SequenceModelSpec(nonlin="gamma2", hidden_size=50),
                                 generator=torch.Generator().manual_seed(0))
    n = model.cell.shape_parameters()["n"].detach()
    assert n.shape == (50,) and n.std() > 0.3
    assert torch.all((n >= 5) & (n <= 7))
    assert torch.all(model.cell.shape_parameters()["s"] == 0)
    fixed = build_sequence_model(SequenceModelSpec(nonlin="gamma", random=False, gain=2.0,
                                                   saturation=0.5, hidden_size=10))
    assert fixed.cell.shape_parameters()["n"].item() == pytest.approx(2.0, rel=1e-6)
    assert fixed.cell.shape_parameters()["s"].item() == pytest.approx(0.5)


def test_learn_params_switches_training_of_the_shape_on_and_off():
    on = build_sequence_model(SequenceModelSpec(nonlin="gamma2", hidden_size=10))
    off = build_sequence_model(SequenceModelSpec(nonlin="gamma2", hidden_size=10,
                                                 learn_params=False))
    assert on.n_parameters() - off.n_parameters() == 20


# ----------------------------------------------------------------------------- initialisers

@pytest.mark.parametrize("name", ["henaff", "cayley", "orthogonal"])
def test_orthogonal_initialisers_are_orthogonal(name):
    for size in (6, 7):
        matrix = init.initialize(name, size, size, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(matrix @ matrix.T, torch.eye(size), atol=1e-5)


def test_henaff_is_block_rotations_with_angles_in_minus_pi_zero():
    matrix = init.henaff(8, 8, generator=torch.Generator().manual_seed(2)).double()
    for block in range(4):
        rotation = matrix[2 * block:2 * block + 2, 2 * block:2 * block + 2]
        angle = math.atan2(rotation[0, 1].item(), rotation[0, 0].item())
        assert -math.pi <= angle <= 0
    off_block = matrix.clone()
    for block in range(4):
        off_block[2 * block:2 * block + 2, 2 * block:2 * block + 2] = 0
    assert off_block.abs().max() == 0


def test_variance_initialisers_have_their_variances():
    generator = torch.Generator().manual_seed(3)
    xavier = init.xavier(300, 200, generator=generator)
    kaiming = init.kaiming(300, 200, generator=generator)
    assert xavier.var().item() == pytest.approx(2 / 500, rel=0.05)
    assert kaiming.var().item() == pytest.approx(2 / 200, rel=0.05)
    semi = init.orthogonal(10, 3, generator=generator)
    assert torch.allclose(semi.T @ semi, torch.eye(3), atol=1e-5)
    with pytest.raises(ValueError, match="square"):
        init.henaff(4, 3)


# ----------------------------------------------------------------------------- cells

COMBINATIONS = [("RNN", nonlin) for nonlin in NONLINS] + [(net, "gamma2")
                                                          for net in NET_TYPES[1:]]


@pytest.mark.parametrize(("net_type", "nonlin"), COMBINATIONS)
def test_every_net_type_and_nonlinearity_trains_one_step(net_type, nonlin):
    generator = torch.Generator().manual_seed(0)
    model = build_sequence_model(SequenceModelSpec(net_type=net_type, nonlin=nonlin,
                                                   input_size=3, hidden_size=12),
                                 generator=generator)
    inputs, labels = torch.rand(7, 20, 3, generator=generator), torch.arange(20) % 10
    before = [p.detach().clone() for p in model.parameters()]
    trainer = SequenceTrainer(model, (inputs, labels), (inputs, labels), lr=1e-2,
                              batch_size=20, generator=generator)
    metrics = trainer.train_epoch(0)
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["validation_loss"])
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(moved), "every trainable parameter receives a gradient and moves"


def test_anru_shape_signals_vary_with_the_input():
    generator = torch.Generator().manual_seed(0)
    model = build_sequence_model(SequenceModelSpec(net_type="ANRU", input_size=1,
                                                   hidden_size=16), generator=generator)
    quiet = torch.zeros(40, 2, 1)
    loud = quiet.clone()
    loud[10:25] = 1.0
    _, trace_quiet = model.run(quiet, record=True)
    _, trace_loud = model.run(loud, record=True)
    assert trace_loud["n"].shape == (40, 2, 16)
    change = (trace_loud["n"] - trace_quiet["n"]).abs().amax((1, 2))
    assert change[:10].max() == 0 and change[10:25].min() > 1e-3
    assert trace_loud["s"][10:25].std(0).max() > 0
    assert torch.all(trace_loud["n"] > 0)
    assert torch.all((trace_loud["s"] >= 0) & (trace_loud["s"] <= 1))


@pytest.mark.parametrize("net_type", NET_TYPES)
def test_tangent_map_equals_the_jacobian_of_the_step(net_type):
    torch.manual_seed(0)
    model = build_sequence_model(SequenceModelSpec(net_type=net_type, input_size=2,
                                                   hidden_size=5)).double()
    dynamics = RecurrentDynamics(model.cell, 2)
    state = dynamics.initial_state(torch.Generator().manual_seed(1))
    x = torch.rand(2, 2, dtype=torch.float64)
    vectors = torch.randn(2, 3, dynamics.state_dim, dtype=torch.float64)
    for b in range(2):
        jacobian = torch.autograd.functional.jacobian(
            lambda s, b=b: dynamics.step(s.unsqueeze(0).expand(2, -1), x)[b], state[b])
        expected = vectors[b] @ jacobian.T
        assert torch.allclose(dynamics.tangent(state, vectors, x)[b], expected, atol=1e-10)


def test_trained_lyapunov_of_a_linear_rnn_is_log_of_the_weight_spectrum():
    """A tanh RNN at the origin with zero input is linear: V = c·Q (Q orthogonal) gives
    exponents all equal to log c — driven by a zero sequence from the zero state."""
    model = build_sequence_model(SequenceModelSpec(nonlin="tanh", input_size=1,
                                                   hidden_size=6)).double()
    with torch.no_grad():
        model.cell.recurrent.weight.mul_(0.5)
        model.cell.input_layer.bias.zero_()
    result = trained_lyapunov(model.cell, 4, inputs=torch.zeros(50, 3, 1, dtype=torch.float64))
    assert np.allclose(result.exponents, math.log(0.5), atol=1e-9)


def test_trained_lyapunov_flags_unbounded_trajectories():
    model = build_sequence_model(SequenceModelSpec(nonlin="ReLU", input_size=1,
                                                   hidden_size=4))
    with torch.no_grad():
        model.cell.recurrent.weight.copy_(3.0 * torch.eye(4))
        model.cell.input_layer.bias.fill_(1.0)
    result = trained_lyapunov(model.cell, 2, n_trajectories=3, steps=200, warmup=10)
    assert result.n_diverged == 3 and np.all(np.isnan(result.mean))


def test_lyapunov_engine_accepts_the_anru():
    model = build_sequence_model(SequenceModelSpec(net_type="ANRU", input_size=1,
                                                   hidden_size=4))
    dynamics = RecurrentDynamics(model.cell, 2).requires_grad_(False)
    result = lyapunov_spectrum(dynamics, 3, tsim=30, tons=1, ttrans=5)
    assert result.exponents.shape == (2, 3) and torch.all(torch.isfinite(result.exponents))


def test_step_responses_follow_the_drive():
    model = build_sequence_model(SequenceModelSpec(nonlin="tanh", input_size=1,
                                                   hidden_size=3))
    with torch.no_grad():
        model.cell.recurrent.weight.zero_()
        model.cell.input_layer.weight.zero_()
    responses, drive = step_responses(model, input_size=1, n_steps=30, repeats=2)
    assert responses.shape == (4, 30, 3) and drive.shape == (4, 30)
    assert np.allclose(responses, np.tanh(drive)[..., None], atol=1e-6)


# ----------------------------------------------------------------------------- trainer

def _toy_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(120) % 2
    inputs = 0.2 * torch.randn(6, 120, 1, generator=generator)
    inputs[2] += labels.float().unsqueeze(-1)
    return (inputs, labels), generator


def test_trainer_learns_and_evaluate_reports_accuracy():
    data, generator = _toy_problem()
    model = build_sequence_model(SequenceModelSpec(nonlin="gamma2", input_size=1,
                                                   hidden_size=16, n_classes=2),
                                 generator=generator)
    trainer = SequenceTrainer(model, data, data, lr=1e-2, batch_size=30, generator=generator)
    trainer.fit(15)
    assert evaluate(model, *data)["accuracy"] > 0.95
    assert trainer.history[-1]["train_loss"] < 0.5 * trainer.history[0]["train_loss"]


def test_trainer_resume_equals_uninterrupted():
    data, _ = _toy_problem()

    def fresh():
        generator = torch.Generator().manual_seed(5)
        model = build_sequence_model(SequenceModelSpec(net_type="ANRU", input_size=1,
                                                       hidden_size=6, n_classes=2),
                                     generator=generator)
        return SequenceTrainer(model, data, data, lr=1e-2, batch_size=25,
                               generator=torch.Generator().manual_seed(9),
                               augment=lambda x, g: (x * (1 + torch.rand(1, generator=g)), None),
                               augment_ratio=0.5)

    straight = fresh()
    straight.fit(4)
    first = fresh()
    first.fit(2)
    state = first.state_dict()
    second = fresh()
    second.load_state_dict(state)
    second.fit(4)
    for a, b in zip(straight.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [h["train_loss"] for h in straight.history] == \
        [h["train_loss"] for h in second.history]


def test_isolated_cells_keep_only_self_connections():
    for net_type in NET_TYPES:
        model = build_sequence_model(SequenceModelSpec(net_type=net_type, input_size=2,
                                                       hidden_size=5))
        isolated = model.cell.isolated()
        for block, original in zip(isolated.recurrent_blocks(), model.cell.recurrent_blocks(),
                                   strict=True):
            assert torch.equal(block, torch.diag(torch.diagonal(original)))
        assert not torch.equal(model.cell.recurrent_blocks()[0],
                               isolated.recurrent_blocks()[0])
