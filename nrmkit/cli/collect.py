"""``nrmkit collect RUN_DIR``: aggregate the parts that array tasks wrote into ``results.json``.

The run folder's ``config.json`` names the workflow and holds every option; the parts are
``parts/<fingerprint>/unit-*.npz`` (:mod:`nrmkit.cli.sweep`). Missing units are named and nothing is
written (exit 1); otherwise the results, arrays and figures are exactly those of a serial run.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from pathlib import Path
from typing import Any

import click

from nrmkit.cli.options import Command, option
from nrmkit.core.errors import ConfigError, NrmkitRuntimeError


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
    """Aggregate the sweep in ``path``; returns the results (also written to the folder)."""
    from nrmkit.cli.runner import RunContext, _progress_factory
    from nrmkit.cli.sweep import finished_units, parts_folder, read_parts
    from nrmkit.core.base import SweepWorkflow
    from nrmkit.core.rundir import RunDir

    path = Path(path)
    record_path = path / "config.json"
    if not record_path.is_file():
        raise ConfigError("RUN_DIR", f"{path} holds no config.json: not an nrmkit run folder")
    record = json.loads(record_path.read_text())
    name = record.get("workflow", "")
    try:
        workflow = importlib.import_module(f"nrmkit.workflows.{name}").WORKFLOW
    except (ModuleNotFoundError, AttributeError):
        raise ConfigError("RUN_DIR", f"{name or 'this workflow'} runs have no parts to "
                                     "collect") from None
    if not isinstance(workflow, SweepWorkflow):
        raise ConfigError("RUN_DIR", f"{name} runs have no parts to collect")
    options = record["options"]
    config = config_from_options(workflow.config_class, options)
    if not workflow.is_sweep(config):
        raise ConfigError("RUN_DIR", f"this {name} run is not split into parts; nothing to "
                                     "collect")
    n_units = workflow.n_units(config)
    folder = parts_folder(path, config, options.get("seed", 0), options.get("dtype", "float32"))
    missing = sorted(set(range(n_units)) - finished_units(folder, n_units))
    if missing:
        from nrmkit.cli.sweep import _ranges

        raise NrmkitRuntimeError(
            f"{len(missing)} of {n_units} {workflow.unit_name}(s) missing in {path}: "
            f"{_ranges(missing)} (rerun their array tasks, or the sweep with --resume)")
    context = RunContext(run_dir=RunDir(path), device=options.get("device", "cpu"),
                         dtype=options.get("dtype", "float32"), seed=options.get("seed", 0),
                         progress=_progress_factory(name, True), log=log)
    started = time.perf_counter()
    results = workflow.aggregate(config, context, read_parts(folder, n_units))
    results = {**results, "elapsed_seconds": round(time.perf_counter() - started, 3)}
    context.run_dir.write_json("results.json", results)
    return results


@click.command("collect", cls=Command)
@click.argument("run_dir", type=click.Path(file_okay=False))
@option("--quiet", is_flag=True, default=False, help="Print only errors.")
def collect(run_dir: str, quiet: bool) -> None:
    """Aggregate the parts of an array-task sweep in RUN_DIR into its results.json.

    Example: nrmkit collect data/runs/t2c_array
    """
    log = (lambda message: None) if quiet else (lambda m: click.echo(m, err=True))
    try:
        collect_run(run_dir, log=log)
    except ConfigError as error:
        raise click.UsageError(f"Invalid value for '{error.option}': {error.reason}") from None
    except NrmkitRuntimeError as error:
        raise click.ClickException(str(error)) from None
    log(f"collect: results in {run_dir}")
