r"""Fixed-shape runs of steps replayed as one CUDA graph.

A run of ``n`` Euler steps ``x_{t+1} = F(x_t, u)`` of a small network launches about ten
kernels per step; on a GPU each launch costs the host a few microseconds, more than the
arithmetic of a step of a few hundred neurons, so the engine is bound by launches rather
than by the device's memory bandwidth. A CUDA graph records the kernels of the ``n`` steps
once and replays them with one call: the device runs the same kernels on the same shapes
and addresses, so the numbers are those of the eager loop, bit for bit, and only the
host's launch work goes.

:class:`StepRunner` runs ``n_steps`` applications of a step ``(x_1, …, x_m) → (x'_1, …,
x'_m)`` (tensors of fixed shapes, e.g. the state, or the state and the tangent basis).
Where it may use a graph (CUDA tensors, nothing requiring a gradient, outputs shaped like
the inputs, the step's other inputs — weights, drive — the same tensors at every call) its
first call runs eagerly, then records the same ``n`` steps on a side stream (after one
untimed eager run there, so that libraries create their handles and workspaces outside the
recording) and replays the recording once from the first call's inputs: only if the replay
reproduces the eager result bit for bit (NaN matching NaN) does it keep the graph; otherwise,
or where recording fails (a step that synchronises with the host, an operation that cannot
be recorded, any other error while recording), it warns once and stays eager. Later calls
copy their inputs into the graph's input buffers and replay. On a CPU it is the plain loop.
The recording itself is a :class:`GraphRecorder` (:data:`CUDA_GRAPHS`), so that the
runner's buffers, checks and fallbacks can be exercised with another recorder
(one that replays by rerunning the recorded steps works on any device).

Graph memory: the recording holds the temporaries of its ``n`` steps in a private pool
(the caching allocator reuses them within the recording, so a few steps' worth).

Reference: NVIDIA, *CUDA C++ Programming Guide*, "CUDA Graphs"; PyTorch
``torch.cuda.graphs`` (stream capture).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: a step: the tensors of one time step → those of the next, same shapes.
Step = Callable[..., tuple[Tensor, ...]]


def run_steps(step: Step, tensors: tuple[Tensor, ...], n_steps: int) -> tuple[Tensor, ...]:
    """``n_steps`` applications of ``step`` to ``tensors`` (eagerly)."""
    for _ in range(n_steps):
        tensors = step(*tensors)
    return tensors


@dataclass(frozen=True)
class GraphRecorder:
    """How a run of steps is recorded once and replayed: the device type it applies to and
    ``record(warm_up, body, like) → replay``, where ``warm_up()`` runs the steps once
    outside the recording (their results discarded), ``body()`` is what the recording
    captures (the steps on the input buffers, their outputs copied back into the buffers)
    and ``like`` is one of the buffers (its device). ``replay()`` reruns the captured work.
    Recording may raise; the runner then stays eager."""

    device_type: str
    record: Callable[[Callable[[], object], Callable[[], None], Tensor], Callable[[], None]]


def _record_cuda_graph(warm_up: Callable[[], object], body: Callable[[], None],
                       like: Tensor) -> Callable[[], None]:
    """Stream capture of ``body`` into a :class:`torch.cuda.CUDAGraph` on a side stream,
    after one run of ``warm_up`` there (libraries create their handles and workspaces
    outside the recording)."""
    stream = torch.cuda.Stream(device=like.device)
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        warm_up()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        body()
    torch.cuda.current_stream().wait_stream(stream)
    return graph.replay


#: the recorder the engine uses.
CUDA_GRAPHS = GraphRecorder("cuda", _record_cuda_graph)


class StepRunner:
    """``n_steps`` applications of ``step``, replayed as one CUDA graph where that gives
    the eager numbers (module docstring), else eagerly.

    Args:
        step: ``(*tensors) → tuple of tensors`` shaped like its inputs; any other tensor it
            reads (weights, a constant drive) must stay the same object, unchanged in place,
            for the runner's lifetime (a graph replays the addresses it recorded).
        n_steps: steps per call, ≥ 1.
        graphs: whether a recording may be used (ignored on other devices than the
            recorder's).
        recorder: how runs are recorded and replayed (:data:`CUDA_GRAPHS`).

    The tensors a replay returns are the recording's input buffers: the next call
    overwrites them (pass them back, or copy them to keep them).
    """

    def __init__(self, step: Step, n_steps: int, *, graphs: bool = True,
                 recorder: GraphRecorder = CUDA_GRAPHS) -> None:
        self.step = step
        self.n_steps = n_steps
        self.recorder = recorder
        self._try_graph = graphs
        self._replay: Callable[[], None] | None = None
        self._buffers: tuple[Tensor, ...] = ()

    @property
    def graphed(self) -> bool:
        """Whether calls replay a recording."""
        return self._replay is not None

    def __call__(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        if self._replay is not None:
            for buffer, tensor in zip(self._buffers, tensors, strict=True):
                if tensor is not buffer:
                    buffer.copy_(tensor)
            self._replay()
            return self._buffers
        result = run_steps(self.step, tensors, self.n_steps)
        if self._try_graph:
            self._try_graph = False
            if _recordable(tensors, result, self.recorder.device_type):
                self._replay, self._buffers = _record(self.step, tensors, self.n_steps,
                                                      result, self.recorder)
        return result


def _recordable(inputs: tuple[Tensor, ...], outputs: tuple[Tensor, ...],
                device_type: str) -> bool:
    """Tensors on the recorder's device type, nothing requiring a gradient, outputs shaped
    like the inputs."""
    return (len(inputs) == len(outputs) and all(
        a.device.type == device_type and not a.requires_grad and not b.requires_grad
        and a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
        for a, b in zip(inputs, outputs, strict=True)))


def _record(step: Step, inputs: tuple[Tensor, ...], n_steps: int,
            expected: tuple[Tensor, ...], recorder: GraphRecorder
            ) -> tuple[Callable[[], None] | None, tuple[Tensor, ...]]:
    """``(replay, input buffers)`` of ``n_steps`` steps whose replay from ``inputs`` gives
    ``expected`` bit for bit, or ``(None, ())`` with a warning."""
    try:
        buffers = tuple(tensor.clone() for tensor in inputs)
        replay = recorder.record(lambda: run_steps(step, buffers, n_steps),
                                 lambda: _steps_in_place(step, buffers, n_steps), buffers[0])
        replay()
        same = all(_identical(a, b) for a, b in zip(buffers, expected, strict=True))
    except Exception as error:  # any failure to record leaves the eager steps, which hold
        _warn(f"recording failed ({type(error).__name__}: {_first_line(error)})")
        return None, ()
    if not same:
        _warn("the replay differed from the eager steps")
        return None, ()
    return replay, buffers


def _steps_in_place(step: Step, buffers: tuple[Tensor, ...], n_steps: int) -> None:
    """``n_steps`` steps from ``buffers``, their result copied back into ``buffers``."""
    for buffer, output in zip(buffers, run_steps(step, buffers, n_steps), strict=True):
        buffer.copy_(output)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def _identical(a: Tensor, b: Tensor) -> bool:
    """Bitwise-equal values, NaN matching NaN."""
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def _warn(reason: str) -> None:
    warnings.warn(f"CUDA graph not used, the steps run eagerly: {reason}", RuntimeWarning,
                  stacklevel=4)
