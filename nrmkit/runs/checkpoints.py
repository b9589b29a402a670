"""Epoch checkpoints of a trainer, written once for every workflow that trains.

An :class:`EpochCheckpoint` resumes a trainer from its file if the run folder holds one
(``--resume``), saves the trainer's full state atomically (:func:`nrmkit.training.checkpoint.
save_checkpoint`: a reader or a killed job sees the old file or the new one) at the end of
every ``every``-th epoch and of the last, and once more when training ends, so that a resumed
run continues exactly where the interrupted one stopped. Without a run folder (``--save
false``) it does nothing.

The file holds ``{"trainer": trainer.state_dict(), **extra()}``: ``extra`` adds what else a
workflow must restore (say, the evaluation of the networks before training).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAINER_KEY = "trainer"


class EpochCheckpoint:
    """The checkpoint file of one trainer.

    Args:
        path: the file (None: no run folder, nothing is read or written).
        trainer: has ``state_dict()``, ``load_state_dict(state)`` and ``epoch``.
        every: save after every ``every``-th epoch (1: each epoch).
        last_epoch: also save after this epoch (the budget), whatever ``every``.
        extra: ``() -> dict`` of further entries saved beside the trainer's state.
    """

    def __init__(self, path: str | Path | None, trainer: Any, *, every: int = 1,
                 last_epoch: int | None = None,
                 extra: Callable[[], dict[str, Any]] | None = None):
        self.path = None if path is None else Path(path)
        self.trainer = trainer
        self.every = max(1, int(every))
        self.last_epoch = last_epoch
        self.extra = extra

    def restore(self) -> dict[str, Any] | None:
        """Load the trainer from the file if there is one; returns the checkpoint (None when
        there is none). Raises :class:`~nrmkit.core.errors.DataError` naming a damaged or
        foreign file (:func:`nrmkit.training.checkpoint.restore_checkpoint`)."""
        from nrmkit.training.checkpoint import restore_checkpoint

        if self.path is None or not self.path.exists():
            return None
        return restore_checkpoint(self.path, self.trainer, key=TRAINER_KEY)

    def save(self) -> None:
        """Write the trainer's state (and ``extra()``) atomically."""
        from nrmkit.training.checkpoint import save_checkpoint

        if self.path is None:
            return
        state = {TRAINER_KEY: self.trainer.state_dict()}
        if self.extra is not None:
            state.update(self.extra())
        save_checkpoint(self.path, state)

    def __call__(self, epoch: int, metrics: Any = None) -> None:
        """An ``on_epoch_end`` callback: save after the epochs that are due."""
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.last_epoch:
            self.save()
