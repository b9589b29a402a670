r"""Supervised training of sequence classifiers: Adam, plateau schedule, exact resume.

:class:`SequenceTrainer` minimises the cross-entropy of a
:class:`~nrmkit.nn.recurrent.SequenceClassifier` on time-first sequences ``(T, N, I)`` with
Adam; after every epoch the validation loss drives ``ReduceLROnPlateau`` (factor 0.1,
patience 10, as PyTorch's defaults). Mini-batches are drawn by a seeded permutation per epoch;
a fraction ``augment_ratio`` of them is transformed by ``augment(inputs, generator) ->
(inputs, drive)`` (the sine-gain robustness training). After every optimiser step the
model's parameter constraints are restored (:meth:`SequenceClassifier.project_`).

:meth:`SequenceTrainer.state_dict` holds the model, optimiser, scheduler, the generator's
state (and that of the model's dropout generator), the epoch and the history: reloading it
and training on gives exactly the numbers of an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional

from nrmkit.core.base import Trainer
from nrmkit.core.errors import DivergenceError
from nrmkit.nn.sequence_buffers import release_sequence_buffers

Augment = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor | None]]


class Classification:
    """Class labels ``(N,)`` from the last step's logits: cross-entropy; metric accuracy."""

    metric = "accuracy"

    def loss(self, outputs: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        return functional.cross_entropy(outputs, targets, reduction=reduction)

    def score(self, outputs: Tensor, targets: Tensor) -> float:
        """Sum over the batch of the metric (correct predictions)."""
        return float((outputs.argmax(-1) == targets).sum())

    def take(self, targets: Tensor, index) -> Tensor:
        return targets[index]

    def count(self, targets: Tensor) -> int:
        return targets.shape[0]


class Regression:
    """Target sequences ``(T, N, O)`` from per-step outputs: mean squared error (the metric
    ``mse`` is the per-sequence MSE averaged over sequences, equal to the loss)."""

    metric = "mse"

    def loss(self, outputs: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        per_sequence = ((outputs - targets) ** 2).mean((0, 2))
        return per_sequence.sum() if reduction == "sum" else per_sequence.mean()

    def score(self, outputs: Tensor, targets: Tensor) -> float:
        return float(self.loss(outputs, targets, reduction="sum"))

    def take(self, targets: Tensor, index) -> Tensor:
        return targets[:, index]

    def count(self, targets: Tensor) -> int:
        return targets.shape[1]


CLASSIFICATION = Classification()
REGRESSION = Regression()


@torch.no_grad()
def evaluate(model, inputs: Tensor, targets: Tensor, *, batch_size: int = 500,
             drive: Tensor | None = None, objective=CLASSIFICATION,
             **model_kwargs: Any) -> dict[str, float]:
    """Mean loss and metric of ``model`` on ``inputs (T, N, I)`` and ``targets``.

    Classification (default): ``targets (N,)``, returns ``loss`` (cross-entropy) and
    ``accuracy``; :data:`REGRESSION`: ``targets (T, N, O)``, returns ``loss`` and ``mse``.
    ``drive`` (broadcastable to ``(T, B, H)``, e.g. ``(T, 1, 1)``) is added to the hidden
    pre-activation of every sequence; ``model_kwargs`` go to the model (e.g. ``keep``).
    """
    was_training = model.training
    model.eval()
    total_loss, total_score = 0.0, 0.0
    n = objective.count(targets)
    with torch.no_grad():                  # floats out: no graph to record
        for start in range(0, n, batch_size):
            window = slice(start, start + batch_size)
            outputs = model(inputs[:, window], drive, **model_kwargs)
            target = objective.take(targets, window)
            total_loss += float(objective.loss(outputs, target, reduction="sum"))
            total_score += objective.score(outputs, target)
    model.train(was_training)
    release_sequence_buffers()    # the evaluation's buffers: not kept into what comes next
    return {"loss": total_loss / n, objective.metric: total_score / n}


class SequenceTrainer(Trainer):
    """Epochs of Adam on a sequence classifier (see the module docstring).

    Args:
        model: a :class:`~nrmkit.nn.recurrent.SequenceClassifier`.
        train, validation: ``(inputs (T, N, I), labels (N,))`` on the model's device.
        lr: initial Adam learning rate. batch_size: sequences per update.
        generator: CPU generator of the batch order and augmentation draws.
        augment, augment_ratio: optional training transform and the fraction of batches
            it is applied to.
        eval_batch_size: sequences per evaluation pass.
        clip: clip the global gradient norm to this value before each step (None: off,
            as in the published training).
        objective: :data:`CLASSIFICATION` (labels ``(N,)``) or :data:`REGRESSION` (target
            sequences ``(T, N, O)``); history keys are ``train_<metric>`` and
            ``validation_<metric>`` (``accuracy`` or ``mse``).
        plateau: reduce the learning rate on validation plateaus (False: constant rate).
    """

    monitor = "validation_loss"

    def __init__(self, model, train: tuple[Tensor, Tensor], validation: tuple[Tensor, Tensor],
                 *, lr: float = 1e-4, batch_size: int = 100,
                 generator: torch.Generator, augment: Augment | None = None,
                 augment_ratio: float = 0.0, eval_batch_size: int = 500,
                 clip: float | None = None, objective=CLASSIFICATION, plateau: bool = True):
        super().__init__()
        self.model = model
        self.train_inputs, self.train_labels = train
        self.validation_inputs, self.validation_labels = validation
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.generator = generator
        self.augment = augment
        self.augment_ratio = augment_ratio
        self.clip = clip
        self.objective = objective
        self.before_epoch: Callable[[int], None] | None = None
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, "min", patience=10 if plateau else 2**62)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        if self.before_epoch is not None:
            self.before_epoch(epoch)
        self.model.train()
        objective = self.objective
        n = objective.count(self.train_labels)
        device = self.train_inputs.device
        order = torch.randperm(n, generator=self.generator).to(device)
        n_batches = math.ceil(n / self.batch_size)
        augmented = torch.rand(n_batches, generator=self.generator) < self.augment_ratio
        total_loss, total_score = 0.0, 0.0
        for index in range(n_batches):
            chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
            inputs = self.train_inputs[:, chosen]
            targets = objective.take(self.train_labels, chosen)
            drive = None
            if self.augment is not None and bool(augmented[index]):
                inputs, drive = self.augment(inputs, self.generator)
            self.optimizer.zero_grad(set_to_none=True)
            outputs = self.model(inputs, drive)
            loss = objective.loss(outputs, targets)
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"the training loss became {loss.item()} at epoch {epoch + 1}, batch "
                    f"{index + 1}: lower --lr")
            loss.backward()
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.optimizer.step()
            self.model.project_()
            size = objective.count(targets)
            total_loss += loss.item() * size
            total_score += objective.score(outputs.detach(), targets)
        validation = evaluate(self.model, self.validation_inputs, self.validation_labels,
                              batch_size=self.eval_batch_size, objective=objective)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(validation["loss"])
        metric = objective.metric
        return {
            "train_loss": total_loss / n, f"train_{metric}": total_score / n,
            "validation_loss": validation["loss"],
            f"validation_{metric}": validation[metric],
            "lr": lr, "seconds": time.perf_counter() - started,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            **self._dropout_state(),
            "epoch": self.epoch,
            "history": self.history,
        }

    def _dropout_state(self) -> dict[str, Tensor]:
        generator = getattr(self.model, "dropout_generator", None)
        return {} if generator is None else {"dropout_generator": generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        if "dropout_generator" in state:
            self.model.dropout_generator.set_state(state["dropout_generator"])
        self.epoch = int(state["epoch"])
        self.history = [dict(entry) for entry in state["history"]]
