"""The one-pass step (state and tangent vectors in one product per step) and the promise
that a sweep's per-sample numbers do not depend on how its samples are chunked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS
from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.nn.rate_rnn import random_rate_network

F64 = torch.float64
TINY = ["--gmin", "0.5", "--gmax", "3", "--n", "40", "--m_g", "3", "--tsim", "4",
        "--ttrans", "2", "--nle", "2", "--quiet"]


def _case(seed: int, n: int = 30, k: int = 3, dtype=F64):
    generator = torch.Generator().manual_seed(seed)
    model = random_rate_network(n, [0.5, 2.0, 4.0], 2, vary=("weights", "gains", "shifts"),
                                generator=generator, dtype=dtype)
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, k, n, generator=generator, dtype=dtype)
    return model, state, basis


def test_one_pass_step_equals_the_explicit_jacobian():
    """h' from the Euler map by hand and Q' = J Q with the dense Jacobian (float64)."""
    model, state, vectors = _case(1)
    drive = torch.full_like(state, 0.3)
    with torch.no_grad():
        next_state, next_vectors = model.fused_step_with_tangent(state, vectors, drive)
        value, _ = model.activation_and_slope(state)
        weight = model.weight[:, None] * model.coupling[..., None, None]
        expected = ((1 - model.dt) * state + model.dt * (weight @ value[..., None])[..., 0]
                    + drive)
        jacobian = model.dense_jacobian(state)
        expected_vectors = (jacobian @ vectors.transpose(-1, -2)).transpose(-1, -2)
    torch.testing.assert_close(next_state, expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(next_vectors, expected_vectors, rtol=0, atol=1e-13)


def test_one_pass_spectrum_equals_the_two_product_engine_to_round_off():
    model, state, basis = _case(2)
    kwargs = {"tsim": 20.0, "tons": 0.5, "ttrans": 5.0, "state": state, "basis": basis}
    one = lyapunov_spectrum(model, 3, one_pass=True, **kwargs)
    two = lyapunov_spectrum(model, 3, **kwargs)
    torch.testing.assert_close(one.exponents, two.exponents, rtol=0, atol=1e-9)


def test_one_pass_falls_back_to_the_autograd_node_where_a_gradient_is_needed():
    gradients = []
    for one_pass in (True, False):
        model, state, basis = _case(3)
        state.requires_grad_()
        result = lyapunov_spectrum(model, 3, tsim=2.0, tons=0.5, ttrans=0.0, state=state,
                                   basis=basis, one_pass=one_pass)
        gradients.append(torch.autograd.grad(result.exponents.sum(), [state])[0])
    assert gradients[0].abs().sum() > 0
    assert torch.equal(gradients[0], gradients[1])


def _lambda(directory) -> np.lib.npyio.NpzFile:
    return np.load(directory / "lambda.npz")


@pytest.mark.parametrize("nle", [2, 1])
def test_per_sample_numbers_do_not_depend_on_the_chunking(tmp_path, monkeypatch, nle):
    """Samples 0–2 run serially, as array tasks of one sample each (then collected) and as
    a run of sample 0 alone: bit for bit the same exponents (float32; with one exponent
    through the compiled kernel where it is available, which config.json records)."""
    from nrmkit.cli.main import cli
    from nrmkit.nn import native

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    command = WORKFLOWS.get("transition_2_chaos")
    runner = CliRunner()
    tiny = [*TINY[:TINY.index("--nle")], "--nle", str(nle), "--quiet"]
    serial, array, alone = tmp_path / "serial", tmp_path / "array", tmp_path / "alone"
    done = runner.invoke(command, [*tiny, "--n_samples", "3", "--output-dir", str(serial)])
    assert done.exit_code == 0, done.output
    for index in range(3):
        done = runner.invoke(command, [*tiny, "--n_samples", "3", "--task_count", "3",
                                       "--task_index", str(index), "--output-dir", str(array)])
        assert done.exit_code == 0, done.output
    collected = runner.invoke(cli, ["collect", str(array), "--quiet"])
    assert collected.exit_code == 0, collected.output
    done = runner.invoke(command, [*tiny, "--n_samples", "1", "--output-dir", str(alone)])
    assert done.exit_code == 0, done.output
    reference = _lambda(serial)["exponents"]  # [g, sample, k]
    assert reference.shape == (3, 3, nle) and np.isfinite(reference).all()
    recorded = json.loads((serial / "config.json").read_text())["native_kernel"]
    assert recorded == native.describe()
    assert recorded.startswith("compiled") == (native.library() is not None)
    np.testing.assert_array_equal(_lambda(array)["exponents"], reference)
    np.testing.assert_array_equal(_lambda(alone)["exponents"][:, 0], reference[:, 0])


def test_one_pass_is_deterministic_per_sample():
    """The same sample, run twice in its own call, gives bitwise the same exponents."""
    runs = []
    for _ in range(2):
        model, state, basis = _case(4, n=50, k=2, dtype=torch.float32)
        runs.append(lyapunov_spectrum(model, 2, tsim=5.0, tons=0.5, ttrans=1.0, state=state,
                                      basis=basis, one_pass=True).exponents)
    assert torch.equal(runs[0], runs[1])


def test_packed_product_matches_bmm_per_matrix_and_is_deterministic():
    """float32 on a CPU: the packed (oneDNN) product of each matrix equals bmm to round-off,
    is the same on every call, and a batch of matrices gives each matrix's own numbers."""
    from nrmkit.nn.tangent_product import PackedWeight

    generator = torch.Generator().manual_seed(7)
    weight = torch.randn(2, 64, 64, generator=generator)
    rows = torch.randn(2, 14, 64, generator=generator)
    both = PackedWeight(weight).product(rows)
    expected = torch.bmm(rows.double(), weight.double().transpose(-1, -2))
    torch.testing.assert_close(both.double(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(both, PackedWeight(weight).product(rows))
    for s in range(2):
        alone = PackedWeight(weight[s:s + 1]).product(rows[s:s + 1])
        assert torch.equal(alone[0], both[s])


def test_float32_one_pass_steps_follow_the_model_and_a_changed_weight():
    """The packed steps (state alone in the warm-up, state and vectors after it) equal the
    model's steps to float32 round-off, and an in-place change of the weight is seen."""
    import copy

    model, state, vectors = _case(4, n=48, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(model.fused_step(state), model.step(state),
                                   rtol=1e-5, atol=1e-6)
        fused = model.fused_step_with_tangent(state, vectors)
        plain = model.step_with_tangent(state, vectors)
        for a, b in zip(fused, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        twin = copy.deepcopy(model)                  # the packed cache is not copied
        model.weight.mul_(0.5)
        torch.testing.assert_close(model.fused_step(state), model.step(state),
                                   rtol=1e-5, atol=1e-6)
        assert not torch.allclose(model.fused_step(state), twin.fused_step(state))


def test_tanh_scaled_linearization_equals_the_scaled_value_and_slope():
    from nrmkit.nn.activations import TANH

    generator = torch.Generator().manual_seed(11)
    x = 3 * torch.randn(2, 3, 40, generator=generator, dtype=F64)
    scale = torch.rand(2, 3, 1, generator=generator, dtype=F64)
    out = torch.empty_like(x)
    scaled_slope = TANH.scaled_linearize(x, 1.0, 0.0, scale, out)
    value, slope, _ = TANH.linearize(x, 1.0, 0.0)
    torch.testing.assert_close(out, scale * value, rtol=1e-15, atol=0)
    torch.testing.assert_close(scaled_slope, scale * slope, rtol=0, atol=1e-15)


def test_one_pass_steps_continue_in_place_as_from_separate_tensors():
    """A step's two outputs, passed back, are read as one tensor (one Euler operation); the
    same state and vectors held in separate tensors give the same next step, with a drive
    too, for several exponents, activations and dtypes."""
    from nrmkit.nn.tangent_product import _joint_output

    for dtype, activation in ((F64, "tanh"), (torch.float32, "tanh"),
                              (torch.float32, "tanh_pos")):
        generator = torch.Generator().manual_seed(12)
        model = random_rate_network(24, [0.5, 2.0, 4.0], 2, vary=("weights", "gains"),
                                    activation=activation, generator=generator, dtype=dtype)
        state = model.initial_state(generator)
        basis = random_basis(model.batch_shape, 3, 24, generator=generator, dtype=dtype)
        drive = torch.full_like(state, 0.1)
        with torch.no_grad():
            state, basis = model.fused_step_with_tangent(state, basis, drive)
            assert _joint_output(state, basis) is not None
            assert _joint_output(state.clone(), basis) is None
            assert _joint_output(state, basis.clone()) is None
            joint = model.fused_step_with_tangent(state, basis, drive)
            separate = model.fused_step_with_tangent(state.clone(), basis.clone(), drive)
        for a, b in zip(joint, separate, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=4 * torch.finfo(dtype).eps)


def test_joint_output_is_not_found_in_other_views_of_one_tensor():
    from nrmkit.nn.tangent_product import _joint_output

    base = torch.randn(2, 3 * 3, 5)                      # S = 2, G = 3, k = 2, N = 5
    state, vectors = base[:, :3], base[:, 3:].view(2, 3, 2, 5)
    assert _joint_output(state, vectors) is not None
    assert _joint_output(base[:, 1:4], base[:, 3:].view(2, 3, 2, 5)) is None
    wide = torch.randn(2, 10, 5)                         # one spare row: not the output
    assert _joint_output(wide[:, :3], wide[:, 3:9].view(2, 3, 2, 5)) is None
    swapped = base.view(2, 9, 5)[:, 6:]                   # the state rows after the vectors
    assert _joint_output(swapped, base[:, :6].view(2, 3, 2, 5)) is None


def test_packed_matmul_equals_the_plain_product():
    """One matrix packed for a row count: float32 (oneDNN where present) to round-off,
    float64 (``mm``) exactly, and the same on every call."""
    from nrmkit.nn.tangent_product import packed_matmul

    generator = torch.Generator().manual_seed(13)
    for dtype in (torch.float32, F64):
        weight = torch.randn(48, 40, generator=generator, dtype=dtype)
        rows = torch.randn(10, 40, generator=generator, dtype=dtype)
        times_weight = packed_matmul(weight, 10)
        product = times_weight(rows)
        assert product.shape == (10, 48)
        assert torch.equal(product, times_weight(rows))
        if dtype == F64:
            assert torch.equal(product, rows @ weight.t())
        expected = rows.double() @ weight.double().t()
        torch.testing.assert_close(product.double(), expected, rtol=1e-5, atol=1e-5)
