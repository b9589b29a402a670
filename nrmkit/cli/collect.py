"""``nrmkit collect RUN_DIR``: aggregate the parts array tasks wrote
(:mod:`nrmkit.runs.collect`)."""

from __future__ import annotations

import click

from nrmkit.cli.options import Command, option
from nrmkit.core.errors import ConfigError, NrmkitRuntimeError


@click.command("collect", cls=Command)
@click.argument("run_dir", type=click.Path(file_okay=False))
@option("--quiet", is_flag=True, default=False, help="Print only errors.")
@option("--debug", is_flag=True, default=False, help="Show the full traceback of a failure.")
def collect(run_dir: str, quiet: bool, debug: bool) -> None:
    """Aggregate the parts of an array-task sweep in RUN_DIR into its results.json.

    Example: nrmkit collect data/runs/t2c_array
    """
    from nrmkit.cli.runner import usage_error
    from nrmkit.runs.collect import collect_run
    from nrmkit.runs.harness import describe_failure, sigterm_raises

    log = (lambda message: None) if quiet else (lambda m: click.echo(m, err=True))
    try:
        with sigterm_raises():
            collect_run(run_dir, log=log)
    except ConfigError as error:
        raise usage_error(error) from None
    except NrmkitRuntimeError as error:
        if debug:
            raise
        raise click.ClickException(str(error)) from None
    except Exception as error:
        if debug:
            raise
        raise click.ClickException(describe_failure(error)) from None
    log(f"collect: results in {run_dir}")
