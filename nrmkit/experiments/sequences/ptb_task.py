"""``ptb_task``: character-level Penn Treebank language modelling with the sequence cells.

Reads ``ptb.char.{train,valid,test}.txt`` from ``--data-dir`` (:mod:`nrmkit.datasets.ptb`:
one sentence per line, characters separated by spaces, ``_`` between words, ``<eos>`` added
at every line end; vocabulary from the training file), lays each split out as parallel
streams (``--batch`` for training, ``--eval_batch`` for validation and test) and trains a
character model (:mod:`nrmkit.nn.language`: embedding of ``--emsize``, the cell
``--net-type`` / ``--nonlin`` of ``--nhid`` units, a linear decoder at every step) by
truncated BPTT over ``--bptt`` steps with the state carried across segments, Adam and
``ReduceLROnPlateau`` on the validation loss (:mod:`nrmkit.training.language`). Defaults
are those of the published ``PTB_task.py``.

After training, the final model is scored on the test split in a separate pass. Bits per
character: the mean next-symbol cross-entropy in nats divided by ln 2.

Checkpoints every ``--save-freq`` epochs and at the end (``checkpoints/last.pt``, atomic);
``--resume --output-dir RUN`` continues exactly (``--epochs`` may grow). Writes
``model.pt`` (spec, weights, vocabulary; :func:`~nrmkit.training.language.load_char_model`)
and the figure ``learning_curves``; results.json keys are documented once, in
``docs/workflows/ptb_task.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nrmkit.core.base import Workflow
from nrmkit.core.checks import check
from nrmkit.core.registry import MODELS, NONLINEARITIES
from nrmkit.experiments.sequences.checks import check_training_options

#: the cells a character model can use (display names; the registry keys are lower case).
NET_NAMES = {"rnn": "RNN", "anru": "ANRU", "lstm": "LSTM", "gru": "GRU"}
NONLIN_NAMES = {"gamma": "gamma", "gamma2": "gamma2", "relu": "ReLU", "tanh": "tanh"}
#: the checkpoint of a run, saved every ``--save-freq`` epochs and at the end.
CHECKPOINT = "checkpoints/last.pt"


@dataclass(frozen=True)
class PtbConfig:
    """Options of ``ptb_task`` (defaults of the published ``PTB_task.py``)."""

    data_dir: str | None = None
    net_type: str = "RNN"
    nonlin: str = "gamma"
    emsize: int = 200
    nhid: int = 600
    lr: float = 1e-4
    epochs: int = 100
    batch: int = 128
    eval_batch: int = 10
    bptt: int = 150
    clip: float | None = None
    rinit: str = "henaff"
    iinit: str = "kaiming"
    gain: float = 1.0
    saturation: float = 1.0
    random: bool = False
    learn_params: bool = True
    save_freq: int = 25
    note: str = ""

    def __post_init__(self):
        from nrmkit.datasets.ptb import corpus_files

        check(MODELS.canonical(self.net_type) in NET_NAMES, "--net-type",
              f"choose from {', '.join(NET_NAMES.values())}, got {self.net_type}")
        object.__setattr__(self, "net_type", NET_NAMES[MODELS.canonical(self.net_type)])
        nonlin = NONLINEARITIES.canonical(self.nonlin)
        object.__setattr__(self, "nonlin", NONLIN_NAMES.get(nonlin, nonlin))
        for name in ("emsize", "nhid", "epochs", "batch", "eval_batch", "bptt", "save_freq"):
            value = getattr(self, name)
            check(value >= 1, f"--{name}", f"must be at least 1, got {value}")
        check_training_options(self)
        check(self.iinit not in ("henaff", "cayley"), "--iinit",
              f"{self.iinit} makes square matrices only; the input matrix is hidden × "
              "embedding: use xavier, kaiming or orthogonal")
        corpus_files(self.data_dir)


class PtbTask(Workflow):
    """Train one character language model, score it on the test split."""

    name = "ptb_task"
    config_class = PtbConfig
    resumable = True
    resume_free_options = ("epochs", "note", "save_freq")

    def memory_terms(self, config: PtbConfig, *, itemsize: int) -> list:
        """Parameters with gradients, Adam state and checkpoint, and the activations of one
        segment kept for backpropagation
        (:func:`~nrmkit.training.sequence_memory.training_memory_terms` with ``--bptt``
        steps of ``--batch`` streams and ``--emsize`` inputs)."""
        from nrmkit.training.sequence_memory import SAVED_PER_UNIT, training_memory_terms

        return training_memory_terms(
            config.net_type, hidden=config.nhid, steps=config.bptt, inputs=config.emsize,
            batch=config.batch, itemsize=itemsize, saved=SAVED_PER_UNIT[config.net_type],
            hidden_option="--nhid", batch_option="--batch")

    def run(self, config: PtbConfig, context) -> dict:
        import dataclasses

        import numpy as np

        from nrmkit.training.language import evaluate_language_model

        corpus, data = _data(config, context)
        model = _new_model(config, context, vocabulary_size=corpus.size)
        description = _describe(config)
        context.log(f"ptb_task: {description}; {model.n_parameters()} trainable parameters; "
                    f"vocabulary {corpus.size} symbols; "
                    + "/".join(f"{len(getattr(corpus, s))}" for s in ("train", "valid", "test"))
                    + " train/validation/test symbols")
        history = _train(config, context, model, data, corpus.vocabulary)
        test = evaluate_language_model(model, data["test"], bptt=config.bptt)
        uniform = math.log2(corpus.size)
        context.log(f"ptb_task: test {test['bpc']:.4f} bits per character (uniform "
                    f"{uniform:.4f}), next-symbol accuracy {100 * test['accuracy']:.2f} %")
        from nrmkit.plotting.language import bpc_curves

        context.run_dir.save_figure(bpc_curves(history, uniform_bpc=uniform,
                                               test_bpc=test["bpc"],
                                               title=f"ptb_task: {description}"),
                                    "learning_curves")
        last = history[-1]
        seconds = [entry["seconds"] for entry in history]
        return {
            "history": history,
            "train_bpc": last["train_bpc"],
            "validation_bpc": last["validation_bpc"],
            "validation_loss": last["validation_loss"],
            "validation_accuracy": last["validation_accuracy"],
            "best_validation_bpc": min(entry["validation_bpc"] for entry in history),
            "test_bpc": test["bpc"], "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "uniform_bpc": uniform,
            "epochs": len(history),
            "seconds_per_epoch": float(np.median(seconds)),
            "n_parameters": model.n_parameters(),
            "model": dataclasses.asdict(model.spec),
            "data": _data_record(config, corpus, data),
        }


def _describe(config: PtbConfig) -> str:
    cell = (f"RNN-{config.nonlin}" if config.net_type == "RNN" else config.net_type)
    return f"{cell}, {config.nhid} units, embedding {config.emsize}, bptt {config.bptt}"


def _data(config: PtbConfig, context):
    """The corpus and its batched streams as int64 tensors on the run's device."""
    import torch

    from nrmkit.datasets.ptb import batchify, load_corpus

    corpus = load_corpus(config.data_dir)
    arrays = {"train": batchify(corpus.train, config.batch, split="training"),
              "validation": batchify(corpus.valid, config.eval_batch, split="validation",
                                     option="--eval_batch"),
              "test": batchify(corpus.test, config.eval_batch, split="test",
                               option="--eval_batch")}
    return corpus, {name: torch.as_tensor(array, device=context.device)
                    for name, array in arrays.items()}


def _data_record(config: PtbConfig, corpus, data) -> dict:
    return {"files": corpus.files, "vocabulary_size": corpus.size,
            "vocabulary": list(corpus.vocabulary),
            "symbols": {"train": len(corpus.train), "validation": len(corpus.valid),
                        "test": len(corpus.test)},
            "rows": {name: int(tensor.shape[0]) for name, tensor in data.items()},
            "batch": config.batch, "eval_batch": config.eval_batch, "bptt": config.bptt}


def _new_model(config: PtbConfig, context, *, vocabulary_size: int):
    """A new model drawn from the stream ``(seed, 0, "initialisation")``."""
    from nrmkit.nn.language import CharModelSpec, build_char_model

    spec = CharModelSpec(
        net_type=config.net_type, nonlin=config.nonlin, vocabulary_size=vocabulary_size,
        embedding_size=config.emsize, hidden_size=config.nhid, rinit=config.rinit,
        iinit=config.iinit, gain=config.gain, saturation=config.saturation,
        random=config.random, learn_params=config.learn_params)
    model = build_char_model(spec, generator=context.stream("initialisation"))
    return model.to(device=context.device, dtype=context.torch_dtype)


def _train(config: PtbConfig, context, model, data: dict, vocabulary) -> list[dict]:
    """Truncated BPTT, checkpointed every ``--save-freq`` epochs (resumed from
    ``checkpoints/last.pt``); saves ``model.pt``; returns the history."""
    from nrmkit.runs.checkpoints import EpochCheckpoint
    from nrmkit.training.language import LanguageModelTrainer, save_char_model

    run_dir = context.run_dir
    trainer = LanguageModelTrainer(model, data["train"], data["validation"], lr=config.lr,
                                   bptt=config.bptt, clip=config.clip)
    checkpoint = EpochCheckpoint(None if run_dir.path is None else run_dir.path / CHECKPOINT,
                                 trainer, every=config.save_freq, last_epoch=config.epochs)
    if checkpoint.restore() is not None:
        context.log(f"ptb_task: resuming after epoch {trainer.epoch}")
    progress = context.progress("epochs")

    def end_of_epoch(epoch: int, metrics: dict) -> None:
        progress(epoch + 1, config.epochs)
        context.log(f"  epoch {epoch + 1:3d}: train {metrics['train_bpc']:.4f}, validation "
                    f"{metrics['validation_bpc']:.4f} bits per character "
                    f"({metrics['seconds']:.1f} s)")

    trainer.fit(config.epochs, on_epoch_end=(checkpoint, end_of_epoch))
    checkpoint.save()
    if run_dir.path is not None:
        save_char_model(run_dir.path / "model.pt", model, vocabulary)
    return trainer.history
