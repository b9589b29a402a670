r"""Runs of tanh rate-network steps with one tangent vector through the compiled kernel.

The maths is that of :mod:`nrmkit.nn.tangent_product` for ``φ = tanh`` and ``k = 1``: per
network ``b`` of matrix ``s`` (``ε_b = Δt c_b``),

.. math::

    h' = (1 − Δt)\,h + ε_b\,\tanh(h)\,W_s^{\mathsf T}, \qquad
    q' = (1 − Δt)\,q + ε_b\,\big((1 − \tanh^2 h)⊙q\big)\,W_s^{\mathsf T},

with ``q`` re-normalised every ``steps_per_interval`` steps and ``log‖q‖`` recorded.
:func:`nrmkit.nn.native.library` compiles the kernel (``tanh_ons.c``): the state rows and
the tangent rows of up to :data:`MAX_COUPLINGS` networks of one matrix are multiplied in one
pass over the matrix, and each step's pointwise work (the Euler update, ``tanh``, the slope
and the next step's rows) is done on the product's registers, so a step costs little more
than its matrix product (``lyapu_benchmark``'s ``quick_start`` entry).

Each output entry is summed over the matrix's columns in one fixed order, whatever the
number of networks in the call or of threads, and the norms are summed in a fixed order too:
a network's numbers depend only on its own matrix, coupling, state and vector — the same in
any batch, chunk or thread count, and to round-off those of the PyTorch step (``tanh`` within
2 ulp of the exact value, the norms summed in float64). The runs are cut into calls of whole
intervals at positions fixed by ``N`` and the interval (:data:`CALL_ENTRIES`), between which
progress is reported and Ctrl-C is honoured.

Reference: Engelken, Wolf & Abbott (2023), Phys. Rev. Research 5, 043044.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

#: networks of one matrix per kernel call (their 2 × 7 rows fill the vector registers).
MAX_COUPLINGS = 7
#: matrix entries read per kernel call (steps × N², the steps rounded down to whole
#: intervals, at least one): about 0.03 s per call for 7 couplings on a 2-core machine, so
#: that progress is reported and Ctrl-C is honoured that often. The cut depends on N and the
#: interval alone, never on the batch, so a network's numbers do not either.
CALL_ENTRIES = 2 * 10**8
#: the most threads of a kernel call (the kernel takes up to 256).
MAX_THREADS = 256
#: tiles of output neurons per thread at least (fewer threads for small networks).
MIN_TILES_PER_THREAD = 2

Report = Callable[[int], None] | None


def kernel_threads(n_tiles: int) -> int:
    """Threads of a kernel call over ``n_tiles`` tiles: PyTorch's intra-op threads, at most
    the usable cores, :data:`MAX_THREADS` and one per :data:`MIN_TILES_PER_THREAD` tiles (the
    threads meet at a barrier every step; the numbers do not depend on their count)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(torch.get_num_threads(), usable or 1, MAX_THREADS,
                      n_tiles // MIN_TILES_PER_THREAD))


class NativeTanhRuns:
    """Runs of steps of the networks ``(S, G)`` of dense float32 CPU matrices ``weight (S, N,
    N)`` with ``scale = Δt c`` (``(S, G)``, trailing axes of size 1 allowed) and Euler step
    ``dt``, through the kernels of ``instruction_set`` (a key of
    :data:`nrmkit.nn.native.INSTRUCTION_SETS`).

    Holds the matrices packed for the kernel (derived data; build it again after the weights
    change).
    """

    def __init__(self, lib: ctypes.CDLL, weight: Tensor, scale: Tensor, dt: float,
                 instruction_set: int):
        self._lib = lib
        self.instruction_set = instruction_set
        weight = weight.detach().to(torch.float32).contiguous()
        self.n_matrices, self.n = weight.shape[0], weight.shape[-1]
        self.keep = 1.0 - dt
        self._scale = np.ascontiguousarray(
            scale.detach().reshape(self.n_matrices, -1).to(torch.float32).numpy())
        self.n_couplings = self._scale.shape[1]
        self._tiles = -(-self.n // lib.nrm_tile_width(instruction_set))
        self._steps_per_call = max(1, CALL_ENTRIES // self.n ** 2)
        size = lib.nrm_packed_size(self.n, instruction_set)
        self._packed = [np.empty(size, dtype=np.float32) for _ in range(self.n_matrices)]
        for matrix, packed in zip(weight.numpy(), self._packed, strict=True):
            lib.nrm_pack(matrix.ctypes.data, self.n, instruction_set, packed.ctypes.data)

    def warm_up(self, state: Tensor, n_steps: int, report: Report = None) -> Tensor:
        """The state ``(S, G, N)`` after ``n_steps`` steps of the state alone (a new
        tensor); ``report(steps done)`` after each call."""
        state = self._checked(state, (self.n_matrices, self.n_couplings, self.n))
        done = 0
        while done < n_steps:
            steps = min(self._steps_per_call, n_steps - done)
            self._call(state, None, steps, 1, None)
            done += steps
            if report is not None:
                report(done)
        return state

    def accumulate(self, state: Tensor, basis: Tensor, steps_per_interval: int,
                   n_intervals: int, report: Report = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(state, basis, log_increments)`` after ``n_intervals`` intervals: the state
        ``(S, G, N)``, the unit tangent vector ``(S, G, 1, N)`` and the ``(n_intervals, S, G,
        1)`` float64 logs of its growth per interval; ``report(steps done)`` after each
        call."""
        batch = (self.n_matrices, self.n_couplings)
        state = self._checked(state, (*batch, self.n))
        vector = self._checked(basis, (*batch, 1, self.n))
        logs = torch.empty((n_intervals, *batch, 1), dtype=torch.float64)
        per_call = max(1, self._steps_per_call // steps_per_interval)
        done = 0
        while done < n_intervals:
            intervals = min(per_call, n_intervals - done)
            self._call(state, vector, intervals * steps_per_interval, steps_per_interval,
                       logs[done:done + intervals])
            done += intervals
            if report is not None:
                report(done * steps_per_interval)
        return state, vector, logs

    @staticmethod
    def _checked(tensor: Tensor, shape: tuple[int, ...]) -> Tensor:
        """A contiguous float32 CPU copy of ``tensor``, which must have ``shape`` (the kernel
        reads raw memory)."""
        if tuple(tensor.shape) != shape or tensor.device.type != "cpu":
            raise ValueError(f"the compiled kernel needs a CPU tensor of shape {shape}, got "
                             f"{tuple(tensor.shape)} on {tensor.device}")
        return tensor.detach().to(torch.float32).contiguous().clone()

    def _call(self, state: Tensor, vector: Tensor | None, n_steps: int,
              steps_per_interval: int, logs: Tensor | None) -> None:
        """One kernel call per matrix and group of :data:`MAX_COUPLINGS` networks, in place."""
        threads = kernel_threads(self._tiles)
        for s in range(self.n_matrices):
            for first in range(0, self.n_couplings, MAX_COUPLINGS):
                group = slice(first, min(first + MAX_COUPLINGS, self.n_couplings))
                count = group.stop - group.start
                group_logs = None
                if logs is not None:
                    group_logs = np.empty((logs.shape[0], count), dtype=np.float64)
                status = self._lib.nrm_tanh_run(
                    self._packed[s].ctypes.data, self.n, count,
                    self._scale[s, group].ctypes.data, self.keep,
                    state[s, group].data_ptr(),
                    None if vector is None else vector[s, group].data_ptr(), n_steps,
                    steps_per_interval,
                    None if group_logs is None else group_logs.ctypes.data, threads,
                    self.instruction_set)
                if status != 0:
                    raise MemoryError("the compiled kernel could not allocate its buffers") \
                        if status == -2 else ValueError(f"compiled kernel refused its arguments "
                                                        f"(status {status})")
                if logs is not None:
                    logs[:, s, group, 0] = torch.from_numpy(group_logs)
