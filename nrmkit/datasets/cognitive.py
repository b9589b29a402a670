r"""Cognitive tasks of the rate-to-spiking framework (Kim, Li & Sejnowski 2019), batched.

One step is 5 ms of the rate model. A task draws ``B`` trials at once: inputs
``(T, B, I)``, targets ``(T, B)`` (time first), a label and a condition per trial. Output
step ``t`` of a rate network is the read-out after the update driven by input ``u_t`` and is
compared with target ``z_t`` (:mod:`nrmkit.nn.dale`).

=========  ====  ======================================================  =================
task       T     inputs                                                  target
=========  ====  ======================================================  =================
go-nogo    200   1 channel: 1 on [50, 75) on Go trials (p = ½)           1 from step 75 on
                                                                         Go trials, else 0
xor        300   2 channels: ±1 on [50, 100) and ±1 on [110, 160)        s₀·s₁ on
                                                                         [170, 270), else 0
mante      500   channels 0, 1: N(±0.5, 1) noise on [50, 250);           sign of the cued
                 channel 2 or 3 (the context cue): 1 for the whole trial  channel from 250
=========  ====  ======================================================  =================

XOR labels follow the published code: +1 when the two pulses have the same sign ("same"),
−1 when they differ.

A trial is *correct* (:meth:`CognitiveTask.correct`) when, from the response window's first
step on, the output crosses +0.7 for a +1 label (Go), falls below −0.7 for a −1 label, and
for a NoGo (label 0) stays inside (−0.3, 0.3). The window starts where the published code
scores it: for the rate network (training's stopping rule) at step 75 (Go-NoGo), 200 (XOR)
and 299 (Mante: the last 200 of the published code's T − 1 = 499 outputs); for the spiking
network's λ grid search at rate step 100, 200 and 260 (LIF steps 10000, 20000 and 26000 at
0.05 ms), where a NoGo trial only needs to stay below 0.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nrmkit.core.registry import TASKS

#: output threshold of a correct +1 / −1 response.
RESPONSE_THRESHOLD = 0.7
#: an output that must stay silent (NoGo) has to stay below this.
SILENCE_THRESHOLD = 0.3


@dataclass(frozen=True)
class Trials:
    """A batch of trials.

    Attributes:
        inputs: ``(T, B, I)`` input currents (float32).
        targets: ``(T, B)`` target outputs.
        labels: ``(B,)`` +1 / −1, or 0 for a NoGo trial (float32).
        conditions: ``(B,)`` index into ``condition_names`` (int64).
        condition_names: one name per condition, e.g. ``("NoGo", "Go")``.
    """

    inputs: Tensor
    targets: Tensor
    labels: Tensor
    conditions: Tensor
    condition_names: tuple[str, ...]

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[1]

    def to(self, device=None, dtype=None) -> Trials:
        return Trials(self.inputs.to(device=device, dtype=dtype),
                      self.targets.to(device=device, dtype=dtype),
                      self.labels.to(device=device), self.conditions.to(device=device),
                      self.condition_names)


@dataclass(frozen=True)
class CognitiveTask:
    """Common scoring of the three tasks; subclasses draw the trials.

    Attributes:
        name: registry name. n_steps: trial length ``T`` (5-ms steps). n_inputs: channels.
        response_start: first step scored for the rate network (stopping rule).
        lif_response_start: first rate step scored for the spiking network.
        min_training_trials: training may stop only after more trials than this (the
            published Go-NoGo rule: 1500, "to ensure that the trained rate model is stable").
    """

    name: str = ""
    n_steps: int = 0
    n_inputs: int = 0
    response_start: int = 0
    lif_response_start: int = 0
    min_training_trials: int = 0
    condition_names: tuple[str, ...] = ()

    def trials(self, n_trials: int, generator: torch.Generator | None = None) -> Trials:
        """Draw ``n_trials`` independent trials (CPU, float32)."""
        raise NotImplementedError

    def correct(self, outputs: Tensor, labels: Tensor, *, spiking: bool = False) -> Tensor:
        """``(B,)`` bool: which trials are answered correctly.

        Args:
            outputs: ``(T, ..., B)`` network outputs (any batch dimensions between time and
                trials, e.g. ``(T, L, B)`` for several scaling factors).
            labels: ``(B,)`` trial labels (+1, −1 or 0 for NoGo).
            spiking: score with the spiking network's window and NoGo rule.
        """
        start = self.lif_response_start if spiking else self.response_start
        window = outputs[start:]
        high = window.amax(0)
        low = window.amin(0)
        labels = labels.to(outputs.device)
        go = high > RESPONSE_THRESHOLD
        minus = low < -RESPONSE_THRESHOLD
        if spiking:
            silent = high < SILENCE_THRESHOLD
        else:
            silent = (high < SILENCE_THRESHOLD) & (low > -SILENCE_THRESHOLD)
        return torch.where(labels > 0, go, torch.where(labels < 0, minus, silent))


def _signs(n: int, generator) -> Tensor:
    return torch.where(torch.rand(n, generator=generator) < 0.5, 1.0, -1.0)


@dataclass(frozen=True)
class GoNoGo(CognitiveTask):
    """Respond (output 1) after a brief input pulse, stay at 0 without it."""

    name: str = "go-nogo"
    n_steps: int = 200
    n_inputs: int = 1
    stim_on: int = 50
    stim_duration: int = 25
    response_start: int = 75
    lif_response_start: int = 100
    min_training_trials: int = 1500
    condition_names: tuple[str, ...] = ("NoGo", "Go")

    def trials(self, n_trials: int, generator: torch.Generator | None = None) -> Trials:
        go = torch.rand(n_trials, generator=generator) < 0.5
        inputs = torch.zeros(self.n_steps, n_trials, 1)
        end = self.stim_on + self.stim_duration
        inputs[self.stim_on:end, :, 0] = go.float()
        targets = torch.zeros(self.n_steps, n_trials)
        targets[end:] = go.float()
        return Trials(inputs, targets, go.float(), go.long(), self.condition_names)


@dataclass(frozen=True)
class XOR(CognitiveTask):
    """Two successive ±1 pulses; answer +1 if they have the same sign, −1 otherwise."""

    name: str = "xor"
    n_steps: int = 300
    n_inputs: int = 2
    stim_on: int = 50
    stim_duration: int = 50
    delay: int = 10
    response_delay: int = 10
    response_duration: int = 100
    response_start: int = 200
    lif_response_start: int = 200
    condition_names: tuple[str, ...] = ("+ +", "+ −", "− +", "− −")

    def trials(self, n_trials: int, generator: torch.Generator | None = None) -> Trials:
        first, second = _signs(n_trials, generator), _signs(n_trials, generator)
        inputs = torch.zeros(self.n_steps, n_trials, 2)
        second_on = self.stim_on + self.stim_duration + self.delay
        inputs[self.stim_on:self.stim_on + self.stim_duration, :, 0] = first
        inputs[second_on:second_on + self.stim_duration, :, 1] = second
        labels = first * second
        targets = torch.zeros(self.n_steps, n_trials)
        response_on = second_on + self.stim_duration + self.response_delay
        targets[response_on:response_on + self.response_duration] = labels
        conditions = (first < 0).long() * 2 + (second < 0).long()
        return Trials(inputs, targets, labels, conditions, self.condition_names)


@dataclass(frozen=True)
class Mante(CognitiveTask):
    """Context-dependent sensory integration: report the sign of the cued noisy channel."""

    name: str = "mante"
    n_steps: int = 500
    n_inputs: int = 4
    stim_on: int = 50
    stim_duration: int = 200
    offset: float = 0.5
    response_start: int = 299
    lif_response_start: int = 260
    condition_names: tuple[str, ...] = ("context 1, +", "context 1, −",
                                        "context 2, +", "context 2, −")

    def trials(self, n_trials: int, generator: torch.Generator | None = None) -> Trials:
        signs = torch.stack([_signs(n_trials, generator), _signs(n_trials, generator)], 1)
        second_context = torch.rand(n_trials, generator=generator) >= 0.5
        end = self.stim_on + self.stim_duration
        inputs = torch.zeros(self.n_steps, n_trials, 4)
        noise = torch.randn(self.stim_duration, n_trials, 2, generator=generator)
        inputs[self.stim_on:end, :, :2] = noise + self.offset * signs
        inputs[:, :, 2] = (~second_context).float()
        inputs[:, :, 3] = second_context.float()
        labels = torch.where(second_context, signs[:, 1], signs[:, 0])
        targets = torch.zeros(self.n_steps, n_trials)
        targets[end:] = labels
        conditions = second_context.long() * 2 + (labels < 0).long()
        return Trials(inputs, targets, labels, conditions, self.condition_names)


GO_NOGO = GoNoGo()
XOR_TASK = XOR()
MANTE = Mante()


def get_task(name: str) -> CognitiveTask:
    """The task registered as ``name`` (``go-nogo``, ``xor``, ``mante``; KeyError if unknown)."""
    task = TASKS.get(name)
    if not isinstance(task, CognitiveTask):
        raise KeyError(f"{name!r} is not a cognitive task")
    return task
