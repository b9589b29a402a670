"""``nrmkit collect RUN_DIR``: aggregate the parts that array tasks wrote into ``results.json``.

The run folder's ``config.json`` names the workflow and holds every option; the parts are
``parts/<fingerprint>/unit-*.npz`` (:mod:`nrmkit.cli.sweep`). Missing units are named and nothing is
written (exit 1); otherwise the results, arrays and figures are exactly those of a serial run.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any

import click

from nrmkit.cli.options import Command, option
from nrmkit.core.errors import ConfigError, DataError, NrmkitRuntimeError


def config_from_options(config_class: type, options: dict[str, Any]) -> Any:
    """Rebuild a workflow config from ``config.json``'s options (JSON lists → tuples)."""
    values = {}
    for field in dataclasses.fields(config_class):
        if field.name not in options:
            continue
        value = options[field.name]
        if isinstance(value, list):
            value = tuple(value)
        values[field.name] = value
    return config_class(**values)


def collect_run(path: str | Path, *, log=lambda message: None) -> dict[str, Any]:
    """Aggregate the sweep in ``path``; returns the results (also written to the folder).

    Holds the run folder's lock while it reads the parts and writes the results (waiting
    briefly for an array task that writes ``config.json``; a run in progress is refused).
    """
    from nrmkit.cli.runner import RunContext, _progress_factory
    from nrmkit.cli.sweep import _ranges, finished_units, parts_folder, read_parts
    from nrmkit.core.base import SweepWorkflow
    from nrmkit.core.registry import WORKFLOWS
    from nrmkit.core.rundir import RunDir, read_run_record

    run_dir = RunDir.open(path, workflow=None, mode="collect", option="RUN_DIR")
    try:
        record = read_run_record(run_dir.path)
        name = record["workflow"]
        if name not in WORKFLOWS:
            raise DataError(f"{run_dir.path / 'config.json'} names no nrmkit workflow "
                            f"({name!r})")
        try:
            workflow = importlib.import_module(f"nrmkit.workflows.{name}").WORKFLOW
        except (ModuleNotFoundError, AttributeError):
            raise ConfigError("RUN_DIR", f"{name or 'this workflow'} runs have no parts to "
                                         "collect") from None
        if not isinstance(workflow, SweepWorkflow):
            raise ConfigError("RUN_DIR", f"{name} runs have no parts to collect")
        options = record["options"]
        try:
            config = config_from_options(workflow.config_class, options)
        except (ConfigError, TypeError, ValueError) as error:
            raise DataError(f"{run_dir.path / 'config.json'} holds options this nrmkit "
                            f"cannot use ({error})") from None
        if not workflow.is_sweep(config):
            raise ConfigError("RUN_DIR", f"this {name} run is not split into parts; nothing "
                                         "to collect")
        n_units = workflow.n_units(config)
        folder = parts_folder(run_dir.path, config, options.get("seed", 0),
                              options.get("dtype", "float32"))
        missing = sorted(set(range(n_units)) - finished_units(folder, n_units))
        if missing:
            raise NrmkitRuntimeError(
                f"{len(missing)} of {n_units} {workflow.unit_name}(s) missing in {path}: "
                f"{_ranges(missing)} (rerun their array tasks, or the sweep with --resume)")
        context = RunContext(run_dir=run_dir, device=options.get("device", "cpu"),
                             dtype=options.get("dtype", "float32"),
                             seed=options.get("seed", 0),
                             progress=_progress_factory(name, True), log=log)
        started = time.perf_counter()
        results = workflow.aggregate(config, context, read_parts(folder, n_units))
        results = {**results, "elapsed_seconds": round(time.perf_counter() - started, 3)}
        run_dir.write_json("results.json", results)
    finally:
        run_dir.close()
    return results


@click.command("collect", cls=Command)
@click.argument("run_dir", type=click.Path(file_okay=False))
@option("--quiet", is_flag=True, default=False, help="Print only errors.")
@option("--debug", is_flag=True, default=False, help="Show the full traceback of a failure.")
def collect(run_dir: str, quiet: bool, debug: bool) -> None:
    """Aggregate the parts of an array-task sweep in RUN_DIR into its results.json.

    Example: nrmkit collect data/runs/t2c_array
    """
    from nrmkit.cli.runner import _describe_failure, sigterm_raises, usage_error

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
        raise click.ClickException(_describe_failure(error)) from None
    log(f"collect: results in {run_dir}")
