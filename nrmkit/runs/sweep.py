"""Executors for sweep workflows: serial, local subprocesses or SLURM job arrays (submitit).

A :class:`~nrmkit.core.base.SweepWorkflow` splits into independent units. This module:

* chunks the units that are not finished yet into ``--jobs`` contiguous chunks;
* runs each chunk here (``serial``) or as a submitit job (``local``: subprocesses on this
  machine; ``slurm``: one SLURM array job, ``--slurm_*`` options); a job writes one file per
  unit, ``parts/<fingerprint>/unit-<index>.npz``, atomically — the fingerprint hashes every
  option of the run (and its seed and dtype), so parts made with other options (say, fewer
  epochs before a resumption that extends training) are never reused;
* aggregates the parts of all units, in unit order, into the ``results.json`` a serial run
  writes — units draw from their own seeds, so the numbers do not depend on executor or
  chunking;
* in *array-task mode* (``--task_count C``, ``--task_index I`` or ``$SLURM_ARRAY_TASK_ID``)
  runs only chunk ``I`` of ``C`` for a user's own ``sbatch --array`` script and leaves the
  aggregation to ``nrmkit collect RUN_DIR``, which names any missing units.

Finished units are never recomputed: a sweep interrupted at any point continues with
``--resume --output-dir RUN_DIR`` (or by rerunning the array tasks).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrmkit.core.errors import ConfigError, NrmkitRuntimeError

EXECUTORS = ("serial", "local", "slurm")
PARTS_DIR = "parts"
SUBMITIT_DIR = "submitit"
#: the most units a sweep may have: each is a file in the run folder, and listing, reading
#: and stacking them must stay quick.
MAX_UNITS = 1_000_000
#: options that only say *where* units run: free to change between a run and its resumption.
EXECUTION_OPTIONS = ("executor", "jobs", "task_index", "task_count", "slurm_partition",
                     "slurm_time", "slurm_gpus", "slurm_cpus", "slurm_array_parallelism",
                     "slurm_setup")


@dataclass(frozen=True)
class ExecutorOptions:
    """Where the units of a sweep run (see the module docstring)."""

    executor: str = "serial"
    jobs: int | None = None
    task_index: int | None = None
    task_count: int | None = None
    slurm_partition: str | None = None
    slurm_time: int = 60
    slurm_gpus: int = 0
    slurm_cpus: int | None = None
    slurm_array_parallelism: int | None = None
    slurm_setup: tuple[str, ...] = ()

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ConfigError("--executor", f"choose from {', '.join(EXECUTORS)}")
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError("--jobs", f"must be at least 1, got {self.jobs}")
        if self.task_count is not None:
            if self.task_count < 1:
                raise ConfigError("--task_count", f"must be at least 1, got {self.task_count}")
            if self.task_index is None:
                raise ConfigError("--task_index", "array-task mode needs --task_index (or "
                                                  "$SLURM_ARRAY_TASK_ID)")
            if not 0 <= self.task_index < self.task_count:
                raise ConfigError("--task_index", f"must lie in [0, {self.task_count - 1}], "
                                                  f"got {self.task_index}")
        if self.slurm_time < 1:
            raise ConfigError("--slurm_time", f"must be at least 1 minute, got {self.slurm_time}")
        for name in ("slurm_gpus",):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name}", "must be ≥ 0")
        for name in ("slurm_cpus", "slurm_array_parallelism"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name}", f"must be at least 1, got {value}")

    @property
    def array_task(self) -> bool:
        return self.task_count is not None

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> ExecutorOptions:
        values = {name: kwargs.pop(name) for name in EXECUTION_OPTIONS if name in kwargs}
        if values.get("task_index") is None and values.get("task_count") is not None:
            env = os.environ.get("SLURM_ARRAY_TASK_ID")
            if env is not None:
                try:
                    values["task_index"] = int(env)
                except ValueError:
                    raise ConfigError("--task_index",
                                      f"$SLURM_ARRAY_TASK_ID is {env!r}") from None
        values["slurm_setup"] = tuple(values.get("slurm_setup") or ())
        return cls(**values)


def chunks(units: list[int], n_chunks: int) -> list[list[int]]:
    """Split ``units`` into ``n_chunks`` contiguous, nearly equal, non-empty chunks."""
    n_chunks = max(1, min(n_chunks, len(units)))
    size, extra = divmod(len(units), n_chunks)
    out, start = [], 0
    for index in range(n_chunks):
        stop = start + size + (1 if index < extra else 0)
        out.append(units[start:stop])
        start = stop
    return [chunk for chunk in out if chunk]


def fingerprint(config: Any, seed: int, dtype: str, *, exclude: tuple[str, ...] = ()) -> str:
    """12 hex digits hashing the options of ``config`` (but ``exclude``), seed and dtype."""
    import dataclasses
    import hashlib
    import json

    options = {key: value for key, value in dataclasses.asdict(config).items()
               if key not in exclude}
    record = {"options": options, "seed": seed, "dtype": dtype}
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def group_chunks(units: list[int], n_chunks: int, group: int) -> list[list[int]]:
    """:func:`chunks` of whole groups (units ``g·group … (g+1)·group − 1``)."""
    if group <= 1:
        return chunks(units, n_chunks)
    groups: dict[int, list[int]] = {}
    for unit in units:
        groups.setdefault(unit // group, []).append(unit)
    keys = sorted(groups)
    return [[unit for key in piece for unit in groups[key]] for piece in chunks(keys, n_chunks)]


def parts_folder(run_path: Path, config: Any, seed: int, dtype: str) -> Path:
    """``RUN/parts/<fingerprint>``: the fingerprint hashes the options, seed and dtype."""
    return Path(run_path) / PARTS_DIR / fingerprint(config, seed, dtype)


def part_path(folder: Path, unit: int) -> Path:
    return Path(folder) / f"unit-{unit:05d}.npz"


def finished_units(folder: Path | None, n_units: int) -> set[int]:
    """The units below ``n_units`` whose part is in ``folder`` (one listing of the folder)."""
    if folder is None or not Path(folder).is_dir():
        return set()
    units = set()
    for name in os.listdir(folder):
        digits = name[len("unit-"):-len(".npz")]
        if name.startswith("unit-") and name.endswith(".npz") and digits.isdigit():
            unit = int(digits)
            if unit < n_units and part_path(folder, unit).name == name:
                units.add(unit)
    return units


def read_part(folder: Path, unit: int) -> dict[str, Any]:
    """The arrays of one unit's part, every one read (so that a damaged file is found).

    Raises:
        DataError: the file is not the ``.npz`` nrmkit wrote (truncated, overwritten, made
            with pickled objects), naming it and how to recompute the unit.
    """
    import zipfile

    import numpy as np

    from nrmkit.core.errors import DataError

    path = part_path(folder, unit)
    try:
        with np.load(path, allow_pickle=False) as part:
            return {name: part[name] for name in part.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        reason = "not a NumPy archive" if isinstance(error, (ValueError, zipfile.BadZipFile)) \
            else type(error).__name__
        raise DataError(f"{path} is damaged ({reason}); delete it and rerun with --resume "
                        f"(or its array task) to recompute unit {unit}") from None


def write_parts(folder: Path, units: list[int], arrays: dict[str, Any]) -> None:
    """One atomic ``.npz`` per unit (row ``i`` of every array belongs to ``units[i]``)."""
    import numpy as np

    from nrmkit.core.files import atomic_write_bytes

    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    for row, unit in enumerate(units):
        buffer = io.BytesIO()
        np.savez(buffer, **{name: value[row] for name, value in arrays.items()})
        atomic_write_bytes(part_path(folder, unit), buffer.getvalue())


def compute_parts(workflow: Any, config: Any, context: Any, folder: Path,
                  units: list[int]) -> None:
    """Compute ``units``, storing each piece the workflow yields as soon as it is done."""
    for finished, arrays in workflow.iter_units(config, context, units):
        write_parts(folder, finished, arrays)


def read_parts(folder: Path, n_units: int) -> dict[str, Any]:
    """The arrays of every unit stacked in unit order (first axis = unit)."""
    import numpy as np

    from nrmkit.core.errors import DataError

    rows: dict[str, list] = {}
    for unit in range(n_units):
        for name, value in read_part(folder, unit).items():
            rows.setdefault(name, []).append(value)
    try:
        return {name: np.stack(values) for name, values in rows.items()}
    except ValueError:
        raise DataError(f"the parts in {folder} do not fit together (a file from another run "
                        "was put there?); delete the odd ones and rerun with --resume") from None


def _stack(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    return {name: np.concatenate([np.asarray(p[name]) for p in pieces]) for name in pieces[0]}


def run_sweep(workflow: Any, config: Any, context: Any) -> dict[str, Any] | None:
    """Run ``workflow``'s units with the executor in ``context.extras['executor']``."""
    options: ExecutorOptions = context.extras.get("executor", ExecutorOptions())
    n_units = workflow.n_units(config)
    if n_units > MAX_UNITS:
        raise ConfigError(workflow.unit_option, f"{n_units:,} {workflow.unit_name}s are more "
                          f"than the {MAX_UNITS:,} a sweep may have (each is a file of the run "
                          "folder): split the work into several runs")
    run_path = context.run_dir.path
    if run_path is None:
        if options.executor != "serial" or options.array_task:
            raise ConfigError("--executor", "distributed runs need a run directory "
                                            "(--save true)")
        return workflow.aggregate(config, context, workflow.run_units(
            config, context, list(range(n_units))))
    all_units = list(range(n_units))
    folder = parts_folder(run_path, config, context.seed, context.dtype)
    for unit in finished_units(folder, n_units):
        read_part(folder, unit)             # a damaged part stops the run before any work
    if options.array_task:
        mine = group_chunks(all_units, options.task_count, workflow.unit_group(config))
        selected = mine[options.task_index] if options.task_index < len(mine) else []
        done = finished_units(folder, n_units)
        todo = [unit for unit in selected if unit not in done]
        if todo:
            compute_parts(workflow, config, context, folder, todo)
        context.log(f"{workflow.name}: array task {options.task_index}/{options.task_count}: "
                    f"{len(todo)} {workflow.unit_name}(s) computed, "
                    f"{len(selected) - len(todo)} already done; aggregate with "
                    f"`nrmkit collect {run_path}` once every task has finished")
        return None
    done = finished_units(folder, n_units)
    todo = [unit for unit in all_units if unit not in done]
    if done:
        context.log(f"{workflow.name}: {len(done)} of {n_units} {workflow.unit_name}s already "
                    "finished, not recomputed")
    if todo:
        default_jobs = 1 if options.executor == "serial" else min(len(todo), 32)
        pieces = group_chunks(todo, options.jobs or default_jobs, workflow.unit_group(config))
        if options.executor == "serial":
            for piece in pieces:
                compute_parts(workflow, config, context, folder, piece)
        else:
            _submit(workflow, config, context, options, pieces, folder)
    missing = sorted(set(all_units) - finished_units(folder, n_units))
    if missing:
        raise NrmkitRuntimeError(f"{len(missing)} {workflow.unit_name}(s) have no result: "
                                 f"{unit_ranges(missing)}")
    return workflow.aggregate(config, context, read_parts(folder, n_units))


def unit_ranges(values: list[int]) -> str:
    spans, start, previous = [], None, None
    for value in [*values, None]:
        if start is None:
            start = previous = value
        elif value is not None and value == previous + 1:
            previous = value
        else:
            spans.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = previous = value
    return ", ".join(spans)


def _import_submitit():
    try:
        import submitit
    except ModuleNotFoundError:
        raise ConfigError("--executor", "the local and slurm executors need submitit: "
                                        "pip install 'nrmkit[slurm]'") from None
    return submitit


def make_executor(options: ExecutorOptions, folder: Path, n_jobs: int):
    """A submitit executor for ``options`` (checked: submitit installed, sbatch found)."""
    submitit = _import_submitit()
    if options.executor == "slurm":
        if shutil.which("sbatch") is None:
            raise ConfigError("--executor", "slurm: sbatch was not found on PATH (run on a "
                                            "SLURM login node, or use --executor local)")
        executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        parameters: dict[str, Any] = {"timeout_min": options.slurm_time,
                                      "gpus_per_node": options.slurm_gpus}
        if options.slurm_partition:
            parameters["slurm_partition"] = options.slurm_partition
        if options.slurm_cpus:
            parameters["cpus_per_task"] = options.slurm_cpus
        if options.slurm_array_parallelism:
            parameters["slurm_array_parallelism"] = options.slurm_array_parallelism
        if options.slurm_setup:
            parameters["slurm_setup"] = list(options.slurm_setup)
        executor.update_parameters(**parameters)
        return executor
    executor = submitit.LocalExecutor(folder=str(folder))
    executor.update_parameters(timeout_min=options.slurm_time)
    return executor


def _submit(workflow, config, context, options: ExecutorOptions, pieces, folder) -> None:
    from nrmkit.core.files import record_tree

    run_path = Path(context.run_dir.path)
    record_tree(run_path / SUBMITIT_DIR)        # submitit writes its job files and logs there
    executor = make_executor(options, run_path / SUBMITIT_DIR, len(pieces))
    # Local jobs use this process's thread count: the BLAS summation order, hence the last
    # bits of every number, depends on it (SLURM jobs use --slurm_cpus, else the node's).
    import torch

    threads = torch.get_num_threads() if options.executor == "local" \
        else (options.slurm_cpus or 0)
    job_context = {"seed": context.seed, "device": context.device, "dtype": context.dtype,
                   "run_path": str(run_path), "parts": str(folder), "threads": threads}
    jobs = executor.map_array(run_chunk, [workflow.name] * len(pieces), [config] * len(pieces),
                              [job_context] * len(pieces), pieces)
    context.log(f"{workflow.name}: {len(pieces)} {options.executor} job(s) submitted "
                f"({sum(map(len, pieces))} {workflow.unit_name}s); logs in "
                f"{run_path / SUBMITIT_DIR}")
    progress = context.progress(f"{options.executor} jobs")
    failures = []
    try:
        for done, job in enumerate(jobs, start=1):
            try:
                job.result()
            except Exception as error:      # submitit wraps the job's exception
                failures.append(f"job {job.job_id}: {str(error).strip().splitlines()[-1]}")
            progress(done, len(jobs))
    except BaseException:                   # Ctrl-C, SIGTERM: the jobs stop with the sweep
        for job in jobs:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        raise
    if failures:
        raise NrmkitRuntimeError(f"{len(failures)} of {len(jobs)} job(s) failed ("
                                 f"{'; '.join(failures[:3])}); finished units are kept — "
                                 "rerun with --resume to continue")


def run_chunk(name: str, config: Any, job_context: dict[str, Any], units: list[int]) -> int:
    """Job entry point: compute ``units`` of the workflow ``name``; write their parts."""
    import torch

    from nrmkit.core.context import RunContext
    from nrmkit.core.registry import workflow_named
    from nrmkit.runs.rundir import RunDir

    if job_context.get("threads"):
        torch.set_num_threads(int(job_context["threads"]))
    workflow = workflow_named(name)
    run_path = Path(job_context["run_path"])
    context = RunContext(run_dir=RunDir.attach(run_path), device=job_context["device"],
                         dtype=job_context["dtype"], seed=job_context["seed"],
                         progress=lambda label: (lambda done, total: None),
                         log=lambda message: None)
    compute_parts(workflow, config, context, Path(job_context["parts"]), list(units))
    return len(units)
