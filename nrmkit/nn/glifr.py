r"""GLIFR: generalized leaky integrate-and-fire *rate* neurons with after-spike currents.

One step of ``dt`` (ms), per neuron, in this order (Winston, Mastrovito, Shea-Brown & Mihalas,
Neural Computation 2023):

.. math::

    I_{syn}[t] &= x[t] W_{in} + r[t-d] W_{lat} \quad(+\ \text{drive}) \\
    I_j[t] &= (1 - dt\,k_j) I_j[t-1] + \tfrac{dt}{τ} r[t-1] (r_j I_j[t-1] + a_j),
        \qquad j = 1..n_{asc} \\
    V[t] &= (1 - dt\,k_m) V[t-1] + I_{syn}[t] + dt\,k_m R \big(\textstyle\sum_j I_j[t] + I_0\big)
            - \tfrac{dt}{τ} r[t-1] (V[t-1] - V_{reset}) \\
    r[t] &= σ\big((V[t] - V_{th}) / σ_V\big)

``d`` is the synaptic delay in steps (``d ≥ 1``; the state keeps the ``d − 1`` rates before
the last, oldest first: :func:`~nrmkit.nn.recurrent.delay_line_shapes`). Defaults:
``n_asc = 2``, ``σ_V = 1``, ``R = 0.1``, ``I_0 = 0``, ``V_reset = 0``, ``τ = dt``, all
states start at 0; no bias on the synaptic current.

Per-neuron parameters and their transforms (raw parameters are free; whatever their value,
``dt·k_m`` and ``dt·k_j`` lie in (0, 1) and ``r_j`` in (−1, 1)):
``V_th`` (free); ``k_m = σ(κ_m)/dt``; ``k_j = σ(κ_j)/dt``; ``r_j = 1 − 2σ(ρ_j)``; ``a_j``
(free). Homogeneous initialisation: ``V_th = 1``, ``k_m = 0.05/ms``, ``dt·k_j = 0.1``
(``k_j = 2/ms`` at ``dt = 0.05`` ms, ``0.1/ms`` at 1 ms, as the published ``hom_init_``),
``r_j, a_j ~ U(−0.01, 0.01)``; weights ``U(±1/√H)``.

Heterogeneous initialisation: with a trained ``lhet`` network, :func:`resampled_values`
draws every entry of each neuron parameter and of the input and lateral weights
independently, with replacement, from the trained values of that parameter (as published);
without one, :func:`heterogeneous_values` draws the published ``hetinit`` ranges
``V_th ~ U(−1, 1)``, ``k_m ~ U(0.04, 0.06)``/ms, ``k_j ~ U(1.5, 2.5)``/ms,
``r_j, a_j ~ U(−0.1, 0.1)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from nrmkit.nn.recurrent import (
    RecurrentCell,
    State,
    delay_line_shapes,
    delayed_output,
    shifted_line,
)

#: the per-neuron parameters (after their transforms) and their homogeneous values.
NEURON_PARAMETERS = ("v_th", "k_m", "k_j", "r_j", "a_j")


def _logit(p: Tensor) -> Tensor:
    return torch.log(p) - torch.log1p(-p)


class GLIFRCell(RecurrentCell):
    """A layer of GLIFR neurons (see the module docstring); state
    ``(r, V, I_asc, r[t−d], …, r[t−2])``.

    Args:
        input_size, hidden_size: ``I`` and ``H``.
        dt: time step in ms. tau: the τ of the reset and after-spike terms (default ``dt``).
        delay: synaptic delay in steps (≥ 1).
        n_ascs: number of after-spike currents (0 or 2 in the paper).
        sigma_v: σ_V of the rate sigmoid (a buffer: annealing may change it).
        resistance, i0, v_reset: ``R``, ``I_0``, ``V_reset``.
        learn_neuron: train ``V_th, k_m, k_j, r_j, a_j`` (lhet, rhet) or keep them (hom, fhet).
        neuron_values: per-neuron initial values (``(H,)``; ``(n_ascs, H)`` for the ASC ones)
            replacing the homogeneous initialisation, for the heterogeneous variants.
        generator: initial weights and the small random ``r_j, a_j``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, dt: float = 0.05,
                 tau: float | None = None, delay: int = 1, n_ascs: int = 2,
                 sigma_v: float = 1.0, resistance: float = 0.1, i0: float = 0.0,
                 v_reset: float = 0.0, learn_neuron: bool = True,
                 neuron_values: dict[str, Tensor] | None = None,
                 generator: torch.Generator | None = None, **_: Any):
        super().__init__()
        self.delay_shapes = delay_line_shapes(hidden_size, delay)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.dt, self.tau = float(dt), float(tau if tau is not None else dt)
        self.delay, self.n_ascs = int(delay), int(n_ascs)
        self.resistance, self.i0, self.v_reset = float(resistance), float(i0), float(v_reset)
        self.register_buffer("sigma_v", torch.tensor(float(sigma_v)))
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_in = nn.Parameter(
            (2 * torch.rand(input_size, hidden_size, generator=generator) - 1) * bound)
        self.weight_lat = nn.Parameter(
            (2 * torch.rand(hidden_size, hidden_size, generator=generator) - 1) * bound)
        values = homogeneous_values(hidden_size, n_ascs, dt=self.dt, generator=generator)
        values.update(neuron_values or {})
        for name, value in self._raw(values).items():
            if learn_neuron:
                setattr(self, f"raw_{name}", nn.Parameter(value))
            else:
                self.register_buffer(f"raw_{name}", value)

    def _raw(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw parameters giving the per-neuron ``values`` through the transforms."""
        def logit(p):
            return _logit(torch.as_tensor(p, dtype=torch.float64).clamp(1e-7, 1 - 1e-7))
        raw = {"v_th": torch.as_tensor(values["v_th"], dtype=torch.float64),
               "k_m": logit(self.dt * torch.as_tensor(values["k_m"], dtype=torch.float64)),
               "k_j": logit(self.dt * torch.as_tensor(values["k_j"], dtype=torch.float64)),
               "r_j": logit((1 - torch.as_tensor(values["r_j"], dtype=torch.float64)) / 2),
               "a_j": torch.as_tensor(values["a_j"], dtype=torch.float64)}
        return {name: value.float().clone() for name, value in raw.items()}

    @torch.no_grad()
    def load_neuron_values(self, values: dict[str, Tensor]) -> None:
        """Set the per-neuron parameters to ``values`` (after-transform values)."""
        for name, value in self._raw({**self.neuron_parameters(), **values}).items():
            getattr(self, f"raw_{name}").copy_(value)

    # per-neuron parameters after their transforms --------------------------------------
    @property
    def v_th(self) -> Tensor:
        return self.raw_v_th

    @property
    def k_m(self) -> Tensor:
        """Membrane decay rate (1/ms), ``σ(κ_m)/dt``."""
        return torch.sigmoid(self.raw_k_m) / self.dt

    @property
    def k_j(self) -> Tensor:
        """After-spike current decay rates ``(n_ascs, H)`` (1/ms)."""
        return torch.sigmoid(self.raw_k_j) / self.dt

    @property
    def r_j(self) -> Tensor:
        """Multiplicative after-spike terms ``(n_ascs, H)`` in (−1, 1)."""
        return 1.0 - 2.0 * torch.sigmoid(self.raw_r_j)

    @property
    def a_j(self) -> Tensor:
        """Additive after-spike terms ``(n_ascs, H)``."""
        return self.raw_a_j

    def neuron_parameters(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in NEURON_PARAMETERS}

    def state_shapes(self):
        h = self.hidden_size
        return ((h,), (h,), (self.n_ascs, h), *self.delay_shapes)

    @property
    def readout_dtype(self) -> torch.dtype:
        return self.weight_in.dtype

    def forward(self, x: Tensor, state: State, drive=None) -> State:
        rate, voltage, ascs, *line = state
        synaptic = x @ self.weight_in + delayed_output(rate, line) @ self.weight_lat
        if drive is not None:
            synaptic = synaptic + drive
        spike_term = (self.dt / self.tau) * rate
        if self.n_ascs:
            ascs = ((1.0 - self.dt * self.k_j) * ascs
                    + spike_term.unsqueeze(1) * (self.r_j * ascs + self.a_j))
            asc_total = ascs.sum(1)
        else:
            asc_total = torch.zeros_like(voltage)
        dt_km = self.dt * self.k_m
        voltage = ((1.0 - dt_km) * voltage + synaptic
                   + dt_km * self.resistance * (asc_total + self.i0)
                   - spike_term * (voltage - self.v_reset))
        line = shifted_line(line, rate)
        rate = torch.sigmoid((voltage - self.v_th) / self.sigma_v)
        return rate, voltage, ascs, *line

    def recurrent_blocks(self) -> list[Tensor]:
        return [self.weight_lat]

    def silenced(self, state: State, keep: Tensor) -> State:
        return state[0] * keep, *state[1:]

    @torch.no_grad()
    def load_weights(self, weight_in: Tensor, weight_lat: Tensor) -> None:
        """Set the input ``(I, H)`` and lateral ``(H, H)`` weights."""
        self.weight_in.copy_(weight_in)
        self.weight_lat.copy_(weight_lat)

    def signals(self, state: State) -> dict[str, Tensor]:
        return {"voltage": state[1]}

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, dt={self.dt}, delay={self.delay}, "
                f"n_ascs={self.n_ascs}")


def homogeneous_values(hidden_size: int, n_ascs: int, *, dt: float,
                       generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """The published homogeneous initial values: ``V_th = 1``, ``k_m = 0.05``/ms,
    ``k_j = 0.1/dt`` (``dt`` in ms: one tenth of an after-spike current decays per step),
    ``r_j, a_j ~ U(−0.01, 0.01)``."""
    def small():
        return 0.02 * torch.rand(n_ascs, hidden_size, generator=generator) - 0.01
    return {"v_th": torch.ones(hidden_size), "k_m": torch.full((hidden_size,), 0.05),
            "k_j": torch.full((n_ascs, hidden_size), 0.1 / dt), "r_j": small(),
            "a_j": small()}


def heterogeneous_values(hidden_size: int, n_ascs: int, *,
                         generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """The published ``hetinit`` draws: ``V_th ~ U(−1, 1)``, ``k_m ~ U(0.04, 0.06)``/ms,
    ``k_j ~ U(1.5, 2.5)``/ms, ``r_j, a_j ~ U(−0.1, 0.1)``, independently per entry."""
    def uniform(low, high, shape):
        return low + (high - low) * torch.rand(shape, generator=generator)

    per_asc = (n_ascs, hidden_size)
    return {"v_th": uniform(-1.0, 1.0, (hidden_size,)),
            "k_m": uniform(0.04, 0.06, (hidden_size,)),
            "k_j": uniform(1.5, 2.5, per_asc),
            "r_j": uniform(-0.1, 0.1, per_asc), "a_j": uniform(-0.1, 0.1, per_asc)}


def resampled_values(trained: dict[str, Tensor], shapes: dict[str, tuple[int, ...]], *,
                     generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Arrays of the given ``shapes`` whose entries are drawn independently and with
    replacement from all the entries of ``trained[name]`` (the published heterogeneous
    initialisation from a learned network: every neuron parameter and weight matrix, each
    from its own trained values, after-spike currents pooled)."""
    out = {}
    for name, shape in shapes.items():
        pool = torch.as_tensor(trained[name]).detach().cpu().float().reshape(-1)
        if pool.numel() == 0 and math.prod(shape) > 0:
            raise ValueError(f"the trained network has no values of {name} to draw from "
                             "(trained without after-spike currents?)")
        index = torch.randint(max(pool.numel(), 1), (math.prod(shape),), generator=generator)
        out[name] = pool[index].reshape(shape)
    return out
