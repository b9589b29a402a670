"""Click commands of the glifr workflows (options only; the computation lives in
:mod:`nrmkit.experiments`)."""

from __future__ import annotations

import click

from nrmkit.cli.options import Command, common_options, executor_options, option
from nrmkit.cli.runner import run_command
from nrmkit.experiments.glifr.train_glifr import TASK_DEFAULTS, GlifrConfig, TrainGlifr
from nrmkit.experiments.glifr.trials import CELLS, VARIANTS


@click.command("train_glifr", cls=Command)
@option("--task", type=click.Choice(list(TASK_DEFAULTS)), default="sine",
        help="sine generation, lmnist (rows) or pmnist (pixel by pixel).")
@option("--model", type=click.Choice(list(CELLS)), default="glifr",
        help="GLIFR network, or the parameter-matched RNN / LSTM.")
@option("--variant", type=click.Choice(list(VARIANTS)), default="lhet",
        help="hom (fixed), lhet (learned), fhet (fixed het.), rhet (learned from het.).")
@option("--ascs/--no-ascs", default=True, help="Two after-spike currents per neuron.")
@option("--lhet_run", type=click.Path(file_okay=False), default=None,
        help="Trained lhet run whose parameters seed the heterogeneous init (fhet, rhet).")
@option("--delay", type=float, default=1.0, help="Synaptic delay (ms).")
@option("--dt", type=float, default=0.05, help="Time step (ms).")
@option("--sigma_v", type=float, default=1.0, help="σ_V of the rate sigmoid.")
@option("--anneal_sigma_v", is_flag=True, default=False,
        help="Anneal σ_V geometrically to a tenth over training.")
@option("--hidden", type=int, default=256,
        help="RNN hidden size setting the parameter budget of every model.")
@option("--epochs", type=int, default=None, show_default="sine 5000, MNIST 30",
        help="Training epochs.")
@option("--lr", type=float, default=None, show_default="sine 1e-4, MNIST 1e-3",
        help="Adam learning rate.")
@option("--batch", type=int, default=None, show_default="sine 6, MNIST 256",
        help="Sequences per update.")
@option("--ntrials", type=int, default=1,
        help="Independent trials (trial k: the streams (seed, k, purpose)).")
@option("--silence", type=str, default=None,
        help="Comma-separated fractions of hidden neurons to silence after training.")
@option("--silence_draws", type=int, default=GlifrConfig.silence_draws,
        help="Random subsets per fraction.")
@option("--dataset", type=click.Choice(["digits", "mnist"]), default="digits",
        help="Digits for lmnist / pmnist (see smnist).")
@option("--data-dir", "--data_dir", "data_dir", type=click.Path(), default=None,
        help="Folder with the MNIST IDX files (or mnist.pkl.gz).")
@executor_options
@common_options
def train_glifr(**kwargs):
    """Train GLIFR (or matched RNN / LSTM) networks on sine generation or digits.

    Example: train_glifr --task sine --variant lhet --hidden 64 --epochs 1000 --ntrials 3
    """
    run_command(TrainGlifr(), kwargs)
