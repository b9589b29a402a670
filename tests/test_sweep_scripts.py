"""The SLURM sweep scripts of bash/: what ``--dry-run`` would submit, and their usage errors."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from nrmkit.core.registry import WORKFLOWS

BASH = Path(__file__).resolve().parents[1] / "bash"
SCRIPTS = ["lyapunov_sweeps.sh", "sequence_seeds.sh", "training_sweeps.sh"]


def _run(script: str, *arguments: str, cwd: Path, **environment: str):
    return subprocess.run(["bash", str(BASH / script), *arguments], cwd=cwd,
                          capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", **environment})


@pytest.mark.parametrize("script", SCRIPTS)
def test_dry_run_shows_an_array_and_its_collect_job_per_workflow(script, tmp_path):
    done = _run(script, "--dry-run", cwd=tmp_path, PARTITION="cpu")
    assert done.returncode == 0, done.stderr
    lines = [shlex.split(line) for line in done.stdout.splitlines()]
    arrays = [line for line in lines if "--array" in line]
    collects = [line for line in lines if "--dependency" in line]
    assert arrays and len(arrays) == len(collects) == len(lines) / 2
    for array, collect in zip(arrays, collects, strict=True):
        assert array[array.index("--partition") + 1] == "cpu"
        assert collect[collect.index("--partition") + 1] == "cpu"
        task = shlex.split(array[array.index("--wrap") + 1])
        assert task[0] in WORKFLOWS.names()
        assert task[-5] == "--task_count"
        assert task[-3:] == ["--task_index", "$SLURM_ARRAY_TASK_ID", "--quiet"]
        first, last = array[array.index("--array") + 1].split("-")
        assert (int(first), int(last) + 1) == (0, int(task[-4]))
        folder = task[task.index("--output-dir") + 1]
        assert collect[collect.index("--wrap") + 1] == f"nrmkit collect {folder}"
    assert not (tmp_path / "logs").exists()  # nothing written by a dry run


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_argument_is_a_usage_error(script, tmp_path):
    done = _run(script, "--bogus", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: ") and "[--dry-run | --local]" in done.stderr
    assert done.stdout == ""
