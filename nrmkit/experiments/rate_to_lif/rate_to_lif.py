"""``rate_to_lif``: Dale's-law rate RNNs trained on cognitive tasks, mapped to LIF networks.

Modes (``--mode``):

* ``train`` — train a rate network (:mod:`nrmkit.nn.dale`) on ``--task`` with the published
  stopping rule (:mod:`nrmkit.training.rate_task`); writes ``model.pt`` and the published
  ``.mat`` under the published folder and name
  (``models/<task>/P_rec_<p>_Taus_<min>_<max>/Task_<task>_N_<N>_Taus_<min>_<max>_Act_<act>_
  <timestamp>.mat``, ``Tau_<τ>`` for a fixed τ; :mod:`nrmkit.datasets.matfile`).
* ``convert`` — the λ grid search: the LIF network (:mod:`nrmkit.nn.lif`) with the weights of
  ``--model`` divided by each λ in ``--lambdas`` (default the published grid of the
  activation) runs ``--lif_trials`` trials; the best accuracy picks ``best_lambda``.
* ``eval`` — the LIF network at one λ (``--lambda``; default the model's stored best λ) on
  ``--lif_trials`` fresh trials: accuracy, firing rates, raster, read-outs; optionally with
  artificial stimulation (``--stim_mode``, ``--stim_window``, ``--stim_units``) and voltage
  traces (``--trace_units``) (:mod:`~nrmkit.experiments.rate_to_lif.perturbation`).
  ``--use_initial_weights`` (convert, eval) puts back the untrained recurrent weights.
* ``all`` (default) — train, convert, then evaluate at the best λ on fresh trials.

``--model`` (convert, eval) is a ``.mat`` of the published code, a ``model.pt``, or a run
directory of this workflow; the rate options then come from the model.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/rate_to_lif.md``), and a test checks them against what the workflow writes.
Arrays: ``training.npz``, ``rate_outputs.npz``, ``lif_grid.npz``, ``lif_eval.npz``,
``lif_stimulation.npz``, ``lif_traces.npz``. Figures: ``training``, ``rate_outputs``,
``lambda_grid``, ``lif_outputs``, ``lif_raster``, ``lif_stimulation``, ``lif_traces``.

This module holds the options and the workflow; the work is done by
:mod:`~nrmkit.experiments.rate_to_lif.training` (the rate network),
:mod:`~nrmkit.experiments.rate_to_lif.models` (``--model``, ``model.pt`` and the ``.mat``),
:mod:`~nrmkit.experiments.rate_to_lif.conversion` (the λ grid and the LIF evaluation),
:mod:`~nrmkit.experiments.rate_to_lif.exponents` (``--lyapunov``) and
:mod:`~nrmkit.experiments.rate_to_lif.memory` (the memory estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nrmkit.core.base import SweepWorkflow
from nrmkit.core.checks import check, check_finite
from nrmkit.core.errors import ConfigError
from nrmkit.core.registry import TASKS, TRANSFER_FUNCTIONS
from nrmkit.experiments.rate_to_lif.conversion import (
    evaluate_lif,
    grid_report,
    grid_search,
    grid_simulation,
    lambda_values,
)
from nrmkit.experiments.rate_to_lif.exponents import lyapunov_exponents
from nrmkit.experiments.rate_to_lif.memory import (
    rate_to_lif_memory_terms,
)
from nrmkit.experiments.rate_to_lif.models import load_model, prepared, write_models
from nrmkit.experiments.rate_to_lif.perturbation import check_perturbations
from nrmkit.experiments.rate_to_lif.training import train_rate_network

MODES = ("all", "train", "convert", "eval")


def parse_decay_taus(values) -> tuple[float, ...]:
    """``("4 20",)``, ``("4,20",)`` or ``("4", "20")`` → ``(4.0, 20.0)``."""
    numbers = []
    for value in values:
        for part in str(value).replace(",", " ").split():
            try:
                numbers.append(float(part))
            except ValueError:
                raise ConfigError("--decay_taus", f"not a number: {part!r}") from None
    return tuple(numbers)


def parse_trace_units(values) -> tuple[int, ...]:
    """``("0,5", "7")`` → ``(0, 5, 7)`` (``--trace_units``)."""
    units = []
    for value in values:
        for part in str(value).replace(",", " ").split():
            try:
                units.append(int(part))
            except ValueError:
                raise ConfigError("--trace_units", f"not a unit index: {part!r}") from None
    return tuple(units)


@dataclass(frozen=True)
class RateToLifConfig:
    """Options of ``rate_to_lif`` (times: τ in 5-ms steps, LIF in ms)."""

    mode: str = "all"
    task: str = "go-nogo"
    n: int = 200
    decay_taus: tuple[float, ...] = (4.0, 20.0)
    p_inh: float = 0.2
    p_rec: float = 0.2
    som_n: int = 0
    gain: float = 1.5
    apply_dale: bool = True
    act: str = "sigmoid"
    loss_fn: str = "l2"
    n_trials: int = 6000
    batch: int = 10
    lr: float = 0.01
    model: str | None = None
    lambdas: tuple[float, ...] = ()
    scaling: float | None = None
    lif_trials: int = 100
    lif_noise: float = 0.1
    lif_dt: float = 0.05
    tau_rise: float = 2.0
    t_ref: float = 2.0
    lyapunov: int = 0
    use_initial_weights: bool = False
    stim_mode: str = "none"
    stim_window: tuple[float, float] | None = None
    stim_units: str | None = None
    stim_amplitude: float = 0.5
    stim_prob: float = 0.5
    trace_units: tuple[int, ...] = ()
    trace_trials: int = 1

    def __post_init__(self):
        check(self.mode in MODES, "--mode", f"choose from {', '.join(MODES)}")
        check(self.task in TASKS, "--task",
              f"unknown task {self.task!r}; choose from {', '.join(TASKS.names())}")
        check(self.n >= 2, "--n", f"a network needs at least 2 units, got {self.n}")
        taus = tuple(float(t) for t in self.decay_taus)
        object.__setattr__(self, "decay_taus", taus)
        check(len(taus) in (1, 2), "--decay_taus",
              f"give MIN MAX (trainable) or one fixed value, got {len(taus)} values")
        check(all(t == t and t >= 1.0 and t != float("inf") for t in taus), "--decay_taus",
              f"time constants are in 5-ms steps and must be finite and ≥ 1, got {taus}")
        check(taus[0] <= taus[-1], "--decay_taus", f"MIN must not exceed MAX, got {taus}")
        for name in ("p_inh", "p_rec"):
            value = getattr(self, name)
            check(value == value and 0.0 <= value <= 1.0, f"--{name}",
                  f"a probability must lie in [0, 1], got {value}")
        check(self.p_rec > 0, "--p_rec", "must be positive")
        check(0 <= self.som_n <= self.n, "--som_n", f"must lie in [0, --n], got {self.som_n}")
        check_finite(self.gain, "--gain")
        check(self.gain > 0, "--gain", f"must be positive, got {self.gain}")
        check(self.act in TRANSFER_FUNCTIONS, "--act",
              f"choose from {', '.join(TRANSFER_FUNCTIONS.names())}")
        check(self.loss_fn in ("l1", "l2"), "--loss_fn", "choose l1 or l2")
        for name in ("n_trials", "batch", "lif_trials"):
            value = getattr(self, name)
            check(value >= 1, f"--{name}", f"must be at least 1, got {value}")
        check_finite(self.lr, "--lr")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        lambdas = tuple(float(v) for v in self.lambdas)
        object.__setattr__(self, "lambdas", lambdas)
        check(all(v > 0 and v != float("inf") for v in lambdas), "--lambdas",
              f"scaling factors must be positive and finite, got {lambdas}")
        if self.scaling is not None:
            check(0 < self.scaling < float("inf"), "--lambda",
                  f"must be positive and finite, got {self.scaling}")
        check(self.lif_noise >= 0 and self.lif_noise != float("inf"), "--lif_noise",
              f"must be a finite number ≥ 0 (mV), got {self.lif_noise}")
        check(self.lif_dt > 0, "--lif_dt", f"must be positive, got {self.lif_dt}")
        ratio = 5.0 / self.lif_dt
        check(abs(ratio - round(ratio)) < 1e-6 * ratio, "--lif_dt",
              f"must divide the 5-ms rate step, got {self.lif_dt}")
        check(self.tau_rise >= 0, "--tau_rise", f"must be ≥ 0 ms, got {self.tau_rise}")
        check(self.t_ref >= 0, "--t_ref", f"must be ≥ 0 ms, got {self.t_ref}")
        check(self.lyapunov >= 0, "--lyapunov", f"must be ≥ 0, got {self.lyapunov}")
        if self.mode in ("convert", "eval"):
            check(self.model is not None, "--model",
                  f"--mode {self.mode} needs a trained model (.mat, model.pt or a run folder)")
        if self.model is not None:
            check(Path(self.model).exists(), "--model", f"{self.model} does not exist")
            check(self.mode in ("convert", "eval"), "--model",
                  f"is used by --mode convert or eval, not {self.mode}")
        check(self.lyapunov <= self.n or self.model is not None, "--lyapunov",
              f"cannot exceed --n ({self.lyapunov} > {self.n})")
        check_perturbations(self)


class RateToLif(SweepWorkflow):
    """Train / convert / evaluate; ``--mode convert`` is a sweep over the scaling factors
    (units = λ values: every λ sees the same trials and noise, so chunks of λ give the
    numbers of one batched grid)."""

    name = "rate_to_lif"
    config_class = RateToLifConfig
    unit_name = "scaling factor"
    unit_option = "--lambdas"
    resumable = True
    resume_free_options = ("n_trials",)

    def is_sweep(self, config: RateToLifConfig) -> bool:
        return config.mode == "convert"

    def memory_terms(self, config: RateToLifConfig, *, itemsize: int) -> list:
        """See :func:`~nrmkit.experiments.rate_to_lif.memory.rate_to_lif_memory_terms`."""
        return rate_to_lif_memory_terms(config, itemsize=itemsize)

    def n_units(self, config: RateToLifConfig) -> int:
        return len(lambda_values(config, load_model(config, _task(config))[0]))

    def run_units(self, config: RateToLifConfig, context, units: list[int]) -> dict:
        network, _ = load_model(config, _task(config))
        network = prepared(network, context)
        lambdas = lambda_values(config, network)
        accuracy, rates, outputs, _ = grid_simulation(
            config, context, _task(config), network, [lambdas[u] for u in units])
        return {"accuracy": accuracy, "firing_rate_hz": rates,
                "outputs": outputs.transpose(1, 0, 2)}

    def aggregate(self, config: RateToLifConfig, context, arrays) -> dict:
        task = _task(config)
        network, _ = load_model(config, task)
        network = prepared(network, context)
        results = {"task": task.name, "mode": config.mode,
                   "model": str(Path(config.model).resolve()), "n": network.spec.n,
                   "activation": network.spec.activation,
                   "use_initial_weights": config.use_initial_weights}
        trials = task.trials(config.lif_trials, context.stream("grid trials"))
        grid_report(config, context, task, network, lambda_values(config, network),
                    arrays["accuracy"], arrays["firing_rate_hz"],
                    arrays["outputs"].transpose(1, 0, 2), trials, results)
        if config.lyapunov:
            results["lyapunov_exponents"] = lyapunov_exponents(config, context, network)
        return results

    def run(self, config: RateToLifConfig, context) -> dict:
        if config.mode == "convert":
            return super().run(config, context)
        executor = context.extras.get("executor")
        if executor is not None and (executor.executor != "serial" or executor.array_task
                                     or (executor.jobs or 1) > 1):
            raise ConfigError("--executor", "only --mode convert runs in chunks (of λ)")
        task = _task(config)
        results: dict = {"task": task.name, "mode": config.mode}
        losses, stored_lambda = None, None
        if config.mode in ("train", "all"):
            network, losses, record = train_rate_network(config, context, task, results)
        else:
            network, stored_lambda = load_model(config, task)
            results["model"] = str(Path(config.model).resolve())
            results["use_initial_weights"] = config.use_initial_weights
        network = prepared(network, context)
        results["n"] = network.spec.n
        results["activation"] = network.spec.activation
        if config.mode == "all":
            grid_search(config, context, task, network, results)
        if config.mode in ("eval", "all"):
            scaling = (results["best_lambda"] if config.mode == "all" else
                       config.scaling if config.scaling is not None else stored_lambda)
            if scaling is None:
                raise ConfigError("--lambda", "give the scaling factor to evaluate (the model "
                                              "stores no best λ)")
            evaluate_lif(config, context, task, network, float(scaling), results)
        if config.lyapunov:
            results["lyapunov_exponents"] = lyapunov_exponents(config, context, network)
        if losses is not None and context.run_dir.path is not None:
            write_models(context, task, network, results, losses, record)
        return results


def _task(config: RateToLifConfig):
    """The cognitive task of ``--task`` (:func:`nrmkit.datasets.cognitive.get_task`)."""
    from nrmkit.datasets.cognitive import get_task

    return get_task(config.task)
