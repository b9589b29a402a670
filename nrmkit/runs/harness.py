"""The harness around a workflow: check, open the run folder, run, clean up after failures.

:func:`run_workflow` is what every command calls. It raises, and never prints a traceback
itself; the command-line layer (:mod:`nrmkit.cli.runner`) turns its exceptions into one line
on stderr and an exit status:

* :class:`~nrmkit.core.errors.ConfigError` → usage error (exit 2) naming the option — also an
  estimate of the memory the run needs above what is available, and a run folder that is in
  use, foreign or not the run to resume;
* :class:`~nrmkit.core.errors.NrmkitRuntimeError` (divergence, corrupt data, a write the
  operating system refused, running out of memory, any unexpected error) → exit 1, after
  removing what the failed run had written — or, for a resumable workflow that has
  checkpoints or finished units, keeping them, the message ending with the ``--resume``
  command that continues;
* :class:`Stopped` — Ctrl-C (SIGINT, exit 130) or SIGTERM (what SLURM sends at a time limit
  or ``scancel``, exit 143), after the same clean-up.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrmkit.core.base import SweepWorkflow, Workflow
from nrmkit.core.context import RunContext
from nrmkit.core.errors import ConfigError, NrmkitRuntimeError

_INVOCATION: contextvars.ContextVar[tuple[str, list[str]] | None] = contextvars.ContextVar(
    "nrmkit_invocation", default=None)


def set_invocation(program: str, arguments: list[str]) -> None:
    """Record the command line being run (the command-line layer calls this)."""
    _INVOCATION.set((program, list(arguments)))


def invocation() -> tuple[str, list[str]]:
    """``(program, arguments)`` of the command being run (for messages that repeat it)."""
    value = _INVOCATION.get()
    if value is None:
        return Path(sys.argv[0]).name, list(sys.argv[1:])
    return value


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


@dataclasses.dataclass
class SigtermState:
    """Whether SIGTERM arrived inside :func:`sigterm_raises`."""

    received: bool = False


@contextlib.contextmanager
def sigterm_raises():
    """Within the block SIGTERM raises :class:`Terminated` (once; a second one is ignored
    while the run cleans up), so that it ends a run as cleanly as Ctrl-C. Yields a
    :class:`SigtermState`: the exception can be lost where the signal lands in code that
    clears errors (a library's callback), so a run checks ``received`` before it writes its
    results."""
    state = SigtermState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state.received = True
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "cuda was requested but no CUDA device is available")
    return device


def _open_mode(workflow: Workflow, common: CommonOptions, array_task: bool) -> str:
    """How the run folder is opened (see :meth:`nrmkit.runs.rundir.RunDir.open`)."""
    if common.resume and not workflow.resumable:
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
    from nrmkit.runs.rundir import RunDir

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


class Stopped(Exception):
    """The run was stopped by Ctrl-C or SIGTERM.

    Attributes:
        message: one line, ending with the ``--resume`` command where something was kept.
        status: the exit status, 130 (SIGINT) or 143 (SIGTERM).
    """

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def run_workflow(workflow: Workflow, config: Any, common: CommonOptions, *,
                 executor: Any = None,
                 log: Callable[[str], None] = lambda message: None) -> dict[str, Any] | None:
    """Run ``workflow`` with a validated ``config``; write config, results, arrays, figures.

    ``executor`` (:class:`nrmkit.runs.sweep.ExecutorOptions`, sweep workflows only) says where
    the units run; in array-task mode the run folder may already hold other tasks' parts, its
    lock is held only while ``config.json`` is written, and no ``results.json`` is written
    (``nrmkit collect`` aggregates). Returns the results (None for one array task).

    Raises:
        ConfigError, NrmkitRuntimeError, Stopped: see the module docstring.
    """
    array_task = bool(getattr(executor, "array_task", False))
    device = resolve_device(common.device)
    run_dir = open_run(workflow, config, common, array_task=array_task, device=device)
    context = RunContext(
        run_dir=run_dir, device=device, dtype=common.dtype, seed=common.seed,
        progress=progress_factory(workflow.name, common.quiet), log=log,
        extras={} if executor is None else {"executor": executor},
    )
    try:
        with sigterm_raises() as sigterm:
            results = _run_in_folder(workflow, config, common, executor, context, sigterm)
    finally:
        run_dir.close()
    if run_dir.path is not None and results is not None:
        log(f"{workflow.name}: results in {Path(run_dir.path)}")
    return results


def _config_record(workflow: Workflow, config: Any, common: CommonOptions, executor: Any,
                   context: RunContext) -> dict[str, Any]:
    """``config.json``: every resolved option, versions, host, threads, the executor."""
    import torch

    from nrmkit.nn import native
    from nrmkit.runs.rundir import run_metadata

    run_dir = context.run_dir
    options = {**dataclasses.asdict(config), **dataclasses.asdict(common),
               "device": context.device}
    options["output_dir"] = str(run_dir.path) if run_dir.path is not None else None
    record = {"workflow": workflow.name, "options": options,
              "torch_threads": torch.get_num_threads(), "native_kernel": native.describe(),
              **run_metadata()}
    if executor is not None:
        record["executor"] = dataclasses.asdict(executor)
    return record


def compute(workflow: Workflow, config: Any, context: RunContext) -> dict[str, Any] | None:
    """The workflow's results: a sweep's units through its executor, else :meth:`run`."""
    if isinstance(workflow, SweepWorkflow) and workflow.is_sweep(config):
        from nrmkit.runs.sweep import run_sweep

        return run_sweep(workflow, config, context)
    return workflow.run(config, context)


def _run_in_folder(workflow: Workflow, config: Any, common: CommonOptions, executor: Any,
                   context: RunContext,
                   sigterm: SigtermState | None = None) -> dict[str, Any] | None:
    run_dir = context.run_dir
    started = time.perf_counter()
    try:
        if not (run_dir.mode == "array-task" and (run_dir.path / "config.json").exists()):
            run_dir.write_json("config.json",
                               _config_record(workflow, config, common, executor, context))
        if run_dir.mode == "array-task":
            run_dir.unlock()
        results = compute(workflow, config, context)
        if sigterm is not None and sigterm.received:     # its exception was lost on the way
            raise Terminated()
        if results is None:                     # one array task: parts only
            return None
        results = {**results, "elapsed_seconds": round(time.perf_counter() - started, 3)}
        run_dir.write_json("results.json", results)
        return results
    except ConfigError:          # found only once the data or a saved model is read
        _after_failure(run_dir, resumable=False)
        raise
    except NrmkitRuntimeError as error:
        kept = _after_failure(run_dir, workflow.resumable)
        if common.debug:
            raise
        raise NrmkitRuntimeError(f"{error}{kept}") from None
    except (KeyboardInterrupt, Terminated) as stop:
        kept = _after_failure(run_dir, workflow.resumable)
        what, status = (("Terminated (SIGTERM)", 143) if isinstance(stop, Terminated)
                        else ("Interrupted", 130))
        raise Stopped(f"{what}{kept or '; nothing was kept'}", status) from None
    except Exception as error:
        kept = _after_failure(run_dir, workflow.resumable)
        if common.debug:
            raise
        raise NrmkitRuntimeError(f"{describe_failure(error)}{kept}") from None


def describe_failure(error: Exception) -> str:
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

    from nrmkit.runs.rundir import read_run_record

    stored = read_run_record(folder)["options"]
    current = {**dataclasses.asdict(config), **dataclasses.asdict(common)}
    current = json.loads(json.dumps(current, default=list))
    free = RESUME_FREE_OPTIONS + workflow.resume_free_options
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


def progress_factory(name: str, quiet: bool):
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
            print(f"{self.label}: {percent:3d}% ({done}/{total} steps, {elapsed:.1f} s)",
                  file=sys.stderr, flush=True)
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
