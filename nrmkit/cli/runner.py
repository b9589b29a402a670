"""The harness around a workflow: validate, open the run directory, run, report.

It is the only place that turns exceptions into exit statuses:
:class:`~nrmkit.core.errors.ConfigError` → usage error (exit 2) naming the option;
:class:`~nrmkit.core.errors.NrmkitRuntimeError` → one-line failure (exit 1), after
removing what the failed run had written.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from nrmkit.core.base import Workflow
from nrmkit.core.errors import ConfigError, NrmkitRuntimeError


@dataclass(frozen=True)
class CommonOptions:
    """Options shared by every workflow (see :func:`nrmkit.cli.options.common_options`)."""

    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    output_dir: str | None = None
    overwrite: bool = False
    quiet: bool = False
    debug: bool = False
    save: bool = True
    resume: bool = False

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> CommonOptions:
        """Remove the common options from a click ``kwargs`` dict and return them."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: kwargs.pop(name) for name in names if name in kwargs})


@dataclass
class RunContext:
    """What a running workflow gets besides its configuration.

    Attributes:
        run_dir: where to write (a :class:`~nrmkit.core.rundir.RunDir`, or a
            :class:`NullRunDir` when saving is off).
        device, dtype: resolved torch device and dtype names.
        seed: the run's seed; :meth:`generator` makes seeded CPU generators from it.
        progress: ``progress(label) -> callback(done, total)``.
        log: one line of human-readable output.
    """

    run_dir: Any
    device: str
    dtype: str
    seed: int
    progress: Callable[[str], Callable[[int, int], None]]
    log: Callable[[str], None]
    extras: dict[str, Any] = field(default_factory=dict)

    def generator(self, offset: int = 0):
        import torch

        return torch.Generator().manual_seed(self.seed + offset)

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


class NullRunDir:
    """Stands in for a run directory when ``--save false``: every write is skipped."""

    path = None

    def __getattr__(self, name: str):
        if name.startswith(("write_", "save_")):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def discard(self) -> None:
        return None


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "cuda was requested but no CUDA device is available")
    return device


def build_config(config_class: type, **values: Any):
    """Construct a workflow config; validation errors become click usage errors."""
    try:
        return config_class(**values)
    except ConfigError as error:
        raise click.UsageError(f"Invalid value for '{error.option}': {error.reason}") from None


def execute(workflow: Workflow, config: Any, common: CommonOptions, *,
            executor: Any = None) -> dict[str, Any] | None:
    """Run ``workflow`` with a validated ``config``; write config, results, arrays, figures.

    ``executor`` (:class:`nrmkit.cli.sweep.ExecutorOptions`, sweep workflows only) says where
    the units run; in array-task mode the run directory may already hold other tasks' parts
    and no ``results.json`` is written (``nrmkit collect`` aggregates).
    """
    from nrmkit.core.rundir import RunDir, run_metadata

    log = (lambda message: None) if common.quiet else (lambda m: click.echo(m, err=True))
    resumable = getattr(workflow, "resumable", False)
    array_task = bool(getattr(executor, "array_task", False))
    try:
        device = resolve_device(common.device)
        if common.resume:
            _check_resume(workflow, config, common)
        if array_task and common.output_dir is None:
            raise ConfigError("--output-dir", "array-task mode needs the shared run folder")
        run_dir = (
            RunDir.create(common.output_dir, workflow=workflow.name, overwrite=common.overwrite,
                          resume=common.resume or array_task)
            if common.save else NullRunDir()
        )
    except ConfigError as error:
        raise click.UsageError(f"Invalid value for '{error.option}': {error.reason}") from None

    import torch

    options = {**dataclasses.asdict(config), **dataclasses.asdict(common), "device": device}
    options["output_dir"] = str(run_dir.path) if run_dir.path is not None else None
    config_record = {
        "workflow": workflow.name,
        "options": options,
        "torch_threads": torch.get_num_threads(),
        **run_metadata(),
    }
    if executor is not None:
        config_record["executor"] = dataclasses.asdict(executor)
    context = RunContext(
        run_dir=run_dir, device=device, dtype=common.dtype, seed=common.seed,
        progress=_progress_factory(workflow.name, common.quiet), log=log,
        extras={} if executor is None else {"executor": executor},
    )
    started = time.perf_counter()
    try:
        run_dir.write_json("config.json", config_record)
        results = workflow.run(config, context)
        if results is None:                     # one array task: parts only
            return None
        results = {**results, "elapsed_seconds": round(time.perf_counter() - started, 3)}
        run_dir.write_json("results.json", results)
    except ConfigError as error:  # found only once the data or a saved model is read
        _keep_or_discard(run_dir, resumable=False)
        raise click.UsageError(f"Invalid value for '{error.option}': {error.reason}") from None
    except NrmkitRuntimeError as error:
        kept = _keep_or_discard(run_dir, resumable)
        if common.debug:
            raise
        raise click.ClickException(f"{error}{kept}") from None
    except KeyboardInterrupt:
        kept = _keep_or_discard(run_dir, resumable)
        if kept:
            click.echo(f"Interrupted{kept}", err=True)
        raise click.Abort() from None
    except BaseException:
        _keep_or_discard(run_dir, resumable)
        raise
    if run_dir.path is not None:
        log(f"{workflow.name}: results in {Path(run_dir.path)}")
    return results


#: options that may differ between a run and its resumption.
RESUME_FREE_OPTIONS = ("n_epochs", "resume", "overwrite", "quiet", "debug", "output_dir",
                       "device")


def _check_resume(workflow: Workflow, config: Any, common: CommonOptions) -> None:
    """``--resume`` needs a resumable workflow and a run in ``--output-dir`` with the same
    options (the epoch budget may grow)."""
    import json

    if not getattr(workflow, "resumable", False):
        raise ConfigError("--resume", f"{workflow.name} has nothing to resume")
    if common.output_dir is None:
        raise ConfigError("--resume", "give the run to continue with --output-dir")
    record = Path(common.output_dir) / "config.json"
    if not record.exists():
        raise ConfigError("--resume", f"no {workflow.name} run in {common.output_dir}")
    stored = json.loads(record.read_text()).get("options", {})
    current = {**dataclasses.asdict(config), **dataclasses.asdict(common)}
    current = json.loads(json.dumps(current, default=list))
    free = RESUME_FREE_OPTIONS + tuple(getattr(workflow, "resume_free_options", ()))
    changed = sorted(key for key, value in current.items()
                     if key not in free and key in stored
                     and stored[key] != value)
    if changed:
        raise ConfigError("--resume", "the run in --output-dir was made with other values of "
                          + ", ".join(f"--{key}" for key in changed))


def _keep_or_discard(run_dir: Any, resumable: bool) -> str:
    """A resumable run keeps its checkpoint after a failure; others leave nothing behind."""
    checkpoints = getattr(run_dir, "path", None)
    if resumable and checkpoints is not None and any(
            (Path(checkpoints) / kept).is_dir() for kept in ("checkpoints", "parts")):
        return (f"; what finished is kept in {checkpoints}: continue with --resume "
                f"--output-dir {checkpoints}")
    run_dir.discard()
    return ""


def _progress_factory(name: str, quiet: bool):
    """Rich progress bars on a terminal; a plain line every 10 % otherwise (SLURM logs)."""
    interactive = sys.stderr.isatty() and not quiet

    def make(label: str):
        if quiet:
            return lambda done, total: None
        if interactive:
            return _RichBar(f"{name}: {label}")
        return _PlainLines(f"{name}: {label}")

    return make


class _PlainLines:
    def __init__(self, label: str):
        self.label = label
        self.next_percent = 10
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent >= self.next_percent or done == total:
            elapsed = time.perf_counter() - self.started
            click.echo(f"{self.label}: {percent:3d}% ({done}/{total} steps, {elapsed:.1f} s)",
                       err=True)
            self.next_percent = (percent // 10 + 1) * 10


class _RichBar:
    def __init__(self, label: str):
        self.label = label
        self.progress = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done)
        if done >= total:
            self.progress.stop()
