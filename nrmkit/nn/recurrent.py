r"""Recurrent cells for sequence tasks, a classifier around them, and their dynamics.

Every cell is one step of a discrete-time map with explicit state (a tuple of tensors whose
first entry is the hidden vector ``h``, shape ``(B, H)``)::

    new_state = cell(x_t, state, drive)        # x_t: (B, I); drive: added pre-activation

Cells (``MODELS`` registry, ``--net-type``):

* ``RNN``: :math:`h_t = φ(U x_t + V h_{t-1} + b + d_t)` with ``φ`` from the
  ``NONLINEARITIES`` registry: ``gamma`` (one learnable ``(n, s)``), ``gamma2`` (one per
  neuron), ``ReLU``, ``tanh``.
* ``ANRU`` (adaptive nonlinearity recurrent unit): each neuron's gamma shape follows a small
  controller RNN driven by the neuron's own pre-activation; weights shared, state per neuron:

  .. math::

      a_t = U x_t + W h_{t-1} + b + d_t, \qquad
      g_t^{(i)} = \tanh(u\,a_t^i + W_g\,g_{t-1}^{(i)} + b_g) \in \mathbb{R}^{50},

      n_t^i = \operatorname{softplus}(w_n\!\cdot g_t^{(i)} + b_n), \quad
      s_t^i = \operatorname{clip}(w_s\!\cdot g_t^{(i)} + b_s, 0, 1), \quad
      h_t^i = γ(a_t^i; n_t^i, s_t^i).

  The softplus and the clip keep ``n > 0`` and ``s ∈ [0, 1]`` (the published equations use
  plain linear read-outs; with the initialisation below — ``b_n = 5 + 2·U(0, 1)``, ``w_n``
  Xavier gain 0.1, ``b_s = 0``, ``w_s`` Xavier gain 0.01 — softplus is the identity to
  within 1 %, and ``s`` starts near 0: a smooth ReLU).
* ``LSTM`` (drive on the output gate, as in the published code) and ``GRU`` (drive on the
  candidate pre-activation), Xavier-normal weights, zero biases (LSTM forget gate: 1).

Recurrent/input initialisers for RNN and ANRU come from :mod:`nrmkit.nn.init` (``--rinit``,
``--iinit``); a square-only scheme asked for a non-square input matrix falls back to Xavier.

:class:`SequenceClassifier` runs a cell over time-first inputs ``(T, B, I)`` (the one time
loop, :func:`run_cell`; an RNN with a pointwise nonlinearity runs the whole sequence as one
autograd node, :mod:`nrmkit.nn.fused_sequence`) and reads the class logits from the last
hidden state. :class:`RecurrentDynamics`
turns a trained cell into a :class:`~nrmkit.core.model.DynamicalModel` for the Lyapunov
engine: analytic tangent map ``v ↦ φ'(a) ⊙ V v`` for the RNN, forward-mode autodiff
(``torch.func.jvp``, vectorised over tangent vectors) for the others — never an ``N×N``
Jacobian.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from nrmkit.core.model import DynamicalModel
from nrmkit.core.registry import MODELS, NONLINEARITIES
from nrmkit.nn.gamma import GammaActivation, gamma, random_gain
from nrmkit.nn.init import SQUARE_ONLY, initialize
from nrmkit.nn.sizing import ANRU_CONTROLLER_SIZE

State = tuple[Tensor, ...]


# ----------------------------------------------------------------------------- nonlinearities

class _Pointwise(nn.Module):
    """A fixed pointwise nonlinearity with its slope ``φ'``."""

    def __init__(self, function, slope, name: str):
        super().__init__()
        self.function, self.slope_function, self.name = function, slope, name

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)

    def slope(self, x: Tensor) -> Tensor:
        return self.slope_function(x)

    def extra_repr(self) -> str:
        return self.name


def relu_nonlinearity(n_hidden: int, **_: Any) -> nn.Module:
    return _Pointwise(torch.relu, lambda x: (x > 0).to(x.dtype), "ReLU")


def tanh_nonlinearity(n_hidden: int, **_: Any) -> nn.Module:
    return _Pointwise(torch.tanh, lambda x: 1.0 - torch.tanh(x) ** 2, "tanh")


def _gamma_factory(per_neuron: bool):
    def make(n_hidden: int, *, gain: float = 1.0, saturation: float = 0.0,
             random: bool = False, learn: bool = True,
             generator: torch.Generator | None = None, **_: Any) -> GammaActivation:
        """``--random``: ``n0 = 5 + 2·U(0,1)`` (per neuron for gamma2), ``s0 = 0``."""
        if random:
            gain = random_gain((n_hidden,) if per_neuron else (), generator=generator)
            saturation = 0.0
        return GammaActivation(n_hidden, per_neuron=per_neuron, gain=gain,
                               saturation=saturation, learn=learn)
    return make


gamma_nonlinearity = _gamma_factory(per_neuron=False)
gamma2_nonlinearity = _gamma_factory(per_neuron=True)


# ----------------------------------------------------------------------------- cells

class RecurrentCell(nn.Module):
    """Base of the cells: one step with explicit state; subclasses set the hooks."""

    input_size: int
    hidden_size: int

    def initial_state(self, batch: int, *, dtype=None, device=None) -> State:
        """All-zero state for ``batch`` sequences."""
        dtype = dtype or self.readout_dtype
        return tuple(torch.zeros((batch, *shape), dtype=dtype, device=device)
                     for shape in self.state_shapes())

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.hidden_size,),)

    @property
    def readout_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def signals(self, state: State) -> dict[str, Tensor]:
        """Extra per-step signals to record (ANRU: ``n_t``, ``s_t``), each ``(B, H)``."""
        return {}

    def shape_parameters(self) -> dict[str, Tensor]:
        """Learned (n, s) of a gamma nonlinearity, if any (``(H,)`` or scalars)."""
        return {}

    def project_(self) -> None:
        """Restore parameter constraints after an optimiser step (default: none)."""

    def tangent(self, x: Tensor, state: State, vectors: State, drive=None) -> State | None:
        """Analytic tangent map, or None to let :class:`RecurrentDynamics` use jvp."""
        return None

    def recurrent_blocks(self) -> list[Tensor]:
        """The ``H × H`` hidden-to-hidden weight blocks (views into the parameters)."""
        return [self.recurrent.weight]

    def silenced(self, state: State, keep: Tensor) -> State:
        """``state`` with the output of silenced neurons set to 0 (``keep``: ``(H,)`` or
        ``(B, H)`` of 0/1): they neither drive the network nor the read-out."""
        return (state[0] * keep, *state[1:])

    def isolated(self) -> RecurrentCell:
        """A copy whose neurons keep only their self-connections (every hidden-to-hidden
        block made diagonal): each neuron's own dynamics, without the network."""
        import copy

        clone = copy.deepcopy(self)
        with torch.no_grad():
            for block in clone.recurrent_blocks():
                block.mul_(torch.eye(block.shape[0], dtype=block.dtype, device=block.device))
        return clone


def _linear(rows: int, cols: int, scheme: str, generator, *, bias: bool) -> nn.Linear:
    layer = nn.Linear(cols, rows, bias=bias)
    if scheme in SQUARE_ONLY and rows != cols:
        scheme = "xavier"
    with torch.no_grad():
        layer.weight.copy_(initialize(scheme, rows, cols, generator=generator))
        if bias:
            layer.bias.zero_()
    return layer


def delay_line_shapes(hidden_size: int, delay: int) -> tuple[tuple[int, ...], ...]:
    """State entries of a synaptic delay of ``delay ≥ 1`` steps: the ``d − 1`` outputs before
    the last one, ``(r[t−d], …, r[t−2])``, oldest first (the last, ``r[t−1]``, is the
    cell's own output). Kept as separate tensors: a step shifts references, never copies."""
    if delay < 1:
        raise ValueError(f"the synaptic delay must be at least one step, got {delay}")
    return ((hidden_size,),) * (delay - 1)


def delayed_output(output: Tensor, line: State) -> Tensor:
    """``r[t−d]``: the oldest entry of the delay ``line``, or the last ``output`` (d = 1)."""
    return line[0] if line else output


def shifted_line(line: State, output: Tensor) -> State:
    """The delay line one step on: drop the oldest entry, append the last ``output``."""
    return (*line[1:], output) if line else ()


class RNNCell(RecurrentCell):
    """``h_t = φ(U x_t + V h_{t-d} + b + d_t)`` with a synaptic delay of ``d`` steps
    (default 1: the usual RNN); state ``(h, h_{t−d}, …, h_{t−2})``.

    ``bias_init``: ``zero`` or ``uniform`` (``U(±1/√H)``, with ``rinit = iinit = "uniform"``
    PyTorch's default, the GLIFR study's RNN baseline).
    """

    def __init__(self, input_size: int, hidden_size: int, *, nonlin: str = "gamma2",
                 rinit: str = "henaff", iinit: str = "kaiming", gain: float = 1.0,
                 saturation: float = 0.0, random: bool = True, learn_params: bool = True,
                 delay: int = 1, bias_init: str = "zero",
                 generator: torch.Generator | None = None, **_: Any):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.delay_shapes = delay_line_shapes(hidden_size, delay)
        self.input_layer = _linear(hidden_size, input_size, iinit, generator, bias=True)
        self.recurrent = _linear(hidden_size, hidden_size, rinit, generator, bias=False)
        if bias_init == "uniform":
            with torch.no_grad():
                self.input_layer.bias.copy_(initialize("uniform", hidden_size, 1,
                                                       generator=generator)[:, 0])
        elif bias_init != "zero":
            raise ValueError(f"bias_init must be 'zero' or 'uniform', got {bias_init!r}")
        self.nonlinearity = NONLINEARITIES.get(nonlin)(
            hidden_size, gain=gain, saturation=saturation, random=random, learn=learn_params,
            generator=generator)

    def state_shapes(self):
        return ((self.hidden_size,), *self.delay_shapes)

    def preactivation(self, x: Tensor, state: State, drive=None) -> Tensor:
        a = self.input_layer(x) + self.recurrent(delayed_output(state[0], state[1:]))
        return a if drive is None else a + drive

    def forward(self, x: Tensor, state: State, drive=None) -> State:
        h = self.nonlinearity(self.preactivation(x, state, drive))
        return (h, *shifted_line(state[1:], state[0]))

    def tangent(self, x, state, vectors, drive=None):
        if self.delay_shapes:
            return None                 # the delay line's map: forward-mode autodiff
        slope = self.nonlinearity.slope(self.preactivation(x, state, drive))
        return ((vectors[0] @ self.recurrent.weight.T) * slope.unsqueeze(-2),)

    def shape_parameters(self) -> dict[str, Tensor]:
        if isinstance(self.nonlinearity, GammaActivation):
            return {"n": self.nonlinearity.gain, "s": self.nonlinearity.saturation}
        return {}

    def project_(self) -> None:
        if isinstance(self.nonlinearity, GammaActivation):
            self.nonlinearity.project_()


class ANRUCell(RecurrentCell):
    """Adaptive nonlinearity recurrent unit (see the module docstring)."""

    def __init__(self, input_size: int, hidden_size: int, *,
                 controller_size: int = ANRU_CONTROLLER_SIZE, rinit: str = "henaff",
                 iinit: str = "kaiming", generator: torch.Generator | None = None, **_: Any):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.controller_size = controller_size
        self.input_layer = _linear(hidden_size, input_size, iinit, generator, bias=True)
        self.recurrent = _linear(hidden_size, hidden_size, rinit, generator, bias=False)
        self.controller_input = _linear(controller_size, 1, iinit, generator, bias=True)
        self.controller_recurrent = _linear(controller_size, controller_size, rinit, generator,
                                            bias=False)
        self.gain_readout = nn.Linear(controller_size, 1)
        self.saturation_readout = nn.Linear(controller_size, 1)
        xavier_std = math.sqrt(2.0 / (controller_size + 1))
        with torch.no_grad():
            self.gain_readout.weight.copy_(
                0.1 * xavier_std * torch.randn(1, controller_size, generator=generator))
            self.gain_readout.bias.fill_(5.0 + 2.0 * float(torch.rand(1, generator=generator)))
            self.saturation_readout.weight.copy_(
                0.01 * xavier_std * torch.randn(1, controller_size, generator=generator))
            self.saturation_readout.bias.zero_()

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size, self.controller_size))

    def shape_signals(self, controller: Tensor) -> tuple[Tensor, Tensor]:
        """``(n_t, s_t)``, each ``(B, H)``, from the controller states ``(B, H, 50)``."""
        n = functional.softplus(self.gain_readout(controller).squeeze(-1))
        s = self.saturation_readout(controller).squeeze(-1).clamp(0.0, 1.0)
        return n, s

    def forward(self, x: Tensor, state: State, drive=None) -> State:
        h, controller = state
        a = self.input_layer(x) + self.recurrent(h)
        if drive is not None:
            a = a + drive
        controller = torch.tanh(self.controller_input(a.unsqueeze(-1))
                                + self.controller_recurrent(controller))
        n, s = self.shape_signals(controller)
        return gamma(a, n, s), controller

    def signals(self, state: State) -> dict[str, Tensor]:
        n, s = self.shape_signals(state[1])
        return {"n": n, "s": s}


class LSTMCell(RecurrentCell):
    """Long short-term memory; the drive enters the output gate's pre-activation.

    ``init``: ``xavier`` (Xavier-normal gate blocks, zero biases but the forget gate's 1) or
    ``pytorch`` (``torch.nn.LSTMCell``: every weight and its two bias vectors
    ``U(±1/√H)``, the GLIFR study's LSTM baseline).
    """

    def __init__(self, input_size: int, hidden_size: int, *, init: str = "xavier",
                 generator: torch.Generator | None = None, **_: Any):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size)
        self.hidden_bias = None
        with torch.no_grad():
            if init == "pytorch":
                size = (4 * hidden_size, input_size + hidden_size + 2)
                drawn = (2.0 * torch.rand(size, generator=generator) - 1.0) / math.sqrt(
                    hidden_size)
                self.gates.weight.copy_(drawn[:, :-2])
                self.gates.bias.copy_(drawn[:, -2])
                self.hidden_bias = nn.Parameter(drawn[:, -1].clone())
            elif init == "xavier":
                for block in self.gates.weight.split(hidden_size):
                    block.copy_(initialize("xavier", hidden_size, input_size + hidden_size,
                                           generator=generator))
                self.gates.bias.zero_()
                self.gates.bias[:hidden_size].fill_(1.0)  # forget gate
            else:
                raise ValueError(f"init must be 'xavier' or 'pytorch', got {init!r}")

    def state_shapes(self):
        return ((self.hidden_size,), (self.hidden_size,))

    def recurrent_blocks(self) -> list[Tensor]:
        return list(self.gates.weight[:, self.input_size:].split(self.hidden_size))

    def forward(self, x: Tensor, state: State, drive=None) -> State:
        h, c = state
        gates = self.gates(torch.cat((x, h), -1))
        if self.hidden_bias is not None:
            gates = gates + self.hidden_bias
        forget, inp, out, candidate = gates.chunk(4, -1)
        if drive is not None:
            out = out + drive
        c = torch.sigmoid(forget) * c + torch.sigmoid(inp) * torch.tanh(candidate)
        return torch.sigmoid(out) * torch.tanh(c), c


class GRUCell(RecurrentCell):
    """Gated recurrent unit; the drive enters the candidate pre-activation."""

    def __init__(self, input_size: int, hidden_size: int, *,
                 generator: torch.Generator | None = None, **_: Any):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.input_gates = nn.Linear(input_size, 3 * hidden_size)
        self.hidden_gates = nn.Linear(hidden_size, 3 * hidden_size)
        with torch.no_grad():
            for layer, cols in ((self.input_gates, input_size),
                                (self.hidden_gates, hidden_size)):
                for block in layer.weight.split(hidden_size):
                    block.copy_(initialize("xavier", hidden_size, cols, generator=generator))
                layer.bias.zero_()

    def recurrent_blocks(self) -> list[Tensor]:
        return list(self.hidden_gates.weight.split(self.hidden_size))

    def forward(self, x: Tensor, state: State, drive=None) -> State:
        h = state[0]
        reset_x, update_x, candidate_x = self.input_gates(x).chunk(3, -1)
        reset_h, update_h, candidate_h = self.hidden_gates(h).chunk(3, -1)
        reset = torch.sigmoid(reset_x + reset_h)
        update = torch.sigmoid(update_x + update_h)
        candidate = candidate_x + reset * candidate_h
        if drive is not None:
            candidate = candidate + drive
        return ((1.0 - update) * torch.tanh(candidate) + update * h,)


# ----------------------------------------------------------------------------- classifier

@dataclass(frozen=True)
class SequenceModelSpec:
    """Everything needed to rebuild a :class:`SequenceClassifier` (saved with its weights)."""

    net_type: str = "RNN"
    nonlin: str = "gamma2"
    input_size: int = 1
    hidden_size: int = 400
    n_classes: int = 10
    rinit: str = "henaff"
    iinit: str = "kaiming"
    gain: float = 1.0
    saturation: float = 1.0
    random: bool = True
    learn_params: bool = True
    #: read out every step ``(T, B, n_classes)`` (sequence generation) instead of the last.
    per_step: bool = False
    #: probability that a hidden output is dropped at a training step (0: no dropout).
    dropout_prob: float = 0.0
    #: read-out initialisation: ``xavier`` (zero bias) or ``uniform`` (``torch.nn.Linear``:
    #: weights and bias ``U(±1/√H)``).
    readout_init: str = "xavier"
    #: extra keyword arguments of the cell (e.g. GLIFR's dt, delay, n_ascs, sigma_v).
    cell_options: dict = dataclasses.field(default_factory=dict)


class SequenceClassifier(nn.Module):
    """A recurrent cell over time-first sequences with a linear read-out of the last state.

    ``forward(inputs (T, B, I), drive=None) -> logits (B, n_classes)``; ``drive`` is added to
    the hidden pre-activation at every step and broadcasts against ``(T, B, H)`` (e.g. a
    ``(T, 1, 1)`` step drive).

    With ``spec.dropout_prob = p > 0`` a training forward pass drops each hidden output at
    every step with probability ``p`` and scales the kept ones by ``1/(1 − p)`` (inverted
    dropout on the rates, which then feed the recurrence and the read-out), the masks drawn
    from :attr:`dropout_generator`; evaluation runs without dropout.
    """

    def __init__(self, spec: SequenceModelSpec, *, generator: torch.Generator | None = None):
        super().__init__()
        self.spec = spec
        #: CPU generator of the dropout masks (needed when training with dropout).
        self.dropout_generator: torch.Generator | None = None
        self.cell = MODELS.get(spec.net_type)(
            spec.input_size, spec.hidden_size, nonlin=spec.nonlin, rinit=spec.rinit,
            iinit=spec.iinit, gain=spec.gain, saturation=spec.saturation, random=spec.random,
            learn_params=spec.learn_params, generator=generator, **spec.cell_options)
        self.readout = nn.Linear(spec.hidden_size, spec.n_classes)
        with torch.no_grad():
            if spec.readout_init == "uniform":       # bound 1/√fan_in = 1/√H
                drawn = 2.0 * torch.rand(spec.n_classes, spec.hidden_size + 1,
                                         generator=generator) - 1.0
                drawn /= math.sqrt(spec.hidden_size)
                self.readout.weight.copy_(drawn[:, :-1])
                self.readout.bias.copy_(drawn[:, -1])
            elif spec.readout_init == "xavier":
                self.readout.weight.copy_(initialize("xavier", spec.n_classes,
                                                     spec.hidden_size, generator=generator))
                self.readout.bias.zero_()
            else:
                raise ValueError(f"readout_init must be 'xavier' or 'uniform', got "
                                 f"{spec.readout_init!r}")

    def run(self, inputs: Tensor, drive: Tensor | None = None, *, record: bool = False,
            state: State | None = None, keep: Tensor | None = None, fused: bool = True
            ) -> tuple[State, dict[str, Tensor]]:
        """:func:`run_cell` with this model's cell (and its dropout when training)."""
        dropout = None
        if self.training and self.spec.dropout_prob > 0:
            if self.dropout_generator is None:
                raise ValueError("training with dropout needs model.dropout_generator")
            dropout = (self.spec.dropout_prob, self.dropout_generator)
        return run_cell(self.cell, inputs, drive, record=record, state=state, keep=keep,
                        dropout=dropout, fused=fused)

    def forward(self, inputs: Tensor, drive: Tensor | None = None, *,
                keep: Tensor | None = None, fused: bool = True) -> Tensor:
        """Logits; ``fused``: see :func:`run_cell`."""
        if self.spec.per_step:
            _, trace = self.run(inputs, drive, record=True, keep=keep, fused=fused)
            return self.readout(trace["h"])
        state, _ = self.run(inputs, drive, keep=keep, fused=fused)
        return self.readout(state[0])

    def project_(self) -> None:
        self.cell.project_()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def run_cell(cell: RecurrentCell, inputs: Tensor, drive: Tensor | None = None, *,
             record: bool = False, state: State | None = None, keep: Tensor | None = None,
             dropout: tuple[float, torch.Generator] | None = None, fused: bool = True
             ) -> tuple[State, dict[str, Tensor]]:
    """The one time loop: ``cell`` over ``inputs (T, B, I)`` from ``state`` (default zero).

    Returns the final state and, with ``record``, the trace ``{"h": (T, B, H), …signals}``.
    ``drive`` (broadcastable to ``(T, B, H)``) is added to the hidden pre-activation;
    ``keep`` (0/1, ``(H,)`` or ``(B, H)``) silences the neurons marked 0 at every step;
    ``dropout = (p, generator)`` multiplies the outputs at every step by a fresh mask
    ``Bernoulli(1 − p)/(1 − p)`` of shape ``(B, H)`` drawn on the CPU ``generator``.

    ``fused`` (default): an :class:`RNNCell` with a delay of one step and a pointwise
    nonlinearity known to :func:`~nrmkit.nn.fused_sequence.pointwise_rule`, without ``keep``
    or dropout, runs as one autograd node with its backpropagation through time written out
    (:mod:`nrmkit.nn.fused_sequence`: the same forward values, gradients equal to round-off,
    first derivatives only); ``fused=False`` always runs this step-by-step loop.
    """
    n_steps, batch = inputs.shape[:2]
    if state is None:
        state = cell.initial_state(batch, dtype=inputs.dtype, device=inputs.device)
    if fused and keep is None and dropout is None:
        result = _run_fused(cell, inputs, drive, state, record)
        if result is not None:
            return result
    trace: dict[str, list[Tensor]] = {}
    for t in range(n_steps):
        state = cell(inputs[t], state, None if drive is None else drive[t])
        mask = keep
        if dropout is not None:
            drawn = dropout_mask(dropout, (batch, cell.hidden_size), inputs)
            mask = drawn if keep is None else keep * drawn
        if mask is not None:
            state = cell.silenced(state, mask)
        if record:
            for name, value in {"h": state[0], **cell.signals(state)}.items():
                trace.setdefault(name, []).append(value)
    return state, {name: torch.stack(values) for name, values in trace.items()}


def _run_fused(cell: RecurrentCell, inputs: Tensor, drive: Tensor | None, state: State,
               record: bool) -> tuple[State, dict[str, Tensor]] | None:
    """:func:`run_cell` through :func:`~nrmkit.nn.fused_sequence.fused_rnn_sequence`, or None
    where it does not apply (another cell, a delay line, another nonlinearity, empty or
    mixed-type tensors, a drive not indexed by step)."""
    from nrmkit.nn.fused_sequence import fused_rnn_sequence, pointwise_rule

    if type(cell) is not RNNCell or cell.delay_shapes or len(state) != 1:
        return None
    rule = pointwise_rule(cell.nonlinearity)
    layer, recurrent = cell.input_layer, cell.recurrent
    n_steps, batch = inputs.shape[:2]
    if rule is None or layer.bias is None or recurrent.bias is not None or n_steps == 0:
        return None
    shape = rule.shape(cell.nonlinearity)
    tensors = (inputs, state[0], layer.weight, layer.bias, recurrent.weight, *shape,
               *(() if drive is None else (drive,)))
    if any(t.dtype != inputs.dtype or t.device != inputs.device for t in tensors):
        return None
    if inputs.dim() != 3 or state[0].shape != (batch, cell.hidden_size):
        return None
    if drive is not None and (not 1 <= drive.dim() <= 3 or drive.shape[0] != n_steps
                              or torch.broadcast_shapes(drive.shape[1:], state[0].shape)
                              != state[0].shape):
        return None
    hidden, last = fused_rnn_sequence(rule, inputs, drive, state[0], layer.weight,
                                      layer.bias, recurrent.weight, shape)
    return (last,), ({"h": hidden} if record else {})


def dropout_mask(dropout: tuple[float, torch.Generator], shape: tuple[int, ...],
                 like: Tensor) -> Tensor:
    """An inverted-dropout mask: 0 with probability ``p``, else ``1/(1 − p)``."""
    p, generator = dropout
    kept = torch.rand(shape, generator=generator, dtype=torch.float64) >= p
    return (kept.to(like.dtype) / (1.0 - p)).to(like.device)


def build_sequence_model(spec: SequenceModelSpec | dict, *,
                         generator: torch.Generator | None = None) -> SequenceClassifier:
    """A fresh classifier from a spec (or its dict, as saved in a model file)."""
    if isinstance(spec, dict):
        names = {f.name for f in dataclasses.fields(SequenceModelSpec)}
        spec = SequenceModelSpec(**{k: v for k, v in spec.items() if k in names})
    return SequenceClassifier(spec, generator=generator)


# ----------------------------------------------------------------------------- dynamics

class RecurrentDynamics(DynamicalModel):
    """A trained cell as a batch of ``B`` dynamical systems for the Lyapunov engine.

    The state is the cell state flattened to ``(B, D)`` (``D = H`` for RNN and GRU, ``2H``
    for LSTM, ``51·H`` for ANRU). The engine's ``drive`` is the input ``x_t`` of shape
    ``(B, I)`` (None: zero input, the autonomous network). One step is one time unit
    (``dt = 1``): exponents are in nats per step.

    Args:
        cell: a trained :class:`RecurrentCell` (its parameters are not modified).
        batch: number of trajectories ``B``.
        initial_scale: standard deviation of the random initial state.
    """

    dt = 1.0

    def __init__(self, cell: RecurrentCell, batch: int, *, initial_scale: float = 0.1):
        super().__init__()
        self.cell = cell
        self.batch = batch
        self.initial_scale = initial_scale
        self.shapes = cell.state_shapes()
        self.sizes = [math.prod(shape) for shape in self.shapes]

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size((self.batch,))

    @property
    def state_dim(self) -> int:
        return sum(self.sizes)

    def initial_state(self, generator: torch.Generator | None = None) -> Tensor:
        draw = torch.randn((self.batch, self.state_dim), generator=generator,
                           dtype=torch.float64)
        return (self.initial_scale * draw).to(dtype=self.dtype, device=self.device)

    def unflatten(self, flat: Tensor) -> State:
        lead = flat.shape[:-1]
        return tuple(piece.reshape(*lead, *shape)
                     for piece, shape in zip(flat.split(self.sizes, -1), self.shapes,
                                             strict=True))

    @staticmethod
    def flatten(state: State, lead: int) -> Tensor:
        return torch.cat([piece.reshape(*piece.shape[:lead], -1) for piece in state], -1)

    def _input(self, drive: Tensor | None, like: Tensor) -> Tensor:
        if drive is None:
            return like.new_zeros((self.batch, self.cell.input_size))
        return drive

    def step(self, state: Tensor, drive: Tensor | None = None) -> Tensor:
        x = self._input(drive, state)
        return self.flatten(self.cell(x, self.unflatten(state)), 1)

    def tangent(self, state: Tensor, vectors: Tensor, drive: Tensor | None = None) -> Tensor:
        x = self._input(drive, state)
        analytic = self.cell.tangent(x, self.unflatten(state), self.unflatten(vectors))
        if analytic is not None:
            return self.flatten(analytic, 2)

        def push(vector: Tensor) -> Tensor:
            return torch.func.jvp(lambda s: self.step(s, drive), (state,), (vector,))[1]

        return torch.func.vmap(push, in_dims=-2, out_dims=-2)(vectors)
