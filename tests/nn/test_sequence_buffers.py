"""Reused sequence buffers: handed out again only when nothing else holds them, so that
gradients and outputs a caller still holds are never overwritten."""

from __future__ import annotations

import pytest
import torch

from nrmkit.nn import sequence_buffers
from nrmkit.nn.fused_sequence import GAMMA_RULE, fused_rnn_sequence
from nrmkit.nn.sequence_buffers import release_sequence_buffers, sequence_buffer

F64 = torch.float64
pytestmark = pytest.mark.skipif(sequence_buffers._ALONE is None,
                                reason="this torch build exposes no storage use counts")


@pytest.fixture(autouse=True)
def fresh_pool():
    release_sequence_buffers()
    yield
    release_sequence_buffers()


def _address(tensor):
    return tensor.untyped_storage().data_ptr()


def test_a_free_buffer_is_reused_and_a_held_one_is_not():
    like = torch.empty(1)
    first = sequence_buffer((4, 3, 2), like)
    address = _address(first)
    del first
    second = sequence_buffer((4, 3, 2), like)
    assert _address(second) == address                 # nothing held it: reused
    third = sequence_buffer((4, 3, 2), like)
    assert _address(third) != address                  # `second` still holds it
    view = second[1:]
    del second
    assert _address(sequence_buffer((4, 3, 2), like)) != address   # a view holds it
    del view
    assert _address(sequence_buffer((4, 3, 2), like)) == address


def test_another_shape_lets_go_of_the_free_buffers():
    like = torch.empty(1)
    del_me = sequence_buffer((4, 3, 2), like)
    del del_me
    sequence_buffer((5, 3, 2), like)
    assert [tuple(buffer.shape) for buffer in sequence_buffers._POOL.buffers] == [(5, 3, 2)]
    assert sequence_buffer((4, 3, 2), torch.empty(1, dtype=F64)).dtype == F64


def _sequence(generator, inputs):
    size = 6
    weights = [torch.randn(size, 1, generator=generator, dtype=F64),
               torch.randn(size, generator=generator, dtype=F64),
               torch.randn(size, size, generator=generator, dtype=F64) / size ** 0.5,
               torch.full((size,), 2.0, dtype=F64), torch.full((size,), 0.5, dtype=F64)]
    for weight in weights:
        weight.requires_grad_(True)
    u, b, v, n, s = weights
    h0 = torch.zeros(inputs.shape[1], size, dtype=F64)
    hidden, last = fused_rnn_sequence(GAMMA_RULE, inputs, None, h0, u, b, v, (n, s))
    return weights, hidden, last


def test_a_kept_graph_and_held_outputs_survive_later_sequences(generator):
    """Backward twice through a kept graph, with sequences of the same shape run in
    between, gives the same gradients: the saved pre-activations and states, the outputs and
    the gradients are never handed out again while held."""
    inputs = torch.rand(9, 4, 1, generator=generator, dtype=F64)
    weights, hidden, last = _sequence(generator, inputs)
    kept_hidden = hidden.detach().clone()
    loss = (last ** 2).sum() + hidden.sum()
    first = torch.autograd.grad(loss, weights, retain_graph=True)
    for _ in range(3):                                  # same shapes, other values
        other_weights, other_hidden, other_last = _sequence(
            generator, torch.rand(9, 4, 1, generator=generator, dtype=F64))
        torch.autograd.grad((other_last ** 3).sum() + other_hidden.sum(), other_weights)
    second = torch.autograd.grad(loss, weights)
    assert torch.equal(hidden.detach(), kept_hidden)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_pooled_and_fresh_buffers_give_identical_training(generator, monkeypatch):
    """Ten gradient steps with the pool and without it: the same weights bit for bit."""
    def train():
        gen = torch.Generator().manual_seed(3)
        inputs = torch.rand(12, 5, 1, generator=gen, dtype=F64)
        weights, _, _ = _sequence(gen, inputs)
        optimizer = torch.optim.SGD(weights[:3], lr=0.01)     # U, b, V
        addresses = set()
        for _ in range(10):
            optimizer.zero_grad()
            u, b, v, n, s = weights
            hidden, last = fused_rnn_sequence(GAMMA_RULE, inputs, None,
                                              torch.zeros(5, 6, dtype=F64), u, b, v, (n, s))
            addresses.add(_address(hidden))
            del hidden
            ((last - 0.3) ** 2).sum().backward()
            optimizer.step()
        return [weight.detach().clone() for weight in weights], len(addresses)

    pooled, pooled_addresses = train()
    monkeypatch.setattr(sequence_buffers, "_ALONE", None)
    fresh, _ = train()
    assert pooled_addresses < 10                       # the pool did hand memory out again
    assert all(torch.isfinite(weight).all() for weight in pooled)
    for a, b in zip(pooled, fresh, strict=True):
        assert torch.equal(a, b)


def test_inference_mode_buffers_do_not_serve_training(generator):
    """A sequence run under ``torch.inference_mode`` and then one that trains, same shapes:
    the second must not be handed the first's inference tensors (which it could not write)."""
    inputs = torch.rand(7, 3, 1, generator=generator, dtype=F64)
    with torch.inference_mode():
        _sequence(generator, inputs)
    weights, _, last = _sequence(generator, inputs)
    (last ** 2).sum().backward()
    assert all(weight.grad is not None for weight in weights[:3])
