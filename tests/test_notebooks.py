"""Every notebook in notebooks/ runs on small run folders and draws its figures."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

from nrmkit.core.registry import WORKFLOWS

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RUNS = {
    "t2c": (WORKFLOWS.get("transition_2_chaos"), ["--gmin", "0.5", "--gmax", "2", "--m_g", "3",
                                         "--n_samples", "2", "--n", "20", "--tsim", "5",
                                         "--ttrans", "2"]),
    "spectrum": (WORKFLOWS.get("spectrum"), ["--n", "10", "--g", "2", "--g", "4", "--n_samples",
                                             "2",
                                    "--tsim", "5", "--ttrans", "2", "--tons", "1"]),
    "train_rd": (WORKFLOWS.get("train_rd_model"), ["--n", "16", "--g", "3", "--nle", "2",
                                          "--n_samples", "2", "--tsim", "5", "--ttrans", "2",
                                          "--n_epochs", "2"]),
    "smnist": (WORKFLOWS.get("smnist"), ["--net-type", "RNN", "--nonlin", "gamma2", "--input",
                                         "rows",
                                "--nhid", "8", "--epochs", "1", "--no-fractional_order"]),
    "smnist_seeds": (WORKFLOWS.get("smnist"), ["--net-type", "RNN", "--nonlin", "gamma2", "--input",
                                      "rows", "--nhid", "8", "--epochs", "2", "--n_seeds", "2",
                                      "--no-fractional_order"]),
    "glifr": (WORKFLOWS.get("train_glifr"), ["--task", "sine", "--hidden", "6", "--epochs", "2",
                                    "--lr", "3e-3"]),
    "go_nogo": (WORKFLOWS.get("rate_to_lif"), ["--n", "16", "--n_trials", "2", "--lif_trials", "2",
                                      "--lambdas", "25"]),
}
BOOKS = {"lyapunov_figures.ipynb": ("t2c", "spectrum"), "training_figures.ipynb": ("train_rd",),
         "smnist_figures.ipynb": ("smnist", "smnist_seeds"), "glifr_figures.ipynb": ("glifr",),
         "rate_to_lif_figures.ipynb": ("go_nogo",)}


def test_every_notebook_is_tested():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == set(BOOKS)


@pytest.mark.parametrize("book", sorted(BOOKS))
def test_notebook_runs_on_small_runs(book, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for name in BOOKS[book]:
        command, args = RUNS[name]
        done = CliRunner().invoke(command, [*args, "--quiet", "--output-dir", runs / name])
        assert done.exit_code == 0, (name, done.output)
    monkeypatch.setenv("NRMKIT_NOTEBOOK_RUNS", str(runs))
    monkeypatch.chdir(NOTEBOOKS)
    cells = json.loads((NOTEBOOKS / book).read_text())["cells"]
    namespace: dict = {}
    figures = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        body = ast.Module(body=tree.body[:-1] if last else tree.body, type_ignores=[])
        exec(compile(body, book, "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), book, "eval"), namespace)
            if isinstance(value, Figure):
                figures.append(value)
    assert figures, f"{book} drew no figure"
    for figure in figures:
        assert any(axis.has_data() for axis in figure.axes)
        plt.close(figure)
