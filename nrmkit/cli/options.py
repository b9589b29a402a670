"""Shared click options and the command class every nrmkit console script uses.

* Every option keeps its historical underscored name (``--n_samples``) and gets a dashed
  alias (``--n-samples``) and an environment variable ``NRMKIT_<NAME>`` (``NRMKIT_N_SAMPLES``)
  for batch scripts. Precedence: command line > environment > ``--config`` file > default.
* ``--config FILE`` reads defaults from a TOML file: top-level keys, and a table named
  after the command (``[transition_2_chaos]``) whose keys win over the top-level ones;
  tables named after other workflows are skipped, any other table, an unknown key or a
  value of the wrong kind is refused; dashes and underscores are equivalent.
* Errors are one line on stderr: exit status 2 for usage errors, 1 for failed runs.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from nrmkit.core.errors import ConfigError
from nrmkit.core.registry import WORKFLOW_SUMMARIES
from nrmkit.runs.harness import describe_failure, set_invocation
from nrmkit.runs.sweep import EXECUTORS

ENV_PREFIX = "NRMKIT_"
#: the largest value an integer option takes: every count, size or index of nrmkit fits
#: (a larger one is a typo, and would overflow the int32/int64 of an allocator first).
MAX_INT = 2**31 - 1
#: seeds are 32-bit (the entropy of every stream, :mod:`nrmkit.core.streams`).
MAX_SEED = 2**32 - 1


def _param_name(declaration: str) -> str:
    return declaration.lstrip("-").replace("-", "_")


def option(*declarations: str, **kwargs: Any) -> Callable:
    """``click.option`` with dashed aliases and an ``NRMKIT_<NAME>`` environment variable."""
    names: list[str] = []
    for declaration in declarations:
        if declaration not in names:
            names.append(declaration)
        if declaration.startswith("--") and "_" in declaration:
            alias = declaration.replace("_", "-")
            alias = "--" + alias[2:]
            if alias not in names:
                names.append(alias)
    explicit = [d for d in declarations if not d.startswith("-")]
    long_names = [d for d in declarations if d.startswith("--") and "/" not in d]
    param = explicit[0] if explicit else (_param_name(long_names[0]) if long_names else None)
    if param is not None:
        kwargs.setdefault("envvar", f"{ENV_PREFIX}{param.upper()}")
        if not explicit:
            names.append(param)
    kwargs.setdefault("show_default", True)
    if kwargs.get("type") is int:
        kwargs["type"] = click.IntRange(max=MAX_INT)
    return click.option(*names, **kwargs)


class RegistryChoice(click.Choice):
    """A choice among a registry's canonical names that also accepts its aliases.

    ``--help`` lists the canonical names; an alias (e.g. ``std``) converts to its canonical
    name (``tanh``).
    """

    def __init__(self, registry: Any):
        super().__init__(registry.names(), case_sensitive=False)
        self.registry = registry

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and value in self.registry:
            return self.registry.canonical(value)
        return super().convert(value, param, ctx)


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(value, "rb") as handle:
            table = tomllib.load(handle)
    except OSError as error:
        raise click.BadParameter(f"cannot read {value}: {error.strerror}", ctx, param) from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{value} is not a UTF-8 text file (TOML must be)", ctx,
                                 param) from None
    except tomllib.TOMLDecodeError as error:
        raise click.BadParameter(f"{value} is not valid TOML: {error}", ctx, param) from None
    command_name = (ctx.info_name or "").replace("-", "_")
    params = {p.name: p for p in ctx.command.params if p.name}
    defaults: dict[str, Any] = {}
    for key, item in _config_entries(table, command_name, params, value, ctx, param):
        name = key.replace("-", "_")
        if name not in params or name == "config":
            raise click.BadParameter(f"unknown option {key!r} in {value}", ctx, param)
        _check_toml_value(params[name], key, item, value, ctx, param)
        defaults[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def _config_entries(table: dict[str, Any], command_name: str, params: dict[str, Any],
                    source: str, ctx: click.Context, param: click.Parameter
                    ) -> list[tuple[str, Any]]:
    """The ``(key, value)`` pairs of a ``--config`` file for ``command_name``: its top-level
    keys, then its ``[command_name]`` table's (which win). Tables named after other
    workflows are skipped; any other table is refused, so that a misspelt table name or a
    table given to an option does not pass unnoticed."""
    own = table.get(command_name)
    own = own if isinstance(own, dict) else {}
    for key, item in table.items():
        if not isinstance(item, dict) or key == command_name:
            continue
        name = key.replace("-", "_")
        if name in params:
            reason = f"{key} = {{…}} in {source}: a value is needed, not a table"
        elif name in WORKFLOW_SUMMARIES:
            continue                                   # a table for another workflow
        else:
            reason = (f"unknown table [{key}] in {source}: tables are named after a workflow "
                      f"(here [{command_name}])")
        raise click.BadParameter(reason, ctx, param)
    top = [(key, item) for key, item in table.items() if not isinstance(item, dict)]
    return top + list(own.items())


def _check_toml_value(target: click.Parameter, key: str, item: Any, source: str,
                      ctx: click.Context, param: click.Parameter) -> None:
    """Refuse what the command line would refuse but click's conversion of a default would
    let through or fail on with a traceback: a list for an option that takes one value, a
    date or time, a float for an integer option (``n = 20.7`` would become 20), a boolean
    for a number."""
    several = getattr(target, "multiple", False) or (getattr(target, "nargs", 1) or 1) != 1
    if isinstance(item, list) and not several:
        raise click.BadParameter(f"{key} = {item!r} in {source}: one value is needed, "
                                 "not a list", ctx, param)
    items = item if isinstance(item, list) else [item]
    integer = isinstance(target.type, click.types.IntParamType)
    number = integer or isinstance(target.type, click.types.FloatParamType)
    for entry in items:
        if isinstance(entry, (list, dict, datetime.date, datetime.time)):
            reason = "a number, a string or a boolean is needed"
        elif number and isinstance(entry, bool):
            reason = "a number is needed, not a boolean"
        elif integer and isinstance(entry, float):
            reason = "an integer is needed"
        else:
            continue
        shown = entry.isoformat() if isinstance(entry, (datetime.date, datetime.time)) \
            else repr(entry)
        raise click.BadParameter(f"{key} = {shown} in {source}: {reason}", ctx, param)


def common_options(function: Callable) -> Callable:
    """The options every workflow shares (see the module docstring)."""
    decorators = [
        click.option(
            "--config", "config", type=click.Path(dir_okay=False), is_eager=True,
            expose_value=False, callback=_load_config, envvar=f"{ENV_PREFIX}CONFIG",
            help="TOML file of option defaults (keys are option names).",
        ),
        option("--seed", type=click.IntRange(0, MAX_SEED), default=0,
               help="Seed of every random draw (0 … 2³² − 1)."),
        option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
               help="Where tensors live; auto = cuda if available."),
        option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
               help="Floating-point precision of the simulation."),
        option("--output-dir", "--output_dir", type=click.Path(file_okay=False), default=None,
               show_default=False,
               help="Write the run exactly here (default: data/runs/<workflow>/<timestamp>, "
                    "or $NRMKIT_RUNS_DIR)."),
        option("--overwrite", is_flag=True, default=False,
               help="Replace a previous nrmkit run in --output-dir (only files nrmkit "
                    "wrote are deleted; anything else is refused)."),
        option("--save", type=click.BOOL, default=True,
               help="Write the run folder (false: print the results only, write nothing)."),
        option("--memory-limit", "--memory_limit", type=float, default=None,
               show_default="memory available", help="Refuse runs estimated to need more "
               "than this many GiB (a larger value overrides the check; inf turns it off)."),
        option("--quiet", is_flag=True, default=False, help="Print only errors."),
        option("--debug", is_flag=True, default=False,
               help="Show the full traceback of a failure."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


class OneLineErrors:
    """Mixin for click commands: usage errors and failures as one line on stderr.

    Exit status 2 for usage errors (bad options), 1 for failed runs, 130 on Ctrl-C, 143 on
    SIGTERM (see :mod:`nrmkit.cli.runner`).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        program = prog_name or Path(sys.argv[0]).name
        set_invocation(program, list(sys.argv[1:] if args is None else args))
        try:
            value = super().main(args, prog_name, complete_var, False, **extra)
        except ConfigError as error:        # an option checked outside click's parsing
            click.echo(f"Error: Invalid value for '{error.option}': {error.reason}", err=True)
            sys.exit(2)
        except click.UsageError as error:
            click.echo(f"Error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"Error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(value if isinstance(value, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Click turns an ``EOFError`` into "Aborted!", as if the user had pressed Ctrl-C (a
        truncated file read by a library raises one): here it is a failed run (exit 1).
        Ctrl-C before a run has set its own handlers: one line "Aborted.", exit 130."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise click.Abort() from None
        except EOFError as error:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(describe_failure(error)) from None


class Command(OneLineErrors, click.Command):
    """A click command with one-line errors."""


class Group(OneLineErrors, click.Group):
    """A click group with one-line errors."""


def executor_options(function: Callable) -> Callable:
    """Click options of :class:`ExecutorOptions` and ``--resume`` (every sweep takes them)."""
    decorators = [
        option("--executor", type=click.Choice(EXECUTORS), default="serial",
               help="Where the units run: here, local subprocesses, or SLURM array jobs."),
        option("--jobs", type=int, default=None, show_default="1 serial, else one per unit "
               "up to 32", help="Number of chunks (jobs) the units are split into."),
        option("--task_index", type=int, default=None, show_default="$SLURM_ARRAY_TASK_ID",
               help="Array-task mode: the chunk this process runs (with --task_count)."),
        option("--task_count", type=int, default=None,
               help="Array-task mode: run one chunk of this many and leave the aggregation "
                    "to `nrmkit collect`."),
        option("--slurm_partition", type=str, default=None, help="SLURM partition."),
        option("--slurm_time", type=int, default=60, help="SLURM time limit per job (min)."),
        option("--slurm_gpus", type=int, default=0, help="GPUs per SLURM job."),
        option("--slurm_cpus", type=int, default=None, help="CPUs per SLURM job."),
        option("--slurm_array_parallelism", type=int, default=None,
               help="At most this many SLURM array jobs at once."),
        option("--slurm_setup", type=str, multiple=True, default=(),
               help="A line for the job script before the run (repeatable), e.g. "
                    "'module load cuda'."),
        option("--resume", is_flag=True, default=False,
               help="Continue the sweep in --output-dir: finished units are not recomputed."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function
