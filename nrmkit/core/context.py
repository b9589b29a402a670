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
        seed: the run's seed; :meth:`stream` hands out the run's random streams by name.
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

    def stream(self, purpose: str, *, unit: int = 0):
        """The CPU ``torch.Generator`` of the stream ``(seed, unit, purpose)``
        (:func:`nrmkit.core.streams.torch_generator`): a fresh generator at the start of the
        stream on every call, so that one name always gives the same numbers."""
        from nrmkit.core.streams import torch_generator

        return torch_generator(self.seed, unit, purpose)

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)
