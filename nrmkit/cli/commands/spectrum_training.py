"""Click commands of the spectrum training workflows (options only; the computation lives in
:mod:`nrmkit.experiments`)."""

from __future__ import annotations

from collections.abc import Callable

import click

from nrmkit.cli.options import Command, RegistryChoice, common_options, executor_options, option
from nrmkit.cli.runner import run_command
from nrmkit.core.registry import ACTIVATIONS, LOSSES
from nrmkit.experiments.spectrum_training.settings import TrainingSettings
from nrmkit.experiments.spectrum_training.train_flybrain_full import (
    NORMALIZATIONS,
    FlybrainConfig,
    TrainFlybrainFull,
)
from nrmkit.experiments.spectrum_training.train_flybrain_pop import (
    SUBPOPULATIONS,
    FlybrainPopConfig,
    TrainFlybrainPop,
)
from nrmkit.experiments.spectrum_training.train_rd_model import (
    TrainRandomModel,
)
from nrmkit.experiments.spectrum_training.train_rd_model_fixed_param import (
    TrainFixedParam,
)
from nrmkit.training import PROCEDURES


def training_options(*, weights_default: bool = False, with_n: bool = True,
                     replicas: int = TrainingSettings.replicas) -> Callable:
    """Click options for :class:`TrainingSettings` (the FlyStability names, dashed aliases).

    ``with_n=False`` drops ``--n`` (connectome workflows take N from the data);
    ``replicas``: the default of ``--replicas`` (the workflow's config default).
    """
    from nrmkit.cli.commands.lyapunov import lyapunov_options

    decorators = [
        option("--n_samples", type=int, default=1,
               help="Networks trained at once (independent initial conditions)."),
        option("--samples_per_batch", type=int, default=1,
               help="Networks trained together in one batch (one unit of the sweep). "
                    "More is faster at small N, but a network's float32 numbers then "
                    "depend on its batch."),
        option("--n_epochs", type=int, default=100, help="Epochs of --tsim each."),
        option("--loss", type=RegistryChoice(LOSSES), default="MSE",
               help="Loss of the top-nle spectrum (l2, MSE, Sinai, MSE_Custom)."),
        option("--target", type=float, default=0.0, help="Target exponent [1/τ]."),
        option("--lr", type=float, default=0.01, help="Adam learning rate."),
        option("--clip", type=float, default=1.0,
               help="Gradient-norm clip per network and update (the original: 2000)."),
        option("--procedure", type=click.Choice(PROCEDURES), default="windows",
               help="windows: truncated back-propagation through --window-long windows of "
                    "a trajectory carried on across epochs, one Adam step per window; "
                    "single: the original, one step per epoch through all of --tsim from "
                    "the same initial state."),
        option("--window", type=float, default=None, show_default="min(10, --tsim)",
               help="Window of the windows procedure [τ]; an epoch is --tsim / --window "
                    "windows."),
        option("--replicas", type=int, default=replicas,
               help="Trajectories per network (independent initial states, shared "
                    "parameters) whose mean exponents the loss sees."),
        option("--eval_tsim", type=float, default=None, show_default="4 × --tsim",
               help="Accumulation time of the independent evaluation runs [τ]."),
        option("--eval_ttrans", type=float, default=None, show_default="--tsim",
               help="Warm-up of the independent evaluation runs [τ]."),
        option("--baseline", type=click.BOOL, default=True,
               help="Evaluate the best single global gain (shifts 0) for comparison."),
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


def connectome_options(function):
    decorators = [
        option("--roi", default="flywire_mb_right",
               help="A shipped connectome name or the path to a ROI folder / FlyWire .npz."),
        option("--cell_classes", default=None,
               help="Comma-separated cell classes to keep, e.g. KC,MBON,APL."),
        option("--normalization", type=click.Choice(NORMALIZATIONS), default="rows",
               help="Weight normalisation (rows: unit absolute input per neuron)."),
        option("--g", type=float, default=1.0, help="Scale of the normalised weights."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


@click.command("train_flybrain_full", cls=Command)
@connectome_options
@training_options(with_n=False, replicas=FlybrainConfig.replicas)
@executor_options
@common_options
def train_flybrain_full(**kwargs):
    """Train per-neuron gains and shifts of a connectome network on its Lyapunov spectrum.

    Example: train_flybrain_full --cell_classes KC,MBON,APL --nle 5 --n_epochs 20
    """
    run_command(TrainFlybrainFull(), kwargs)


@click.command("train_flybrain_pop", cls=Command)
@option("--subpopulation", type=click.Choice(SUBPOPULATIONS), default="neurotransmitter",
        help="Populations sharing one gain and one shift.")
@connectome_options
@training_options(with_n=False, replicas=FlybrainPopConfig.replicas)
@executor_options
@common_options
def train_flybrain_pop(**kwargs):
    """Train population-shared gains and shifts of a connectome network on its spectrum.

    Example: train_flybrain_pop --subpopulation neurotransmitter --nle 10 --n_epochs 20
    """
    run_command(TrainFlybrainPop(), kwargs)


@click.command("train_rd_model", cls=Command)
@option("--g", type=float, default=3.0, help="Coupling g: W_ij ~ N(0, g²/N).")
@training_options()
@executor_options
@common_options
def train_rd_model(**kwargs):
    """Train random rate networks (weights, gains, shifts) on their Lyapunov spectrum.

    Example: train_rd_model --n 100 --g 3 --nle 5 --loss MSE --target 0 --n_epochs 50
    """
    run_command(TrainRandomModel(), kwargs)


@click.command("train_rd_model_fixed_param", cls=Command)
@option("--g", type=float, default=3.0, help="Coupling g: W_ij ~ N(0, g²/N).")
@option("--number_param", type=int, nargs=3, default=(100, 10, 10),
        help="Trainable entries per network: W G S.")
@training_options()
@executor_options
@common_options
def train_rd_model_fixed_param(**kwargs):
    """Train a fixed number of randomly chosen weights, gains and shifts on the spectrum.

    Example: train_rd_model_fixed_param --n 100 --number_param 200 20 20 --train_weights true
    """
    run_command(TrainFixedParam(), kwargs)


