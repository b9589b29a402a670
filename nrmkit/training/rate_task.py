r"""Training Dale rate networks on cognitive tasks, with the published stopping rule.

The published code updates the network after every single trial (Adam, lr 0.01) on the loss
``ℓ = \sqrt{Σ_t (o_t − z_t)^2}`` of that trial, and every 100 trials evaluates 100 fresh
trials: training stops when their mean loss is below 7 and more than 95 % are correct (and,
for Go-NoGo, more than 1500 trials have been used); otherwise after ``n_trials``.

Here one update uses ``batch`` fresh trials and the *mean* of their per-trial losses, so its
gradient is the average of the ``batch`` one-trial gradients: it replaces one published
one-trial update (``batch = 1`` is the published procedure exactly). Adam normalises the step,
so an update moves the weights as far as one published update, along a less noisy direction.
The published counts therefore apply to *updates*: evaluation every 100 updates, the
Go-NoGo minimum of 1500 updates and the cap ``n_trials`` updates; ``trials_used`` reports
the trials drawn (updates × batch). Counting trials instead would give a batched run
``batch`` times fewer updates than the published one: such networks pass the rule with a
transient response rather than the sustained one a spiking conversion needs. One "epoch" of
the :class:`~nrmkit.core.base.Trainer` loop is one evaluation period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from nrmkit.core.base import Trainer
from nrmkit.datasets.cognitive import CognitiveTask
from nrmkit.nn.dale import DaleRateRNN, loss_per_trial

#: the published stopping thresholds.
LOSS_THRESHOLD = 7.0
ACCURACY_THRESHOLD = 0.95
EVAL_EVERY = 100
EVAL_TRIALS = 100


@torch.no_grad()
def evaluate_rate(network: DaleRateRNN, task: CognitiveTask, trials, *, loss: str = "l2",
                  generator: torch.Generator | None = None) -> dict[str, Any]:
    """Loss and accuracy of ``network`` on ``trials`` (noise on, as in training).

    Returns ``{"loss": mean per-trial loss, "accuracy": fraction correct, "outputs": (T, B),
    "correct": (B,) bool}``.
    """
    device, dtype = network.w.device, network.w.dtype
    outputs, _ = network(trials.inputs.to(device=device, dtype=dtype), generator=generator)
    targets = trials.targets.to(device=device, dtype=dtype)
    correct = task.correct(outputs, trials.labels)
    return {"loss": float(loss_per_trial(outputs, targets, loss).mean()),
            "accuracy": float(correct.float().mean()), "outputs": outputs, "correct": correct}


class RateTaskTrainer(Trainer):
    """Adam on batches of fresh trials; evaluation and stopping rule every 100 trials.

    Args:
        network: the :class:`DaleRateRNN` to train (in place).
        task: the cognitive task.
        n_trials: cap on the number of updates (published: trials, one per update).
        batch: trials per update.
        lr: Adam learning rate (published 0.01).
        loss: ``l2`` or ``l1`` (per trial, see :func:`~nrmkit.nn.dale.loss_per_trial`).
        generator: CPU generator of the trials and the network noise (part of the state).
        eval_every, eval_trials: updates between evaluations and trials per evaluation
            (published: 100 and 100).
    """

    monitor = "eval_loss"

    def __init__(self, network: DaleRateRNN, task: CognitiveTask, *, n_trials: int = 6000,
                 batch: int = 10, lr: float = 0.01, loss: str = "l2",
                 generator: torch.Generator | None = None, eval_every: int = EVAL_EVERY,
                 eval_trials: int = EVAL_TRIALS):
        super().__init__()
        self.eval_every = eval_every
        self.eval_trials = eval_trials
        self.network = network
        self.task = task
        self.n_trials = n_trials
        self.batch = batch
        self.loss = loss
        self.generator = generator if generator is not None else torch.Generator()
        self.optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        self.updates = 0
        self.losses: list[float] = []
        self.stopping_rule_met = False

    @property
    def trials_used(self) -> int:
        """Training trials drawn so far (updates × batch)."""
        return self.updates * self.batch

    @property
    def n_epochs(self) -> int:
        """Evaluation periods needed to reach ``n_trials`` updates."""
        return math.ceil(self.n_trials / self.eval_every)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        network, device, dtype = self.network, self.network.w.device, self.network.w.dtype
        network.train()
        losses = []
        for _ in range(min(self.eval_every, self.n_trials - self.updates)):
            trials = self.task.trials(self.batch, self.generator)
            outputs, _ = network(trials.inputs.to(device=device, dtype=dtype),
                                 generator=self.generator)
            loss = loss_per_trial(outputs, trials.targets.to(device=device, dtype=dtype),
                                  self.loss).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
            self.updates += 1
        self.losses.extend(losses)
        network.eval()
        evaluation = evaluate_rate(network, self.task,
                                   self.task.trials(self.eval_trials, self.generator),
                                   loss=self.loss, generator=self.generator)
        met = (evaluation["loss"] < LOSS_THRESHOLD
               and evaluation["accuracy"] > ACCURACY_THRESHOLD
               and self.updates > self.task.min_training_trials)
        self.stopping_rule_met = met
        return {"updates": self.updates, "trials": self.trials_used,
                "train_loss": sum(losses) / max(len(losses), 1),
                "eval_loss": evaluation["loss"], "eval_accuracy": evaluation["accuracy"],
                "stopping_rule_met": met}

    def fit_until_rule(self, on_epoch_end=()) -> list[dict[str, Any]]:
        """Train until the stopping rule holds or ``n_trials`` are used."""
        def stop(epoch: int, metrics: Mapping[str, Any]) -> bool:
            return bool(metrics["stopping_rule_met"]) or self.updates >= self.n_trials

        if self.stopping_rule_met:
            return self.history
        return self.fit(self.n_epochs, on_epoch_end=(*on_epoch_end, stop))

    def state_dict(self) -> dict[str, Any]:
        return {"network": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "epoch": self.epoch,
                "history": list(self.history), "updates": self.updates,
                "losses": list(self.losses),
                "stopping_rule_met": self.stopping_rule_met}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.updates = int(state["updates"])
        self.losses = list(state["losses"])
        self.stopping_rule_met = bool(state["stopping_rule_met"])
