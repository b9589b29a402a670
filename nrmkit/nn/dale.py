r"""Dale's-law rate RNN with trainable synaptic time constants (Kim, Li & Sejnowski 2019).

One update is one step of ``step_ms`` = 5 ms; for every unit ``i`` of ``N``:

.. math::

    x_{t+1} &= (1 - α) ⊙ x_t + α ⊙ (W_{eff}\, r_t + W_{in} u_t) + σ ξ_t,
        \qquad α = 1/τ,\ ξ_t \sim N(0, I) \\
    r_t &= φ(x_t), \qquad o_{t+1} = w_{out} · r_{t+1} + b_{out}

with ``x_0 ~ N(0, 1)/100``, ``σ = 0.1`` and the time constants in steps

.. math::

    τ_i = τ_{min} + (τ_{max} − τ_{min})\, \mathrm{sigmoid}(\tilde τ_i),\quad
        \tilde τ_i \sim N(0, 1)\ \text{trainable}

(``taus = (4, 20)`` steps = 20–100 ms; one value ``taus = (τ,)`` fixes every τ and nothing
about τ trains). Dale's principle is a parametrisation, so it holds after any update:

.. math::

    W_{eff} = (\mathrm{relu}(W)\, D) ⊙ M,\qquad D = \mathrm{diag}(s),\ s_j = +1
        \text{ (excitatory) or } −1 \text{ (inhibitory)}

``W[post, pre]``: column ``j`` carries unit ``j``'s sign. ``W`` starts as
``|N(0, 1)|·g/\sqrt{N p_{rec}}`` on a Bernoulli(``p_rec``) support (zeros stay zero: the
ReLU has no gradient there) and each unit is inhibitory with probability ``p_inh``. ``M`` is 1
except that the first ``som_n`` inhibitory units (SOM cells) receive no inhibition
(``M[som, inh] = 0``). Without Dale's principle every unit is excitatory-signed and ``W``
trains freely. ``W_in ~ N(0, 1)`` is fixed, ``w_out ~ N(0, 1)/100`` and ``b_out = 0`` train.

Transfer functions φ (:data:`~nrmkit.core.registry.TRANSFER_FUNCTIONS`): ``sigmoid``,
``clipped_relu`` = min(relu(x), 20) and ``softplus`` = min(softplus(x), 20).

:meth:`DaleRateRNN.forward` pairs output ``t`` with input ``t``: ``outputs[t] = o_{t+1}``,
the read-out after the update driven by ``u_t``, compared with target ``z_t`` — the pairing of
the published code, over all ``T`` steps of a trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nrmkit.core.model import DynamicalModel
from nrmkit.core.registry import TRANSFER_FUNCTIONS

#: clip of the unbounded transfer functions (as published).
RATE_CLIP = 20.0


@dataclass(frozen=True)
class TransferFunction:
    """φ and φ' of a rate unit. ``lif_scaling_grid``: the published λ grid for its networks."""

    name: str
    value_and_slope: Callable[[Tensor], tuple[Tensor, Tensor]]
    lif_scaling_grid: tuple[float, ...]

    def __call__(self, x: Tensor) -> Tensor:
        return self.value_and_slope(x)[0]


def _sigmoid(x: Tensor) -> tuple[Tensor, Tensor]:
    value = torch.sigmoid(x)
    return value, value * (1.0 - value)


def _clipped_relu(x: Tensor) -> tuple[Tensor, Tensor]:
    return x.clamp(0.0, RATE_CLIP), ((x > 0) & (x < RATE_CLIP)).to(x.dtype)


def _softplus(x: Tensor) -> tuple[Tensor, Tensor]:
    value = F.softplus(x)
    return value.clamp(max=RATE_CLIP), torch.sigmoid(x) * (value < RATE_CLIP).to(x.dtype)


_SIGMOID_GRID = tuple(float(v) for v in range(20, 76, 5))     # 20, 25, …, 75
_UNBOUNDED_GRID = tuple(float(v) for v in range(4, 27, 2))    # 4, 6, …, 26
SIGMOID = TransferFunction("sigmoid", _sigmoid, _SIGMOID_GRID)
CLIPPED_RELU = TransferFunction("clipped_relu", _clipped_relu, _UNBOUNDED_GRID)
SOFTPLUS = TransferFunction("softplus", _softplus, _UNBOUNDED_GRID)


@dataclass(frozen=True)
class DaleSpec:
    """Architecture of a :class:`DaleRateRNN` (see the module docstring).

    Attributes:
        n: units. n_inputs: input channels. p_inh: probability of an inhibitory unit.
        p_rec: connection probability. gain: ``g`` of the initial weights. som_n: SOM units.
        apply_dale: enforce Dale's principle. taus: ``(τ_min, τ_max)`` or ``(τ,)`` in steps.
        activation: transfer function name. noise_std: ``σ`` of the state noise per step.
        step_ms: duration of one step (ms).
    """

    n: int = 200
    n_inputs: int = 1
    p_inh: float = 0.2
    p_rec: float = 0.2
    gain: float = 1.5
    som_n: int = 0
    apply_dale: bool = True
    taus: tuple[float, ...] = (4.0, 20.0)
    activation: str = "sigmoid"
    noise_std: float = 0.1
    step_ms: float = 5.0

    @property
    def trainable_taus(self) -> bool:
        return len(self.taus) == 2


class DaleRateRNN(nn.Module):
    """A batch-first-in-time Dale rate network (parameters as in the module docstring).

    Attributes (tensors): ``w`` (N, N) raw weights; ``w_out`` (N,); ``b_out`` (); ``taus_gaus``
    (N,) the raw τ̃ (a parameter only when τ trains); buffers ``sign`` (N,) ±1, ``som_mask``
    (N, N), ``w_in`` (N, I), ``inhibitory`` (N,) bool.
    """

    def __init__(self, spec: DaleSpec, *, generator: torch.Generator | None = None):
        super().__init__()
        self.spec = spec
        self.transfer: TransferFunction = TRANSFER_FUNCTIONS.get(spec.activation)
        n = spec.n
        if spec.apply_dale:
            inhibitory = torch.rand(n, generator=generator) < spec.p_inh
        else:
            inhibitory = torch.zeros(n, dtype=torch.bool)
        support = torch.rand(n, n, generator=generator) < spec.p_rec
        w = torch.randn(n, n, generator=generator) * support
        w = w * spec.gain / math.sqrt(n * spec.p_rec)
        if spec.apply_dale:
            w = w.abs()
        som_mask = torch.ones(n, n)
        inh_index = inhibitory.nonzero().squeeze(1)
        som = inh_index[:spec.som_n]
        som_mask[som[:, None], inh_index[None, :]] = 0.0
        self.w = nn.Parameter(w)
        self.register_buffer("sign", torch.where(inhibitory, -1.0, 1.0))
        self.register_buffer("inhibitory", inhibitory)
        self.register_buffer("som_mask", som_mask)
        self.register_buffer("w_in", torch.randn(n, spec.n_inputs, generator=generator))
        self.w_out = nn.Parameter(torch.randn(n, generator=generator) / 100)
        self.b_out = nn.Parameter(torch.zeros(()))
        taus_gaus = torch.randn(n, generator=generator)
        if spec.trainable_taus:
            self.taus_gaus = nn.Parameter(taus_gaus)
        else:
            self.register_buffer("taus_gaus", taus_gaus)

    @property
    def som_units(self) -> Tensor:
        """Indices of the SOM units (the first ``som_n`` inhibitory units)."""
        return self.inhibitory.nonzero().squeeze(1)[:self.spec.som_n]

    def effective_weights(self) -> Tensor:
        """``(N, N)`` Dale-signed weights ``W_eff[post, pre]``."""
        w = F.relu(self.w) if self.spec.apply_dale else self.w
        return w * self.sign[None, :] * self.som_mask

    def taus_steps(self) -> Tensor:
        """``(N,)`` synaptic decay time constants, in steps."""
        if self.spec.trainable_taus:
            low, high = self.spec.taus
            return torch.sigmoid(self.taus_gaus) * (high - low) + low
        return torch.full_like(self.taus_gaus, float(self.spec.taus[0]))

    def taus_ms(self) -> Tensor:
        """``(N,)`` synaptic decay time constants in ms."""
        return self.taus_steps() * self.spec.step_ms

    def initial_state(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """``(B, N)`` ``x_0 ~ N(0, 1)/100`` (drawn on the CPU ``generator``)."""
        x0 = torch.randn(batch, self.spec.n, generator=generator) / 100
        return x0.to(device=self.w.device, dtype=self.w.dtype)

    def forward(self, inputs: Tensor, *, generator: torch.Generator | None = None,
                noise_std: float | None = None, state: Tensor | None = None,
                record_rates: bool = False) -> tuple[Tensor, Tensor | None]:
        """Run trials; returns ``(outputs (T, B), rates (T, B, N) or None)``.

        Args:
            inputs: ``(T, B, I)`` inputs.
            generator: CPU generator of ``x_0`` and the noise.
            noise_std: ``σ`` (default ``spec.noise_std``; 0 for a deterministic run).
            state: initial ``x_0 (B, N)`` (default random, see :meth:`initial_state`).
            record_rates: also return the rates ``r_{t+1}`` of every step.
        """
        steps = self._steps(inputs, generator, noise_std, state)
        next(steps)                                                           # x_0, r_0
        stacked = torch.stack([rate for _, rate in steps])                    # (T, B, N)
        outputs = stacked @ self.w_out + self.b_out
        return outputs, (stacked if record_rates else None)

    def _steps(self, inputs: Tensor, generator, noise_std, state):
        """Yield ``(x_t, r_t)`` for ``t = 0 … T`` (the update of :meth:`forward`)."""
        n_steps, batch, _ = inputs.shape
        sigma = self.spec.noise_std if noise_std is None else noise_std
        x = self.initial_state(batch, generator) if state is None else state
        w_eff = self.effective_weights()
        alpha = 1.0 / self.taus_steps()
        drive = inputs.to(self.w.dtype) @ self.w_in.t()                      # (T, B, N)
        if sigma > 0:
            noise = torch.randn(n_steps, batch, self.spec.n, generator=generator)
            noise = (sigma * noise).to(device=x.device, dtype=x.dtype)
        rate = self.transfer(x)
        yield x, rate
        for t in range(n_steps):
            x = x + alpha * (rate @ w_eff.t() + drive[t] - x)
            if sigma > 0:
                x = x + noise[t]
            rate = self.transfer(x)
            yield x, rate

    @torch.no_grad()
    def trajectory(self, inputs: Tensor, *, generator: torch.Generator | None = None,
                   noise_std: float | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """One run of :meth:`forward` with its states: ``(x (T+1, B, N), r (T+1, B, N),
        o (T, B))``, ``x_0`` and ``r_0`` first (the same numbers as :meth:`forward`)."""
        states, rates = zip(*self._steps(inputs, generator, noise_std, None), strict=True)
        rates = torch.stack(rates)
        return torch.stack(states), rates, rates[1:] @ self.w_out + self.b_out

    @torch.no_grad()
    def dale_violations(self) -> int:
        """Number of weights whose sign contradicts their presynaptic unit's type."""
        w_eff = self.effective_weights()
        wrong = (w_eff * self.sign[None, :]) < 0
        return int(wrong.sum())


def loss_per_trial(outputs: Tensor, targets: Tensor, kind: str = "l2") -> Tensor:
    r"""``(B,)`` loss of every trial: ``l2 = \sqrt{Σ_t (o_t − z_t)^2}``, ``l1 = Σ_t |o_t − z_t|``.

    A batch is trained on the *mean* of these per-trial losses, so its gradient is the
    average of the one-trial gradients the published code applied one at a time.
    """
    error = outputs - targets
    if kind == "l2":
        return error.square().sum(0).sqrt()
    if kind == "l1":
        return error.abs().sum(0)
    raise ValueError(f"unknown loss {kind!r}; choose l1 or l2")


class DaleDynamics(DynamicalModel):
    """A trained :class:`DaleRateRNN` (noise off) as ``B`` systems for the Lyapunov engine.

    State ``x (B, N)``; the map is the rate update above with ``σ = 0``; its tangent map on
    row vectors ``v (B, k, N)`` is ``v ↦ (1 − α) ⊙ v + α ⊙ ((v ⊙ φ'(x)) W_effᵀ)``, one
    product with ``k`` vectors per step, no N×N Jacobian. ``dt`` = one step in seconds, so
    exponents are in 1/s. ``drive`` is the input ``u (B, I)`` (None: no input).
    """

    def __init__(self, network: DaleRateRNN, batch: int, *, initial_scale: float = 0.01):
        super().__init__()
        self.network = network
        self.batch = batch
        self.initial_scale = initial_scale
        self.dt = network.spec.step_ms / 1000.0

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size((self.batch,))

    @property
    def state_dim(self) -> int:
        return self.network.spec.n

    def initial_state(self, generator: torch.Generator | None = None) -> Tensor:
        draw = torch.randn(self.batch, self.state_dim, generator=generator)
        return (self.initial_scale * draw).to(device=self.device, dtype=self.dtype)

    def _parts(self, state: Tensor, drive: Tensor | None):
        net = self.network
        alpha = 1.0 / net.taus_steps()
        rate, slope = net.transfer.value_and_slope(state)
        w_eff = net.effective_weights()
        inflow = rate @ w_eff.t()
        if drive is not None:
            inflow = inflow + drive @ net.w_in.t()
        return alpha, slope, w_eff, inflow

    def step(self, state: Tensor, drive: Tensor | None = None) -> Tensor:
        alpha, _, _, inflow = self._parts(state, drive)
        return state + alpha * (inflow - state)

    def tangent(self, state: Tensor, vectors: Tensor, drive: Tensor | None = None) -> Tensor:
        return self.step_with_tangent(state, vectors, drive)[1]

    def step_with_tangent(self, state, vectors, drive=None):
        alpha, slope, w_eff, inflow = self._parts(state, drive)
        pushed = (vectors * slope[..., None, :]) @ w_eff.t()
        return state + alpha * (inflow - state), vectors + alpha * (pushed - vectors)


def mat_fields(network: DaleRateRNN) -> dict:
    """The network in the published ``.mat`` layout (see :mod:`nrmkit.datasets.matfile`)."""
    spec = network.spec
    with torch.no_grad():
        w = F.relu(network.w) if spec.apply_dale else network.w
        return {
            "w": w.detach().cpu().double().numpy(),
            "w_in": network.w_in.detach().cpu().double().numpy(),
            "w_out": network.w_out.detach().cpu().double().numpy(),
            "b_out": float(network.b_out),
            "taus": list(spec.taus),
            "taus_gaus": network.taus_gaus.detach().cpu().double().numpy(),
            "m": torch.diag(network.sign).cpu().double().numpy(),
            "som_m": network.som_mask.cpu().double().numpy(),
            "exc": (~network.inhibitory).cpu().numpy(),
            "inh": network.inhibitory.cpu().numpy(),
            "N": spec.n, "som_N": spec.som_n, "activation": spec.activation,
        }


def initial_mat_fields(network: DaleRateRNN) -> dict:
    """The untrained network's ``w0`` (after the ReLU, as ``w``), ``taus_gaus0`` and
    ``w_in0`` in the published ``.mat`` layout (call before training)."""
    with torch.no_grad():
        w = F.relu(network.w) if network.spec.apply_dale else network.w
        return {"w0": w.detach().cpu().double().numpy(),
                "taus_gaus0": network.taus_gaus.detach().cpu().double().numpy(),
                "w_in0": network.w_in.detach().cpu().double().numpy()}


def network_from_mat_fields(fields, *, noise_std: float = 0.1) -> DaleRateRNN:
    """A :class:`DaleRateRNN` holding the weights of a published-layout model.

    Dale's principle is taken as applied when no stored weight is negative (the published
    code stores ``w`` after the ReLU); the SOM count is read from ``som_N`` (else counted from
    ``som_m``). Raises ``KeyError`` for an unknown activation.
    """
    import numpy as np

    w = np.asarray(fields["w"], dtype=np.float64)
    sign = np.diag(np.asarray(fields["m"], dtype=np.float64)).copy()
    som_mask = np.asarray(fields["som_m"], dtype=np.float64)
    som_n = int(fields.get("som_N", int((som_mask.min(axis=1) == 0).sum())))
    taus = tuple(float(t) for t in np.asarray(fields["taus"]).reshape(-1))
    w_in = np.asarray(fields["w_in"], dtype=np.float64)
    spec = DaleSpec(n=int(fields["N"]), n_inputs=w_in.shape[1],
                    p_inh=float((sign < 0).mean()), som_n=som_n,
                    apply_dale=bool((w >= 0).all()), taus=taus,
                    activation=TRANSFER_FUNCTIONS.canonical(str(fields.get("activation",
                                                                           "sigmoid"))),
                    noise_std=noise_std)
    network = DaleRateRNN(spec)
    with torch.no_grad():
        network.w.copy_(torch.as_tensor(w))
        network.sign.copy_(torch.as_tensor(sign))
        network.inhibitory.copy_(torch.as_tensor(sign < 0))
        network.som_mask.copy_(torch.as_tensor(som_mask))
        network.w_in.copy_(torch.as_tensor(w_in))
        network.w_out.copy_(torch.as_tensor(np.asarray(fields["w_out"]).reshape(-1)))
        network.b_out.fill_(float(fields.get("b_out", 0.0)))
        network.taus_gaus.copy_(torch.as_tensor(np.asarray(fields["taus_gaus"]).reshape(-1)))
    return network
