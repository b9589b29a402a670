"""Independent random streams named by ``(seed, unit, purpose)``: the only seeding scheme.

Every random number of a run comes from a stream handed out by name
(:meth:`nrmkit.core.context.RunContext.stream`): ``seed`` is the run's ``--seed``, ``unit``
the sweep unit that draws it (sample, trial, network; 0 outside sweeps) and ``purpose`` what
it is for (``"initialisation"``, ``"batches"``, ``"evaluation"``…). A stream's seed is

    SeedSequence(entropy=seed, spawn_key=(unit, crc32(purpose))).generate_state(1, uint64)

(:class:`numpy.random.SeedSequence`): streams that differ in the seed, the unit or the purpose
are statistically independent, and no arithmetic on seeds is ever done, so two of them can
never coincide the way an offset seed of one unit can equal the base seed of the next. A unit's
numbers depend only on ``(seed, unit)``, never on which other units run with it, so sweeps
give the same numbers on any executor and chunking.

Reference: O'Neill, "PCG: a family of simple fast space-efficient statistically good
algorithms for random number generation" (2014), and NumPy's SeedSequence design notes.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream_seed(seed: int, unit: int, purpose: str) -> int:
    """The 64-bit seed of the stream ``(seed, unit, purpose)``.

    Args:
        seed: the run's seed (≥ 0).
        unit: the sweep unit (≥ 0).
        purpose: a name; equal names give equal streams.
    """
    key = (int(unit), zlib.crc32(purpose.encode()))
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=key)
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


def torch_generator(seed: int, unit: int, purpose: str):
    """A CPU ``torch.Generator`` at the start of the stream ``(seed, unit, purpose)``."""
    import torch

    return torch.Generator().manual_seed(stream_seed(seed, unit, purpose))


def numpy_generator(seed: int, unit: int, purpose: str) -> np.random.Generator:
    """A :class:`numpy.random.Generator` at the start of the stream ``(seed, unit, purpose)``."""
    return np.random.default_rng(stream_seed(seed, unit, purpose))
