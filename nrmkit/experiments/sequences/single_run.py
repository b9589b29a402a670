"""One ``smnist`` run: data, model, training with checkpoints, the test scores and the
analyses of the trained network (:func:`run_single`); a seed of a sweep is exactly such a run."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nrmkit.core.errors import ConfigError, DataError
from nrmkit.core.streams import stream_seed
from nrmkit.datasets import digits
from nrmkit.datasets.digit_sequences import load_splits, sequence_tensors
from nrmkit.experiments.sequences.analyses import (
    augmentation,
    describe_run,
    fractional_analysis,
    lyapunov_analysis,
    shape_analysis,
    shape_arrays,
)
from nrmkit.training.sequence_files import (
    MODEL_FILE,
    load_sequence_model,
    save_sequence_model,
)

#: the checkpoint of a run, saved every ``--save-freq`` epochs and at the end.
CHECKPOINT = "checkpoints/last.pt"


def run_single(config: Any, context: Any, seed: int, run_dir: Any) -> dict:
    """Train (or, with ``--test``, load) one network with ``seed``; test and analyse it.

    Everything is written into ``run_dir`` (checkpoint, ``model.pt``, arrays, figures) and
    every random draw (initial weights, ``-p`` permutation, batches, augmentation, analyses)
    comes from the streams of ``seed``, so the unit of seed ``s`` of a sweep is exactly the
    single run with ``--seed s``. ``context`` gives the device, dtype, progress and log;
    returns the results of a single run.
    """
    context = dataclasses.replace(context, seed=seed, run_dir=run_dir)
    model, settings = _saved_model(config, context) if config.test else (None, {
        "dataset": config.dataset, "input": config.input, "permutation": None})
    splits, data = _sequences(config, context, settings)
    if model is None:
        model = _new_model(config, context, input_size=data["input_size"])
    initial_shape = shape_arrays(model)
    description = describe_run(dataclasses.asdict(model.spec), data["record"])
    context.log(f"smnist: {description}; {model.n_parameters()} trainable parameters; "
                + "/".join(str(size) for size in data["sizes"])
                + f" train/validation/test sequences of {data['steps']} steps")
    history = [] if config.test else _train(config, context, model, data, settings, splits)
    scores = _test_scores(model, data, context)
    title = f"smnist: {description}"
    if history:
        from nrmkit import plotting

        run_dir.save_figure(plotting.learning_curves(history, title=title),
                            "learning_curves")
    test = data["test"]
    seconds = [entry["seconds"] for entry in history]
    return {
        "history": history,
        **scores,
        "n_parameters": model.n_parameters(),
        "model": dataclasses.asdict(model.spec),
        "epochs": len(history),
        "seconds_per_epoch": float(np.median(seconds)) if seconds else None,
        "data": data["record"],
        "shape_parameters": shape_analysis(model, test, initial_shape, run_dir, title),
        "lyapunov": (lyapunov_analysis(config, model, test, context, title)
                     if config.lyapunov else None),
        "fractional_order": (fractional_analysis(model, data["input_size"], context, title)
                             if config.fractional_order else None),
    }


def _saved_model(config: Any, context: Any) -> tuple[Any, dict]:
    """``--test``: the saved model and its data settings (a bad file names ``--model``)."""
    try:
        model, settings = load_sequence_model(config.model, device=context.device,
                                              dtype=context.torch_dtype)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    context.log(f"smnist: testing the model in {config.model} "
                f"({settings['dataset']}, {settings['input']} input"
                f"{', permuted' if settings['permutation'] is not None else ''})")
    return model, settings


def _sequences(config: Any, context: Any, settings: dict) -> tuple[Any, dict]:
    """The splits and their sequence tensors; draws the ``-p`` permutation of a new run
    from the stream ``(seed, 0, "permutation")`` into ``settings``."""
    splits = load_splits(settings["dataset"], config.data_dir)
    if not config.test and config.permute:
        settings["permutation"] = digits.pixel_permutation(
            splits.n_pixels, stream_seed(context.seed, 0, "permutation"))
    data = sequence_tensors(splits, input_mode=settings["input"],
                            permutation=settings["permutation"], dtype=context.torch_dtype,
                            device=context.device)
    n_steps, _, input_size = data["test"][0].shape
    sizes = [len(data[name][1]) for name in ("train", "validation", "test")]
    data.update(steps=int(n_steps), input_size=int(input_size), sizes=sizes, record={
        "dataset": settings["dataset"], "input": settings["input"],
        "permute": settings["permutation"] is not None, "steps": int(n_steps),
        "train": sizes[0], "validation": sizes[1], "test": sizes[2],
        "source": splits.source})
    return splits, data


def _new_model(config: Any, context: Any, *, input_size: int) -> Any:
    """A new network drawn from the stream ``(seed, 0, "initialisation")``."""
    from nrmkit.nn.recurrent import SequenceModelSpec, build_sequence_model

    spec = SequenceModelSpec(
        net_type=config.net_type, nonlin=config.nonlin, input_size=input_size,
        hidden_size=config.nhid, rinit=config.rinit, iinit=config.iinit,
        gain=config.gain, saturation=config.saturation, random=config.random,
        learn_params=config.learn_params)
    model = build_sequence_model(spec, generator=context.stream("initialisation"))
    return model.to(device=context.device, dtype=context.torch_dtype)


def _train(config: Any, context: Any, model: Any, data: dict, settings: dict,
           splits: Any) -> list[dict]:
    """Adam with the plateau schedule, checkpointed every ``--save-freq`` epochs (resumed
    from ``checkpoints/last.pt``); saves ``model.pt``; returns the history."""
    from nrmkit.runs.checkpoints import EpochCheckpoint
    from nrmkit.training.sequence import SequenceTrainer

    run_dir = context.run_dir
    trainer = SequenceTrainer(
        model, data["train"], data["validation"], lr=config.lr, batch_size=config.batch,
        generator=context.stream("batches"),
        augment=augmentation(config.transform, digits, data["steps"]),
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
    checkpoint.save()
    if run_dir.path is not None:
        save_sequence_model(run_dir.path / MODEL_FILE, model,
                            {**settings, "image_shape": list(splits.image_shape)})
    return trainer.history


def _test_scores(model: Any, data: dict, context: Any) -> dict[str, float]:
    """Test loss and accuracy: clean, under the sine gain and under the step drive."""
    import torch

    from nrmkit.training.sequence import evaluate

    model.eval()
    inputs, labels = data["test"]
    device, dtype = context.device, context.torch_dtype
    sine = torch.as_tensor(
        digits.sine_gain(inputs.cpu().numpy(), amplitude=digits.TEST_SINE_AMPLITUDE,
                         frequency=digits.TEST_SINE_FREQUENCY), dtype=dtype, device=device)
    step = torch.as_tensor(digits.step_drive(data["steps"], size=digits.STEP_SIZE),
                           dtype=dtype, device=device).reshape(-1, 1, 1)
    clean = evaluate(model, inputs, labels)
    scores = {"test_loss": clean["loss"], "test_accuracy": clean["accuracy"],
              "test_accuracy_sine": evaluate(model, sine, labels)["accuracy"],
              "test_accuracy_step": evaluate(model, inputs, labels, drive=step)["accuracy"]}
    context.log(f"smnist: test accuracy {100 * scores['test_accuracy']:.2f} % "
                f"(sine gain {100 * scores['test_accuracy_sine']:.2f} %, step drive "
                f"{100 * scores['test_accuracy_step']:.2f} %)")
    return scores
