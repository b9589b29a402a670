"""``smnist_grid``: the smnist task over a grid of fixed gamma shape parameters (n, s).

Every grid point is one unit of a sweep: the single ``smnist`` run with ``--no-random
--gain n --saturation s`` (:func:`~nrmkit.experiments.sequences.single_run.run_single`,
the same code, the same seed ``--seed`` for every point, so that the points differ only by
the shape of the nonlinearity
``γ(x; n, s) = (1 − s)·softplus(nx)/n + s·σ(nx)``). By default the pixels are permuted
(``-p``, psMNIST), the shape stays fixed (``--no-learn_params``) and the nonlinearity is
``gamma`` (one (n, s) for the layer), as in the published grid of trained networks (psMNIST;
gains 1, 2.5, …, 20; saturations 0, 0.25, …, 1).

Unit ``k`` is the point ``(gains[k // S], saturations[k % S])`` (S saturations); it is
written in full (checkpoint, ``model.pt``, figures, its own ``config.json`` of an
``smnist`` run and ``results.json``) into ``grid/n-<n>_s-<s>/``, so ``smnist --test --model
RUN/grid/n-<n>_s-<s>`` re-tests it. The points train here, in local subprocesses or as one
SLURM job array (``--executor``, ``--jobs``, ``--slurm_*``; array tasks with
``--task_count``/``--task_index`` and ``nrmkit collect``); ``--resume`` keeps finished
points and continues an interrupted one from its checkpoint.

results.json: test accuracies (clean, sine gain, step drive) and loss as ``(n, s)``
matrices, per point records, the best point (keys documented on
``docs/workflows/smnist_grid.md``). Arrays: ``grid.npz``. Figure: ``accuracy_grid`` (heat
map of the clean test accuracy over gain n and saturation s).

Reference: Geadah, Kerg, Horoi, Wolf & Lajoie, "Advantages of biologically-inspired adaptive
neural activation in RNNs during learning" (2020).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from nrmkit.core.base import IncrementalSweep
from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.sequences.memory import smnist_memory_terms
from nrmkit.experiments.sequences.smnist import SEED_SCORES, SmnistConfig
from nrmkit.runs.sweep import PARTS_DIR

#: the published grid (``MI_calculation.py``): gains n and saturations s.
GRID_GAINS = (1.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0)
GRID_SATURATIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: the points of a grid are written into ``grid/n-<n>_s-<s>/``.
GRID_DIR = "grid"


@dataclass(frozen=True)
class SmnistGridConfig(SmnistConfig):
    """The options of ``smnist`` (each point's) and the grid ``gains`` × ``saturations``."""

    permute: bool = True
    nonlin: str = "gamma"
    random: bool = False
    learn_params: bool = False
    fractional_order: bool = False
    gains: tuple[float, ...] = GRID_GAINS
    saturations: tuple[float, ...] = GRID_SATURATIONS

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "gains", tuple(float(n) for n in self.gains))
        object.__setattr__(self, "saturations", tuple(float(s) for s in self.saturations))
        check(self.net_type == "RNN" and self.nonlin in ("gamma", "gamma2"), "--nonlin",
              "the grid is over the shape of the gamma nonlinearity: use --net-type RNN "
              "with --nonlin gamma or gamma2")
        check(len(self.gains) > 0, "--gains", "give at least one gain")
        check(len(self.saturations) > 0, "--saturations", "give at least one saturation")
        check(len(set(self.gains)) == len(self.gains), "--gains", "repeated gain")
        check(len(set(self.saturations)) == len(self.saturations), "--saturations",
              "repeated saturation")
        for n in self.gains:
            check_finite(n, "--gains")
            check(n > 0, "--gains", f"the gain n must be positive, got {n}")
        for s in self.saturations:
            check_finite(s, "--saturations")
            check(0 <= s <= 1, "--saturations", f"the saturation s must lie in [0, 1], got {s}")

    def point(self, unit: int) -> tuple[float, float]:
        """``(n, s)`` of unit ``unit``: gains vary slowest."""
        return (self.gains[unit // len(self.saturations)],
                self.saturations[unit % len(self.saturations)])

    def single_run(self, unit: int) -> SmnistConfig:
        """The ``smnist`` configuration of unit ``unit`` (``--no-random --gain n
        --saturation s``, every other option as given)."""
        n, s = self.point(unit)
        names = [field.name for field in dataclasses.fields(SmnistConfig)]
        values = {name: getattr(self, name) for name in names}
        return SmnistConfig(**{**values, "gain": n, "saturation": s, "random": False,
                               "n_seeds": 1, "test": False, "model": None})


def point_folder(n: float, s: float) -> str:
    """Where the point ``(n, s)`` writes its single run, relative to the grid's folder."""
    return f"{GRID_DIR}/n-{n:g}_s-{s:g}"


class SmnistGrid(IncrementalSweep):
    """The smnist task at every point of a grid of fixed gamma shapes (units: the points)."""

    name = "smnist_grid"
    config_class = SmnistGridConfig
    unit_name = "grid point"
    unit_option = "--gains"
    resumable = True
    resume_free_options = ("epochs", "lyapunov", "lyapunov_steps", "lyapunov_samples",
                           "fractional_order", "note", "save_freq")

    def n_units(self, config: SmnistGridConfig) -> int:
        return len(config.gains) * len(config.saturations)

    def memory_terms(self, config: SmnistGridConfig, *, itemsize: int) -> list:
        """One point at a time: the terms of one smnist run."""
        return smnist_memory_terms(config, itemsize=itemsize)

    def iter_units(self, config: SmnistGridConfig, context, units: list[int]):
        """One piece per point, stored as soon as the point is tested."""
        for unit in units:
            yield [unit], self._run_point(config, context, unit)

    def _run_point(self, config: SmnistGridConfig, context, unit: int) -> dict:
        import json
        import time

        import numpy as np

        from nrmkit.experiments.sequences.single_run import run_single
        from nrmkit.runs.rundir import to_jsonable

        n, s = config.point(unit)
        context.log(f"smnist_grid: n = {n:g}, s = {s:g} ({unit + 1} of "
                    f"{self.n_units(config)}) in {point_folder(n, s)}")
        started = time.perf_counter()
        single = config.single_run(unit)
        run_dir = _point_run_dir(context, single, n, s)
        point_context = dataclasses.replace(
            context, progress=lambda label: context.progress(f"n={n:g}, s={s:g}: {label}"))
        results = run_single(single, point_context, context.seed, run_dir)
        run_dir.write_json("results.json", {
            **results, "elapsed_seconds": round(time.perf_counter() - started, 3)})
        record = {key: results[key] for key in ("n_parameters", "model", "data", "epochs")}
        return {"gain": np.array([n]), "saturation": np.array([s]),
                **{name: np.array([float(results[name])]) for name in SEED_SCORES},
                "record": np.array([json.dumps(to_jsonable(record))])}

    def aggregate(self, config: SmnistGridConfig, context, arrays) -> dict:
        """The ``(n, s)`` matrices of the scores, ``grid.npz`` and the heat map."""
        import json

        import numpy as np

        from nrmkit.experiments.sequences.analyses import describe_run
        from nrmkit.plotting.nonlinmod import grid_heatmap

        shape = (len(config.gains), len(config.saturations))
        scores = {name: np.asarray(arrays[name], dtype=float).reshape(shape)
                  for name in SEED_SCORES}
        first = json.loads(str(arrays["record"][0]))
        per_point = [{"gain": float(n), "saturation": float(s),
                      **{name: float(arrays[name][k]) for name in SEED_SCORES},
                      "run_dir": point_folder(float(n), float(s))}
                     for k, (n, s) in enumerate(zip(arrays["gain"], arrays["saturation"],
                                                    strict=True))]
        best = int(np.argmax(np.asarray(arrays["test_accuracy"], dtype=float)))
        context.run_dir.write_arrays("grid.npz", gains=np.asarray(config.gains),
                                     saturations=np.asarray(config.saturations), **scores)
        title = f"smnist_grid: {describe_run(first['model'], first['data'])}"
        context.run_dir.save_figure(grid_heatmap(
            np.asarray(config.gains), np.asarray(config.saturations),
            100.0 * scores["test_accuracy"], label="test accuracy (%)", title=title),
            "accuracy_grid")
        context.log(f"smnist_grid: best test accuracy {100 * per_point[best]['test_accuracy']:.2f}"
                    f" % at n = {per_point[best]['gain']:g}, s = "
                    f"{per_point[best]['saturation']:g}")
        return {"gains": list(config.gains), "saturations": list(config.saturations),
                **{name: value.tolist() for name, value in scores.items()},
                "per_point": per_point,
                "best": {key: per_point[best][key]
                         for key in ("gain", "saturation", "test_accuracy")},
                "n_parameters": first["n_parameters"], "model": first["model"],
                "data": first["data"]}


def _point_run_dir(context, single: SmnistConfig, n: float, s: float):
    """The run folder of the point ``(n, s)`` inside the grid's, with the ``config.json``
    of the ``smnist`` run it is (so ``smnist --test --model`` accepts it)."""
    import json

    from nrmkit.runs.rundir import RunDir, run_metadata, to_jsonable

    if context.run_dir.path is None:
        return context.run_dir
    grid_path = Path(context.run_dir.path)
    # kept after a failure or Ctrl-C, so --resume finds an interrupted point's checkpoint
    (grid_path / PARTS_DIR).mkdir(exist_ok=True)
    run_dir = RunDir(grid_path / point_folder(n, s))
    grid_record = grid_path / "config.json"
    record = (json.loads(grid_record.read_text()) if grid_record.is_file()
              else {"options": {}, **run_metadata()})
    record.pop("executor", None)
    options = {key: value for key, value in record["options"].items()
               if key not in ("gains", "saturations")}
    record.update(workflow="smnist", grid={"run_dir": str(grid_path), "gain": n,
                                             "saturation": s})
    record["options"] = {**options, **to_jsonable(dataclasses.asdict(single)),
                         "seed": context.seed, "output_dir": str(run_dir.path)}
    run_dir.write_json("config.json", record)
    return run_dir
