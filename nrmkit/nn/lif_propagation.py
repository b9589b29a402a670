"""Spike detection and propagation of the batched LIF networks of :mod:`nrmkit.nn.lif`:
event-driven (only the neurons that spiked are touched) or dense (the spike matrix times the
jumps, no data-dependent shapes).

Event-driven, a step costs the elementwise membrane and synapse updates plus work in
proportion to the ``K`` spikes of the step, ``K ≈ M·N·ν·dt`` (≈ 0.5 in a grid of
``M = 1200`` networks of ``N = 200`` neurons at 40 Hz, dt = 0.05 ms):

* :func:`spiking_indices` finds the spikes in one comparison and scan (NumPy's on the CPU);
* :class:`RefractoryGate` keeps the refractory gate ``g ∈ {0, 1}`` as a state, closed at a
  spike and reopened ``t_ref`` later, instead of recomputing it from the last spike times;
* :func:`propagate` adds the jump rows of the spiking neurons only.

Each gives exactly the values of its dense counterpart (same spikes, same gate; the summed
jumps equal to round-off).

Reference: Kim, Li & Sejnowski, PNAS 116, 22811 (2019) (the column sum of the weights of the
neurons that spiked). This module does not print, write files or hold global state.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch import Tensor


def spiking_indices(v: Tensor, threshold: float) -> Tensor | None:
    """Flat indices into ``v (M, N)`` of the entries with ``v ≥ threshold``, ascending (as
    ``(v ≥ threshold).view(-1).nonzero()``), or None when there are none.

    On the CPU the comparison and the scan run in NumPy on ``v``'s memory (≈ 4× faster than
    ``ge`` into a bool tensor and ``nonzero`` for ``M·N ≈ 2·10⁵``); elsewhere in torch.
    """
    if v.device.type == "cpu":
        found = np.flatnonzero(v.numpy().reshape(-1) >= threshold)
        return torch.from_numpy(found) if found.size else None
    found = (v.view(-1) >= threshold).nonzero().squeeze(1)
    return found if found.numel() else None


class RefractoryGate:
    r"""The refractory gate of ``M·N`` neurons as a state: ``g = 1`` unless the neuron spiked
    at a step ``s`` with ``step ≤ s + n_ref`` (then ``g = 0``); equal to
    ``clamp(step − n_ref − s_last, 0, 1)`` at every step.

    :meth:`close` marks the spikes of step ``s``; :meth:`open_due` reopens, before the
    membrane update of step ``step``, the neurons whose last spike was at ``step − n_ref − 1``
    (a neuron made to spike again while refractory keeps its gate closed until its own time).
    """

    def __init__(self, shape: tuple[int, int], n_ref: int, *, device, dtype) -> None:
        self.gate = torch.ones(shape, device=device, dtype=dtype)
        self.n_ref = n_ref
        self._closed: deque[tuple[int, Tensor]] = deque()

    def open_due(self, step: int, neg_last: Tensor) -> None:
        """Reopen the gates due at ``step`` (``neg_last``: ``−s_last`` per neuron)."""
        due = step - self.n_ref - 1
        while self._closed and self._closed[0][0] <= due:
            spike_step, idx = self._closed.popleft()
            # open (1) unless the neuron spiked again since (then it stays closed, 0)
            still_last = neg_last.view(-1).index_select(0, idx) == -float(spike_step)
            self.gate.view(-1).index_copy_(0, idx, still_last.to(self.gate.dtype))

    def close(self, step: int, idx: Tensor) -> None:
        """Close the gates of the neurons ``idx`` (flat) that spiked at ``step``."""
        self.gate.view(-1).index_fill_(0, idx, 0.0)
        self._closed.append((step, idx))


def propagate(spikes: Tensor | None, target: Tensor, jump: Tensor, inv_scale: Tensor, *,
              v: Tensor, neg_last: Tensor, counts: Tensor, step: int, v_reset: float,
              trial0: int, gate: RefractoryGate | None = None) -> Tensor | None:
    r"""Apply one step's spikes: reset ``v``, mark the last spike step, count them, and add
    the synaptic jumps ``target_m += (1/λ_m) Σ_j S_mj · jump_j`` (the IPSC rise and the
    ``r`` rise, ``(M, 2N)``).

    * events (``spikes``: the flat indices of :func:`spiking_indices`, or None): the ``K``
      rows ``jump_j/λ_m`` ``(K, 2N)`` are gathered (``index_select``) and added with
      ``index_add_`` (in ascending ``(m, j)``) — ``O(K·2N)`` work; ``gate`` is closed.
    * dense (``spikes``: the ``(M, N)`` bool matrix ``S``): ``target += (S/λ) @ jump`` —
      ``O(M·N·2N)`` and no data-dependent shape.

    Returns trial 0's spikes as flat indices into ``(L, N)`` (those below ``trial0``), or None
    when none are wanted or none fired.
    """
    if spikes is not None and spikes.dtype == torch.bool:
        v.masked_fill_(spikes, v_reset)
        neg_last.masked_fill_(spikes, -float(step))
        counts.add_(spikes.view(-1))
        target.addmm_(spikes.to(target.dtype).mul_(inv_scale[:, None]), jump)
        if not trial0:
            return None
        first = spikes.view(-1)[:trial0].nonzero().squeeze(1)
        return first if first.numel() else None
    if spikes is None or not spikes.numel():
        return None
    idx = spikes
    n = v.shape[1]
    v.view(-1).index_fill_(0, idx, v_reset)
    neg_last.view(-1).index_fill_(0, idx, -float(step))
    if gate is None:
        counts[idx] += 1
    else:           # event-driven runs count a rate step's spikes at once (nrmkit.nn.lif)
        gate.close(step, idx)
    row = torch.div(idx, n, rounding_mode="floor")
    pre = idx - row * n
    # index_select, not jump[pre]: the same rows, but advanced indexing of more than a few
    # hundred rows is ~30× slower on the CPU
    rows = torch.index_select(jump, 0, pre).mul_(torch.index_select(inv_scale, 0, row)[:, None])
    target.index_add_(0, row, rows)
    if not trial0:
        return None
    return idx[idx < trial0]
