"""The figures of the GLIFR analyses: drawn from small synthetic inputs, saved to PNG and PDF,
with their axes labelled and the clusters, scores and trajectories where they belong."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from nrmkit import plotting

RNG = np.random.default_rng(0)
CURRENTS = np.linspace(-10.0, 10.0, 41)
#: sigmoidal f–I curves of 9 neurons in three groups of thresholds.
LABELS = np.repeat([2, 0, 1], 3)
RATES = 1.0 / (1.0 + np.exp(-(CURRENTS[None] - 4.0 * (LABELS[:, None] - 1.0))))


def saves(figure: Figure) -> None:
    assert isinstance(figure, Figure)
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=60, bbox_inches="tight")
        assert buffer.getvalue().startswith(magic)


def test_fi_curves_are_coloured_by_cluster():
    figure = plotting.fi_curves_figure(CURRENTS, RATES, LABELS, reference=RATES[:1],
                                       title="f–I")
    saves(figure)
    (axis,) = figure.axes
    assert axis.get_xlabel() == "injected current $I$ (pA)" and "rate" in axis.get_ylabel()
    curves = [line for line in axis.get_lines() if len(line.get_xdata())]
    assert len(curves) == 1 + len(RATES)
    neuron_colors = [to_rgba(line.get_color()) for line in curves[1:]]
    by_cluster = {}
    for label, color in zip(np.sort(LABELS), neuron_colors, strict=True):
        by_cluster.setdefault(label, set()).add(color)
    assert all(len(colors) == 1 for colors in by_cluster.values())
    assert len(set().union(*by_cluster.values())) == 3
    texts = [text.get_text() for text in axis.get_legend().get_texts()]
    assert texts == ["before training", "cluster A (n = 3)", "cluster B (n = 3)",
                     "cluster C (n = 3)"]


def test_fi_curves_without_clusters():
    figure = plotting.fi_curves_figure(CURRENTS, RATES, current_label="current (mV/step)")
    saves(figure)
    assert figure.axes[0].get_xlabel() == "current (mV/step)"
    assert figure.axes[0].get_legend() is None


def test_cluster_scores_ring_the_best_number_of_clusters():
    figure = plotting.cluster_scores_figure(range(2, 8), [5.0, 40.0, np.nan, 12.0, 9.0, 8.0],
                                            title="CH")
    saves(figure)
    (axis,) = figure.axes
    assert axis.get_xlabel() == "number of clusters $k$"
    assert axis.get_ylabel() == "Calinski–Harabasz index"
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["best: k = 3"]


@pytest.mark.parametrize("n_ascs", [2, 0])
def test_parameter_trajectories_have_a_panel_per_parameter(n_ascs):
    epochs, hidden = np.arange(6), 7
    trajectories = {"v_th": 1.0 + RNG.normal(0, 0.1, (6, hidden)).cumsum(0),
                    "k_m": RNG.uniform(0.04, 0.06, (6, hidden)),
                    "k_j": RNG.uniform(1.5, 2.5, (6, n_ascs, hidden)),
                    "r_j": RNG.uniform(-0.1, 0.1, (6, n_ascs, hidden)),
                    "a_j": RNG.uniform(-0.1, 0.1, (6, n_ascs, hidden))}
    figure = plotting.parameter_trajectories_figure(epochs, trajectories, 0.05, title="lheta")
    saves(figure)
    panels = [axis for axis in figure.axes if axis.get_xlabel() == "epoch"]
    assert len(panels) == (5 if n_ascs else 2)
    assert [axis.get_ylabel() for axis in panels][:2] == ["threshold $V_{th}$ (mV)",
                                                          "$k_m$ (1/ms)"]
    threshold_lines = panels[0].get_lines()
    assert len(threshold_lines) == hidden + 1
    np.testing.assert_allclose(threshold_lines[-1].get_ydata(), trajectories["v_th"].mean(1))
    if n_ascs:
        assert len(panels[2].get_lines()) == n_ascs * (hidden + 1)
    rate_axes = [child for axis in panels for child in axis.child_axes]
    assert len(rate_axes) == (2 if n_ascs else 1)
    assert all("per step" in axis.get_ylabel() for axis in rate_axes)


def test_parameter_figure_without_after_spike_currents_has_only_the_neuron_panels():
    from nrmkit.plotting.glifr import glifr_parameters

    rng = np.random.default_rng(0)
    values = {"v_th": rng.normal(size=6), "k_m": rng.uniform(0.05, 0.2, 6),
              **{name: np.zeros((0, 6)) for name in ("a_j", "r_j", "k_j")}}
    figure = glifr_parameters(values, title="lhet")
    assert len(figure.axes) == 2
    assert figure._suptitle.get_text() == "lhet"
    with_currents = {**values, "a_j": rng.normal(size=(2, 6)), "r_j": np.ones((2, 6)),
                     "k_j": rng.uniform(0.01, 0.1, (2, 6))}
    figure = glifr_parameters(with_currents, title="lhet")
    assert len(figure.axes) == 5
    assert "j = 1, 2" in figure._suptitle.get_text()
