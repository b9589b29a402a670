"""Click side of the harness: a validated config in, exit statuses and one-line errors out.

The run itself is :func:`nrmkit.runs.harness.run_workflow`; this module maps its exceptions
to click's (usage error → exit 2; a failed run → exit 1; Ctrl-C → 130; SIGTERM → 143).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from nrmkit.core.base import Workflow
from nrmkit.core.errors import ConfigError, NrmkitRuntimeError
from nrmkit.runs.harness import CommonOptions, Stopped, run_workflow
from nrmkit.runs.sweep import ExecutorOptions


def usage_error(error: ConfigError) -> click.UsageError:
    """The click usage error (exit 2) of ``error``: ``Invalid value for '--n': reason``."""
    return click.UsageError(f"Invalid value for '{error.option}': {error.reason}")


def build_config(config_class: type, **values: Any):
    """Construct a workflow config; validation errors become click usage errors."""
    try:
        return config_class(**values)
    except ConfigError as error:
        raise usage_error(error) from None


def execute(workflow: Workflow, config: Any, common: CommonOptions, *,
            executor: Any = None) -> dict[str, Any] | None:
    """Run ``workflow`` (:func:`~nrmkit.runs.harness.run_workflow`); errors as one line."""
    log = (lambda message: None) if common.quiet else (lambda m: click.echo(m, err=True))
    try:
        return run_workflow(workflow, config, common, executor=executor, log=log)
    except ConfigError as error:
        raise usage_error(error) from None
    except NrmkitRuntimeError as error:
        if common.debug:
            raise
        raise click.ClickException(str(error)) from None
    except Stopped as stop:
        click.echo(stop.message, err=True)
        raise click.exceptions.Exit(stop.status) from None


def run_command(workflow: Workflow, kwargs: dict[str, Any], *, sweep: bool = True,
                check: Callable[[Any, Any], None] | None = None) -> dict[str, Any] | None:
    """The body of every workflow command: split click's ``kwargs`` into the common options,
    the executor options (``sweep``) and the workflow's config (validated; repeated options
    as tuples), run ``check(config, executor)`` if given, then :func:`execute`. A
    :class:`~nrmkit.core.errors.ConfigError` anywhere is a usage error naming the option."""
    common = CommonOptions.pop_from(kwargs)
    executor = ExecutorOptions.pop_from(kwargs) if sweep else None
    values = {name: tuple(value) if isinstance(value, list) else value
              for name, value in kwargs.items()}
    config = build_config(workflow.config_class, **values)
    if check is not None:
        check(config, executor)
    return execute(workflow, config, common, executor=executor)
