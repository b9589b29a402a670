"""Cognitive task generators of rate_to_lif (timings of SPEC §4) and their scoring rules."""

from __future__ import annotations

import pytest
import torch

from nrmkit.core.registry import TASKS
from nrmkit.datasets.cognitive import GO_NOGO, MANTE, XOR_TASK, get_task


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_names():
    assert set(TASKS.names()) >= {"go-nogo", "xor", "mante"}
    assert get_task("go-nogo") is GO_NOGO
    with pytest.raises(KeyError):
        get_task("sine-wave")


def test_go_nogo_timing():
    trials = GO_NOGO.trials(400, _gen())
    assert trials.inputs.shape == (200, 400, 1)
    assert trials.targets.shape == (200, 400)
    go = trials.labels == 1
    assert 150 < int(go.sum()) < 250                          # p = 1/2
    assert torch.all(trials.inputs[50:75, go, 0] == 1)
    assert torch.all(trials.inputs[:50, :, 0] == 0) and torch.all(trials.inputs[75:] == 0)
    assert torch.all(trials.inputs[:, ~go] == 0)
    assert torch.all(trials.targets[75:, go] == 1) and torch.all(trials.targets[:75] == 0)
    assert torch.all(trials.targets[:, ~go] == 0)
    assert torch.equal(trials.conditions, go.long())
    assert trials.condition_names == ("NoGo", "Go")


def test_xor_timing_and_labels():
    trials = XOR_TASK.trials(400, _gen(1))
    assert trials.inputs.shape == (300, 400, 2)
    first = trials.inputs[50, :, 0]
    second = trials.inputs[110, :, 1]
    assert torch.all(first.abs() == 1) and torch.all(second.abs() == 1)
    assert torch.all(trials.inputs[50:100, :, 0] == first)
    assert torch.all(trials.inputs[110:160, :, 1] == second)
    assert torch.all(trials.inputs[100:, :, 0] == 0) and torch.all(trials.inputs[:110, :, 1] == 0)
    assert torch.all(trials.inputs[160:] == 0)
    assert torch.equal(trials.labels, first * second)         # +1 = "same", as published
    assert torch.all(trials.targets[170:270] == trials.labels)
    assert torch.all(trials.targets[:170] == 0) and torch.all(trials.targets[270:] == 0)
    assert len(set(trials.conditions.tolist())) == 4


def test_mante_timing_and_context():
    trials = MANTE.trials(2000, _gen(2))
    inputs = trials.inputs
    assert inputs.shape == (500, 2000, 4)
    assert torch.all(inputs[:50, :, :2] == 0) and torch.all(inputs[250:, :, :2] == 0)
    context = inputs[:, :, 3]
    assert torch.all(inputs[:, :, 2] + context == 1)          # exactly one cue, whole trial
    assert torch.all(context == context[0])
    means = inputs[50:250, :, :2].mean(0)                     # (B, 2): ±0.5 + noise/√200
    assert torch.all((means.abs() - 0.5).abs() < 0.35)
    noise = inputs[50:250, :, :2] - means
    assert noise.std().item() == pytest.approx(1.0, rel=0.03)
    cued = torch.where(context[0] > 0, means[:, 1], means[:, 0])
    agree = (torch.sign(cued) == trials.labels).float().mean()
    assert agree > 0.99
    assert torch.all(trials.targets[250:] == trials.labels)
    assert torch.all(trials.targets[:250] == 0)


def test_trials_are_reproducible():
    a = MANTE.trials(5, _gen(7))
    b = MANTE.trials(5, _gen(7))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)


def test_scoring_rules():
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    outputs = torch.zeros(200, 4)
    outputs[100:, 0] = 0.8                 # Go answered
    outputs[100:, 1] = 0.1                 # NoGo silent
    outputs[100:, 2] = -0.5                # NoGo but a negative excursion
    outputs[100:, 3] = 0.6                 # Go too weak
    assert GO_NOGO.correct(outputs, labels).tolist() == [True, True, False, False]
    # the spiking rule (published LIF scoring) only bounds a NoGo output from above
    assert GO_NOGO.correct(outputs, labels, spiking=True).tolist() == [True, True, True, False]
    # an answer before the response window does not count
    early = torch.zeros(200, 1)
    early[60:74] = 1.0
    assert not GO_NOGO.correct(early, torch.tensor([1.0])).item()
    # several scaling factors at once: (T, L, B)
    stacked = torch.stack([outputs, -outputs], dim=1)
    assert GO_NOGO.correct(stacked, labels).shape == (2, 4)
    xor_out = torch.zeros(300, 2)
    xor_out[210:, 0] = -0.9
    xor_out[210:, 1] = -0.9
    assert XOR_TASK.correct(xor_out, torch.tensor([-1.0, 1.0])).tolist() == [True, False]
