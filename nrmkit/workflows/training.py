"""What the four spectrum-training workflows share: options, the run loop, outputs.

A training workflow builds a batch of networks (random or connectome-constrained, see the
workflow modules), then :class:`TrainOnSpectrum` runs :class:`~nrmkit.training.spectrum.
SpectrumTrainer` with an atomic checkpoint every epoch (``checkpoints/last.pt``), the
per-epoch log ``training_log.csv`` (rewritten atomically from the checkpointed history, so
it always matches the checkpoint), the top ``spectrum_nle`` exponents every
``spectrum_every`` epochs, and ``--resume`` (same options, a larger ``--n_epochs`` allowed).

results.json:
    samples: one entry per network: ``loss`` and ``lambda_max`` per epoch,
        ``spectrum_initial`` and ``spectrum_final`` (top ``spectrum_nle`` exponents before and
        after training, descending, 1/τ), ``n_trainable`` (entries per set: weights, gains,
        shifts), ``epochs_run``, ``stopped_early``.
    target, loss, nle, spectrum_nle, epochs, spectra (``{epoch: [sample][k]}`` logged every
    ``spectrum_every`` epochs), populations (names, for population-shared parameters).
Arrays: ``trained_parameters.npz`` (gains, shifts per network; weights when trained),
``spectra.npz``; the trained model: ``model.pt`` (load with
:func:`nrmkit.training.checkpoint.load_trained_model`).
Figures: ``figures/training`` (loss, λ_max per epoch, spectrum before/after) and
``figures/trained_parameters`` (gains and shifts per population or per neuron).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from nrmkit.cli.options import RegistryChoice, option
from nrmkit.core.base import Workflow
from nrmkit.core.registry import ACTIVATIONS, LOSSES
from nrmkit.workflows.common import LyapunovSettings, check, check_finite

CHECKPOINT = "checkpoints/last.pt"


@dataclass(frozen=True)
class TrainingSettings(LyapunovSettings):
    """Options shared by the training workflows (times in τ)."""

    n: int = 100
    nle: int | None = 10
    tsim: float = 100.0
    tons: float = 0.2
    ttrans: float = 50.0
    activation: str = "tanh_stretch"
    n_samples: int = 1
    n_epochs: int = 100
    loss: str = "MSE"
    target: float = 0.0
    lr: float = 0.01
    clip: float = 2000.0
    early_stopping: float | None = None
    spectrum_every: int = 10
    spectrum_nle: int | None = None
    train_weights: bool = False
    train_gains: bool = True
    train_shifts: bool = True

    def __post_init__(self):
        super().__post_init__()
        check(self.n_samples >= 1, "--n_samples", f"must be at least 1, got {self.n_samples}")
        check(self.n_epochs >= 1, "--n_epochs", f"must be at least 1, got {self.n_epochs}")
        check(self.loss in LOSSES, "--loss", f"unknown loss {self.loss!r}")
        object.__setattr__(self, "loss", LOSSES.canonical(self.loss))
        for name in ("target", "lr", "clip"):
            check_finite(getattr(self, name), f"--{name}")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        check(self.clip > 0, "--clip", f"must be positive, got {self.clip}")
        check(self.spectrum_every >= 1, "--spectrum_every",
              f"must be at least 1, got {self.spectrum_every}")
        check(self.trained_sets != (), "--train_gains",
              "nothing to train: enable --train_weights, --train_gains or --train_shifts")
        check(not (self.activation == "tanh" and (self.train_gains or self.train_shifts)),
              "--activation", "tanh ignores gains and shifts: use tanh_stretch or tanh_pos")
        spectrum_nle = min(self.n, 50) if self.spectrum_nle is None else self.spectrum_nle
        check(1 <= spectrum_nle <= self.n, "--spectrum_nle",
              f"must lie in [1, {self.n}], got {spectrum_nle}")
        object.__setattr__(self, "spectrum_nle", spectrum_nle)

    @property
    def trained_sets(self) -> tuple[str, ...]:
        flags = {"weights": self.train_weights, "gains": self.train_gains,
                 "shifts": self.train_shifts}
        return tuple(name for name, on in flags.items() if on)


def training_options(*, weights_default: bool = False, with_n: bool = True) -> Callable:
    """Click options for :class:`TrainingSettings` (the FlyStability names, dashed aliases).

    ``with_n=False`` drops ``--n`` (connectome workflows take N from the data).
    """
    from nrmkit.workflows.common import lyapunov_options

    decorators = [
        option("--n_samples", type=int, default=1,
               help="Networks trained at once (independent initial conditions)."),
        option("--n_epochs", type=int, default=100,
               help="Epochs (each re-simulates from the same initial condition)."),
        option("--loss", type=RegistryChoice(LOSSES), default="MSE",
               help="Loss of the top-nle spectrum (l2, MSE, Sinai, MSE_Custom)."),
        option("--target", type=float, default=0.0, help="Target exponent [1/τ]."),
        option("--lr", type=float, default=0.01, help="Adam learning rate."),
        option("--clip", type=float, default=2000.0, help="Gradient-norm clip per network."),
        option("--early_stopping", type=float, default=None,
               help="Stop a network once its loss is below this value."),
        option("--spectrum_every", type=int, default=10,
               help="Log the top --spectrum_nle exponents every this many epochs."),
        option("--spectrum_nle", type=int, default=None, show_default="min(N, 50)",
               help="Exponents of the logged, initial and final spectra."),
        option("--train_weights", type=click.BOOL, default=weights_default,
               help="Train the weights."),
        option("--train_gains", type=click.BOOL, default=True, help="Train the gains."),
        option("--train_shifts", type=click.BOOL, default=True, help="Train the shifts."),
        option("--resume", is_flag=True, default=False,
               help="Continue the run in --output-dir from its last checkpoint."),
        lyapunov_options(exclude=("activation",) if with_n else ("activation", "n"), n=100,
                         nle=10, tsim=100.0, tons=0.2, ttrans=50.0),
        option("--activation", type=RegistryChoice(ACTIVATIONS), default="tanh_stretch",
               help="Activation φ (strech = tanh_stretch, pos = tanh_pos)."),
    ]

    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


@dataclass
class NetworkBatch:
    """What a training workflow builds: the model and what to record about it.

    Attributes:
        model: a :class:`~nrmkit.nn.rate_rnn.RateRNN` of ``n_samples`` networks.
        masks: fixed masks of trainable entries per set (may be empty).
        populations: names of the populations sharing gains/shifts (None: per neuron).
        description: one line for the log and figure titles.
    """

    model: Any
    masks: dict[str, Any] = field(default_factory=dict)
    populations: list[str] | None = None
    description: str = ""


class TrainOnSpectrum(Workflow):
    """The run loop shared by the training workflows; subclasses implement :meth:`build`."""

    resumable = True

    def build(self, config: Any, context: Any) -> NetworkBatch:  # pragma: no cover
        raise NotImplementedError

    def run(self, config: Any, context) -> dict:
        import numpy as np

        from nrmkit import plotting
        from nrmkit.dynamics.lyapunov import random_basis
        from nrmkit.training.checkpoint import load_checkpoint, save_checkpoint, save_model
        from nrmkit.training.losses import get_loss
        from nrmkit.training.spectrum import SpectrumTrainer

        batch = self.build(config, context)
        model = batch.model
        generator = context.generator(1)
        state = model.initial_state(generator)
        basis = random_basis(model.batch_shape, config.nle, model.state_dim,
                             generator=generator, dtype=state.dtype, device=state.device)
        trainer = SpectrumTrainer(
            model, n_exponents=config.nle, loss=get_loss(config.loss), target=config.target,
            tsim=config.tsim, tons=config.tons, ttrans=config.ttrans, tbasis=config.tbasis,
            state=state, basis=basis, train=config.trained_sets, lr=config.lr,
            clip=config.clip, masks=batch.masks, early_stopping=config.early_stopping,
        )
        run_dir = context.run_dir
        checkpoint = None if run_dir.path is None else run_dir.path / CHECKPOINT
        initial_file = None if run_dir.path is None else run_dir.path / "spectrum_initial.npz"
        if checkpoint is not None and checkpoint.exists():
            state_dict = load_checkpoint(checkpoint)
            trainer.load_state_dict(state_dict)
            initial = np.load(initial_file)["exponents"]
            context.log(f"{self.name}: resuming at epoch {trainer.epoch}")
        else:
            initial = trainer.spectrum(config.spectrum_nle).detach().cpu().numpy()
            run_dir.write_arrays("spectrum_initial.npz", exponents=initial)
        context.log(f"{self.name}: {batch.description}; training {', '.join(config.trained_sets)}"
                    f" on the top {config.nle} exponents ({config.loss}, target "
                    f"{config.target:g}) for {config.n_epochs} epochs")
        progress = context.progress("epochs")

        def end_of_epoch(epoch: int, metrics: dict) -> None:
            if (epoch + 1) % config.spectrum_every == 0:
                metrics["logged_spectrum"] = trainer.spectrum(config.spectrum_nle).detach() \
                    .reshape(trainer.n_networks, -1).cpu().tolist()
            if checkpoint is not None:
                save_checkpoint(checkpoint, trainer.state_dict())
                run_dir.write_text("training_log.csv", _csv(trainer.history,
                                                            config.trained_sets))
            progress(epoch + 1, config.n_epochs)
            context.log(f"  epoch {epoch + 1:4d}: loss {np.max(metrics['loss']):.5g} (max over "
                        f"networks), λ_max {np.median(metrics['lambda_max']):+.4f} (median)")

        trainer.fit(config.n_epochs, on_epoch_end=(end_of_epoch,))
        final = trainer.spectrum(config.spectrum_nle).detach().cpu().numpy()
        n_networks = trainer.n_networks
        initial = initial.reshape(n_networks, -1)
        final = final.reshape(n_networks, -1)
        history = trainer.history
        losses = np.array([epoch["loss"] for epoch in history])          # (epochs, networks)
        lambda_max = np.array([epoch["lambda_max"] for epoch in history])
        counts = trainer.n_trainable()
        samples = [{
            "loss": losses[:, i], "lambda_max": lambda_max[:, i],
            "spectrum_initial": initial[i], "spectrum_final": final[i],
            "n_trainable": counts, "epochs_run": int(trainer.epochs_run[i]),
            "stopped_early": bool(trainer.frozen[i]),
        } for i in range(n_networks)]
        spectra = {str(epoch["epoch"] + 1): epoch["logged_spectrum"] for epoch in history
                   if "logged_spectrum" in epoch}
        gains = model.gain.detach().reshape(n_networks, -1).cpu().numpy()
        shifts = model.shift.detach().reshape(n_networks, -1).cpu().numpy()
        arrays = {"gains": gains, "shifts": shifts}
        if "weights" in config.trained_sets:
            arrays["weights"] = model.weight.detach().cpu().numpy()
        run_dir.write_arrays("trained_parameters.npz", **arrays)
        run_dir.write_arrays("spectra.npz", initial=initial, final=final, loss=losses,
                             lambda_max=lambda_max)
        if run_dir.path is not None:
            save_model(run_dir.path / "model.pt", model)
        figure = plotting.training_curves(
            losses, lambda_max, initial, final, target=config.target,
            title=f"{self.name}: {batch.description}")
        run_dir.save_figure(figure, "training")
        figure = plotting.trained_parameters(gains, shifts, populations=batch.populations,
                                             title=f"{self.name}: {batch.description}")
        run_dir.save_figure(figure, "trained_parameters")
        return {
            "samples": samples,
            "target": config.target,
            "loss": config.loss,
            "nle": config.nle,
            "spectrum_nle": config.spectrum_nle,
            "epochs": trainer.epoch,
            "spectra": spectra,
            "populations": batch.populations,
        }


def _csv(history: list[dict], sets: tuple[str, ...]) -> str:
    """One line per epoch and network: loss, λ_max and the gradient norm of each set."""
    columns = ["epoch", "sample", "loss", "lambda_max", *[f"grad_norm_{s}" for s in sets],
               "frozen"]
    lines = [",".join(columns)]
    for epoch in history:
        for i, loss in enumerate(epoch["loss"]):
            norms = [f"{epoch['grad_norm'][s][i]:.6g}" for s in sets]
            lines.append(",".join([str(epoch["epoch"] + 1), str(i), f"{loss:.8g}",
                                   f"{epoch['lambda_max'][i]:.8g}", *norms,
                                   str(int(epoch["frozen"][i]))]))
    return "\n".join(lines) + "\n"
