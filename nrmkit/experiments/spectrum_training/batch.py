"""The pieces of training one batch of networks
(:meth:`~nrmkit.experiments.spectrum_training.training.TrainOnSpectrum.train_batch`): its
random draws, trainer, checkpoint, per-epoch callback and divergence messages.

Network ``s`` of a batch draws its training trajectories (``--replicas`` initial states and
bases) from the stream ``(seed, s, "network")`` after its matrix, and its evaluation state
and basis from the independent stream ``(seed, s, "evaluation")``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from nrmkit.experiments.lyapunov.settings import naming_divergence
from nrmkit.experiments.spectrum_training.evaluation import Evaluation
from nrmkit.experiments.spectrum_training.settings import TRAINING_DIVERGENCE_HINT

CHECKPOINTS = "checkpoints"


#: names the network at a batch index ``(i,)`` or ``(i, j)`` of the model.
Describe = Callable[[tuple[int, ...]], str]


def checkpoint_folder(config: Any, context: Any) -> Any:
    """``RUN/checkpoints/<fingerprint>``: one checkpoint per sample, kept across runs that
    differ only in ``--n_epochs`` (so that ``--resume`` can extend training)."""
    from pathlib import Path

    from nrmkit.runs.sweep import fingerprint

    if context.run_dir.path is None:
        return None
    return Path(context.run_dir.path) / CHECKPOINTS / fingerprint(
        config, context.seed, context.dtype, exclude=("n_epochs",))


def checkpoint_path(folder: Any, samples: list[int]) -> Any:
    """``folder/batch-<first sample>.pt`` (None without a checkpoint folder)."""
    return None if folder is None else folder / f"batch-{samples[0]:05d}.pt"


def batch_label(samples: list[int]) -> str:
    """``sample s`` or ``samples a-b`` for the log."""
    return f"samples {samples[0]}-{samples[-1]}" if len(samples) > 1 else f"sample {samples[0]}"


def network_describer(describe_network: Callable[[Any, int], str], config: Any,
                      samples: list[int], shape: tuple[int, ...]) -> Describe:
    """Names the network at an index of a model of batch shape ``shape`` by its sample
    (``describe_network(config, sample)``)."""

    def describe(index: tuple[int, ...]) -> str:
        flat = index[0] if len(index) == 1 else index[0] * shape[1] + index[1]
        return describe_network(config, samples[flat])

    return describe


def naming_networks(describe: Describe, n_networks: int) -> AbstractContextManager[None]:
    """Re-raise a divergence of the block naming the networks that diverged (all
    ``n_networks`` when it does not say), with :data:`TRAINING_DIVERGENCE_HINT`."""
    return naming_divergence(describe, hint=TRAINING_DIVERGENCE_HINT,
                             every=[(i,) for i in range(n_networks)])


def draw_states(model: Any, generators: list, count: int, k: int) -> tuple[Any, Any]:
    """``count`` initial states ``(*shape, count, N)`` (scaled by ``model.initial_std``) and
    orthonormal bases ``(*shape, count, k, N)`` per network, network ``i`` drawing from
    ``generators[i]`` (``shape = model.batch_shape``)."""
    import torch

    from nrmkit.dynamics.lyapunov import random_basis
    from nrmkit.nn.connectivity import normal_like

    shape, n = model.batch_shape, model.state_dim
    dtype, device = model.weight.dtype, model.weight.device
    states, bases = [], []
    for generator in generators:
        states.append(normal_like((count, n), generator=generator, dtype=dtype,
                                  device=device))
        bases.append(random_basis((count,), k, n, generator=generator, dtype=dtype,
                                  device=device))
    return (model.initial_std * torch.stack(states).reshape(*shape, count, n),
            torch.stack(bases).reshape(*shape, count, k, n))


def batch_evaluation(config: Any, context: Any, model: Any, samples: list[int]) -> Evaluation:
    """The evaluation runs of the batch: one state and a basis of ``k' = eval_nle`` vectors
    per network from its stream ``(seed, s, "evaluation")``."""
    from nrmkit.training.losses import get_loss

    generators = [context.stream("evaluation", unit=sample) for sample in samples]
    state, basis = draw_states(model, generators, 1, config.eval_nle)
    return Evaluation(config, get_loss(config.loss), state[..., 0, :], basis[..., 0, :, :])


def spectrum_trainer(config: Any, batch: Any, state: Any, basis: Any) -> Any:
    """The :class:`~nrmkit.training.spectrum.SpectrumTrainer` of a
    :class:`~nrmkit.experiments.spectrum_training.training.NetworkBatch` from its training
    states ``(*shape, replicas, N)`` and bases ``(*shape, replicas, nle, N)``."""
    from nrmkit.training.losses import get_loss
    from nrmkit.training.spectrum import SpectrumTrainer

    return SpectrumTrainer(
        batch.model, n_exponents=config.nle, loss=get_loss(config.loss), target=config.target,
        tsim=config.tsim, tons=config.tons, ttrans=config.ttrans, tbasis=config.tbasis,
        state=state, basis=basis, train=config.trained_sets, lr=config.lr,
        clip=config.clip, masks=batch.masks, early_stopping=config.early_stopping,
        procedure=config.procedure, window=config.window,
    )


def restored_evaluation(path: Any, trainer: Any) -> dict[str, Any]:
    """Restore ``trainer`` from the checkpoint at ``path``; the evaluation before training
    saved with it (as :meth:`Evaluation.initial` returns it)."""
    from nrmkit.runs.checkpoints import EpochCheckpoint

    saved = EpochCheckpoint(path, trainer).restore()
    return {key: value.numpy() for key, value in saved["evaluation"].items()}


def evaluation_checkpoint(path: Any, trainer: Any, before: dict[str, Any]) -> Any:
    """The batch's :class:`~nrmkit.runs.checkpoints.EpochCheckpoint`: the trainer's state and
    ``evaluation``, the evaluation before training as tensors."""
    import torch

    from nrmkit.runs.checkpoints import EpochCheckpoint

    return EpochCheckpoint(path, trainer, extra=lambda: {"evaluation": {
        key: torch.as_tensor(value) for key, value in before.items()}})


def epoch_end(config: Any, context: Any, label: str, trainer: Any, evaluation: Evaluation,
              checkpoint: Any, report: Callable[[int], None]) -> Callable[[int, dict], None]:
    """The trainer's ``on_epoch_end`` callback: every ``--spectrum_every`` epochs the top
    ``--spectrum_nle`` evaluated exponents (``metrics["logged_spectrum"]``), then the
    checkpoint, the progress and the epoch's log line."""

    def end_of_epoch(epoch: int, metrics: dict) -> None:
        if (epoch + 1) % config.spectrum_every == 0:
            metrics["logged_spectrum"] = evaluation.spectra(
                trainer.trained_networks())[:, :config.spectrum_nle].tolist()
        checkpoint(epoch)
        report(epoch + 1)
        losses = ", ".join(f"{value:.5g}" for value in metrics["loss"])
        context.log(f"  {label}, epoch {epoch + 1:4d}: loss {losses}; λ_max "
                    + ", ".join(f"{value:+.4f}" for value in metrics["lambda_max"]))

    return end_of_epoch


def fit(config: Any, trainer: Any, on_epoch_end: Callable[[int, dict], None],
        describe: Describe, n_networks: int) -> None:
    """Train up to ``--n_epochs`` (nothing when early stopping froze every network), naming
    the networks and the epoch of a divergence."""
    if config.early_stopping is not None and bool(trainer.frozen.all()):
        return
    with naming_networks(lambda index: f"{describe(index)}, epoch {trainer.epoch + 1}",
                         n_networks):
        trainer.fit(config.n_epochs, on_epoch_end=(on_epoch_end,))

