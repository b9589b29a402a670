r"""Supervised training of sequence classifiers: Adam, plateau schedule, exact resume.

:class:`SequenceTrainer` minimises the cross-entropy of a
:class:`~nrmkit.nn.recurrent.SequenceClassifier` on time-first sequences ``(T, N, I)`` with
Adam; after every epoch the validation loss drives ``ReduceLROnPlateau`` (factor 0.1,
patience 10, as PyTorch's defaults). Mini-batches are drawn by a seeded permutation per epoch;
a fraction ``augment_ratio`` of them is transformed by ``augment(inputs, generator) ->
(inputs, drive)`` (the sine-gain robustness training). After every optimiser step the
model's parameter constraints are restored (:meth:`SequenceClassifier.project_`).

:meth:`SequenceTrainer.state_dict` holds the model, optimiser, scheduler, the generator's
state, the epoch and the history: reloading it and training on gives exactly the numbers of
an uninterrupted run.
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

Augment = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor | None]]


@torch.no_grad()
def evaluate(model, inputs: Tensor, labels: Tensor, *, batch_size: int = 500,
             drive: Tensor | None = None) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``inputs (T, N, I)``, ``labels (N,)``.

    ``drive`` (broadcastable to ``(T, B, H)``, e.g. ``(T, 1, 1)``) is added to the hidden
    pre-activation of every sequence.
    """
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    n = labels.shape[0]
    for start in range(0, n, batch_size):
        logits = model(inputs[:, start:start + batch_size], drive)
        target = labels[start:start + batch_size]
        total_loss += float(functional.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(-1) == target).sum())
    model.train(was_training)
    return {"loss": total_loss / n, "accuracy": correct / n}


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
    """

    monitor = "validation_loss"

    def __init__(self, model, train: tuple[Tensor, Tensor], validation: tuple[Tensor, Tensor],
                 *, lr: float = 1e-4, batch_size: int = 100,
                 generator: torch.Generator | None = None, augment: Augment | None = None,
                 augment_ratio: float = 0.0, eval_batch_size: int = 500,
                 clip: float | None = None):
        super().__init__()
        self.model = model
        self.train_inputs, self.train_labels = train
        self.validation_inputs, self.validation_labels = validation
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.generator = generator or torch.Generator().manual_seed(0)
        self.augment = augment
        self.augment_ratio = augment_ratio
        self.clip = clip
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, "min")

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        self.model.train()
        n = self.train_labels.shape[0]
        order = torch.randperm(n, generator=self.generator).to(self.train_labels.device)
        n_batches = math.ceil(n / self.batch_size)
        augmented = torch.rand(n_batches, generator=self.generator) < self.augment_ratio
        total_loss, correct = 0.0, 0
        for index in range(n_batches):
            chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
            inputs, labels = self.train_inputs[:, chosen], self.train_labels[chosen]
            drive = None
            if self.augment is not None and bool(augmented[index]):
                inputs, drive = self.augment(inputs, self.generator)
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(inputs, drive)
            loss = functional.cross_entropy(logits, labels)
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"the training loss became {loss.item()} at epoch {epoch + 1}, batch "
                    f"{index + 1}: lower --lr")
            loss.backward()
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.optimizer.step()
            self.model.project_()
            total_loss += loss.item() * labels.shape[0]
            correct += int((logits.detach().argmax(-1) == labels).sum())
        validation = evaluate(self.model, self.validation_inputs, self.validation_labels,
                              batch_size=self.eval_batch_size)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(validation["loss"])
        return {
            "train_loss": total_loss / n, "train_accuracy": correct / n,
            "validation_loss": validation["loss"],
            "validation_accuracy": validation["accuracy"],
            "lr": lr, "seconds": time.perf_counter() - started,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "history": self.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.history = [dict(entry) for entry in state["history"]]
