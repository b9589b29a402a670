r"""Analyses of a trained RNN over the shape of its nonlinearity, and of its response to
steps: information, Jacobian norms, finite-time λ₁ and gradient propagation.

For the RNN ``h_t = φ(a_t)``, ``a_t = U x_t + V h_{t−1} + b`` (optionally ``+ ξ`` during a
step), with ``φ`` replaced by the gamma nonlinearity ``γ(·; n, s)`` at each point of a
grid of shapes (:func:`with_gamma_shape`; the trained ``U``, ``V``, ``b`` are kept):

* :func:`input_output_information` — ``I(x_t; h_t)`` between the network's input at a step
  and its hidden state at that step, estimated by Mixed-KSG
  (:func:`nrmkit.dynamics.information.mixed_ksg`) from the pairs ``(x_t, h_t)`` of test
  sequences, in nats.
* :func:`step_jacobian_norms` — the norm of the step Jacobian
  ``J_t = ∂h_t/∂h_{t−1} = diag(φ'(a_t)) V`` induced by the max-norm,
  ``‖J_t‖_∞ = max_i φ'(a_t^i) Σ_j |V_ij|`` (the largest absolute row sum; exact, no matrix
  formed), for every step and sequence.
* :func:`step_lyapunov` — the finite-time largest Lyapunov exponent of the network reading
  test sequences with a step of amplitude ξ added to every pre-activation during the step
  window: the tangent vector ``v`` evolves from the first step (``v_{t} = J_t v_{t−1}/‖·‖``)
  and ``λ₁(t) = (1/(t − t₀ + 1)) Σ_{τ=t₀}^{t} ln‖J_τ v_{τ−1}‖`` is accumulated from the
  onset ``t₀``: λ₁ against the time since onset, in nats per step.
* :func:`gradient_norms` — ``‖∂L/∂V‖_F`` of the cross-entropy of the read-out after the
  first ``L`` steps, against the sequence length ``L``.

Reference: Geadah, Kerg, Horoi, Wolf & Lajoie, "Advantages of biologically-inspired
adaptive neural activation in RNNs during learning" (2020), and the published analysis
scripts (mutual information, Jacobian norm, regularisation figure).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor

from nrmkit.dynamics.information import mixed_ksg
from nrmkit.nn.gamma import GammaActivation
from nrmkit.nn.recurrent import RecurrentDynamics, RNNCell


def with_gamma_shape(model, gain: float, saturation: float):
    """A copy of the RNN classifier ``model`` whose nonlinearity is ``γ(·; n, s)`` with the
    fixed shape ``(gain, saturation)`` (one for the layer); weights unchanged."""
    if not isinstance(model.cell, RNNCell):
        raise TypeError("the gamma shape can only be set on an RNN cell")
    parameter = next(model.parameters())
    clone = copy.deepcopy(model)
    clone.cell.nonlinearity = GammaActivation(
        model.cell.hidden_size, per_neuron=False, gain=gain, saturation=saturation,
        learn=False).to(dtype=parameter.dtype, device=parameter.device)
    return clone


@torch.no_grad()
def rnn_trace(cell: RNNCell, inputs: Tensor, drive: Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
    """Pre-activations and hidden states ``(a, h)``, each ``(T, B, H)``, of ``cell`` reading
    ``inputs (T, B, I)`` from the zero state (``drive`` added to the pre-activations)."""
    state = cell.initial_state(inputs.shape[1], dtype=inputs.dtype, device=inputs.device)
    pre, hidden = [], []
    for t in range(inputs.shape[0]):
        d = None if drive is None else drive[t]
        a = cell.preactivation(inputs[t], state, d)
        state = cell(inputs[t], state, d)
        pre.append(a)
        hidden.append(state[0])
    return torch.stack(pre), torch.stack(hidden)


@torch.no_grad()
def step_jacobian_norms(cell: RNNCell, preactivations: Tensor) -> Tensor:
    """``‖diag(φ'(a)) V‖_∞ = max_i φ'(a_i) Σ_j |V_ij|`` for every ``a`` of shape ``(…, H)``;
    returns ``(…)``."""
    row_sums = cell.recurrent.weight.detach().abs().sum(1)
    return (cell.nonlinearity.slope(preactivations) * row_sums).amax(-1)


def input_output_information(inputs: Tensor, hidden: Tensor, *, k: int = 5,
                             pairs: int | None = None,
                             generator: np.random.Generator | None = None) -> float:
    """``Î(x_t; h_t)`` in nats from the pairs of every step and sequence of ``inputs
    (T, B, I)`` and ``hidden (T, B, H)``; at most ``pairs`` of them, drawn without
    replacement from ``generator`` (needed when ``pairs`` is fewer than the pairs there are;
    all pairs when ``pairs`` is None)."""
    x = inputs.reshape(-1, inputs.shape[-1]).detach().double().cpu().numpy()
    y = hidden.reshape(-1, hidden.shape[-1]).detach().double().cpu().numpy()
    if pairs is not None and pairs < len(x):
        if generator is None:
            raise ValueError("choosing a subset of the pairs needs a generator")
        chosen = np.sort(generator.choice(len(x), pairs, replace=False))
        x, y = x[chosen], y[chosen]
    return mixed_ksg(x, y, k=k)


def _push(cell, x: Tensor, state, vector: Tensor, drive: Tensor | None):
    """``(next state, J v)`` of one step: analytic for the RNN, forward mode otherwise."""
    shapes = [piece.shape[1:] for piece in state]
    sizes = [int(np.prod(shape)) for shape in shapes]

    def step(flat):
        pieces = tuple(p.reshape(-1, *shape) for p, shape in
                       zip(flat.split(sizes, -1), shapes, strict=True))
        return RecurrentDynamics.flatten(cell(x, pieces, drive), 1)

    flat = RecurrentDynamics.flatten(state, 1)
    new, pushed = torch.func.jvp(step, (flat,), (vector,))
    pieces = tuple(p.reshape(-1, *shape) for p, shape in
                   zip(new.split(sizes, -1), shapes, strict=True))
    return pieces, pushed


@torch.no_grad()
def step_lyapunov(cell, inputs: Tensor, window: Tensor, amplitude: float, *,
                  generator: torch.Generator | None = None) -> np.ndarray:
    """Running finite-time λ₁ from the step's onset: ``(len(window on), B)`` in nats/step.

    Args:
        cell: a trained recurrent cell (any kind; not modified).
        inputs: ``(T, B, I)`` sequences read from the zero state.
        window: ``(T,)`` 0/1, the steps where ``amplitude`` is added to the pre-activations.
        amplitude: the step ξ (0: the plain sequences, measured over the same window).
    """
    steps = torch.nonzero(window > 0).flatten().tolist()
    if not steps:
        raise ValueError("the step window is empty")
    onset, end = steps[0], steps[-1] + 1
    batch = inputs.shape[1]
    state = cell.initial_state(batch, dtype=inputs.dtype, device=inputs.device)
    dim = sum(int(np.prod(piece.shape[1:])) for piece in state)
    vector = torch.randn((batch, dim), generator=generator, dtype=torch.float64)
    vector = (vector / vector.norm(dim=-1, keepdim=True)).to(inputs)
    logs = []
    for t in range(end):
        drive = None if window[t] == 0 else torch.full(
            (batch, cell.hidden_size), float(amplitude), dtype=inputs.dtype,
            device=inputs.device)
        state, pushed = _push(cell, inputs[t], state, vector, drive)
        norm = pushed.norm(dim=-1, keepdim=True)
        vector = pushed / norm
        if t >= onset:
            logs.append(torch.log(norm[:, 0]))
    logs = torch.stack(logs).double().cpu().numpy()                    # (W, B)
    return np.cumsum(logs, axis=0) / np.arange(1, len(logs) + 1)[:, None]


def gradient_norms(model, inputs: Tensor, labels: Tensor, lengths: list[int]) -> np.ndarray:
    """``‖∂L/∂V‖_F`` (V the hidden-to-hidden weights) of the mean cross-entropy of the
    read-out after the first ``L`` steps of ``inputs (T, B, I)``, for each ``L``."""
    weight = model.cell.recurrent.weight
    norms = []
    was_training = model.training
    model.eval()
    try:
        for length in lengths:
            loss = torch.nn.functional.cross_entropy(model(inputs[:length]), labels)
            (grad,) = torch.autograd.grad(loss, weight)
            norms.append(float(grad.norm()))
    finally:
        model.train(was_training)
    return np.asarray(norms)
