"""The comparison script of bash/: its table of runs, shared run folders and the report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bash" / "nrm_comparison.py"


def load():
    spec = importlib.util.spec_from_file_location("nrm_comparison", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_arguments(module, out: Path):
    """The script's defaults, as its parser gives them."""
    return module.make_parser().parse_args(["report", "--out", str(out)])


def test_identical_runs_share_one_folder_and_array_tasks_cover_each_once(tmp_path):
    module = load()
    args = default_arguments(module, tmp_path)
    table = module.runs(args)
    distinct = module.distinct(table)
    assert len(table) == 13 and len(distinct) == 11
    # gains + shifts at N 100, nle 10 is one run, listed in three groups
    same = [run for run in table if run["name"] in ("gains + shifts", "nle 10", "N 100")]
    assert len({run["folder"] for run in same}) == 1
    assert len({run["folder"] for run in distinct}) == 11
    assert {tuple(run["command"]) for run in distinct} == {tuple(run["command"])
                                                          for run in table}
    listed = subprocess.run([sys.executable, str(SCRIPT), "list", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(listed) == 11 and listed[2].split("\t")[1] == "gains + shifts, nle 10, N 100"


def test_report_names_missing_runs_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "report", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no results yet" in done.stderr and "run_00" in done.stderr


def test_report_from_results(tmp_path):
    """The table's numbers are the means over samples of the runs' results.json."""
    module = load()
    args = default_arguments(module, tmp_path)
    for index, run in enumerate(module.distinct(module.runs(args))):
        folder = Path(run["folder"])
        folder.mkdir(parents=True)
        samples = [{"evaluation": {"loss_initial": 0.04, "loss_final": 0.01 * (index + 1),
                                   "lambda_max_initial": 0.1, "lambda_max_final": 0.02},
                    "baseline_global_gain": {"gain": 1.0, "loss": 0.03, "lambda_max": 0.0},
                    "loss": [0.05, 0.03, 0.019], "n_trainable": {"weights": 0, "gains": 100,
                                                                "shifts": 100}}
                   for _ in range(2)]
        (folder / "results.json").write_text(json.dumps(
            {"samples": samples, "seconds_per_epoch": 1.5}))
    done = subprocess.run([sys.executable, str(SCRIPT), "report", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert len(rows) == 13
    first = rows[0]
    assert first["name"] == "gains"
    assert abs(first["loss_final"] - 0.01) < 1e-12 and abs(first["loss_ratio"] - 0.25) < 1e-12
    assert first["epochs_to_threshold"] == 3  # 0.019 ≤ 0.5 × 0.04 first at epoch 3
    assert (tmp_path / "comparison.md").read_text().count("\n") == 15
    assert (tmp_path / "figures" / "comparison.png").exists()


def test_an_index_outside_the_runs_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "run", "--index", "11", "--out",
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--index must be one of 0 … 10" in done.stderr
