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
        help="sine generation, lmnist (rows), pmnist (pixel by pixel) or nmnist (event "
             "frames read from --data-dir).")
@option("--model", type=click.Choice(list(CELLS)), default="glifr",
        help="GLIFR network, or the parameter-matched RNN / LSTM.")
@option("--variant", type=click.Choice(list(VARIANTS)), default="lhet",
        help="hom (fixed), lhet (learned), fhet (fixed het.), rhet (learned from het.).")
@option("--ascs/--no-ascs", default=True, help="Two after-spike currents per neuron.")
@option("--lhet_run", type=click.Path(file_okay=False), default=None,
        help="Trained lhet run whose parameters seed the heterogeneous init (fhet, rhet).")
@option("--delay", type=float, default=None,
        show_default="pmnist 15, others 1; on the digits lmnist 0.3, pmnist 1.2",
        help="Synaptic delay (ms) of GLIFR and RNN.")
@option("--dt", type=float, default=None, show_default="nmnist 1, others 0.05",
        help="Time step (ms); nmnist: the length of each of its 15 frames.")
@option("--sigma_v", type=float, default=1.0, help="σ_V of the rate sigmoid.")
@option("--anneal_sigma_v", is_flag=True, default=False,
        help="Anneal σ_V linearly from --sigma_v to 1e-3 over training.")
@option("--hidden", type=int, default=None, show_default="sine 128, others 256",
        help="RNN hidden size setting the parameter budget of every model.")
@option("--epochs", type=int, default=None,
        show_default="sine 5000, pmnist 50, lmnist and nmnist 30", help="Training epochs.")
@option("--lr", type=float, default=None, show_default="sine and pmnist 1e-4, others 1e-3",
        help="Adam learning rate.")
@option("--batch", type=int, default=None,
        show_default="sine 6, lmnist 256, pmnist and nmnist 512", help="Sequences per update.")
@option("--ntrials", type=int, default=1,
        help="Independent trials (trial k: the streams (seed, k, purpose)).")
@option("--silence", type=str, default=None,
        help="Comma-separated fractions of hidden neurons to silence after training.")
@option("--silence_draws", type=int, default=GlifrConfig.silence_draws,
        help="Random subsets per fraction.")
@option("--dropout_prob", type=float, default=GlifrConfig.dropout_prob,
        help="Drop each hidden rate with this probability at every training step.")
@option("--dataset", type=click.Choice(["digits", "mnist"]), default="digits",
        help="Digits for lmnist / pmnist (see smnist).")
@option("--data-dir", "--data_dir", "data_dir", type=click.Path(), default=None,
        help="Folder with the MNIST IDX files (or mnist.pkl.gz); for nmnist the N-MNIST "
             "Train/ and Test/ folders.")
@executor_options
@common_options
def train_glifr(**kwargs):
    """Train GLIFR (or matched RNN / LSTM) networks on sine generation or digits.

    Example: train_glifr --task sine --variant lhet --hidden 64 --epochs 1000 --ntrials 3
    """
    run_command(TrainGlifr(), kwargs)
