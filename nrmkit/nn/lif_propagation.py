"""Spike propagation of the batched LIF networks of :mod:`nrmkit.nn.lif`: event-driven (only
the jump rows of the neurons that spiked) or dense (the spike matrix times the jumps).

Reference: Kim, Li & Sejnowski, PNAS 116, 22811 (2019) (the column sum of the weights of the
neurons that spiked). This module does not print, write files or hold global state.
"""

from __future__ import annotations

import torch
from torch import Tensor


def propagate(spk: Tensor, target: Tensor, jump: Tensor, inv_scale: Tensor, *, dense: bool,
              v: Tensor, neg_last: Tensor, counts: Tensor, step: int, v_reset: float,
              trial0: int) -> Tensor | None:
    r"""Apply one step's spikes ``S`` ``(M, N)`` bool: reset ``v``, mark the last spike step,
    count them, and add the synaptic jumps ``target_m += (1/λ_m) Σ_j S_mj · jump_j`` (the
    IPSC rise and the ``r`` rise, ``(M, 2N)``).

    * events: the ``K`` spiking pairs ``(m, j)`` from ``nonzero``; the rows ``jump_j/λ_m``
      ``(K, 2N)`` are gathered (``index_select``) and added with ``index_add_`` (in
      ascending ``(m, j)``) —
      ``O(K·2N)`` work, ``K ≈ M·N·ν·dt`` (≈ 0.05 % of ``M·N`` at 10 Hz, dt = 0.05 ms).
    * dense: ``target += (S/λ) @ jump`` — ``O(M·N·2N)`` and no data-dependent shape.

    Returns trial 0's spikes as flat indices into ``(L, N)`` (those below ``trial0``), or None
    when none are wanted or none fired.
    """
    if dense:
        v.masked_fill_(spk, v_reset)
        neg_last.masked_fill_(spk, -float(step))
        counts.add_(spk.view(-1))
        target.addmm_(spk.to(target.dtype).mul_(inv_scale[:, None]), jump)
        if not trial0:
            return None
        first = spk.view(-1)[:trial0].nonzero().squeeze(1)
        return first if first.numel() else None
    idx = spk.view(-1).nonzero().squeeze(1)
    if not idx.numel():
        return None
    n = spk.shape[1]
    v.view(-1).index_fill_(0, idx, v_reset)
    neg_last.view(-1).index_fill_(0, idx, -float(step))
    counts[idx] += 1
    row = torch.div(idx, n, rounding_mode="floor")
    pre = idx - row * n
    # index_select, not jump[pre]: the same rows, but advanced indexing of more than a few
    # hundred rows is ~30× slower on the CPU
    rows = torch.index_select(jump, 0, pre).mul_(torch.index_select(inv_scale, 0, row)[:, None])
    target.index_add_(0, row, rows)
    if not trial0:
        return None
    return idx[idx < trial0]
