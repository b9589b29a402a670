"""Wall-clock timing of ``lyapu_benchmark``: timed calls, progress clocks, phase rates.

Times are seconds of ``time.perf_counter``; on CUDA the device is synchronised before and
after every timed call so that the time covers the queued kernels. torch is imported only
inside the functions that need it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

#: a timed call shorter than this [s] is repeated (best of three) to tame timer noise.
SHORT_MEASUREMENT = 0.2


class Clock:
    """A progress callback that records ``(done_steps, seconds since start)`` and forwards."""

    def __init__(self, forward: Callable[[int, int], None] | None = None):
        self.forward = forward
        self.records: list[tuple[int, float]] = []
        self.total = 0
        self.start = time.perf_counter()

    def restart(self) -> None:
        self.records.clear()
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        self.records.append((done, time.perf_counter() - self.start))
        self.total = total
        if self.forward is not None:
            self.forward(done, total)


def synchronize(device: Any) -> None:
    """Wait for the queued kernels of ``device`` (a no-op off CUDA)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(function: Callable[[], Any], device: Any) -> tuple[float, Any]:
    """``(seconds, value)`` of one call of ``function`` on ``device``."""
    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return time.perf_counter() - start, value


def best_of(function: Callable[[], Any], device: Any) -> tuple[float, Any]:
    """Seconds of ``function`` (best of three when a call is shorter than
    :data:`SHORT_MEASUREMENT`) and the value of its first call."""
    seconds, value = timed(function, device)
    if seconds < SHORT_MEASUREMENT:
        for _ in range(2):
            seconds = min(seconds, timed(function, device)[0])
    return seconds, value


def phase_rates(records: list[tuple[int, float]], seconds: float, total: int,
                warmup_steps: int, steps_per_ons: int) -> tuple[float | None, float | None]:
    """Seconds per step of the state warm-up and of the tangent phase, from progress records.

    The warm-up rate comes from the last record inside the warm-up, the tangent rate from
    the first record after it to the end of the run; None where no record separates them.
    """
    warm = [(done, t) for done, t in records if 0 < done <= warmup_steps]
    warm_rate = warm[-1][1] / warm[-1][0] if warm and warmup_steps > 0 else None
    if warmup_steps == 0:
        return None, seconds / total
    after = [(done, t) for done, t in records if warmup_steps + steps_per_ons <= done < total]
    tangent_rate = ((seconds - after[0][1]) / (total - after[0][0])) if after else None
    if tangent_rate is not None and not math.isfinite(tangent_rate):
        tangent_rate = None
    return warm_rate, tangent_rate
