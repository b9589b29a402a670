"""Runs of steps replayed as CUDA graphs give the eager numbers bit for bit, or are not used.

The CPU tests check the runs of steps the engine is cut into (warm-up runs, a varying
drive) and the runner's recording logic (buffers, the bitwise check, the fallbacks) with a
recorder that replays by rerunning the steps; the ``gpu`` tests record CUDA graphs and
compare them with the eager loop.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import pytest
import torch

from nrmkit.dynamics import lyapunov as engine
from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.step_graphs import GraphRecorder, StepRunner, run_steps
from nrmkit.nn.rate_rnn import random_rate_network

F64 = torch.float64


def _network(device="cpu", dtype=F64, n=40):
    generator = torch.Generator().manual_seed(5)
    return random_rate_network(n, [1.5, 3.0], 2, vary=("weights", "gains"),
                               activation="tanh_stretch", generator=generator, dtype=dtype,
                               device=device)


def _spectrum(model, *, cuda_graphs, drive=None, one_pass=False, tons=0.5):
    generator = torch.Generator().manual_seed(6)
    return lyapunov_spectrum(model, 3, tsim=20.0, tons=tons, ttrans=13.7, drive=drive,
                             generator=generator, one_pass=one_pass, cuda_graphs=cuda_graphs)


def _assert_identical(first, second):
    for name in ("exponents", "log_increments", "state", "basis"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name


class _Spy(StepRunner):
    """A :class:`StepRunner` that remembers its instances."""

    instances: ClassVar[list[StepRunner]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Spy.instances.append(self)


@pytest.fixture
def spy(monkeypatch):
    _Spy.instances = []
    monkeypatch.setattr(engine, "StepRunner", _Spy)
    return _Spy.instances


def test_warm_up_in_runs_equals_the_step_loop():
    """137 steps = two runs of 50 + 37 steps: the state of 137 plain steps, bitwise."""
    model = _network()
    state = model.initial_state(torch.Generator().manual_seed(1))
    expected = state
    with torch.no_grad():
        for _ in range(137):
            expected = model.step(expected)
        warmed = engine._warm_up(model, state, 137, None, engine._Reporter(None, 137))
    assert engine.WARM_UP_RUN == 50
    assert torch.equal(warmed, expected)


def test_drive_function_and_constant_drive_give_the_same_spectrum():
    """A drive given as a function of the step index runs step by step; as one tensor, in
    runs of steps: the same numbers."""
    model = _network()
    drive = 0.1 * torch.randn((*model.batch_shape, 40), generator=torch.Generator()
                              .manual_seed(2), dtype=F64)
    _assert_identical(_spectrum(model, cuda_graphs=True, drive=drive),
                      _spectrum(model, cuda_graphs=True, drive=lambda _index: drive))


def test_cpu_runs_never_record(spy):
    model = _network()
    _assert_identical(_spectrum(model, cuda_graphs=True), _spectrum(model, cuda_graphs=False))
    assert spy and not any(runner.graphed for runner in spy)


def test_runner_equals_the_loop_on_cpu():
    step = lambda x, y: (0.5 * x + y, y.sin())  # noqa: E731
    x, y = torch.randn(3, dtype=F64), torch.randn(3, dtype=F64)
    runner = StepRunner(step, 4)
    assert all(torch.equal(a, b) for a, b in zip(runner(x, y), run_steps(step, (x, y), 4),
                                                  strict=True))


# -- CUDA -------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("one_pass", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("tons", [0.5, "auto"])
def test_graphed_engine_equals_eager_bitwise(spy, one_pass, dtype, tons):
    model = _network("cuda", dtype)
    drive = torch.full((*model.batch_shape, 40), 0.05, dtype=dtype, device="cuda")
    graphed = _spectrum(model, cuda_graphs=True, drive=drive, one_pass=one_pass, tons=tons)
    assert any(runner.graphed for runner in spy)
    _assert_identical(graphed, _spectrum(model, cuda_graphs=False, drive=drive,
                                         one_pass=one_pass, tons=tons))


@pytest.mark.gpu
def test_graphed_runner_continues_the_trajectory():
    weight = torch.randn(30, 30, dtype=F64, device="cuda") / 30 ** 0.5

    def step(x):
        return (0.9 * x + 0.1 * torch.tanh(x @ weight.T),)

    x = torch.randn(4, 30, dtype=F64, device="cuda")
    runner = StepRunner(step, 7)
    state, expected = (x,), (x,)
    for _ in range(5):
        state = runner(*state)
        expected = run_steps(step, expected, 7)
        assert torch.equal(state[0], expected[0])
    assert runner.graphed


@pytest.mark.gpu
def test_a_replay_that_differs_is_not_used():
    """A step that reads a changing Python number records its value once: the replay
    differs from the eager steps, so the runner warns and stays eager."""
    count = [0]

    def step(x):
        count[0] += 1
        return (x + count[0],)

    x = torch.zeros(3, device="cuda")
    runner = StepRunner(step, 2)
    with pytest.warns(RuntimeWarning, match="replay differed"):
        runner(x)
    assert not runner.graphed
    before = count[0]
    (result,) = runner(x)
    assert torch.equal(result, torch.full((3,), 2.0 * before + 3, device="cuda"))


@pytest.mark.gpu
def test_a_step_that_cannot_be_recorded_stays_eager():
    """Reading a value on the host synchronises, which a recording forbids."""
    def step(x):
        return (x * float(x.abs().max() + 1),)

    x = torch.ones(3, device="cuda")
    runner = StepRunner(step, 2)
    with pytest.warns(RuntimeWarning, match="recording failed"):
        (first,) = runner(x)
    assert not runner.graphed
    assert torch.equal(first, torch.full((3,), 6.0, device="cuda"))
    assert torch.equal(runner(x)[0], first)


# -- the runner's recording logic on a CPU -----------------------------------------------------
def _rerun(warm_up, body, like):
    """A recorder whose replay reruns the recorded steps (like a graph, it reads the input
    buffers and writes its outputs back into them)."""
    warm_up()
    return body


RERUN = GraphRecorder("cpu", _rerun)


def _tanh_step(weight):
    return lambda x, q: (0.9 * x + 0.1 * torch.tanh(x @ weight.T), 0.5 * q + x.sum())


def test_a_recorded_runner_continues_the_trajectory_bitwise():
    """After the first (eager) call every call replays from the buffers: passing back the
    returned buffers, or fresh tensors, continues the eager trajectory bit for bit."""
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(30, 30, generator=generator, dtype=F64) / 30 ** 0.5
    step = _tanh_step(weight)
    start = (torch.randn(4, 30, generator=generator, dtype=F64), torch.zeros(2, dtype=F64))
    runner = StepRunner(step, 7, recorder=RERUN)
    state, expected = start, start
    for call in range(5):
        state = runner(*state) if call != 3 else runner(*(t.clone() for t in state))
        expected = run_steps(step, expected, 7)
        assert all(torch.equal(a, b) for a, b in zip(state, expected, strict=True))
        assert runner.graphed
    assert state[0] is runner(*start)[0]  # a replay returns the buffers
    assert torch.equal(state[0], run_steps(step, start, 7)[0])  # from the new inputs


def test_a_recorded_engine_equals_the_eager_engine():
    """The engine's runs of steps (warm-up, between orthonormalisations) through a recorder
    give the eager spectrum bit for bit, and the recordings are used."""
    model = _network()

    class Rerun(StepRunner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, recorder=RERUN, **kwargs)
            runners.append(self)

    runners: list[StepRunner] = []
    eager = _spectrum(model, cuda_graphs=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "StepRunner", Rerun)
        recorded = _spectrum(model, cuda_graphs=True)
    assert any(runner.graphed for runner in runners)
    _assert_identical(recorded, eager)


def test_a_replay_that_differs_stays_eager_on_cpu():
    """A step that reads a changing Python number: rerunning it differs from the eager
    result, so the runner warns, keeps no recording and goes on eagerly."""
    count = [0]

    def step(x):
        count[0] += 1
        return (x + count[0],)

    runner = StepRunner(step, 2, recorder=RERUN)
    with pytest.warns(RuntimeWarning, match="replay differed"):
        (first,) = runner(torch.zeros(3))
    assert torch.equal(first, torch.full((3,), 3.0)) and not runner.graphed
    before = count[0]
    (result,) = runner(torch.zeros(3))
    assert torch.equal(result, torch.full((3,), 2.0 * before + 3))


def test_a_recording_that_fails_stays_eager_on_cpu():
    def failing(warm_up, body, like):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    recorder = GraphRecorder("cpu", failing)
    runner = StepRunner(lambda x: (2 * x,), 3, recorder=recorder)
    with pytest.warns(RuntimeWarning, match=r"recording failed \(RuntimeError: operation not "
                                            r"permitted when stream is capturing\)"):
        (first,) = runner(torch.ones(2))
    assert not runner.graphed and torch.equal(first, torch.full((2,), 8.0))
    assert torch.equal(runner(first)[0], torch.full((2,), 64.0))


def test_gradients_or_other_devices_are_not_recorded():
    calls = []
    recorder = GraphRecorder("cpu", lambda *args: calls.append(args))
    x = torch.ones(2, requires_grad=True)
    runner = StepRunner(lambda x: (2 * x,), 2, recorder=recorder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even an attempt that fails
        runner(x)
        cuda_runner = StepRunner(lambda x: (2 * x,), 2)
        cuda_runner(torch.ones(2))  # the CUDA recorder, CPU tensors
        StepRunner(lambda x: (x[:1],), 1, recorder=recorder)(torch.ones(2))  # shape changes
    assert not calls and not runner.graphed and not cuda_runner.graphed
