"""The harness around a workflow: validate, open the run folder, run, report.

It is the only place that turns exceptions into exit statuses, always as one line on stderr
(``--debug`` shows the traceback instead):

* :class:`~nrmkit.core.errors.ConfigError` → usage error (exit 2) naming the option — also an
  estimate of the memory the run needs above what is available, and a run folder that is in
  use, foreign or not the run to resume;
* :class:`~nrmkit.core.errors.NrmkitRuntimeError` (divergence, corrupt data, a write the
  operating system refused) → exit 1, after removing what the failed run had written — or,
  for a resumable workflow that has checkpoints or finished units, keeping them and printing
  the ``--resume`` command that continues;
* running out of memory, or any unexpected error → exit 1 the same way;
* Ctrl-C (SIGINT, exit 130) and SIGTERM (what SLURM sends at a time limit or ``scancel``,
  exit 143) → the same clean-up, with the ``--resume`` command where something was kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import signal
import sys
import threading
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
    memory_limit: float | None = None

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
    mode = "unsaved"

    def __getattr__(self, name: str):
        if name.startswith(("write_", "save_")):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def discard(self) -> None:
        return None

    def unlock(self) -> None:
        return None

    def close(self) -> None:
        return None


class Terminated(BaseException):
    """SIGTERM arrived (a SLURM time limit, ``scancel``, ``kill``)."""


@contextlib.contextmanager
def sigterm_raises():
    """Within the block SIGTERM raises :class:`Terminated` (once; a second one is ignored
    while the run cleans up), so that it ends a run as cleanly as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "cuda was requested but no CUDA device is available")
    return device


def usage_error(error: ConfigError) -> click.UsageError:
    """The click usage error (exit 2) of ``error``: ``Invalid value for '--n': reason``."""
    return click.UsageError(f"Invalid value for '{error.option}': {error.reason}")


def build_config(config_class: type, **values: Any):
    """Construct a workflow config; validation errors become click usage errors."""
    try:
        return config_class(**values)
    except ConfigError as error:
        raise usage_error(error) from None


def _open_mode(workflow: Workflow, common: CommonOptions, array_task: bool) -> str:
    """How the run folder is opened (see :meth:`nrmkit.core.rundir.RunDir.open`)."""
    if common.resume and not getattr(workflow, "resumable", False):
        raise ConfigError("--resume", f"{workflow.name} has nothing to resume")
    if array_task:
        if common.output_dir is None:
            raise ConfigError("--output-dir", "array-task mode needs the shared run folder")
        if common.overwrite:
            raise ConfigError("--overwrite", "array tasks share one run folder: clear it "
                                             "before submitting them")
        return "array-task"
    if common.resume:
        if common.output_dir is None:
            raise ConfigError("--resume", "give the run to continue with --output-dir")
        return "resume"
    return "overwrite" if common.overwrite else "new"


def open_run(workflow: Workflow, config: Any, common: CommonOptions, *, array_task: bool,
             device: str):
    """Check the memory estimate, then open the run folder (locked) for ``common``'s mode.

    Raises ConfigError / NrmkitRuntimeError (the caller turns them into exit statuses).
    """
    from nrmkit.core.resources import check_memory
    from nrmkit.core.rundir import RunDir

    if common.memory_limit is not None and not common.memory_limit > 0:
        raise ConfigError("--memory-limit", f"must be a positive number of GiB, got "
                                            f"{common.memory_limit}")
    itemsize = 8 if common.dtype == "float64" else 4
    check_memory(workflow.memory_terms(config, itemsize=itemsize),
                 limit_gib=common.memory_limit, device=device)
    if not common.save:
        for name, given in (("--output-dir", common.output_dir is not None),
                            ("--overwrite", common.overwrite), ("--resume", common.resume)):
            if given:
                raise ConfigError("--save", f"false writes nothing; it cannot go with {name}")
        return NullRunDir()
    mode = _open_mode(workflow, common, array_task)
    run_dir = RunDir.open(common.output_dir, workflow=workflow.name, mode=mode)
    try:
        if mode == "resume" or (mode == "array-task"
                                and (run_dir.path / "config.json").exists()):
            _check_same_options(workflow, config, common, run_dir.path)
    except BaseException:
        run_dir.close()
        raise
    return run_dir


def execute(workflow: Workflow, config: Any, common: CommonOptions, *,
            executor: Any = None) -> dict[str, Any] | None:
    """Run ``workflow`` with a validated ``config``; write config, results, arrays, figures.

    ``executor`` (:class:`nrmkit.cli.sweep.ExecutorOptions`, sweep workflows only) says where
    the units run; in array-task mode the run folder may already hold other tasks' parts, its
    lock is held only while ``config.json`` is written, and no ``results.json`` is written
    (``nrmkit collect`` aggregates).
    """
    from nrmkit.core.rundir import run_metadata

    log = (lambda message: None) if common.quiet else (lambda m: click.echo(m, err=True))
    resumable = getattr(workflow, "resumable", False)
    array_task = bool(getattr(executor, "array_task", False))
    try:
        device = resolve_device(common.device)
        run_dir = open_run(workflow, config, common, array_task=array_task, device=device)
    except ConfigError as error:
        raise usage_error(error) from None
    except NrmkitRuntimeError as error:
        if common.debug:
            raise
        raise click.ClickException(str(error)) from None

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
        with sigterm_raises():
            try:
                if not (run_dir.mode == "array-task"
                        and (run_dir.path / "config.json").exists()):
                    run_dir.write_json("config.json", config_record)
                if run_dir.mode == "array-task":
                    run_dir.unlock()
                results = workflow.run(config, context)
                if results is None:                     # one array task: parts only
                    return None
                results = {**results,
                           "elapsed_seconds": round(time.perf_counter() - started, 3)}
                run_dir.write_json("results.json", results)
            except ConfigError as error:  # found only once the data or a saved model is read
                _after_failure(run_dir, resumable=False)
                raise usage_error(error) from None
            except NrmkitRuntimeError as error:
                kept = _after_failure(run_dir, resumable)
                if common.debug:
                    raise
                raise click.ClickException(f"{error}{kept}") from None
            except (KeyboardInterrupt, Terminated) as stop:
                kept = _after_failure(run_dir, resumable)
                what, status = (("Terminated (SIGTERM)", 143) if isinstance(stop, Terminated)
                                else ("Interrupted", 130))
                click.echo(f"{what}{kept or '; nothing was kept'}", err=True)
                raise click.exceptions.Exit(status) from None
            except Exception as error:
                kept = _after_failure(run_dir, resumable)
                if common.debug:
                    raise
                raise click.ClickException(f"{_describe_failure(error)}{kept}") from None
    finally:
        run_dir.close()
    if run_dir.path is not None:
        log(f"{workflow.name}: results in {Path(run_dir.path)}")
    return results


def _describe_failure(error: Exception) -> str:
    """One line for an exception no check foresaw: out of memory, or an unexpected error."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    torch = sys.modules.get("torch")
    out_of_memory = isinstance(error, MemoryError) or (
        torch is not None and isinstance(error, getattr(torch, "OutOfMemoryError", ()))) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text
                                             or "out of memory" in text.lower()))
    if out_of_memory:
        return ("ran out of memory (" + (text[:200] or type(error).__name__) + "); smaller "
                "sizes or batches need less, and --memory-limit sets the check made before "
                "a run starts")
    return (f"unexpected {type(error).__name__}: {text[:300]} (--debug shows where; please "
            "report it)")


#: options that may differ between a run and its resumption.
RESUME_FREE_OPTIONS = ("n_epochs", "resume", "overwrite", "quiet", "debug", "output_dir",
                       "device", "memory_limit")


def _check_same_options(workflow: Workflow, config: Any, common: CommonOptions,
                        folder: Path) -> None:
    """The run in ``folder`` was made with the same options (the epoch budget may grow)."""
    import json

    from nrmkit.core.rundir import read_run_record

    stored = read_run_record(folder)["options"]
    current = {**dataclasses.asdict(config), **dataclasses.asdict(common)}
    current = json.loads(json.dumps(current, default=list))
    free = RESUME_FREE_OPTIONS + tuple(getattr(workflow, "resume_free_options", ()))
    changed = sorted(key for key, value in current.items()
                     if key not in free and key in stored
                     and stored[key] != value)
    if changed:
        option = "--resume" if common.resume else "--output-dir"
        raise ConfigError(option, "the run in --output-dir was made with other values of "
                          + ", ".join(f"--{key}" for key in changed))


def _after_failure(run_dir: Any, resumable: bool) -> str:
    """Keep what a resumable run finished (and say how to continue), else discard the run.

    A resumed run or an array task never deletes anything (the folder held a run before).
    """
    path = getattr(run_dir, "path", None)
    if path is None:
        return ""
    kept = resumable and any((Path(path) / name).is_dir() for name in ("checkpoints", "parts"))
    if kept or run_dir.mode in ("resume", "array-task"):
        return (f"; what finished is kept in {path}: continue with {resume_command(path)}"
                if kept else "")
    run_dir.discard()
    return ""


def resume_command(path: str | Path) -> str:
    """The command line of this process with ``--resume --output-dir PATH`` (and without
    ``--overwrite``): what continues an interrupted run."""
    from nrmkit.cli.options import invocation

    program, arguments = invocation()
    kept: list[str] = []
    skip_value = False
    for argument in arguments:
        if skip_value:
            skip_value = False
            continue
        name = argument.split("=", 1)[0]
        if name in ("--output-dir", "--output_dir"):
            skip_value = "=" not in argument
            continue
        if name in ("--overwrite", "--resume"):
            continue
        kept.append(argument)
    return shlex.join([program, *kept, "--resume", "--output-dir", str(path)])


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
