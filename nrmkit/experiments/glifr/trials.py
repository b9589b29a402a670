"""One GLIFR trial: the task data, a model drawn from the trial's streams, training with
checkpoints, the test metric, silencing and the sine read-outs."""

from __future__ import annotations

from pathlib import Path

from nrmkit.core.errors import ConfigError, DataError

VARIANTS = {"hom": (False, False), "lhet": (True, False), "fhet": (False, True),
            "rhet": (True, True)}   # (learn neuronal parameters, heterogeneous init)


CELLS = {"glifr": "GLIFR", "rnn": "RNN", "lstm": "LSTM"}


#: frames of the nmnist task (each ``--dt`` ms long, published: 15 of 1 ms).
NMNIST_FRAMES = 15


def task_data(config, context) -> dict:
    """The task's ``train``/``validation``/``test`` pairs (time-first inputs) on the run's
    device and dtype, with ``inputs``, ``outputs`` (sizes) and ``mode``."""
    import torch

    dtype, device = context.torch_dtype, context.device
    if config.task == "sine":
        from nrmkit.datasets.sine import sine_task

        inputs, targets, frequencies = sine_task(dt=config.dt)
        pair = (torch.as_tensor(inputs, dtype=dtype, device=device),
                torch.as_tensor(targets, dtype=dtype, device=device))
        return {"train": pair, "validation": pair, "test": pair, "inputs": 1, "outputs": 1,
                "mode": "sine", "frequencies": frequencies}
    if config.task == "nmnist":
        from nrmkit.datasets.nmnist import load_nmnist_splits

        data = load_nmnist_splits(config.data_dir, n_frames=NMNIST_FRAMES,
                                  frame_ms=config.dt, dtype=dtype, device=device)
        return {**data, "inputs": int(data["train"][0].shape[-1]), "outputs": 10,
                "mode": "events"}
    from nrmkit.datasets.digit_sequences import load_splits, sequence_tensors

    mode = "rows" if config.task == "lmnist" else "pixels"
    data = sequence_tensors(load_splits(config.dataset, config.data_dir), input_mode=mode,
                            dtype=dtype, device=device)
    return {**data, "inputs": int(data["train"][0].shape[-1]), "outputs": 10, "mode": mode}


def task_sizes(config) -> tuple[int, int]:
    """``(inputs, outputs)`` of the task's sequences, without loading them."""
    if config.task == "sine":
        return 1, 1
    if config.task == "nmnist":
        from nrmkit.datasets.nmnist import N_INPUTS

        return N_INPUTS, 10
    from nrmkit.training.sequence_memory import sequence_shape

    return sequence_shape(config.dataset, "rows" if config.task == "lmnist" else "pixels")[1], 10


def task_shape(config, *, itemsize: int) -> dict:
    """Sizes of the task before loading it: ``steps``, ``inputs``, ``outputs``, number of
    ``sequences`` and the memory ``terms`` of its data (images and sequences; N-MNIST: its
    files counted in ``--data-dir``, ``T·2312`` values each)."""
    from nrmkit.core.base import MemoryTerm

    if config.task == "sine":
        from nrmkit.datasets.sine import N_FREQUENCIES, N_STEPS

        return {"steps": N_STEPS, "inputs": 1, "outputs": 1, "sequences": N_FREQUENCIES,
                "terms": []}
    if config.task == "nmnist":
        from nrmkit.datasets.nmnist import N_INPUTS, list_samples

        files = sum(len(list_samples(config.data_dir, split)[0]) for split in ("train", "test"))
        size = files * NMNIST_FRAMES * N_INPUTS * (1 + 2 * itemsize)
        return {"steps": NMNIST_FRAMES, "inputs": N_INPUTS, "outputs": 10, "sequences": files,
                "terms": [MemoryTerm("--data-dir", size, f"the {files:,} N-MNIST samples as "
                                                           f"{NMNIST_FRAMES} frames")]}
    from nrmkit.training.sequence_memory import DATASET_SIZES, sequence_shape

    steps, inputs = sequence_shape(config.dataset,
                                   "rows" if config.task == "lmnist" else "pixels")
    (height, width), n_sequences = DATASET_SIZES[config.dataset]
    size = n_sequences * height * width * (8 + itemsize)
    return {"steps": steps, "inputs": inputs, "outputs": 10, "sequences": n_sequences,
            "terms": [MemoryTerm("--dataset", size, f"the {n_sequences:,} {config.dataset} "
                                                    "images and their sequences")]}


#: the files of a trained GLIFR run that heterogeneous initialisations draw from: the
#: neuron parameters (``nrmkit.nn.glifr.NEURON_PARAMETERS``) and these weights.
LHET_FILES = ("neuron_parameters.npz", "weights.npz")
WEIGHTS = ("weight_in", "weight_lat")


def lhet_trials(run: str) -> list[dict]:
    """The learned neuron parameters and weights of every trial of the lhet run ``run``.

    Raises:
        ConfigError: naming ``--lhet_run``: one of :data:`LHET_FILES` is unreadable (arrays
            of objects are refused), holds no trial, lacks an array, holds arrays of
            different trial counts, or holds non-finite values.
    """
    import torch

    from nrmkit.nn.glifr import NEURON_PARAMETERS

    stored = {}
    for name, expected in zip(LHET_FILES, (NEURON_PARAMETERS, WEIGHTS), strict=True):
        stored.update(_read_trials(Path(run) / name, expected))
    counts = {len(array) for array in stored.values()}
    if len(counts) != 1:
        raise ConfigError("--lhet_run", f"{run}: its arrays hold different numbers of trials "
                                        f"({sorted(counts)})")
    return [{name: torch.as_tensor(array[trial]) for name, array in stored.items()}
            for trial in range(counts.pop())]


def _read_trials(path: Path, expected: tuple[str, ...]) -> dict:
    """The arrays ``expected`` of the archive ``path``, one row per trial, all finite."""
    import zipfile

    import numpy as np

    from nrmkit.training.checkpoint import require_finite

    try:
        handle = path.open("rb")
    except OSError as error:
        raise ConfigError("--lhet_run", f"cannot read {path}: {error.strerror}") from None
    try:
        with handle, np.load(handle) as arrays:
            stored = {name: arrays[name] for name in arrays.files}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        # numpy's own message would suggest allow_pickle=True: a file holding pickled
        # objects is refused, never loaded that way.
        raise ConfigError("--lhet_run", f"{path} is not an archive of numeric arrays "
                                        "(truncated, not a numpy file, or holding pickled "
                                        "objects, which are refused)") from None
    missing = [name for name in expected if name not in stored]
    if missing:
        raise ConfigError("--lhet_run", f"{path} lacks the array(s) {', '.join(missing)}")
    empty = [name for name in expected if stored[name].ndim == 0 or len(stored[name]) == 0]
    if empty:
        raise ConfigError("--lhet_run", f"{path}: {', '.join(empty)} hold no trial (one row "
                                        "per trial expected)")
    try:
        require_finite({name: stored[name] for name in expected}, path)
    except DataError as error:
        raise ConfigError("--lhet_run", str(error)) from None
    return {name: stored[name] for name in expected}


def model_spec(config, data, hidden, n_ascs):
    """The :class:`~nrmkit.nn.recurrent.SequenceModelSpec` of a trial's model, initialised as
    in the GLIFR study: GLIFR weights ``U(±1/√H)``; the RNN baseline tanh with weights and
    bias ``U(±1/√H)`` and the synaptic delay; the LSTM as ``torch.nn.LSTMCell``; every
    read-out as ``torch.nn.Linear`` (``U(±1/√H)``)."""
    from nrmkit.nn.recurrent import SequenceModelSpec

    learn, _ = VARIANTS[config.variant]
    cell_options = {
        "glifr": {"dt": config.dt, "delay": config.delay_steps, "n_ascs": n_ascs,
                  "sigma_v": config.sigma_v, "learn_neuron": learn},
        "rnn": {"delay": config.delay_steps, "bias_init": "uniform"},
        "lstm": {"init": "pytorch"}}[config.model]
    return SequenceModelSpec(net_type=CELLS[config.model], nonlin="tanh",
                             input_size=data["inputs"], hidden_size=hidden,
                             n_classes=data["outputs"], rinit="uniform", iinit="uniform",
                             readout_init="uniform", per_step=config.task == "sine",
                             dropout_prob=config.dropout_prob, cell_options=cell_options)


def build_trial(config, context, data, hidden, n_ascs, trial, objective, lhet):
    """The model and trainer of trial ``trial``, drawn from the trial's streams; ``lhet``:
    the trials of a trained lhet run (:func:`lhet_trials`) or None."""
    from nrmkit.nn.recurrent import build_sequence_model
    from nrmkit.training.sequence import SequenceTrainer

    generator = context.stream("initialisation", unit=trial)
    model = build_sequence_model(model_spec(config, data, hidden, n_ascs), generator=generator)
    if config.model == "glifr" and VARIANTS[config.variant][1]:
        heterogeneous_init(model.cell, lhet[trial % len(lhet)] if lhet else None,
                           context.stream("heterogeneity", unit=trial))
    model.dropout_generator = context.stream("dropout", unit=trial)
    model = model.to(device=context.device, dtype=context.torch_dtype)
    trainer = SequenceTrainer(model, data["train"], data["validation"], lr=config.lr,
                              batch_size=config.batch, generator=context.stream(
                                  "batches", unit=trial), objective=objective, plateau=False)
    if config.anneal_sigma_v and config.model == "glifr":
        def anneal(epoch: int) -> None:
            fraction = epoch / max(1, config.epochs - 1)
            model.cell.sigma_v.fill_(config.sigma_v + (SIGMA_V_FINAL - config.sigma_v)
                                     * fraction)
        trainer.before_epoch = anneal
    return model, trainer


#: the σ_V that ``--anneal_sigma_v`` reaches at the last epoch (published: 1 → 1e-3).
SIGMA_V_FINAL = 1e-3


def heterogeneous_init(cell, trained: dict | None, generator) -> None:
    """Heterogeneous neurons for fhet and rhet: every neuron parameter and both weight
    matrices resampled from a trained lhet trial (``trained``), or, without one, the
    published ``hetinit`` draws for the neuron parameters (weights unchanged)."""
    from nrmkit.nn.glifr import heterogeneous_values, resampled_values

    if trained is None:
        cell.load_neuron_values(heterogeneous_values(cell.hidden_size, cell.n_ascs,
                                                     generator=generator))
        return
    shapes = {name: tuple(value.shape) for name, value in cell.neuron_parameters().items()}
    shapes.update(weight_in=tuple(cell.weight_in.shape), weight_lat=tuple(cell.weight_lat.shape))
    try:
        drawn = resampled_values(trained, shapes, generator=generator)
    except ValueError as error:
        raise ConfigError("--lhet_run", str(error)) from None
    cell.load_weights(drawn.pop("weight_in"), drawn.pop("weight_lat"))
    cell.load_neuron_values(drawn)


class ParameterTrajectory:
    """Per-epoch values of a GLIFR cell's neuron parameters (an ``on_epoch_end`` callback).

    Records after every ``every``-th epoch (``every = ⌈epochs/1000⌉``: at most about a
    thousand snapshots) and after the first and last; :meth:`arrays` gives ``epochs (E,)``
    and one ``(E, H)`` or ``(E, n_ascs, H)`` array per parameter. Saved in the trial's
    checkpoint, so a resumed run continues the same record.
    """

    def __init__(self, cell, epochs: int):
        self.cell, self.every, self.last = cell, max(1, -(-epochs // 1000)), epochs
        self.epochs: list[int] = []
        self.values: list[dict] = []

    def __call__(self, epoch: int, metrics=None) -> None:
        if epoch == 0 or (epoch + 1) % self.every == 0 or epoch + 1 == self.last:
            self.epochs.append(epoch + 1)
            self.values.append({name: value.detach().cpu().clone()
                                for name, value in self.cell.neuron_parameters().items()})

    def state(self) -> dict:
        return {"epochs": list(self.epochs), "values": list(self.values)}

    def load(self, state: dict) -> None:
        self.epochs, self.values = list(state["epochs"]), list(state["values"])

    def arrays(self) -> dict:
        import numpy as np

        out = {"epochs": np.asarray(self.epochs)}
        for name in self.values[0] if self.values else ():
            out[name] = np.stack([entry[name].numpy() for entry in self.values])
        return out


def train_trial(config, context, trainer, trial, trajectory=None) -> None:
    """Train (or resume) trial ``trial``, checkpointing every 5 % of the epochs; the
    ``trajectory`` recorder (if any) is saved with the checkpoint."""
    from nrmkit.runs.checkpoints import EpochCheckpoint

    run_dir = context.run_dir
    path = None if run_dir.path is None else run_dir.path / f"checkpoints/trial{trial}.pt"
    checkpoint = EpochCheckpoint(
        path, trainer, every=config.epochs // 20, last_epoch=config.epochs,
        extra=None if trajectory is None else lambda: {"trajectory": trajectory.state()})
    restored = checkpoint.restore()
    if trajectory is not None and restored is not None and "trajectory" in restored:
        trajectory.load(restored["trajectory"])
    progress = context.progress(f"trial {trial + 1}/{config.ntrials}")
    callbacks = (checkpoint, lambda epoch, metrics: progress(epoch + 1, config.epochs))
    trainer.fit(config.epochs, on_epoch_end=callbacks if trajectory is None
                else (trajectory, *callbacks))
    checkpoint.save()


def evaluate_trial(model, data, objective, **kwargs) -> float:
    from nrmkit.training.sequence import evaluate

    return float(evaluate(model, *data["test"], objective=objective, **kwargs)[objective.metric])


def silencing_scores(config, model, data, objective, generator) -> dict[str, float]:
    """Metric with a fraction of hidden neurons silenced, averaged over random subsets."""
    import numpy as np
    import torch

    hidden = model.spec.hidden_size
    out = {}
    for fraction in config.silence_fractions:
        n_off = round(fraction * hidden)
        scores = []
        for _ in range(config.silence_draws if 0 < n_off < hidden else 1):
            keep = torch.ones(hidden, dtype=data["test"][0].dtype)
            keep[torch.randperm(hidden, generator=generator)[:n_off]] = 0.0
            scores.append(evaluate_trial(model, data, objective,
                                    keep=keep.to(data["test"][0].device)))
        out[str(fraction)] = float(np.mean(scores))
    return out


def learning_curves(history: list[dict]) -> dict:
    if not history:
        return {}
    return {key: [entry[key] for entry in history] for key in history[0]
            if key not in ("epoch", "lr", "seconds")}
