r"""Training and scoring character language models: truncated BPTT, bits per character.

Loss: the mean cross-entropy (nats) of the next symbol over every predicted position,

    ℓ = −(1/M) Σ_{t,b} ln p(c_{t+1,b} | c_{≤t,b}),      bits per character  BPC = ℓ / ln 2,

with ``M = (R − 1)·B`` for an ``(R, B)`` batched stream (:func:`nrmkit.datasets.ptb.
batchify`). A predictor that gives every one of ``V`` symbols probability ``1/V`` scores
exactly ``log2 V``. Every symbol counts, ``_`` and ``<eos>`` included.

:class:`LanguageModelTrainer`: one epoch walks down the training rows in segments of
``bptt`` steps (:func:`nrmkit.datasets.ptb.segments`); each segment starts from the previous
one's final state, detached (truncated BPTT), the first from zero; one Adam step per segment
on the segment's mean loss, optional gradient-norm clipping, then the model's parameter
constraints are restored. After every epoch the validation loss (same walk, no gradients,
state carried from the start of the split) drives ``ReduceLROnPlateau`` (factor 0.1,
patience 10). Nothing is random during training, so the state dict (model, optimiser,
scheduler, epoch, history) resumes a run exactly.

Reference: Graves, "Generating sequences with recurrent neural networks" (2013), §2 for
bits per character; Williams & Peng, Neural Computation 2:490 (1990) for truncated BPTT.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional

from nrmkit.core.base import Trainer
from nrmkit.core.errors import DivergenceError
from nrmkit.datasets.ptb import segments

LN2 = math.log(2.0)


def bits_per_character(loss_nats: float) -> float:
    """Mean cross-entropy in nats → bits per character (``ℓ / ln 2``)."""
    return loss_nats / LN2


def _detached(state):
    return tuple(part.detach() for part in state)


@torch.no_grad()
def evaluate_language_model(model, data: Tensor, *, bptt: int) -> dict[str, float]:
    """Loss (nats), ``bpc``, next-symbol ``accuracy`` and the number of predicted symbols
    ``count`` of ``model`` on a batched stream ``data (R, B)``, the state carried across
    segments from zero at row 0."""
    was_training = model.training
    model.eval()
    total, correct, count, state = 0.0, 0, 0, None
    for start, length in segments(data.shape[0], bptt):
        logits, state = model(data[start:start + length], state)
        targets = data[start + 1:start + 1 + length]
        total += float(functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                reduction="sum"))
        correct += int((logits.argmax(-1) == targets).sum())
        count += targets.numel()
    model.train(was_training)
    loss = total / count
    return {"loss": loss, "bpc": bits_per_character(loss), "accuracy": correct / count,
            "count": count}


class LanguageModelTrainer(Trainer):
    """Epochs of truncated BPTT with Adam (see the module docstring).

    Args:
        model: a :class:`~nrmkit.nn.language.CharLanguageModel`.
        train, validation: batched streams ``(R, B)`` (int64) on the model's device.
        lr: initial Adam learning rate. bptt: steps per segment.
        clip: clip the global gradient norm to this value before each step (None: off).
    """

    monitor = "validation_loss"

    def __init__(self, model, train: Tensor, validation: Tensor, *, lr: float = 1e-4,
                 bptt: int = 150, clip: float | None = None):
        super().__init__()
        self.model = model
        self.train_data, self.validation_data = train, validation
        self.bptt = bptt
        self.clip = clip
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, "min",
                                                                    patience=10)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        self.model.train()
        data, state = self.train_data, None
        total, count = 0.0, 0
        for index, (start, length) in enumerate(segments(data.shape[0], self.bptt)):
            targets = data[start + 1:start + 1 + length]
            self.optimizer.zero_grad(set_to_none=True)
            logits, state = self.model(data[start:start + length], state)
            loss = functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
            if not torch.isfinite(loss):
                raise DivergenceError(f"the training loss became {loss.item()} at epoch "
                                      f"{epoch + 1}, segment {index + 1}: lower --lr or "
                                      "set --clip")
            loss.backward()
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.optimizer.step()
            self.model.project_()
            state = _detached(state)
            total += loss.item() * targets.numel()
            count += targets.numel()
        validation = evaluate_language_model(self.model, self.validation_data, bptt=self.bptt)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(validation["loss"])
        return {"train_loss": total / count, "train_bpc": bits_per_character(total / count),
                "validation_loss": validation["loss"], "validation_bpc": validation["bpc"],
                "validation_accuracy": validation["accuracy"], "lr": lr,
                "seconds": time.perf_counter() - started}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                "history": self.history}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = [dict(entry) for entry in state["history"]]


def save_char_model(path: Path, model, vocabulary: tuple[str, ...]) -> None:
    """``model.pt``: the spec, the weights (CPU) and the vocabulary (symbol ``k`` = code k)."""
    import dataclasses

    from nrmkit.training.checkpoint import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, {"spec": dataclasses.asdict(model.spec), "state_dict": state,
                           "vocabulary": list(vocabulary)})


def load_char_model(path: str | Path, *, device: str = "cpu", dtype=None):
    """``(model, vocabulary)`` from a ``ptb_task`` run directory or its ``model.pt``.

    Raises:
        DataError: naming the file: unreadable, not a character model, non-finite weights.
    """
    from nrmkit.nn.language import build_char_model
    from nrmkit.training.checkpoint import build_from_record, load_checkpoint, require_finite

    path = Path(path)
    path = path / "model.pt" if path.is_dir() else path
    what = "a ptb_task model file"
    record = load_checkpoint(path, what=what)

    def build():
        require_finite(record["state_dict"], path)
        model = build_char_model(record["spec"])
        model.load_state_dict(record["state_dict"])
        return model, tuple(record["vocabulary"])

    model, vocabulary = build_from_record(path, what, build)
    return model.to(device=device, dtype=dtype or torch.float32), vocabulary
