r"""Analyses of trained sequence models: Lyapunov exponents and fractional order of responses.

* :func:`trained_lyapunov` — the top-``k`` Lyapunov exponents of a trained recurrent cell
  through the one engine (:func:`nrmkit.dynamics.lyapunov.lyapunov_spectrum`), in nats per
  time step, on two kinds of trajectories:

  - *autonomous*: zero input from random initial states (``B`` of them), a warm-up of
    ``warmup`` steps, then ``steps`` accumulated steps;
  - *driven*: the network reading real input sequences ``(T, B, I)`` from the zero state,
    exponents accumulated over the whole sequence (finite-time exponents of one
    presentation; the published analysis had no warm-up either).

  Re-orthonormalisation every step (QR), as in the published ``calculateLEs``; natural-log
  units (divide by ln 2 for bits).

* :func:`step_responses` and :func:`response_fractional_order` — the fractional order of
  neural responses. As in the published analysis the neurons are *isolated* by default
  (each keeps its self-connection only, :meth:`RecurrentCell.isolated`), so that α̂ measures
  each neuron's own adaptation rather than network reverberation. They receive a constant
  input ``x ~ N(0.8, 0.1²)`` (one draw per repeat and channel, through the trained input
  weights) and a step drive of amplitude ``ξ ∈ {1, 2.5, 5, 10}`` added to every neuron's
  pre-activation during ``T/3 < t < 2T/3``; each neuron's mean response over repeats is
  compared with the drive through :func:`nrmkit.dynamics.fractional.fractional_order`
  (``α̂ = 0``: the neuron follows the drive; ``α̂ = 1``: it reports its derivative, i.e.
  adapts completely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nrmkit.dynamics.fractional import FractionalOrder, fractional_order
from nrmkit.dynamics.lyapunov import lyapunov_spectrum
from nrmkit.nn.recurrent import RecurrentDynamics, run_cell

#: step amplitudes ξ of the fractional-order protocol.
STEP_AMPLITUDES = (1.0, 2.5, 5.0, 10.0)


@dataclass
class TrainedExponents:
    """Exponents of ``B`` trajectories: ``exponents (B, k)`` descending, nats per step.

    A trajectory whose state grows without bound (a trained network with unbounded
    nonlinearity can explode once its input is removed) has no attractor and no finite
    exponents: its row is NaN and it is counted in :attr:`n_diverged`; means and standard
    deviations are over the others (NaN when all diverged).
    """

    exponents: np.ndarray
    steps: int

    @property
    def finite(self) -> np.ndarray:
        return self.exponents[np.all(np.isfinite(self.exponents), axis=-1)]

    @property
    def n_diverged(self) -> int:
        return int(self.exponents.shape[0] - self.finite.shape[0])

    @property
    def mean(self) -> np.ndarray:
        finite = self.finite
        return finite.mean(0) if len(finite) else np.full(self.exponents.shape[1], np.nan)

    @property
    def std(self) -> np.ndarray:
        finite = self.finite
        return finite.std(0) if len(finite) else np.full(self.exponents.shape[1], np.nan)

    def summary(self) -> dict:
        return {"mean": self.mean, "std": self.std, "per_trajectory": self.exponents,
                "n_diverged": self.n_diverged, "steps": self.steps, "unit": "nats per step"}


def trained_lyapunov(cell, k: int, *, inputs: Tensor | None = None, n_trajectories: int = 10,
                     steps: int = 500, warmup: int = 100,
                     generator: torch.Generator | None = None) -> TrainedExponents:
    """Top-``k`` exponents of ``cell``: driven by ``inputs (T, B, I)`` or autonomous.

    Args:
        cell: a trained :class:`~nrmkit.nn.recurrent.RecurrentCell` (not modified).
        k: number of exponents (≤ the cell's state dimension).
        inputs: input sequences for the driven case (zero initial state); None: autonomous.
        n_trajectories, steps, warmup: the autonomous case (random initial states).
        generator: random initial states and tangent basis.
    """
    parameters = [p.requires_grad for p in cell.parameters()]
    cell.requires_grad_(False)
    try:
        with torch.no_grad():
            if inputs is None:
                model = RecurrentDynamics(cell, n_trajectories)
                result = lyapunov_spectrum(model, k, tsim=float(steps), tons=1.0,
                                           ttrans=float(warmup), tbasis=0.0,
                                           generator=generator, check_finite=False)
                n_steps = steps
            else:
                n_steps, batch = inputs.shape[:2]
                model = RecurrentDynamics(cell, batch)
                state = torch.zeros((batch, model.state_dim), dtype=inputs.dtype,
                                    device=inputs.device)
                result = lyapunov_spectrum(model, k, tsim=float(n_steps), tons=1.0, ttrans=0.0,
                                           tbasis=0.0, state=state, generator=generator,
                                           drive=lambda index: inputs[index],
                                           check_finite=False)
    finally:
        for parameter, flag in zip(cell.parameters(), parameters, strict=True):
            parameter.requires_grad_(flag)
    exponents = result.exponents.detach().cpu().numpy().copy()
    unbounded = ~torch.isfinite(result.state).all(-1).cpu().numpy()
    exponents[unbounded | ~np.all(np.isfinite(exponents), axis=-1)] = np.nan
    return TrainedExponents(exponents=-np.sort(-exponents, axis=-1), steps=n_steps)


@torch.no_grad()
def step_responses(model, *, input_size: int, n_steps: int = 150,
                   amplitudes: tuple[float, ...] = STEP_AMPLITUDES, repeats: int = 10,
                   generator: torch.Generator | None = None, dtype=torch.float32,
                   device="cpu", isolated: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Hidden responses to step drives: ``(responses (C, T, H), drive (C, T))``, C = len(ξ).

    ``model`` is a :class:`~nrmkit.nn.recurrent.SequenceClassifier`; responses are averaged
    over ``repeats`` constant baseline inputs ``x ~ N(0.8, 0.1²)``; ``isolated`` keeps only
    the self-connections.
    """
    cell = model.cell.isolated() if isolated else model.cell
    baseline = 0.8 + 0.1 * torch.randn((repeats, input_size), generator=generator,
                                       dtype=torch.float64)
    baseline = baseline.to(dtype=dtype, device=device)
    n_amplitudes = len(amplitudes)
    inputs = baseline.repeat(n_amplitudes, 1).expand(n_steps, -1, -1)   # (T, C·R, I)
    window = torch.zeros(n_steps, dtype=dtype, device=device)
    window[n_steps // 3 + 1:(2 * n_steps) // 3] = 1.0
    scale = torch.tensor(amplitudes, dtype=dtype, device=device).repeat_interleave(repeats)
    drive = window[:, None, None] * scale[None, :, None]                  # (T, C·R, 1)
    _, trace = run_cell(cell, inputs, drive, record=True)
    hidden = trace["h"].reshape(n_steps, n_amplitudes, repeats, -1).mean(2)
    responses = hidden.permute(1, 0, 2).cpu().double().numpy()
    drives = (window[None, :].cpu().double().numpy()
              * np.asarray(amplitudes, dtype=float)[:, None])
    return responses, drives


def response_fractional_order(model, *, input_size: int, n_steps: int = 150,
                              repeats: int = 10, generator: torch.Generator | None = None,
                              dtype=torch.float32, device="cpu",
                              isolated: bool = True) -> FractionalOrder:
    """α̂ per hidden neuron from :func:`step_responses` (comparison window ``[T/4, 3T/4)``)."""
    responses, drive = step_responses(model, input_size=input_size, n_steps=n_steps,
                                      repeats=repeats, generator=generator, dtype=dtype,
                                      device=device, isolated=isolated)
    return fractional_order(responses, drive, window=(n_steps // 4, (3 * n_steps) // 4))
