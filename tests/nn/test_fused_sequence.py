"""The fused RNN sequence against the step-by-step autograd loop and finite differences."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from nrmkit.core.streams import torch_generator
from nrmkit.nn.fused_sequence import (
    GAMMA_RULE,
    fused_rnn_sequence,
    pointwise_rule,
)
from nrmkit.nn.recurrent import SequenceModelSpec, build_sequence_model, run_cell

STEPS, BATCH, HIDDEN, INPUTS = 9, 4, 6, 2
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _model(nonlin: str, *, learn: bool = True, dtype=torch.float64, device="cpu", **options):
    spec = SequenceModelSpec(nonlin=nonlin, input_size=INPUTS, hidden_size=HIDDEN,
                             learn_params=learn, **options)
    model = build_sequence_model(spec, generator=torch_generator(0, 0, "initialisation"))
    with torch.no_grad():             # a non-trivial shape: s inside (0, 1), n of order 1
        for value in model.buffers():
            value.copy_(torch.linspace(0.2, 0.8, value.numel()).reshape(value.shape))
        for name, value in model.named_parameters():
            if "raw_" in name:
                value.copy_(torch.linspace(0.2, 0.8, value.numel()).reshape(value.shape))
            if name.endswith("input_layer.bias"):
                value.copy_(torch.linspace(-0.3, 0.3, value.numel()))
    return model.to(dtype=dtype, device=device)


def _data(kind: str | None, dtype=torch.float64, device="cpu"):
    generator = torch_generator(0, 0, "data")
    inputs = torch.randn((STEPS, BATCH, INPUTS), generator=generator, dtype=dtype)
    drive = {None: None, "step": torch.randn((STEPS, 1, 1), generator=generator, dtype=dtype),
             "full": torch.randn((STEPS, BATCH, HIDDEN), generator=generator, dtype=dtype),
             "per_neuron": torch.randn((STEPS, HIDDEN), generator=generator,
                                       dtype=dtype)}[kind]
    labels = torch.randint(0, 10, (BATCH,), generator=generator)
    return inputs.to(device), None if drive is None else drive.to(device), labels.to(device)


def _loss_and_gradients(model, inputs, drive, labels, *, fused: bool):
    """Cross-entropy of the read-out plus a term on every recorded state (so the trace's
    gradient is tested too); its value, the final state, the trace and all gradients."""
    inputs = inputs.clone().requires_grad_()
    drive = None if drive is None else drive.clone().requires_grad_()
    state, trace = model.run(inputs, drive, record=True, fused=fused)
    logits = model.readout(state[0])
    loss = torch.nn.functional.cross_entropy(logits, labels) + (trace["h"] ** 2).mean()
    extra = [inputs] + ([] if drive is None else [drive])
    named = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, [*named.values(), *extra])
    names = [*named, "inputs", *([] if drive is None else ["drive"])]
    return loss.detach(), state[0].detach(), trace["h"].detach(), dict(zip(names, grads,
                                                                           strict=True))


def _assert_same(model, inputs, drive, labels, *, tolerance=1e-11):
    loop = _loss_and_gradients(model, inputs, drive, labels, fused=False)
    fused = _loss_and_gradients(model, inputs, drive, labels, fused=True)
    assert torch.equal(loop[0], fused[0])                   # the same forward operations
    assert torch.equal(loop[1], fused[1])
    assert torch.equal(loop[2], fused[2])
    assert loop[3].keys() == fused[3].keys()
    for name, reference in loop[3].items():
        scale = reference.abs().max().clamp_min(1e-300)
        error = (fused[3][name] - reference).abs().max() / scale
        assert error < tolerance, (name, float(error))
    return loop[3]


@pytest.mark.parametrize("nonlin", ["gamma", "gamma2"])
@pytest.mark.parametrize("learn", [True, False])
@pytest.mark.parametrize("drive", [None, "step", "full", "per_neuron"])
def test_fused_gamma_sequence_matches_the_autograd_loop(nonlin, learn, drive):
    model = _model(nonlin, learn=learn)
    grads = _assert_same(model, *_data(drive))
    raw = {name for name in grads if "raw_" in name}
    assert raw == ({"cell.nonlinearity.raw_gain", "cell.nonlinearity.raw_saturation"}
                   if learn else set())
    assert all(grads[name].abs().max() > 0 for name in raw)   # the shape really is learned
    expected = {"cell.input_layer.weight", "cell.input_layer.bias", "cell.recurrent.weight",
                "readout.weight", "readout.bias", "inputs"}
    assert expected <= grads.keys()


@pytest.mark.parametrize("nonlin", ["ReLU", "tanh", "sigmoid", "modrelu"])
def test_fused_sequence_of_the_other_pointwise_nonlinearities_matches_the_loop(nonlin):
    _assert_same(_model(nonlin), *_data("step"))


def test_the_fused_path_is_taken_where_it_applies_and_not_elsewhere():
    inputs, drive, _ = _data("step")
    model = _model("gamma2")
    state, _ = run_cell(model.cell, inputs.requires_grad_(), drive)
    assert type(state[0].grad_fn).__name__ == "FusedRNNSequenceBackward"
    state, _ = run_cell(model.cell, inputs, drive, fused=False)
    assert type(state[0].grad_fn).__name__ != "FusedRNNSequenceBackward"
    keep = torch.ones(HIDDEN, dtype=torch.float64)
    state, _ = run_cell(model.cell, inputs, drive, keep=keep)
    assert type(state[0].grad_fn).__name__ != "FusedRNNSequenceBackward"
    delayed = _model("gamma2", cell_options={"delay": 2})
    state, _ = run_cell(delayed.cell, inputs, drive)
    assert type(state[0].grad_fn).__name__ != "FusedRNNSequenceBackward"
    assert pointwise_rule(torch.nn.Tanh()) is None
    assert pointwise_rule(model.cell.nonlinearity) is GAMMA_RULE


def test_dropout_training_takes_the_loop_and_gives_the_same_numbers():
    model = _model("gamma2", dropout_prob=0.3).train()
    inputs, _, _ = _data(None)
    outputs = []
    for fused in (True, False):
        model.dropout_generator = torch_generator(0, 0, "dropout")
        outputs.append(model(inputs, fused=fused))
    assert torch.equal(*outputs)


def test_initial_state_and_evaluation_without_gradients_match_the_loop():
    model = _model("gamma")
    inputs, drive, _ = _data("full")
    start = torch.randn((BATCH, HIDDEN), dtype=torch.float64,
                        generator=torch_generator(0, 0, "state")).requires_grad_()
    grads = []
    for fused in (True, False):
        state, _ = run_cell(model.cell, inputs, drive, state=(start,), fused=fused)
        grads.append(torch.autograd.grad(state[0].sum(), start)[0])
    assert torch.allclose(*grads, rtol=1e-12, atol=1e-14)
    with torch.no_grad():
        fused, fused_trace = run_cell(model.cell, inputs, drive, record=True)
        loop, loop_trace = run_cell(model.cell, inputs, drive, record=True, fused=False)
    assert torch.equal(fused[0], loop[0]) and torch.equal(fused_trace["h"], loop_trace["h"])


def test_the_backward_pass_matches_finite_differences():
    model = _model("gamma2")
    cell = model.cell
    inputs, drive, _ = _data("full")
    small = [t[:4, :2].clone().requires_grad_() for t in (inputs, drive)]
    start = torch.full((2, HIDDEN), 0.1, dtype=torch.float64, requires_grad=True)
    weights = [cell.input_layer.weight, cell.input_layer.bias, cell.recurrent.weight]
    shape = (cell.nonlinearity.gain.detach().requires_grad_(),
             cell.nonlinearity.saturation.detach().requires_grad_())

    def sequence(x, d, h0, u, b, v, n, s):
        hidden, last = fused_rnn_sequence(GAMMA_RULE, x, d, h0, u, b, v, (n, s))
        return hidden.sin().sum(0), last

    assert gradcheck(sequence, (*small, start, *weights, *shape))


def test_the_graph_can_be_retained_and_double_backward_is_refused():
    model = _model("gamma")
    inputs, _, labels = _data(None)
    loss = torch.nn.functional.cross_entropy(model(inputs), labels)
    first = torch.autograd.grad(loss, model.cell.recurrent.weight, retain_graph=True)[0]
    second = torch.autograd.grad(loss, model.cell.recurrent.weight, create_graph=True)[0]
    assert torch.equal(first, second)
    with pytest.raises(RuntimeError, match="twice"):
        second.sum().backward()


@pytest.mark.parametrize("device", DEVICES)
def test_single_precision_and_devices_agree_with_the_loop(device):
    model = _model("gamma2", dtype=torch.float32, device=device)
    _assert_same(model, *_data("step", dtype=torch.float32, device=device), tolerance=1e-4)


def test_gradients_returned_earlier_survive_later_backward_passes():
    model = _model("gamma2")
    inputs, drive, _ = _data("full")
    drive.requires_grad_()
    first_state, _ = run_cell(model.cell, inputs, drive)
    first = torch.autograd.grad(first_state[0].sum(), drive)[0]
    kept = first.clone()
    for _ in range(2):
        state, _ = run_cell(model.cell, 2.0 * inputs, drive)
        torch.autograd.grad(state[0].sum(), drive)
    assert torch.equal(first, kept)
