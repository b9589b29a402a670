"""The RNN nonlinearities modrelu and sigmoid and the ``normal`` initialiser of the published
gamma code: values, slopes against autograd, the tangent map, and smnist runs with each."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.registry import INITIALIZERS, NONLINEARITIES, WORKFLOWS
from nrmkit.nn.recurrent import RNNCell


@pytest.mark.parametrize("name", ["modrelu", "sigmoid"])
def test_slope_equals_autograd(name, generator):
    module = NONLINEARITIES.get(name)(32, generator=generator).double()
    a = torch.randn(7, 32, dtype=torch.float64, generator=generator)
    a[0, :4] = 0.0                        # sign's kink: autograd gives 0 there
    if name == "modrelu":
        with torch.no_grad():
            module.bias[:8] = -0.5        # a dead zone |a| < 0.5
    a.requires_grad_(True)
    (grad,) = torch.autograd.grad(module(a).sum(), a)
    torch.testing.assert_close(module.slope(a.detach()), grad, rtol=0, atol=1e-12)


def test_modrelu_value_and_learned_bias(generator):
    module = NONLINEARITIES.get("modrelu")(1000, generator=generator)
    bias = module.bias.detach()
    assert isinstance(module.bias, torch.nn.Parameter) and bias.shape == (1000,)
    assert float(bias.abs().max()) <= 0.01 and float(bias.std()) == pytest.approx(
        0.02 / math.sqrt(12), rel=0.1)                     # U(−0.01, 0.01)
    x = torch.tensor([[-1.0, -0.2, 0.0, 0.1, 0.5]])
    module5 = NONLINEARITIES.get("modrelu")(5)
    with torch.no_grad():
        module5.bias.fill_(-0.3)
    torch.testing.assert_close(module5(x), torch.tensor([[-0.7, 0.0, 0.0, 0.0, 0.2]]))


def test_sigmoid_value():
    module = NONLINEARITIES.get("sigmoid")(3)
    x = torch.tensor([0.0, 2.0, -2.0])
    torch.testing.assert_close(module(x), 1 / (1 + torch.exp(-x)))
    assert not list(module.parameters())


@pytest.mark.parametrize("name", ["modrelu", "sigmoid"])
def test_rnn_tangent_map_equals_jacobian(name, generator):
    torch.manual_seed(0)
    cell = RNNCell(3, 12, nonlin=name, rinit="normal", iinit="normal",
                   generator=generator).double()
    x = torch.randn(2, 3, dtype=torch.float64, generator=generator)
    h = torch.randn(2, 12, dtype=torch.float64, generator=generator)
    vectors = torch.randn(2, 4, 12, dtype=torch.float64, generator=generator)
    (pushed,) = cell.tangent(x, (h,), (vectors,))
    for b in range(2):
        jac = torch.autograd.functional.jacobian(lambda v, b=b: cell(x[b:b + 1], (v,))[0],
                                                 h[b:b + 1]).reshape(12, 12)
        torch.testing.assert_close(pushed[b], vectors[b] @ jac.T)   # rows: vectors


def test_normal_initialiser_has_std_one_over_sqrt_rows(generator):
    matrix = INITIALIZERS.get("normal")(400, 100, generator=generator)
    assert matrix.shape == (400, 100)
    assert abs(float(matrix.mean())) < 0.003
    assert float(matrix.std()) == pytest.approx(1 / 20, rel=0.02)


@pytest.mark.parametrize("args", [["--nonlin", "modrelu"], ["--nonlin", "sigmoid"],
                                  ["--rinit", "normal", "--iinit", "normal"]])
def test_smnist_runs_with_each(args, tmp_path):
    out = tmp_path / "run"
    done = CliRunner().invoke(WORKFLOWS.get("smnist"), [
        *args, "--nhid", "8", "--batch", "128", "--lr", "3e-3", "--input", "rows",
        "--epochs", "1", "--no-fractional_order", "--lyapunov", "2", "--lyapunov_steps", "20",
        "--lyapunov_samples", "2", "--quiet", "--output-dir", str(out)])
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "results.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    model = summary["model"]
    assert model["nonlin"] == (args[1] if args[0] == "--nonlin" else "gamma2")
    assert model["rinit"] == ("normal" if "normal" in args else "henaff")
    assert len(summary["lyapunov"]["autonomous"]["mean"]) == 2
