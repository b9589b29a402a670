"""The plotting package: importing it selects no backend and loads no pyplot; every figure
function draws a :class:`~matplotlib.figure.Figure` from small synthetic inputs, and that
figure saves to PNG and PDF."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from nrmkit import plotting


def _cases() -> dict[str, tuple[str, tuple, dict]]:
    """``{case: (function name, args, kwargs)}``: small synthetic inputs for every function."""
    rng = np.random.default_rng(0)
    g = np.array([0.5, 1.0, 1.5, 2.0])
    k, n = 5, 20
    exponents = np.sort(rng.normal(size=(4, 3, k)), axis=-1)[..., ::-1]
    tons = [0.5, 1.0]
    times = [np.linspace(0.5, 50, 100), np.linspace(1.0, 50, 50)]
    histories = [rng.normal(0.1, 0.05, (100, 3)), rng.normal(0.1, 0.05, (50, 3))]
    history = [{"train_loss": 2.0 / e, "validation_loss": 2.2 / e,
                "train_accuracy": 0.5 + 0.1 * e, "validation_accuracy": 0.45 + 0.1 * e}
               for e in range(1, 5)]
    curves = {"validation_loss": 2.0 / np.arange(1, 6)[None] * rng.uniform(1, 1.5, (3, 5)),
              "validation_accuracy": rng.uniform(0.3, 0.9, (3, 5))}
    curves["validation_loss"][2, 3:] = np.nan
    glifr_curve = {"train_loss": [1.0, 0.5, 0.3], "validation_accuracy": [0.4, 0.6, 0.7],
                   "validation_mse": [0.3, 0.2, 0.1]}
    glifr_values = {"v_th": rng.normal(size=12), "k_m": rng.uniform(0.05, 0.2, 12),
                    "a_j": rng.normal(size=(2, 12)), "r_j": np.vstack([np.ones(12), -np.ones(12)]),
                    "k_j": rng.uniform(0.01, 0.1, (2, 12))}
    inhibitory = np.arange(10) >= 8
    glifr_shapes = (("v_th", (12,)), ("k_m", (12,)), ("k_j", (2, 12)), ("r_j", (2, 12)),
                    ("a_j", (2, 12)))
    return {
        "transition_to_chaos": ("transition_to_chaos", (g, rng.normal(size=(4, 3))),
                                {"theory": np.zeros(4), "dt": 0.1, "title": "t2c"}),
        "transition_to_chaos_plain": ("transition_to_chaos", (g[:1], rng.normal(size=(1, 2))),
                                      {}),
        "spectrum_overview": ("spectrum_overview", (g, exponents, rng.uniform(0, 5, (4, 3)),
                                                    rng.uniform(0, 2, (4, 3)), n),
                              {"sum_rule": -1.0, "title": "spectrum"}),
        "spectrum_overview_log": ("spectrum_overview",
                                  (np.array([0.5, 4.0, 32.0]), exponents[:3, :1],
                                   np.ones((3, 1)), np.ones((3, 1)), n), {}),
        "convergence": ("convergence", (tons, times, histories,
                                        [rng.normal(size=(3, k)), rng.normal(size=(3, k))],
                                        [np.full((3, k), 0.01), np.full((3, k), 0.02)]),
                        {"title": "convergence"}),
        "benchmark": ("benchmark", (["reference", "broadcast", "engine"], [30.0, 3.0, 0.2]),
                      {"nle": np.array([1, 10, 100]), "engine_vs_nle": [0.1, 0.2, 1.0],
                       "reference_vs_nle": [10.0, 10.5, 12.0], "n": np.array([50, 100, 200]),
                       "engine_vs_n": [0.05, 0.1, 0.3], "reference_vs_n": [1.0, 5.0, 30.0],
                       "broadcast_vs_nle": [1.0, 1.1, 1.5], "broadcast_vs_n": None,
                       "title": "benchmark"}),
        "benchmark_bars": ("benchmark", (["reference", "engine"], [12.0, 0.3]), {}),
        "trained_spectra": ("trained_spectra", (exponents[:, 0], rng.uniform(0, 5, 4),
                                                rng.uniform(0, 2, 4), n),
                            {"sum_rule": -0.5, "title": "trained"}),
        "training_curves": ("training_curves",
                            (rng.uniform(0.1, 1.0, (6, 2)), rng.normal(size=(6, 2)),
                             rng.normal(size=(2, k)), rng.normal(size=(2, k))),
                            {"target": 0.0, "title": "training",
                             "evaluated": (np.array([1.0, 0.9]), np.array([0.2, 0.3])),
                             "baseline": np.array([0.5, 0.4])}),
        "trained_parameters_populations": ("trained_parameters",
                                           (rng.normal(1, 0.1, (2, 3)), rng.normal(0, 0.1, (2, 3))),
                                           {"populations": ["a", "b", "c"], "title": "pops"}),
        "trained_parameters_neurons": ("trained_parameters",
                                       (rng.normal(1, 0.1, (2, 30)), rng.normal(0, 0.1, (2, 30))),
                                       {}),
        "learning_curves": ("learning_curves", (history,), {"title": "smnist"}),
        "seed_learning_curves": ("seed_learning_curves", (curves, [0, 1, 2]),
                                 {"test_accuracy": {"mean": 0.8, "std": 0.05}, "title": "seeds"}),
        "shape_parameters": ("shape_parameters", (rng.uniform(1, 3, 40), rng.uniform(0, 1, 40)),
                             {"initial_n": rng.uniform(1, 3, 40), "title": "shapes"}),
        "shape_parameters_single": ("shape_parameters", (np.array([2.0]), np.array([0.5])), {}),
        "adaptation_traces": ("adaptation_traces",
                              (rng.normal(size=(30, 1)), rng.uniform(1, 3, (30, 2)),
                               rng.uniform(0, 1, (30, 2)), [3, 7]), {"title": "traces"}),
        "adaptation_traces_channels": ("adaptation_traces",
                                       (rng.normal(size=(30, 4)), rng.uniform(1, 3, (30, 1)),
                                        rng.uniform(0, 1, (30, 1)), [0]), {}),
        "sequence_lyapunov": ("sequence_lyapunov",
                              ({"trained": (np.array([0.1, -0.2, -0.5]), np.full(3, 0.02)),
                                "initial": (np.array([0.0, -0.3, -0.6]), np.full(3, 0.03))},),
                              {"title": "sequence"}),
        "fractional_orders": ("fractional_orders",
                              (rng.uniform(0, 1, 12), np.linspace(0, 1, 11),
                               rng.uniform(1e-3, 1, (12, 11))), {"title": "orders"}),
        "glifr_learning_curves": ("glifr_learning_curves", ([glifr_curve, {}, glifr_curve],),
                                  {"metric": "accuracy", "title": "glifr"}),
        "glifr_learning_curves_mse": ("glifr_learning_curves", ([glifr_curve],),
                                      {"metric": "mse"}),
        "sine_outputs": ("sine_outputs", (rng.normal(size=(40, 3)), rng.normal(size=(40, 3)),
                                          np.array([0.005, 0.01, 0.02])), {"title": "sine"}),
        "glifr_parameters": ("glifr_parameters", (glifr_values,), {"title": "parameters"}),
        "glifr_parameters_no_ascs": (
            "glifr_parameters", ({**glifr_values, **{name: np.zeros((0, 12)) for name in
                                                     ("a_j", "r_j", "k_j")}},),
            {"title": "parameters"}),
        "silencing_curve": ("silencing_curve",
                            ({"GLIFR": [[0.9, 0.7, 0.4], [0.85, 0.6, 0.5]],
                              "RNN": [[0.8, 0.5, 0.2], [0.75, 0.4, 0.3]]}, [0.0, 0.25, 0.5]),
                            {"metric": "accuracy"}),
        "fi_curves_figure": ("fi_curves_figure",
                             (np.linspace(-1, 1, 9), rng.uniform(0, 1, (6, 9)),
                              np.array([0, 1, 1, 2, 0, 2])), {"title": "f-I"}),
        "cluster_scores_figure": ("cluster_scores_figure", (range(2, 6), [3.0, 9.0, 4.0, 2.0]),
                                  {"title": "CH"}),
        "parameter_trajectories_figure": ("parameter_trajectories_figure",
                                          (np.arange(4), {name: rng.normal(size=(4, *shape))
                                                          for name, shape in glifr_shapes}, 0.05),
                                          {"title": "trajectories"}),
        "rate_task_outputs": ("rate_task_outputs",
                              (rng.normal(size=(50, 6)), np.repeat([[0.0, 1.0]], 50, axis=0)
                               .repeat(3, axis=1), np.array([0, 1, 0, 1, 0, 1]),
                               ["NoGo", "Go", "unused"]), {"title": "go-nogo"}),
        "lambda_grid": ("lambda_grid", (np.array([20.0, 30.0, 40.0]), np.array([0.5, 0.9, 0.7]),
                                        np.array([5.0, 8.0, 12.0])),
                        {"best": 30.0, "rate_accuracy": 0.95, "title": "grid"}),
        "lif_raster": ("lif_raster", (rng.uniform(0, 500, 80), rng.integers(0, 10, 80),
                                      inhibitory, rng.normal(size=100), rng.normal(size=100),
                                      rng.normal(size=100)), {"title": "raster"}),
        "lif_raster_silent": ("lif_raster", (np.zeros(0), np.zeros(0, dtype=int), inhibitory,
                                             np.zeros(20), np.zeros(20), np.zeros(20)), {}),
        "stimulation_outputs": ("stimulation_outputs",
                                (rng.normal(size=(100, 6)), rng.normal(size=(100, 6)),
                                 np.array([0, 1, 0, 1, 0, 1]), ["NoGo", "Go"], (200.0, 300.0)),
                                {"mode": "exc", "title": "stimulation"}),
        "voltage_traces": ("voltage_traces",
                           (np.arange(400) * 0.05, rng.normal(-60, 5, size=(400, 2)), [3, 8]),
                           {"stimulated": rng.normal(-60, 5, size=(400, 2)),
                            "window_ms": (5.0, 10.0), "title": "traces"}),
        "network_activity": ("network_activity",
                             (np.linspace(0, 50, 40), np.array([0, 3, 7]),
                              rng.normal(size=(40, 3)), rng.uniform(size=(40, 4)),
                              rng.uniform(size=(40, 20))), {"title": "activity"}),
        "bpc_curves": ("bpc_curves", ([{"train_bpc": 3.0, "validation_bpc": 3.1},
                                       {"train_bpc": 2.2, "validation_bpc": 2.4}],),
                       {"uniform_bpc": 4.0, "test_bpc": 2.5, "title": "ptb"}),
        "grid_heatmap": ("grid_heatmap", (np.array([1.0, 5.0]), np.array([0.0, 0.5, 1.0]),
                                          rng.uniform(size=(2, 3))),
                         {"label": "test accuracy", "title": "grid"}),
        "analysis_curves": ("analysis_curves",
                            ([{"x": np.array([1.0, 2.0, 4.0]), "ys": {"a": np.ones(3)},
                               "xlabel": "ξ", "ylabel": "λ₁", "logx": True, "zero": True}],),
                            {"title": "analysis"}),
        "rate_training_curve": ("rate_training_curve",
                                (np.array([100, 200, 300]), np.array([40.0, 10.0, 6.0]),
                                 np.array([0.5, 0.9, 0.97])), {"title": "rate"}),
    }


CASES = _cases()


def test_every_figure_function_has_a_case():
    functions = {name for name in plotting.__all__ if callable(getattr(plotting, name))}
    assert {function for function, _, _ in CASES.values()} == functions


@pytest.mark.parametrize("case", sorted(CASES))
def test_figure_draws_and_saves(case):
    function, args, kwargs = CASES[case]
    figure = getattr(plotting, function)(*args, **kwargs)
    assert isinstance(figure, Figure)
    assert any(axis.has_data() for axis in figure.axes)
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=60, bbox_inches="tight")
        assert buffer.getvalue().startswith(magic)


_PROBE = """
import json, sys
import matplotlib

def backend():
    # the stored value, without resolving the automatic backend (reading
    # rcParams["backend"] would itself import pyplot and pick one)
    return repr(dict.__getitem__(matplotlib.rcParams, "backend"))

before = backend()
import nrmkit.plotting as plotting
imported = {name: name in sys.modules for name in ("matplotlib.pyplot", "matplotlib.figure")}
after_import = backend()
import io
import numpy as np
figure = plotting.transition_to_chaos(np.array([0.5, 1.0]), np.array([[0.1, 0.2], [0.3, 0.4]]))
figure.savefig(io.BytesIO(), format="png")
figure.savefig(io.BytesIO(), format="pdf")
print(json.dumps({"before": before, "after_import": after_import, "after_use": backend(),
                  "imported": imported, "pyplot_after_use": "matplotlib.pyplot" in sys.modules}))
"""


@pytest.mark.parametrize("mplbackend", [None, "svg"])
def test_import_is_side_effect_free(mplbackend):
    """Importing (and using) the package loads no pyplot and leaves the backend as it was."""
    environment = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    if mplbackend is not None:
        environment["MPLBACKEND"] = mplbackend
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          env=environment, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["before"] == report["after_import"] == report["after_use"]
    assert report["imported"] == {"matplotlib.pyplot": False, "matplotlib.figure": False}
    assert not report["pyplot_after_use"]


def test_docstring_lists_the_family_modules():
    for family in ("lyapunov", "spectrum_training", "sequences", "glifr", "rate_to_lif"):
        assert f"``{family}``" in plotting.__doc__
        module = importlib.import_module(f"nrmkit.plotting.{family}")
        assert all(getattr(plotting, name) is getattr(module, name) for name in module.__all__)
