"""The compiled tanh kernel (nrmkit.nn.native, nrmkit.nn.tangent_native): its tanh, one step
against the Euler map by hand, runs against the PyTorch one-pass steps and against exact
exponents, a network's numbers independent of its batch and of the threads, and the fall-back
to PyTorch operations wherever the kernel does not apply."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from nrmkit.core.errors import DivergenceError
from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.nn import native, tangent_native
from nrmkit.nn.rate_rnn import random_rate_network
from nrmkit.nn.tangent_native import NativeTanhRuns

pytestmark = pytest.mark.skipif(native.library() is None,
                                reason=f"compiled kernel unavailable: "
                                       f"{native.unavailable_reason()}")

DT = 0.1
WIDEST = native.instruction_set()


@pytest.fixture(params=sorted(native.INSTRUCTION_SETS, reverse=True),
                ids=lambda isa: native.INSTRUCTION_SETS[isa])
def instruction_set(request, monkeypatch):
    """Each instruction set this processor runs, chosen through ``NRMKIT_NATIVE``."""
    if request.param > WIDEST:
        pytest.skip(f"the processor does not run {native.INSTRUCTION_SETS[request.param]}")
    if request.param < WIDEST:
        monkeypatch.setenv(native.NATIVE_ENV, "avx2")
    assert native.instruction_set() == request.param
    return request.param


def _network(n: int, couplings: list[float], samples: int = 1, seed: int = 0, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    model = random_rate_network(n, couplings, samples, shared_matrix=True, dt=DT,
                                generator=generator, **kwargs)
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, 1, n, generator=generator, dtype=state.dtype)
    return model, state, basis


def test_compiled_tanh_is_within_two_ulp_of_the_exact_value(instruction_set):
    x = np.concatenate([np.linspace(-25, 25, 400_001), np.geomspace(1e-38, 1.2, 20_000),
                        -np.geomspace(1e-38, 1.2, 20_000), [0.549999, 0.55, 0.550001, 1e-45]])
    x = x.astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=np.float32)
    values = np.empty_like(x)
    native.library().nrm_tanh(x.ctypes.data, values.ctypes.data, x.size, instruction_set)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(values - exact) / ulp) <= 2.0
    out = np.empty_like(special)
    native.library().nrm_tanh(special.ctypes.data, out.ctypes.data, special.size,
                              instruction_set)
    assert out[0] == 0 and not np.signbit(out[0]) and np.signbit(out[1])
    assert out[2] == 1 and out[3] == -1 and np.isnan(out[4])


def test_one_step_and_one_interval_equal_the_euler_map_by_hand(instruction_set):
    """N = 37 (a full tile and a masked one), three couplings: h' and the normalised q' with
    log‖q'‖, against float64 maths on the same float32 inputs."""
    model, state, basis = _network(37, [0.5, 1.7, 3.0], seed=1)
    runs = model.native_runs(1)
    assert runs.instruction_set == instruction_set
    weight = model.weight.detach().double()[0]
    eps = DT * model.coupling.detach().double()[0][:, None]
    h, q = state.double()[0], basis.double()[0, :, 0]
    tanh = torch.tanh(h)
    expected_state = (1 - DT) * h + eps * (tanh @ weight.T)
    grown = (1 - DT) * q + eps * (((1 - tanh ** 2) * q) @ weight.T)
    norm = grown.norm(dim=-1, keepdim=True)

    warmed = runs.warm_up(state, 1)
    next_state, vector, logs = runs.accumulate(state, basis, 1, 1)
    for computed in (warmed, next_state):
        torch.testing.assert_close(computed[0].double(), expected_state, rtol=0, atol=2e-6)
    torch.testing.assert_close(vector[0, :, 0].double(), grown / norm, rtol=0, atol=2e-6)
    torch.testing.assert_close(logs[0, 0, :, 0], norm[:, 0].log(), rtol=0, atol=2e-6)
    assert torch.equal(state, _network(37, [0.5, 1.7, 3.0], seed=1)[1])  # inputs untouched


def test_runs_follow_the_pytorch_one_pass_steps_to_round_off(instruction_set):
    """Seven couplings from stable to chaotic, N = 100, 30 warm-up steps and 10 intervals:
    the kernel and the PyTorch one-pass steps agree to float32 round-off."""
    model, state, basis = _network(100, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0], seed=2)
    kwargs = {"tsim": 1.0, "tons": 0.2, "ttrans": 3.0, "tbasis": 0.0, "state": state,
              "basis": basis, "one_pass": True}
    compiled = lyapunov_spectrum(model, 1, **kwargs)
    plain = lyapunov_spectrum(model, 1, native=False, **kwargs)
    torch.testing.assert_close(compiled.state, plain.state, rtol=0, atol=2e-5)
    torch.testing.assert_close(compiled.basis, plain.basis, rtol=0, atol=2e-5)
    torch.testing.assert_close(compiled.log_increments, plain.log_increments, rtol=0,
                               atol=2e-5)
    assert not torch.equal(compiled.state, plain.state)  # the kernel did run


def test_exponent_of_the_fixed_point_is_exact(instruction_set):
    """h = 0 stays the fixed point of tanh networks; the tangent map there is (1 − Δt)I +
    Δt g W, with W built with a dominant eigenvalue 0.9 (others ≤ 0.2): λ = ln(1 − Δt + Δt
    g 0.9)/Δt."""
    n = 64
    generator = torch.Generator().manual_seed(3)
    orthogonal, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    eigenvalues = torch.cat([torch.tensor([0.9], dtype=torch.float64),
                             torch.linspace(-0.2, 0.2, n - 1, dtype=torch.float64)])
    couplings = [0.3, 0.8, 1.05]
    model = random_rate_network(n, couplings, 1, dt=DT, generator=generator)
    with torch.no_grad():
        model.weight.copy_((orthogonal * eigenvalues) @ orthogonal.T)
    state = torch.zeros(1, len(couplings), n)
    basis = random_basis(model.batch_shape, 1, n, generator=generator)
    result = lyapunov_spectrum(model, 1, tsim=60.0, tons=0.5, ttrans=0.0, tbasis=40.0,
                               state=state, basis=basis, one_pass=True)
    expected = [math.log(1 - DT + DT * g * 0.9) / DT for g in couplings]
    torch.testing.assert_close(result.exponents[0, :, 0].double(),
                               torch.tensor(expected, dtype=torch.float64), rtol=0, atol=2e-5)
    assert model.native_runs(1) is not None


def test_a_networks_numbers_do_not_depend_on_its_batch_or_the_threads(instruction_set,
                                                                        monkeypatch):
    """Nine couplings (two kernel groups) on two matrices, in kernel calls of 7 steps,
    against each coupling's network alone and one thread: bit for bit the same state,
    vector and logs (the exponents sum the logs over a differently shaped batch, where
    PyTorch may add in another order)."""
    monkeypatch.setattr(tangent_native, "CALL_ENTRIES", 7 * 70 ** 2)
    couplings = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    model, state, basis = _network(70, couplings, samples=2, seed=4)
    kwargs = {"tsim": 4.0, "tons": 0.3, "ttrans": 2.0, "one_pass": True}
    batch = lyapunov_spectrum(model, 1, state=state, basis=basis, **kwargs)
    threads = torch.get_num_threads()
    for s, g in [(0, 0), (1, 4), (1, 8)]:
        alone = random_rate_network(70, [couplings[g]], 1, dt=DT)
        with torch.no_grad():
            alone.weight.copy_(model.weight[s:s + 1])
        try:
            torch.set_num_threads(1 if g else threads)
            single = lyapunov_spectrum(alone, 1, state=state[s:s + 1, g:g + 1],
                                       basis=basis[s:s + 1, g:g + 1], **kwargs)
        finally:
            torch.set_num_threads(threads)
        assert torch.equal(single.log_increments[:, 0, 0], batch.log_increments[:, s, g])
        assert torch.equal(single.state[0, 0], batch.state[s, g])
        assert torch.equal(single.basis[0, 0], batch.basis[s, g])


def test_spectrum_agrees_with_the_pytorch_engine_within_its_standard_error(instruction_set):
    model, state, basis = _network(200, [0.5, 1.5, 3.0], seed=5)
    kwargs = {"tsim": 100.0, "tons": 0.2, "ttrans": 20.0, "state": state, "basis": basis}
    compiled = lyapunov_spectrum(model, 1, one_pass=True, **kwargs)
    plain = lyapunov_spectrum(model, 1, **kwargs)
    difference = (compiled.exponents - plain.exponents).abs()[0, :, 0]
    error = torch.maximum(compiled.standard_error, plain.standard_error)[0, :, 0]
    assert difference[0] < 1e-5  # a stable network: both converge to its fixed point
    assert (difference[1:] < 4 * error[1:]).all(), (difference, error)


def test_the_kernel_applies_only_where_its_maths_holds(monkeypatch):
    model, state, basis = _network(40, [1.0, 2.0])
    assert model.native_runs(1, state, basis) is not None
    assert model.native_runs(2) is None
    assert model.native_runs(1, state.clone().requires_grad_()) is None
    assert model.native_runs(1, state[:, :1]) is None  # a broadcast state
    assert model.native_runs(1, state, basis.expand(-1, -1, 2, -1)) is None
    assert model.native_runs(1, state.double()) is None
    assert _network(40, [1.0], activation="tanh_pos")[0].native_runs(1) is None
    assert _network(40, [1.0], dtype=torch.float64)[0].native_runs(1) is None

    class Shifted(type(model)):
        def step(self, state, drive=None):
            return super().step(state, drive) + 1.0

    shifted = Shifted(model.weight.detach(), coupling=model.coupling, dt=DT)
    assert shifted.native_runs(1) is None
    with pytest.raises(ValueError, match="shape"):
        model.native_runs(1).accumulate(state[:, :1], basis, 1, 1)
    for value in ("0", "off", "False"):
        monkeypatch.setenv(native.NATIVE_ENV, value)
        assert model.native_runs(1) is None
        assert native.unavailable_reason() == f"turned off by {native.NATIVE_ENV}={value}"
        assert native.describe().startswith("PyTorch operations")


def test_a_broadcast_state_runs_through_the_pytorch_steps():
    model, state, basis = _network(40, [1.0, 2.0], samples=2)
    kwargs = {"tsim": 1.0, "tons": 0.2, "ttrans": 0.5, "state": state[:1, :1], "basis": basis}
    compiled = lyapunov_spectrum(model, 1, one_pass=True, **kwargs)
    plain = lyapunov_spectrum(model, 1, one_pass=True, native=False, **kwargs)
    assert torch.equal(compiled.exponents, plain.exponents)


def test_threads_are_capped_by_the_work():
    assert tangent_native.kernel_threads(1) == 1
    assert tangent_native.kernel_threads(3) == 1
    assert 1 <= tangent_native.kernel_threads(10**6) <= tangent_native.MAX_THREADS


def test_a_cached_library_others_can_write_is_not_loaded(tmp_path, monkeypatch):
    """A build another user could have replaced (group-writable here) is left alone: the
    process compiles a private copy, which works."""
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    native._load.cache_clear()
    try:
        assert native.library() is not None
        (cached,) = tmp_path.glob("tanh_ons-*.so")
        cached.unlink()  # a new file: the loaded one stays mapped as it was
        cached.write_bytes(b"not a library")
        cached.chmod(0o775)
        native._load.cache_clear()
        assert native.library() is not None
        assert native._load()[2] == "a private build for this process"
        assert cached.read_bytes() == b"not a library"
    finally:
        native._load.cache_clear()


def test_a_missing_compiler_leaves_the_pytorch_steps(tmp_path, monkeypatch):
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    native._load.cache_clear()
    try:
        assert native.library() is None
        assert "no-such-compiler" in native.unavailable_reason()
        model, state, basis = _network(30, [1.0, 2.0])
        result = lyapunov_spectrum(model, 1, tsim=2.0, tons=0.2, ttrans=1.0, state=state,
                                   basis=basis, one_pass=True)
        assert torch.isfinite(result.exponents).all()
        assert not list((tmp_path / "cache").glob("*.so"))
    finally:
        native._load.cache_clear()


def test_processes_compiling_at_once_share_one_cached_library(tmp_path):
    script = ("from nrmkit.nn import native; import sys; "
              "sys.exit(0 if native.library() is not None else 1)")
    env = {**__import__("os").environ, native.CACHE_ENV: str(tmp_path)}
    processes = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(3)]
    assert [process.wait(timeout=300) for process in processes] == [0, 0, 0]
    assert len(list(tmp_path.glob("tanh_ons-*.so"))) == 1
    assert not list(tmp_path.glob(".*"))  # no partial files left


def test_a_non_finite_state_is_a_divergence(instruction_set):
    model, state, basis = _network(40, [1.0, 2.0])
    state[0, 1, 3] = float("nan")
    with pytest.raises(DivergenceError):
        lyapunov_spectrum(model, 1, tsim=1.0, tons=0.2, ttrans=0.5, state=state, basis=basis,
                          one_pass=True)


def test_the_instruction_sets_agree_to_round_off():
    if WIDEST < 2:
        pytest.skip("needs a processor that runs both instruction sets")
    model, state, basis = _network(90, [0.5, 1.5, 3.0], seed=6)
    wide = model.native_runs(1).accumulate(state, basis, 2, 10)
    narrow = NativeTanhRuns(native.library(), model.weight, DT * model.coupling, DT, 1)
    narrow = narrow.accumulate(state, basis, 2, 10)
    for a, b in zip(wide, narrow, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
