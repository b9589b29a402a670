r"""Training a batch of rate networks on their Lyapunov spectrum (neuronal response modulation).

Every epoch re-simulates every network from the same initial state ``h_0`` and tangent
basis ``Q_0`` (fixed at construction, so an epoch is a deterministic function of the
parameters):

1. a state warm-up of ``ttrans`` without gradients (the exponents do not depend on where
   the attractor is entered, so the warm-up only positions the state);
2. the QR engine (:func:`nrmkit.dynamics.lyapunov_spectrum`) over the basis transient and
   ``tsim``, differentiable end to end;
3. the loss of each network's top-``k`` spectrum (sorted descending), summed over networks,
   back-propagated to the trainable sets (weights, gains, shifts);
4. per-network gradient-norm clipping (each network is clipped as if trained alone), fixed
   masks of trainable entries, one Adam step.

The batch holds independent networks: Adam acts element-wise and clipping is per network,
so training them together is exactly training each alone. A network whose loss falls below
``early_stopping`` is frozen (its parameters no longer change) and the run stops when all
are frozen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from nrmkit.core.base import Trainer
from nrmkit.dynamics.lyapunov import lyapunov_spectrum, random_basis
from nrmkit.nn.rate_rnn import RateRNN

PARAMETER_SETS = ("weights", "gains", "shifts")


class SpectrumTrainer(Trainer):
    """Adam on a loss of the top-``n_exponents`` spectrum of every network in ``model``.

    Args:
        model: a :class:`~nrmkit.nn.rate_rnn.RateRNN` with batch ``(S, G)``; its trainable
            sets are chosen here (``train``) and must be per network (dense weights need
            ``G = 1``).
        n_exponents: ``k``, the exponents the loss sees.
        loss: ``(exponents (*batch, k), target) -> (*batch,)``.
        target: the loss's target value [1/τ].
        tsim, tons, ttrans, tbasis: engine times [τ] (see ``lyapunov_spectrum``).
        state, basis: initial state ``(S, G, N)`` and basis ``(S, G, k, N)`` used every epoch.
        train: names of the trainable sets among ``weights``, ``gains``, ``shifts``.
        masks: optional ``{set: bool tensor shaped like the parameter}``: only True entries
            are trained.
        lr: Adam learning rate; ``clip``: maximum gradient norm per network (None: none).
        early_stopping: freeze a network once its loss is below this value.
    """

    monitor = "loss_max"

    def __init__(
        self, model: RateRNN, *, n_exponents: int, loss: Callable[[Tensor, float], Tensor],
        target: float, tsim: float, tons: float, ttrans: float, tbasis: float | None,
        state: Tensor, basis: Tensor, train: tuple[str, ...], lr: float = 0.01,
        clip: float | None = 2000.0, masks: Mapping[str, Tensor] | None = None,
        early_stopping: float | None = None,
    ):
        super().__init__(early_stopping=early_stopping)
        unknown = set(train) - set(PARAMETER_SETS)
        if unknown or not train:
            raise ValueError(f"train must be a non-empty subset of {PARAMETER_SETS}")
        if "weights" in train and model.batch_shape[1] != 1:
            raise ValueError("trainable weights need one matrix per network (G = 1)")
        self.model = model.set_trainable(**{name: name in train for name in PARAMETER_SETS})
        self.train_sets = tuple(name for name in PARAMETER_SETS if name in train)
        self.n_exponents = n_exponents
        self.loss = loss
        self.target = float(target)
        self.engine = {"tsim": tsim, "tons": tons, "tbasis": tbasis}
        self.n_warm = max(0, round(ttrans / model.dt))
        self.state0 = state.detach().clone()
        self.basis0 = basis.detach().clone()
        self.masks = {name: mask.to(torch.bool) for name, mask in (masks or {}).items()}
        self.clip = clip
        self.n_networks = int(math.prod(model.batch_shape))
        self.frozen = torch.zeros(self.n_networks, dtype=torch.bool)
        self.epochs_run = torch.zeros(self.n_networks, dtype=torch.long)
        self.optimizer = torch.optim.Adam([self.parameter(n) for n in self.train_sets], lr=lr)

    # -- parameters, viewed per network ---------------------------------------------------
    def parameter(self, name: str) -> Tensor:
        return {"weights": self.model.weight, "gains": self.model.gain,
                "shifts": self.model.shift}[name]

    def per_network(self, tensor: Tensor) -> Tensor:
        """``(n_networks, -1)`` view of a parameter-shaped tensor (flattened batch order)."""
        return tensor.reshape(self.n_networks, -1)

    def n_trainable(self) -> dict[str, int]:
        """Trainable entries per network for each set (0 for sets that are not trained)."""
        counts = {}
        for name in PARAMETER_SETS:
            if name not in self.train_sets:
                counts[name] = 0
                continue
            parameter = self.parameter(name)
            if name in self.masks:
                counts[name] = int(self.per_network(self.masks[name])[0].sum())
            elif name == "weights" and not self.model.self_connections:
                n = self.model.n_neurons
                counts[name] = n * (n - 1)
            else:
                counts[name] = self.per_network(parameter).shape[1]
        return counts

    # -- one epoch -------------------------------------------------------------------------
    def spectrum(self, n_exponents: int | None = None, *, grad: bool = False) -> Tensor:
        """Sorted top-``k`` exponents ``(S, G, k)`` of the current networks."""
        k = self.n_exponents if n_exponents is None else n_exponents
        with torch.no_grad():
            state = self.state0
            for _ in range(self.n_warm):
                state = self.model.step(state)
        basis = self.basis0
        if k != self.n_exponents:  # one basis drawn from seed k, the same for every network
            basis = random_basis((1,), k, self.model.state_dim,
                                 generator=torch.Generator().manual_seed(k),
                                 dtype=state.dtype, device=state.device)
            basis = basis.expand(*self.model.batch_shape, k, -1).contiguous()
        with torch.set_grad_enabled(grad):
            result = lyapunov_spectrum(self.model, k, ttrans=0.0, state=state, basis=basis,
                                       **self.engine)
        return result.sorted().exponents

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        exponents = self.spectrum(grad=True)
        losses = self.loss(exponents, self.target).reshape(self.n_networks)
        if not torch.isfinite(losses).all():
            from nrmkit.core.errors import DivergenceError

            bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
            raise DivergenceError(f"the loss became non-finite in {len(bad)} of "
                                  f"{self.n_networks} networks", [(i,) for i in bad])
        detached = losses.detach().cpu()
        newly = ~self.frozen
        if self.early_stopping is not None:
            reached = detached < self.early_stopping
            self.frozen |= reached
        self.epochs_run += newly.long()
        self.optimizer.zero_grad(set_to_none=False)
        losses.sum().backward()
        grad_norms = self._prepare_gradients()
        saved = {name: self.parameter(name).detach().clone() for name in self.train_sets}
        self.optimizer.step()
        with torch.no_grad():
            for name in self.train_sets:  # frozen networks and untrainable entries stay put
                parameter = self.per_network(self.parameter(name))
                before = self.per_network(saved[name])
                parameter[self.frozen] = before[self.frozen]
                if name in self.masks:
                    keep = ~self.per_network(self.masks[name])
                    parameter[keep] = before[keep]
        lambda_max = exponents[..., 0].detach().reshape(self.n_networks).cpu()
        return {
            "loss": detached.tolist(),
            "loss_max": float(detached[~self.frozen | newly].max()),
            "lambda_max": lambda_max.tolist(),
            "spectrum": exponents.detach().reshape(self.n_networks, -1).cpu().tolist(),
            "grad_norm": {name: norms.tolist() for name, norms in grad_norms.items()},
            "frozen": self.frozen.tolist(),
        }

    def _prepare_gradients(self) -> dict[str, Tensor]:
        """Mask, measure (per network and set, before clipping) and clip the gradients."""
        norms = {}
        for name in self.train_sets:
            gradient = self.parameter(name).grad
            if name in self.masks:
                gradient.mul_(self.masks[name])
            norms[name] = self.per_network(gradient).norm(dim=1).detach().cpu()
        if self.clip is not None:
            total = torch.stack([n.square() for n in norms.values()]).sum(0).sqrt()
            scale = (self.clip / (total + 1e-12)).clamp(max=1.0)
            for name in self.train_sets:
                gradient = self.per_network(self.parameter(name).grad)
                gradient.mul_(scale.to(gradient)[:, None])
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
            "masks": dict(self.masks),
            "torch_rng": torch.get_rng_state(),
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
        self.masks = {k: v.clone() for k, v in state["masks"].items()}
        torch.set_rng_state(state["torch_rng"])
