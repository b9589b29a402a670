r"""Reused ``(T, B, H)`` buffers of the fused sequence on a CPU.

A psMNIST update writes three fresh ``(T, B, H)`` tensors (784 × 100 × 400 float32: 125 MB
each): the pre-activations and states of the forward pass, the ``δ`` of the backward pass
(:mod:`nrmkit.nn.fused_sequence`). A fresh tensor that large is mapped from the operating
system page by page at its first write (page faults and zeroing): on the 2-core machine
30–120 ms per buffer, time that more threads do not shorten. :func:`sequence_buffer` hands
out an uninitialised tensor, reusing the memory of one that nobody else holds any more.
The pool keeps a private alias of each buffer and hands out a fresh tensor on its storage
(``detach()``: no copy); the memory is free again when the storage is referenced by the
pool's alias alone — no tensor handed out, view of one, value saved for a backward pass or
returned gradient shares it — so nothing a caller can still see is ever overwritten.

The pool is per thread and keeps at most :data:`MAX_BUFFERS` tensors, all of one shape,
dtype and device: asking for another shape first lets go of the free ones, so an
evaluation at another batch size does not add to the memory of training (what is still in
use is freed as usual once its last user drops it); the sequence trainer's ``evaluate``
(:mod:`nrmkit.training.sequence`) lets go of the pool when it ends, so that an evaluation's
large buffers are not carried into whatever runs next. CUDA tensors are not pooled (the
caching allocator already reuses device memory), nor anything asked for under
``torch.inference_mode`` (an inference tensor cannot be written outside it), nor anything
where this PyTorch build does not expose storage reference counts.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

#: the most buffers a thread's pool keeps (the fused sequence uses three at a time).
MAX_BUFFERS = 3

_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)


def _storage_users(tensor: Tensor) -> int:
    """References to ``tensor``'s storage, counted the same way every time."""
    return _USE_COUNT(tensor.untyped_storage()._cdata)


#: the count of a tensor whose storage nothing else refers to (measured, not assumed).
_ALONE = None if _USE_COUNT is None else _storage_users(torch.empty(1))


class _Pool(threading.local):
    def __init__(self) -> None:
        self.key: tuple | None = None
        self.buffers: list[Tensor] = []


_POOL = _Pool()


def sequence_buffer(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device; on a CPU one
    of the pool's free tensors where there is one (module docstring)."""
    if _ALONE is None or like.device.type != "cpu" or torch.is_inference_mode_enabled():
        return like.new_empty(shape)    # (an inference tensor must not serve outside it)
    key = (tuple(shape), like.dtype, like.device)
    if key != _POOL.key:
        _POOL.key, _POOL.buffers = key, []
    for alias in _POOL.buffers:
        if _storage_users(alias) == _ALONE:
            return alias.detach()
    alias = like.new_empty(shape)
    if len(_POOL.buffers) < MAX_BUFFERS:
        _POOL.buffers.append(alias)
    return alias.detach()


def release_sequence_buffers() -> None:
    """Let go of this thread's pool (buffers still in use live on with their users)."""
    _POOL.key, _POOL.buffers = None, []
