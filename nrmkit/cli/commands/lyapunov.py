"""Click commands of the lyapunov workflows (options only; the computation lives in
:mod:`nrmkit.experiments`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from nrmkit.cli.options import Command, RegistryChoice, common_options, executor_options, option
from nrmkit.cli.runner import run_command
from nrmkit.core.registry import ACTIVATIONS
from nrmkit.experiments.lyapunov.lyapu_benchmark import LyapunovBenchmark
from nrmkit.experiments.lyapunov.lyapu_convergence import Convergence
from nrmkit.experiments.lyapunov.settings import (
    CONNECTIVITIES,
    PARAMETER_SETS,
    TONS_AUTO,
    LyapunovSettings,
    RandomNetworkSettings,
)
from nrmkit.experiments.lyapunov.spectrum import Spectrum
from nrmkit.experiments.lyapunov.trained_models import RANDOM_NETWORK_OPTIONS
from nrmkit.experiments.lyapunov.transition_2_chaos import TransitionToChaos


class TonsType(click.ParamType):
    """``--tons``: a number of τ, or ``auto`` (any case) for an interval chosen from a pilot
    run; anything else is a usage error naming the option."""

    name = "tons"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "FLOAT|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        if isinstance(value, str) and value.strip().lower() == TONS_AUTO:
            return TONS_AUTO
        if not isinstance(value, bool):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        self.fail(f"{value!r} is neither a number of τ nor 'auto'", param, ctx)


TONS_TYPE = TonsType()


def lyapunov_options(*, exclude: tuple[str, ...] = (), **defaults: Any) -> Callable:
    """Click options for :class:`LyapunovSettings`, with per-workflow defaults.

    ``exclude`` drops options a workflow declares itself (e.g. a repeatable ``--tons``).
    """
    settings = {**LyapunovSettings.__dataclass_fields__}
    value = lambda name: defaults.get(name, settings[name].default)  # noqa: E731
    activation_choice = RegistryChoice(ACTIVATIONS)
    decorators = {
        "n": option("--n", type=int, default=value("n"), help="Neurons per network."),
        "nle": option(
            "--nle", type=int, default=value("nle"),
            show_default="all" if value("nle") is None else True,
            help="Number of Lyapunov exponents computed."),
        "activation": option(
            "--activation", type=activation_choice, default=value("activation"),
            help="Activation φ (std = tanh, strech = tanh_stretch, pos = tanh_pos)."),
        "tsim": option(
            "--tsim", type=float, default=value("tsim"),
            help="Accumulation time of the exponents [τ]."),
        "dt": option("--dt", type=float, default=value("dt"), help="Euler time step [τ]."),
        "tons": option(
            "--tons", type=TONS_TYPE, default=value("tons"),
            help="Time between QR re-orthonormalisations [τ]; auto: chosen from a pilot "
                 "run so that t_ONS·(λ_1 − λ_k) stays at half the dtype's precision limit "
                 "(analyses only)."),
        "ttrans": option(
            "--ttrans", type=float, default=value("ttrans"),
            help="State warm-up before the tangent basis starts [τ]."),
        "tbasis": option(
            "--tbasis", type=float, default=value("tbasis"), show_default="10% of tsim",
            help="Basis transient: re-orthonormalised, not accumulated [τ]."),
    }
    chosen = [decorator for name, decorator in decorators.items() if name not in exclude]

    def apply(function: Callable) -> Callable:
        for decorator in reversed(chosen):
            function = decorator(function)
        return function

    return apply


def parameter_option(default: tuple[str, ...] = ("weights",)) -> Callable:
    return option(
        "--parameter", type=click.Choice(PARAMETER_SETS), multiple=True, default=default,
        help="Parameter set(s) drawn with the coupling g (repeatable): weights N(0, g²/N), "
             "gains and shifts N(1, g²/N).",
    )


#: the options of :func:`connectivity_options` (refused with ``--model``).
CONNECTIVITY_OPTIONS = ("connectivity", "frac_exc", "connection_prob")


def connectivity_options(function: Callable) -> Callable:
    """``--connectivity``, ``--frac_exc``, ``--connection_prob``: the ensemble of the random
    matrices (:class:`RandomNetworkSettings`)."""
    fields = RandomNetworkSettings.__dataclass_fields__
    decorators = [
        option("--connectivity", type=click.Choice(CONNECTIVITIES),
               default=fields["connectivity"].default,
               help="Ensemble of the random matrices W = g·J: gaussian J_ij ~ N(0, 1/N); "
                    "symmetric (X + Xᵀ)/2 with X_ij ~ N(0, 1/N) (real spectrum, semicircle "
                    "of radius √2·g); ei: sparse balanced excitatory/inhibitory columns "
                    "(Dale's law, rows summing to 0, bulk radius g)."),
        option("--frac_exc", "--frac-exc", "frac_exc", type=float,
               default=fields["frac_exc"].default,
               help="With --connectivity ei: fraction of excitatory neurons."),
        option("--connection_prob", "--connection-prob", "connection_prob", type=float,
               default=fields["connection_prob"].default,
               help="With --connectivity ei: connection probability within each population "
                    "(every neuron receives round(p·N_E) excitatory and round(p·N_I) "
                    "inhibitory inputs)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def model_options(function: Callable) -> Callable:
    """``--model RUN_DIR`` and ``--untrained``: analyse the networks of a training run."""
    decorators = [
        option("--model", type=click.Path(), default=None, show_default=False,
               help="Analyse the trained networks of this training run (its --output-dir: "
                    "train_rd_model, train_rd_model_fixed_param, train_flybrain_full, "
                    "train_flybrain_pop) instead of random networks; N, dt and the "
                    "activation are the model's."),
        option("--untrained", is_flag=True, default=False,
               help="With --model: the same networks before training (model_initial.pt)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


#: where a value that is not the default came from, for the message of a conflict.
_SOURCES = {"ENVIRONMENT": " (set in the environment)", "DEFAULT_MAP": " (set by --config)"}


def refuse_network_options(kwargs: Mapping[str, Any],
                           names: tuple[str, ...] = RANDOM_NETWORK_OPTIONS) -> None:
    """With ``--model``, a usage error (exit 2) naming the first option of ``names`` given on
    the command line, in the environment or by ``--config``: those options describe random
    networks, and the analysed networks have their own."""
    if kwargs.get("model") is None:
        return
    context = click.get_current_context()
    params = {param.name: param for param in context.command.params}
    for name in names:
        source = context.get_parameter_source(name) if name in params else None
        if source is None or source.name in ("DEFAULT", "PROMPT"):
            continue
        flag = params[name].opts[0]
        raise click.UsageError(
            f"Invalid value for '{flag}': not with --model{_SOURCES.get(source.name, '')}: "
            "the analysed networks are the model's own (its N, dt, activation and "
            f"couplings); leave {flag} out")


@click.command("lyapu_benchmark", cls=Command)
@option("--gmin", type=float, default=0.5, help="Smallest coupling g of the timed sweep.")
@option("--gmax", type=float, default=3.0,
        help="Largest coupling g (also used by the single-network measurements).")
@option("--m_g", type=int, default=7, help="Number of couplings between gmin and gmax.")
@option("--n_samples", type=int, default=10, help="Random networks per coupling.")
@lyapunov_options(n=1000, nle=1, tsim=200.0, tons=0.2)
@option("--reference-networks", "--reference_networks", type=int, default=2,
        help="Networks of the sweep timed with the dense-Jacobian references.")
@option("--reference-steps", "--reference_steps", type=int, default=100,
        help="Euler steps of each reference timing.")
@option("--independent-steps", "--independent_steps", type=int, default=200,
        help="Euler steps of the independent-draws engine timing (no transients).")
@option("--full-spectrum-n", "--full_spectrum_n", type=int, default=1000,
        help="Network size of the full-spectrum (nle = N) timing.")
@option("--full-spectrum-steps", "--full_spectrum_steps", type=int, default=20,
        help="Euler steps of the full-spectrum timing (engine and reference).")
@option("--scaling/--no-scaling", "scaling", default=True,
        help="Time the cost per step vs nle (N=200) and vs N (nle=10).")
@option("--scaling-steps", "--scaling_steps", type=int, default=100,
        help="Euler steps of every scaling timing.")
@common_options
def lyapu_benchmark(**kwargs):
    """Time the batched Lyapunov engine against dense-Jacobian references (FlyStability).

    Example: lyapu_benchmark --output-dir runs/benchmark
    """
    run_command(LyapunovBenchmark(), kwargs, sweep=False)


@click.command("lyapu_convergence", cls=Command)
@option("--tons", "--tONS", "tons_values", type=TONS_TYPE, multiple=True,
        default=(0.2, 1.0, 5.0),
        help="Time between re-orthonormalisations [τ] (repeatable: one run per value); auto: "
             "chosen from a pilot run so that t_ONS·(λ_1 − λ_k) stays at half the dtype's "
             "precision limit.")
@option("--g", type=float, default=1.5, help="Coupling g of the random networks.")
@option("--n_samples", type=int, default=5, help="Random networks.")
@lyapunov_options(exclude=("tons",), n=100, nle=20, tsim=700.0)
@connectivity_options
@option("--activity_neurons", "--activity-neurons", "activity_neurons", type=int, default=10,
        help="Neurons of network 0 whose states are traced in figures/activity (with the "
             "population activity of every network and an image of network 0); 0: no "
             "activity figure.")
@option("--activity_time", "--activity-time", "activity_time", type=float, default=50.0,
        help="Duration of the activity record, from a fresh random state [τ].")
@model_options
@common_options
def lyapu_convergence(**kwargs):
    """Convergence of the Lyapunov exponents in time, for several t_ONS values, of random
    networks or of the networks of a training run (--model RUN_DIR [--untrained]).

    Examples: lyapu_convergence --tons 0.2 --tons 1 --tons auto --g 3;
    lyapu_convergence --model data/runs/train_rd_model/RUN --tons 0.2 --tons auto
    """
    refuse_network_options(kwargs, RANDOM_NETWORK_OPTIONS + CONNECTIVITY_OPTIONS)
    run_command(Convergence(), kwargs, sweep=False)


@click.command("spectrum", cls=Command)
@option("--n_samples", type=int, default=3, help="Random networks per coupling.")
@option("--variance_max", type=int, default=12,
        help="Couplings σ = 2^0 … 2^(variance_max − 1).")
@option("--g", type=float, multiple=True,
        help="A coupling (repeatable); replaces the σ = 2^k grid.")
@parameter_option()
@lyapunov_options(n=100, nle=None, tsim=200.0, tons=0.2)
@option("--independent-draws", "--independent_draws", is_flag=True, default=False,
        help="Draw a fresh matrix for every (g, sample) instead of reusing one per sample.")
@connectivity_options
@model_options
@executor_options
@common_options
def spectrum(**kwargs):
    """Lyapunov spectra, Kaplan–Yorke dimension and entropy of random networks vs coupling,
    or of the networks of a training run (--model RUN_DIR [--untrained]).

    Examples: spectrum --n 200 --g 2 --g 3 --g 6 --tons 1;
    spectrum --model data/runs/train_rd_model/RUN --tons auto
    """
    refuse_network_options(kwargs, RANDOM_NETWORK_OPTIONS + CONNECTIVITY_OPTIONS)
    run_command(Spectrum(), kwargs)


@click.command("transition_2_chaos", cls=Command)
@option("--gmin", type=float, required=True, help="Smallest coupling g.")
@option("--gmax", type=float, required=True, help="Largest coupling g.")
@option("--m_g", type=int, default=7, help="Number of couplings between gmin and gmax.")
@option("--n_samples", type=int, default=10, help="Random networks per coupling.")
@parameter_option()
@lyapunov_options(n=1000, nle=1, tsim=200.0, tons=0.2)
@option("--independent-draws", "--independent_draws", is_flag=True, default=False,
        help="Draw a fresh matrix for every (g, sample) instead of reusing one per sample.")
@connectivity_options
@executor_options
@common_options
def transition_2_chaos(**kwargs):
    """λ_max of random rate networks across couplings: the transition to chaos at g = 1.

    Example: transition_2_chaos --gmin 0.5 --gmax 3
    """
    run_command(TransitionToChaos(), kwargs)
