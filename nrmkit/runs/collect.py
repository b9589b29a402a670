"""Aggregate the parts that array tasks wrote into ``results.json``.

The run folder's ``config.json`` names the workflow and holds every option; the parts are
``parts/<fingerprint>/unit-*.npz`` (:mod:`nrmkit.runs.sweep`). Missing units are named and
nothing is written (exit 1); otherwise the results, arrays and figures are exactly those of a
serial run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

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
    from nrmkit.core.base import SweepWorkflow
    from nrmkit.core.context import RunContext
    from nrmkit.core.registry import EXPERIMENTS
    from nrmkit.runs.harness import progress_factory
    from nrmkit.runs.rundir import RunDir, read_run_record
    from nrmkit.runs.sweep import finished_units, parts_folder, read_parts, unit_ranges

    run_dir = RunDir.open(path, workflow=None, mode="collect", option="RUN_DIR")
    try:
        record = read_run_record(run_dir.path)
        name = record["workflow"]
        if not isinstance(name, str) or name not in EXPERIMENTS:
            raise DataError(f"{run_dir.path / 'config.json'} names no nrmkit workflow "
                            f"({name!r})")
        workflow = EXPERIMENTS.get(name)()
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
                f"{unit_ranges(missing)} (rerun their array tasks, or the sweep with --resume)")
        context = RunContext(run_dir=run_dir, device=options.get("device", "cpu"),
                             dtype=options.get("dtype", "float32"),
                             seed=options.get("seed", 0),
                             progress=progress_factory(name, True), log=log)
        started = time.perf_counter()
        results = workflow.aggregate(config, context, read_parts(folder, n_units))
        results = {**results, "elapsed_seconds": round(time.perf_counter() - started, 3)}
        run_dir.write_json("results.json", results)
    finally:
        run_dir.close()
    return results
