"""One GLIFR trial: the task data, a model drawn from the trial's streams, training with
checkpoints, the test metric, silencing and the sine read-outs."""

from __future__ import annotations

from pathlib import Path

from nrmkit.core.errors import ConfigError, DataError

VARIANTS = {"hom": (False, False), "lhet": (True, False), "fhet": (False, True),
            "rhet": (True, True)}   # (learn neuronal parameters, heterogeneous init)


CELLS = {"glifr": "GLIFR", "rnn": "RNN", "lstm": "LSTM"}



def task_data(config, context) -> dict:
    import torch

    dtype, device = context.torch_dtype, context.device
    if config.task == "sine":
        from nrmkit.datasets.sine import sine_task

        inputs, targets, frequencies = sine_task(dt=config.dt)
        pair = (torch.as_tensor(inputs, dtype=dtype, device=device),
                torch.as_tensor(targets, dtype=dtype, device=device))
        return {"train": pair, "validation": pair, "test": pair, "inputs": 1, "outputs": 1,
                "mode": "sine", "frequencies": frequencies}
    from nrmkit.datasets.digit_sequences import load_splits, sequence_tensors

    mode = "rows" if config.task == "lmnist" else "pixels"
    data = sequence_tensors(load_splits(config.dataset, config.data_dir), input_mode=mode,
                            dtype=dtype, device=device)
    return {**data, "inputs": int(data["train"][0].shape[-1]), "outputs": 10, "mode": mode}


def lhet_values(run: str) -> dict:
    """The learned neuron parameters of the first trial of the lhet run ``run``.

    Raises:
        ConfigError: naming ``--lhet_run``: its ``neuron_parameters.npz`` is unreadable
            (arrays of objects are refused), holds no trial, lacks a parameter, or holds
            non-finite values.
    """
    import zipfile

    import numpy as np
    import torch

    from nrmkit.nn.glifr import NEURON_PARAMETERS
    from nrmkit.training.checkpoint import require_finite

    path = Path(run) / "neuron_parameters.npz"
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
    empty = [name for name, array in stored.items() if array.ndim == 0 or len(array) == 0]
    if empty:
        raise ConfigError("--lhet_run", f"{path}: {', '.join(empty)} hold no trial (one row "
                                        "per trial expected)")
    values = {name: array[0] for name, array in stored.items()}
    missing = [name for name in NEURON_PARAMETERS if name not in values]
    if missing:
        raise ConfigError("--lhet_run", f"{path} lacks the neuron parameter(s) "
                                        f"{', '.join(missing)}")
    try:
        require_finite(values, path)
    except DataError as error:
        raise ConfigError("--lhet_run", str(error)) from None
    return {name: torch.as_tensor(value) for name, value in values.items()}


def build_trial(config, context, data, hidden, n_ascs, trial, objective, trained_lhet):
    from nrmkit.nn.glifr import heterogeneous_values
    from nrmkit.nn.recurrent import SequenceModelSpec, build_sequence_model
    from nrmkit.training.sequence import SequenceTrainer

    learn, heterogeneous = VARIANTS[config.variant]
    generator = context.stream("initialisation", unit=trial)
    cell_options = {}
    if config.model == "glifr":
        cell_options = {"dt": config.dt, "delay": config.delay_steps, "n_ascs": n_ascs,
                        "sigma_v": config.sigma_v, "learn_neuron": learn}
    spec = SequenceModelSpec(net_type=CELLS[config.model], nonlin="tanh",
                             input_size=data["inputs"], hidden_size=hidden,
                             n_classes=data["outputs"], rinit="xavier", iinit="xavier",
                             per_step=config.task == "sine", cell_options=cell_options)
    model = build_sequence_model(spec, generator=generator)
    if config.model == "glifr" and heterogeneous:
        model.cell.load_neuron_values(heterogeneous_values(
            hidden, n_ascs, dt=config.dt, trained=trained_lhet, generator=generator))
    model = model.to(device=context.device, dtype=context.torch_dtype)
    trainer = SequenceTrainer(model, data["train"], data["validation"], lr=config.lr,
                              batch_size=config.batch, generator=context.stream(
                                  "batches", unit=trial), objective=objective, plateau=False)
    if config.anneal_sigma_v and config.model == "glifr":
        def anneal(epoch: int) -> None:
            fraction = epoch / max(1, config.epochs - 1)
            model.cell.sigma_v.fill_(config.sigma_v * 0.1 ** fraction)
        trainer.before_epoch = anneal
    return model, trainer


def train_trial(config, context, trainer, trial) -> None:
    from nrmkit.runs.checkpoints import EpochCheckpoint

    run_dir = context.run_dir
    path = None if run_dir.path is None else run_dir.path / f"checkpoints/trial{trial}.pt"
    checkpoint = EpochCheckpoint(path, trainer, every=config.epochs // 20,
                                 last_epoch=config.epochs)
    checkpoint.restore()
    progress = context.progress(f"trial {trial + 1}/{config.ntrials}")
    trainer.fit(config.epochs, on_epoch_end=(
        checkpoint, lambda epoch, metrics: progress(epoch + 1, config.epochs)))
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


def sine_outputs(model, data) -> dict:
    import torch

    with torch.no_grad():
        outputs = model(data["test"][0])
    return {"outputs": outputs[..., 0].cpu().numpy(), "targets": data["test"][1][..., 0]
            .cpu().numpy(), "frequencies": data["frequencies"]}


def learning_curves(history: list[dict]) -> dict:
    if not history:
        return {}
    return {key: [entry[key] for entry in history] for key in history[0]
            if key not in ("epoch", "lr", "seconds")}
