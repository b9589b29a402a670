"""Independent random streams named by ``(seed, unit, purpose)``.

A stream's seed is drawn from ``numpy.random.SeedSequence(entropy=seed, spawn_key=(unit,
crc32(purpose)))``: streams that differ in the run's seed, the unit (sample, trial…) or the
purpose (``"evaluation"``, ``"replicas"``…) are statistically independent, and no
arithmetic on seeds can make two of them coincide.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream_seed(seed: int, unit: int, purpose: str) -> int:
    """A 64-bit seed for the stream ``(seed, unit, purpose)``."""
    key = (int(unit), zlib.crc32(purpose.encode()))
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=key)
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


def torch_generator(seed: int, unit: int, purpose: str):
    """A CPU ``torch.Generator`` seeded from :func:`stream_seed`."""
    import torch

    return torch.Generator().manual_seed(stream_seed(seed, unit, purpose))
