"""What a running workflow receives besides its configuration (:class:`RunContext`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunContext:
    """What a running workflow gets besides its configuration.

    Attributes:
        run_dir: where to write (a :class:`~nrmkit.runs.rundir.RunDir`, or a
            :class:`NullRunDir` when saving is off).
        device, dtype: resolved torch device and dtype names.
        seed: the run's seed; :meth:`generator` makes seeded CPU generators from it.
        progress: ``progress(label) -> callback(done, total)``.
        log: one line of human-readable output.
    """

    run_dir: Any
    device: str
    dtype: str
    seed: int
    progress: Callable[[str], Callable[[int, int], None]]
    log: Callable[[str], None]
    extras: dict[str, Any] = field(default_factory=dict)

    def generator(self, offset: int = 0):
        import torch

        return torch.Generator().manual_seed(self.seed + offset)

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)
