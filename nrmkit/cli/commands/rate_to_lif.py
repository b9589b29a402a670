"""Click commands of the rate to lif workflows (options only; the computation lives in
:mod:`nrmkit.experiments`)."""

from __future__ import annotations

import click

from nrmkit.cli.options import Command, RegistryChoice, common_options, executor_options, option
from nrmkit.cli.runner import run_command
from nrmkit.core.registry import TASKS, TRANSFER_FUNCTIONS
from nrmkit.experiments.rate_to_lif.perturbation import STIM_MODES
from nrmkit.experiments.rate_to_lif.rate_to_lif import (
    MODES,
    RateToLif,
    parse_decay_taus,
    parse_trace_units,
)


@click.command("rate_to_lif", cls=Command)
@option("--mode", type=click.Choice(MODES), default="all",
        help="train the rate network, convert (λ grid search), eval at one λ, or all.")
@option("--task", type=RegistryChoice(TASKS), default="go-nogo", help="Cognitive task.")
@option("--n", "--N", "n", type=int, default=200, help="Units of the rate network.")
@option("--decay_taus", type=str, multiple=True, default=("4", "20"),
        show_default="4 20",
        help="Synaptic decay τ in 5-ms steps: 'MIN MAX' (trainable) or one fixed value.")
@option("--p_inh", "--P_inh", "p_inh", type=float, default=0.2,
        help="Probability of an inhibitory unit.")
@option("--p_rec", "--P_rec", "p_rec", type=float, default=0.2,
        help="Recurrent connection probability.")
@option("--som_n", "--som_N", "som_n", type=int, default=0,
        help="SOM units (inhibitory units that receive no inhibition).")
@option("--gain", type=float, default=1.5, help="Gain g of the initial weights.")
@option("--apply_dale", type=click.BOOL, default=True, help="Enforce Dale's principle.")
@option("--act", type=RegistryChoice(TRANSFER_FUNCTIONS), default="sigmoid",
        help="Transfer function of the rate units.")
@option("--loss_fn", type=click.Choice(["l1", "l2"], case_sensitive=False), default="l2",
        help="Per-trial loss.")
@option("--n_trials", type=int, default=6000,
        help="Cap on training updates (each on --batch trials).")
@option("--batch", type=int, default=10, help="Trials per update (1 = published).")
@option("--lr", type=float, default=0.01, help="Adam learning rate.")
@option("--model", type=click.Path(), default=None,
        help="Trained model for convert/eval: a published .mat, a model.pt or a run folder.")
@option("--lambdas", type=float, multiple=True, default=(), show_default="20,25,…,75 "
        "(sigmoid), 4,6,…,26 (others)", help="Scaling factors λ of the grid (repeat).")
@option("--lambda", "scaling", type=float, default=None, show_default="best λ",
        help="Scaling factor of --mode eval.")
@option("--lif_trials", type=int, default=100, help="Trials per scaling factor.")
@option("--lif_noise", type=float, default=0.1, help="Membrane noise per LIF step (mV).")
@option("--lif_dt", type=float, default=0.05, help="LIF time step (ms).")
@option("--tau_rise", type=float, default=2.0,
        help="Synaptic rise time (ms); 0 = single-exponential synapses.")
@option("--t_ref", type=float, default=2.0, help="Refractory period (ms).")
@option("--lyapunov", type=int, default=0,
        help="Also compute the top-K Lyapunov exponents of the rate network.")
@option("--use_initial_weights", is_flag=True, default=False,
        help="convert/eval: the untrained recurrent weights w0 of --model (a control).")
@option("--stim_mode", type=click.Choice(STIM_MODES), default="none",
        help="eval: artificial stimulation, depolarising (exc) or hyperpolarising (inh).")
@option("--stim_window", type=float, nargs=2, default=None, metavar="START END",
        help="eval: stimulation window (ms from trial start).")
@option("--stim_units", type=str, default=None,
        help="eval: stimulated units: 0-based indices '0,5,7', or exc, inh, all "
             "(optionally :K for K random units of it).")
@option("--stim_amplitude", type=float, default=0.5,
        help="eval: voltage step of the stimulation (mV).")
@option("--stim_prob", type=float, default=0.5,
        help="eval: probability of a step per LIF step.")
@option("--trace_units", type=str, multiple=True, default=(),
        help="eval: units whose membrane voltage is recorded ('0,5' or repeat).")
@option("--trace_trials", type=int, default=1,
        help="eval: voltage traces of the first N trials.")
@executor_options
@common_options
def rate_to_lif(**kwargs):
    """Train Dale rate RNNs on cognitive tasks and map them to spiking LIF networks.

    Example: rate_to_lif --task go-nogo --n 200 --decay_taus 4 --decay_taus 20
    """
    kwargs["decay_taus"] = parse_decay_taus(kwargs["decay_taus"])
    kwargs["trace_units"] = parse_trace_units(kwargs["trace_units"])
    run_command(RateToLif(), kwargs)
