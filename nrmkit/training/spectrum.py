r"""Training rate networks on their Lyapunov spectrum (neuronal response modulation).

The loss ``L(λ_1 … λ_k)`` of a network's top-``k`` exponents is minimised by Adam over the
trainable sets (weights, gains, shifts). The exponents are the QR (Benettin) estimates of
:func:`nrmkit.dynamics.lyapunov_spectrum`, differentiable through the Euler steps and the QR
factorisations.

Procedures (:data:`PROCEDURES`)
-------------------------------
``windows`` (default): truncated back-propagation through short windows. After one state
warm-up (``ttrans``) and basis transient (``tbasis``), each network's trajectory runs on for
the whole training; an epoch covers ``tsim`` in ``n = round(tsim / window)`` windows of
``window`` τ. In window ``w`` the finite-time exponents

.. math::

    \hat\lambda_i^{(w)} = \frac{1}{T_w} \sum_{m \in w} \log |R^{(m)}_{ii}|

are computed from the carried state ``h`` and basis ``Q``, the loss of their mean over the
network's ``R`` replicas (trajectories from independent initial states, same parameters) is
back-propagated through the window only, and Adam takes one step; ``h`` and ``Q`` are then
carried on, detached. The gradient of a finite-time exponent through ``T`` chaotic steps
grows like ``e^{λ_1 T}``, so its variance explodes with ``T``; short windows keep it bounded
(Engelken 2023, "gradient flossing", NeurIPS), and the replicas average the
trajectory-to-trajectory fluctuations that a single trajectory would overfit. The epoch's
reported exponents are the mean over its windows (and replicas).

``single``: the original procedure — every epoch re-simulates each network from the same
initial state and basis (warm-up ``ttrans``, basis transient ``tbasis``), back-propagates
the loss of the exponents over the whole ``tsim`` and takes one Adam step.

Either way each network is clipped as if trained alone (gradient norm over its trainable
sets ≤ ``clip``), untrainable entries (``masks``) and frozen networks keep their values,
and a network whose epoch loss falls below ``early_stopping`` is frozen. The batch holds
independent networks: Adam acts element-wise and clipping is per network, so training them
together is training each alone.

Evaluation (:func:`evaluate_spectra`) is independent of training: a fresh initial state,
its own warm-up, and a longer run with no gradient; :func:`global_gain_baseline` evaluates
every network with all gains set to one value ``c`` (shifts 0) over a grid of ``c`` — the
best a single global gain can do, against which per-neuron modulation is measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from nrmkit.core.base import Trainer
from nrmkit.core.errors import DivergenceError
from nrmkit.dynamics.lyapunov import lyapunov_spectrum, random_basis, window_spectrum
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.training import BASELINE_GAINS, PROCEDURES

PARAMETER_SETS = ("weights", "gains", "shifts")


def replicate(model: RateRNN, replicas: int) -> RateRNN:
    """``model`` with every network repeated ``replicas`` times along the coupling axis:
    batch ``(S, G) → (S, G·R)``, replicas of network ``(s, g)`` at ``g·R … g·R + R − 1``
    (same weights, couplings, gains and shifts)."""
    if replicas == 1:
        return model
    repeat = lambda tensor: tensor.detach().repeat_interleave(replicas, dim=1)  # noqa: E731
    return RateRNN(model.weight.detach(), coupling=repeat(model.coupling),
                   gain=repeat(model.gain), shift=repeat(model.shift),
                   population=model.population, activation=model.activation, dt=model.dt,
                   initial_std=model.initial_std, self_connections=model.self_connections)


class SpectrumTrainer(Trainer):
    """Adam on a loss of the top-``n_exponents`` spectrum of every network in ``model``.

    Args:
        model: a :class:`~nrmkit.nn.rate_rnn.RateRNN` with batch ``(S, G)`` (the networks);
            its trainable sets are chosen here (``train``); dense trainable weights need
            ``G = 1``.
        n_exponents: ``k``, the exponents the loss sees.
        loss: ``(exponents (*batch, k), target) -> (*batch,)``.
        target: the loss's target value [1/τ].
        tsim: simulated time per epoch [τ]; tons, ttrans, tbasis: see ``lyapunov_spectrum``.
        state: initial states ``(S, G, N)`` or ``(S, G, R, N)`` (``R`` replicas per network).
        basis: initial bases ``(S, G, k, N)`` or ``(S, G, R, k, N)``.
        train: names of the trainable sets among ``weights``, ``gains``, ``shifts``.
        masks: optional ``{set: bool tensor shaped like the network's parameter}``: only
            True entries are trained.
        lr: Adam learning rate; ``clip``: maximum gradient norm per network (None: none).
        early_stopping: freeze a network once its epoch loss is below this value.
        procedure: ``windows`` or ``single`` (module docstring); window: its length [τ].
    """

    monitor = "loss_max"

    def __init__(
        self, model: RateRNN, *, n_exponents: int, loss: Callable[[Tensor, float], Tensor],
        target: float, tsim: float, tons: float, ttrans: float, tbasis: float | None,
        state: Tensor, basis: Tensor, train: tuple[str, ...], lr: float = 0.01,
        clip: float | None = 1.0, masks: Mapping[str, Tensor] | None = None,
        early_stopping: float | None = None, procedure: str = "windows",
        window: float = 10.0,
    ):
        super().__init__(early_stopping=early_stopping)
        unknown = set(train) - set(PARAMETER_SETS)
        if unknown or not train:
            raise ValueError(f"train must be a non-empty subset of {PARAMETER_SETS}")
        if procedure not in PROCEDURES:
            raise ValueError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")
        if "weights" in train and model.batch_shape[1] != 1:
            raise ValueError("trainable weights need one matrix per network (G = 1)")
        if state.dim() == 3:  # one trajectory per network
            state, basis = state.unsqueeze(-2), basis.unsqueeze(-3)
        self.replicas = state.shape[-2]
        self.networks = model
        self.model = replicate(model, self.replicas).set_trainable(
            **{name: name in train for name in PARAMETER_SETS})
        self.train_sets = tuple(name for name in PARAMETER_SETS if name in train)
        self.n_exponents = n_exponents
        self.loss = loss
        self.target = float(target)
        self.procedure = procedure
        self.tons, self.tsim = tons, tsim
        self.tbasis = 0.1 * tsim if tbasis is None else tbasis
        self.window = window
        self.n_windows = max(1, round(tsim / window))
        self.n_warm = max(0, round(ttrans / model.dt))
        flat = self.model.batch_shape
        self.state0 = state.detach().reshape(*flat, -1).clone()
        self.basis0 = basis.detach().reshape(*flat, n_exponents, -1).clone()
        self.state: Tensor | None = None  # the carried trajectory (windows procedure)
        self.basis: Tensor | None = None
        self.masks = {name: mask.to(torch.bool) for name, mask in (masks or {}).items()}
        self.clip = clip
        self.n_networks = int(math.prod(model.batch_shape))
        self.frozen = torch.zeros(self.n_networks, dtype=torch.bool)
        self.epochs_run = torch.zeros(self.n_networks, dtype=torch.long)
        self.seconds = 0.0
        self.optimizer = torch.optim.Adam([self.parameter(n) for n in self.train_sets], lr=lr)

    # -- parameters, viewed per network ---------------------------------------------------
    def parameter(self, name: str) -> Tensor:
        """The (replicated) trainable tensor of a set."""
        return {"weights": self.model.weight, "gains": self.model.gain,
                "shifts": self.model.shift}[name]

    def per_network(self, tensor: Tensor, name: str = "gains") -> Tensor:
        """``(n_networks, R, -1)`` view of a replicated parameter-shaped tensor (weights:
        ``(n_networks, 1, N²)``, shared by the replicas)."""
        if name == "weights":
            return tensor.reshape(self.n_networks, 1, -1)
        return tensor.reshape(self.n_networks, self.replicas, -1)

    def network_parameter(self, name: str) -> Tensor:
        """``(n_networks, P)`` current values of a set (its first replica; all are equal)."""
        return self.per_network(self.parameter(name).detach(), name)[:, 0]

    def trained_networks(self) -> RateRNN:
        """The networks (batch ``(S, G)``) with the current parameters."""
        if self.replicas > 1:
            with torch.no_grad():
                for name, target in (("gains", self.networks.gain),
                                     ("shifts", self.networks.shift)):
                    target.copy_(self.network_parameter(name).reshape(target.shape))
                if "weights" in self.train_sets:
                    self.networks.weight.copy_(self.model.weight)
        return self.networks

    def n_trainable(self) -> dict[str, int]:
        """Trainable entries per network for each set (0 for sets that are not trained)."""
        counts = {}
        for name in PARAMETER_SETS:
            if name not in self.train_sets:
                counts[name] = 0
            elif name in self.masks:
                counts[name] = int(self.masks[name].reshape(self.n_networks, -1)[0].sum())
            elif name == "weights" and not self.model.self_connections:
                n = self.model.n_neurons
                counts[name] = n * (n - 1)
            else:
                counts[name] = self.network_parameter(name).shape[1]
        return counts

    def _replica_mask(self, name: str) -> Tensor:
        """The mask of a set in the replicated model's shape."""
        mask = self.masks[name]
        return mask if name == "weights" else mask.repeat_interleave(self.replicas, dim=1)

    # -- one epoch -------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        start = time.perf_counter()
        newly = ~self.frozen
        exponents, grad_norms = {"windows": self._windows_epoch,
                                 "single": self._single_epoch}[self.procedure]()
        losses = self._freeze(exponents)
        self.epochs_run += newly.long()
        self.seconds += time.perf_counter() - start
        return {
            "loss": losses.tolist(),
            "loss_max": float(losses[~self.frozen | newly].max()),
            "lambda_max": exponents[:, 0].cpu().tolist(),
            "spectrum": exponents.cpu().tolist(),
            "grad_norm": {name: norms.tolist() for name, norms in grad_norms.items()},
            "frozen": self.frozen.tolist(),
        }

    def _windows_epoch(self) -> tuple[Tensor, dict[str, Tensor]]:
        if self.state is None:
            self.state, self.basis = self._transient(self.state0, self.basis0)
        estimates, norms = [], []
        for _ in range(self.n_windows):
            result = self._run(self.window, 0.0, self.state, self.basis)
            exponents = self._network_mean(result.sorted().exponents)
            norms.append(self._update(exponents))
            self.state, self.basis = result.state.detach(), result.basis.detach()
            estimates.append(exponents.detach())
        mean_norms = {name: torch.stack([n[name] for n in norms]).mean(0) for name in norms[0]}
        return torch.stack(estimates).mean(0), mean_norms

    def _single_epoch(self) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            state = self.state0
            for _ in range(self.n_warm):
                state = self.model.step(state)
        result = self._run(self.tsim, self.tbasis, state, self.basis0)
        exponents = self._network_mean(result.sorted().exponents)
        self._freeze(exponents.detach())  # before the step: a network keeps what reached it
        norms = self._update(exponents)
        return exponents.detach(), norms

    def _freeze(self, exponents: Tensor) -> Tensor:
        """Freeze the networks whose loss is below ``early_stopping``; their losses."""
        losses = self.loss(exponents.detach(), self.target).cpu()
        if self.early_stopping is not None:
            self.frozen |= losses < self.early_stopping
        return losses

    def _transient(self, state: Tensor, basis: Tensor) -> tuple[Tensor, Tensor]:
        """State warm-up and basis transient, no gradient."""
        with torch.no_grad():
            for _ in range(self.n_warm):
                state = self.model.step(state)
            if self.tbasis > 0:
                result = self._run(self.tbasis, 0.0, state, basis)
                state, basis = result.state, result.basis
        return state.detach(), basis.detach()

    def _run(self, tsim: float, tbasis: float, state: Tensor, basis: Tensor):
        """The engine on the replicated batch (a window of a carried trajectory as one
        autograd node where the model has one); a divergence names networks, not replicas."""
        try:
            if tbasis == 0.0:
                return window_spectrum(self.model, self.n_exponents, tsim=tsim,
                                       tons=self.tons, state=state, basis=basis)
            return lyapunov_spectrum(self.model, self.n_exponents, tsim=tsim, tons=self.tons,
                                     ttrans=0.0, tbasis=tbasis, state=state, basis=basis)
        except DivergenceError as error:
            groups = self.model.batch_shape[1] // self.replicas
            networks = sorted({(s, g // self.replicas) for s, g in error.batch_indices})
            flat = [(s * groups + g,) for s, g in networks]
            raise DivergenceError(f"the simulation diverged in {len(flat)} of "
                                  f"{self.n_networks} networks", flat) from None

    def _network_mean(self, exponents: Tensor) -> Tensor:
        """``(S, G·R, k)`` → ``(n_networks, k)``: the mean over each network's replicas."""
        return exponents.reshape(self.n_networks, self.replicas, -1).mean(1)

    def _update(self, exponents: Tensor) -> dict[str, Tensor]:
        """One Adam step on the summed losses of ``exponents (n_networks, k)``."""
        losses = self.loss(exponents, self.target)
        if not torch.isfinite(losses).all():
            bad = (~torch.isfinite(losses.detach())).nonzero().flatten().tolist()
            raise DivergenceError(f"the loss became non-finite in {len(bad)} of "
                                  f"{self.n_networks} networks", [(i,) for i in bad])
        self.optimizer.zero_grad(set_to_none=False)
        losses.sum().backward()
        norms = self._prepare_gradients()
        saved = {name: self.parameter(name).detach().clone() for name in self.train_sets}
        self.optimizer.step()
        with torch.no_grad():
            for name in self.train_sets:  # frozen networks and untrainable entries stay put
                parameter = self.per_network(self.parameter(name), name)
                before = self.per_network(saved[name], name)
                parameter[self.frozen] = before[self.frozen]
                if name in self.masks:
                    keep = ~self.per_network(self._replica_mask(name), name)
                    parameter[keep] = before[keep]
        return norms

    def _prepare_gradients(self) -> dict[str, Tensor]:
        """Tie the replicas (each copy of a shared parameter gets the sum of the copies'
        gradients: the gradient of the shared parameter), mask, measure per network and set
        (before clipping) and clip."""
        norms = {}
        for name in self.train_sets:
            gradient = self.parameter(name).grad
            per_network = self.per_network(gradient, name)
            if per_network.shape[1] > 1:
                per_network.copy_(per_network.sum(1, keepdim=True).expand_as(per_network))
            if name in self.masks:
                gradient.mul_(self._replica_mask(name))
            norms[name] = per_network[:, 0].norm(dim=1).detach().cpu()
        if self.clip is not None:
            total = torch.stack([n.square() for n in norms.values()]).sum(0).sqrt()
            scale = (self.clip / (total + 1e-12)).clamp(max=1.0)
            for name in self.train_sets:
                gradient = self.per_network(self.parameter(name).grad, name)
                gradient.mul_(scale.to(gradient)[:, None, None])
        return norms

    def _should_stop(self, metrics: Mapping[str, Any]) -> bool:
        return self.early_stopping is not None and bool(self.frozen.all())

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "history": self.history,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "frozen": self.frozen.clone(),
            "epochs_run": self.epochs_run.clone(),
            "state0": self.state0,
            "basis0": self.basis0,
            "state": self.state,
            "basis": self.basis,
            "masks": dict(self.masks),
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for key, value in state["model"].items():
                target = dict(self.model.named_parameters()).get(key)
                if target is None:
                    target = dict(self.model.named_buffers())[key]
                target.copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.frozen = state["frozen"].clone()
        self.epochs_run = state["epochs_run"].clone()
        self.state0 = state["state0"].clone()
        self.basis0 = state["basis0"].clone()
        self.state = None if state["state"] is None else state["state"].clone()
        self.basis = None if state["basis"] is None else state["basis"].clone()
        self.masks = {k: v.clone() for k, v in state["masks"].items()}
        self.seconds = float(state["seconds"])


def evaluate_spectra(model: RateRNN, n_exponents: int, *, state: Tensor, basis: Tensor,
                     tsim: float, tons: float | str, ttrans: float,
                     check_finite: bool = True) -> Tensor:
    """The sorted top-``k`` exponents ``(S, G, k)`` of every network, measured without
    gradient from ``state (S, G, N)`` and ``basis (S, G, k, N)`` after a warm-up of
    ``ttrans`` and a basis transient of ``0.1·tsim``, accumulated over ``tsim`` [τ]."""
    with torch.no_grad():
        result = lyapunov_spectrum(model, n_exponents, tsim=tsim, tons=tons, ttrans=ttrans,
                                   state=state, basis=basis, check_finite=check_finite)
    return result.sorted().exponents.detach()


def global_gain_model(model: RateRNN, gains: Sequence[float]) -> RateRNN:
    """Every network of ``model`` (batch ``(S, G)``) at each global gain ``c`` of ``gains``
    (``M`` values): batch ``(S, G·M)``, network ``(s, g)`` at ``g·M … g·M + M − 1``, all its
    gains ``c`` and shifts 0 (weights and couplings as in ``model``).

    With shifts 0 a global gain is a coupling: ``tanh(c·h)`` under ``h = y/c`` gives
    ``ẏ = −y + c·W tanh(y)``, so the grid scans the network's overall coupling strength.
    """
    grid = torch.as_tensor(list(gains), dtype=model.gain.dtype, device=model.gain.device)
    m = grid.numel()
    shape = model.batch_shape
    gain = grid.repeat(shape[1]).reshape(1, shape[1] * m, 1).expand(shape[0], -1, 1)
    return RateRNN(model.weight.detach(), coupling=model.coupling.repeat_interleave(m, dim=1),
                   gain=gain, shift=torch.zeros_like(gain), population=None,
                   activation=model.activation, dt=model.dt,
                   self_connections=model.self_connections)


def global_gain_baseline(model: RateRNN, n_exponents: int, *, loss: Callable, target: float,
                         state: Tensor, basis: Tensor, tsim: float, tons: float | str,
                         ttrans: float, gains: Sequence[float] = BASELINE_GAINS,
                         ) -> dict[str, Tensor]:
    """The loss of every network with a single global gain ``c``, for each ``c`` of
    ``gains`` (evaluated as :func:`evaluate_spectra`, from the network's evaluation
    ``state`` and ``basis``; NaN where that gain makes the network diverge).

    Returns:
        ``gains (M,)``, ``loss`` and ``lambda_max`` ``(n_networks, M)``, and the best
        ``gain``, ``best_loss``, ``best_lambda_max`` ``(n_networks,)``.
    """
    m = len(gains)
    grid_model = global_gain_model(model, gains)
    repeat = lambda tensor: tensor.repeat_interleave(m, dim=1)  # noqa: E731
    exponents = evaluate_spectra(grid_model, n_exponents, state=repeat(state),
                                 basis=repeat(basis), tsim=tsim, tons=tons, ttrans=ttrans,
                                 check_finite=False)  # a gain that diverges just loses
    n_networks = int(math.prod(model.batch_shape))
    exponents = exponents.reshape(n_networks, m, n_exponents)
    losses = loss(exponents, target)
    losses = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, math.nan))
    best = torch.nan_to_num(losses, nan=math.inf).argmin(1)
    rows = torch.arange(n_networks)
    grid = torch.as_tensor(list(gains), dtype=torch.float64)
    return {"gains": grid, "loss": losses, "lambda_max": exponents[..., 0],
            "gain": grid[best], "best_loss": losses[rows, best],
            "best_lambda_max": exponents[rows, best, 0]}


def fresh_start(model: RateRNN, n_exponents: int, generator: torch.Generator,
                replicas: int = 1) -> tuple[Tensor, Tensor]:
    """Initial states ``(S, G, R, N)`` and bases ``(S, G, R, k, N)`` drawn from
    ``generator`` (a batch of one network: ``S·G = 1``)."""
    n = model.state_dim
    dtype, device = model.gain.dtype, model.gain.device
    shape = (*model.batch_shape, replicas)
    state = model.initial_std * torch.randn((*shape, n), generator=generator,
                                            dtype=torch.float64).to(dtype=dtype, device=device)
    basis = random_basis(shape, n_exponents, n, generator=generator, dtype=dtype,
                         device=device)
    return state, basis
