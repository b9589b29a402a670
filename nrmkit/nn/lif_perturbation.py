r"""Perturbations and diagnostics of the LIF networks of :mod:`nrmkit.nn.lif`.

**Artificial stimulation** (a model of optogenetic stimulation, Kim, Li & Sejnowski 2019,
``LIF_network_fnc.m``): during the LIF steps ``s`` with ``t_start ≤ s·dt < t_end`` (ms), after
the membrane update and its noise and before the threshold test, every stimulated unit ``i``
of a trial receives

.. math::

    v_i \leftarrow v_i \pm A\,β_s, \qquad β_s \sim \mathrm{Bernoulli}(p)

with ``+`` for ``exc`` (depolarising) and ``−`` for ``inh`` (hyperpolarising), amplitude
``A = 0.5`` mV and ``p = 0.5`` as published, refractory or not (like the noise). With
``p = 1`` the kicks are the Euler LIF's current ``A·τ_m/dt`` mV outside the refractory
period. One ``β_s`` per trial and step is shared by all
stimulated units of the trial (the published code draws one number per step) and by every
scaling factor of a batched run (common random numbers); the draws come from their own
generator, so the noise and ``v_0`` are those of the unperturbed run and nothing differs
before the window opens. The mean drive is ``±A·p/dt`` mV/ms (±5 mV/ms by default).

**Voltage traces**: the membrane potential of chosen units at the end of every LIF step, with
a spike drawn as a peak of ``v_peak = 30`` mV at its step (the published ``REC``), for the
first ``trace_trials`` trials: ``(T_lif, L, trace_trials, K)`` in mV.

This module does not print, write files or hold global state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: the value a trace shows at a spike step (mV), as the published ``REC``.
SPIKE_PEAK_MV = 30.0


@dataclass(frozen=True)
class Stimulation:
    """Artificial stimulation of ``units`` (see the module docstring).

    Attributes:
        mode: ``"exc"`` (depolarising) or ``"inh"`` (hyperpolarising).
        window_ms: ``(start, end)``: the steps ``s`` with ``start ≤ s·dt < end`` are stimulated.
        units: indices of the stimulated neurons (0-based).
        amplitude_mv: ``A``, the voltage step (mV). probability: ``p`` per step.
    """

    mode: str
    window_ms: tuple[float, float]
    units: tuple[int, ...]
    amplitude_mv: float = 0.5
    probability: float = 0.5

    def __post_init__(self):
        if self.mode not in ("exc", "inh"):
            raise ValueError(f"stimulation mode must be exc or inh, got {self.mode!r}")
        start, end = self.window_ms
        if not (0 <= start < end):
            raise ValueError(f"the window must satisfy 0 ≤ start < end, got {self.window_ms}")
        if not (self.amplitude_mv >= 0 and 0 <= self.probability <= 1):
            raise ValueError("amplitude must be ≥ 0 and probability in [0, 1]")

    def step_range(self, dt: float) -> tuple[int, int]:
        """``(first, stop)``: the stimulated LIF steps are ``first ≤ s < stop`` (1-based)."""
        start, end = self.window_ms
        return (math.ceil(start / dt - 1e-9), math.ceil(end / dt - 1e-9))


class Perturbation:
    """The hooks :func:`nrmkit.nn.lif.simulate_lif` calls each LIF step on the ``M = B·L``
    rows (ordered (trial, scaling)): :meth:`stimulate` before the threshold test and
    :meth:`record` after it."""

    def __init__(self, *, shape: tuple[int, int, int], n_steps: int, dt: float, device, dtype,
                 stimulation: Stimulation | None, generator: torch.Generator | None,
                 trace_units, trace_trials: int):
        self.shape = shape
        n_trials, n_scale, n = shape
        self.stimulation = stimulation
        self.generator = generator
        self.first = self.stop = 0
        if stimulation is not None:
            units = torch.as_tensor(stimulation.units, dtype=torch.long)
            if units.numel() == 0 or int(units.min()) < 0 or int(units.max()) >= n:
                raise ValueError(f"stimulated units must lie in [0, {n}), got "
                                 f"{list(stimulation.units)}")
            self.selected = torch.zeros(n, device=device, dtype=dtype)
            self.selected[units.to(device)] = 1.0
            sign = 1.0 if stimulation.mode == "exc" else -1.0
            self.kick = sign * stimulation.amplitude_mv
            self.first, self.stop = stimulation.step_range(dt)
        self.voltage = None
        if trace_units is not None:
            units = torch.as_tensor(trace_units, dtype=torch.long).reshape(-1)
            if units.numel() and (int(units.min()) < 0 or int(units.max()) >= n):
                raise ValueError(f"trace units must lie in [0, {n}), got {units.tolist()}")
            if not 1 <= trace_trials <= n_trials:
                raise ValueError(f"trace_trials must lie in [1, {n_trials}], got {trace_trials}")
            self.trace_units = units.to(device)
            self.trace_trials = trace_trials
            self.voltage = torch.empty(n_steps, trace_trials, n_scale, units.numel(),
                                       device=device, dtype=dtype)

    def stimulate(self, v: Tensor, step: int) -> None:
        """``v (M, N)`` += ``±A·β`` on the stimulated units when ``step`` is in the window."""
        if self.stimulation is None or not self.first <= step < self.stop:
            return
        n_trials = self.shape[0]
        hits = torch.rand(n_trials, generator=self.generator) < self.stimulation.probability
        kick = (hits.to(v.dtype) * self.kick).to(v.device)
        v.view(self.shape).addcmul_(kick[:, None, None], self.selected[None, None, :])

    def record(self, v: Tensor, spiking: Tensor, step: int) -> None:
        """Store trace step ``step`` (1-based): ``v`` of the traced units, spikes at the peak."""
        if self.voltage is None:
            return
        rows = self.trace_trials
        chosen = v.view(self.shape)[:rows].index_select(2, self.trace_units)
        fired = spiking.view(self.shape)[:rows].index_select(2, self.trace_units)
        self.voltage[step - 1] = chosen.masked_fill_(fired, SPIKE_PEAK_MV)

    def traces(self) -> Tensor | None:
        """``(T_lif, L, trace_trials, K)`` voltages (mV), or None without traced units."""
        return None if self.voltage is None else self.voltage.permute(0, 2, 1, 3)


def perturbation_hooks(stimulation: Stimulation | None, generator: torch.Generator | None,
                       trace_units, trace_trials: int, **geometry) -> Perturbation | None:
    """The :class:`Perturbation` of a run, or None when nothing is stimulated or traced
    (``geometry``: ``shape = (B, L, N)``, ``n_steps``, ``dt``, ``device``, ``dtype``).

    Raises:
        ValueError: a stimulation without its own ``generator``; units out of range.
    """
    if stimulation is None and trace_units is None:
        return None
    if stimulation is not None and generator is None:
        raise ValueError("a stimulation needs its own stim_generator")
    return Perturbation(stimulation=stimulation, generator=generator, trace_units=trace_units,
                        trace_trials=trace_trials, **geometry)
