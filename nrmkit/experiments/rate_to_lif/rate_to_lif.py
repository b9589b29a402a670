"""``rate_to_lif``: Dale's-law rate RNNs trained on cognitive tasks, mapped to LIF networks.

Modes (``--mode``):

* ``train`` — train a rate network (:mod:`nrmkit.nn.dale`) on ``--task`` with the published
  stopping rule (:mod:`nrmkit.training.rate_task`); writes ``model.pt`` and the published
  ``.mat`` (``Task_<task>_N_<N>_Taus_<min>_<max>_Act_<act>_<timestamp>.mat``).
* ``convert`` — the λ grid search: the LIF network (:mod:`nrmkit.nn.lif`) with the weights of
  ``--model`` divided by each λ in ``--lambdas`` (default the published grid of the
  activation) runs ``--lif_trials`` trials; the best accuracy picks ``best_lambda``.
* ``eval`` — the LIF network at one λ (``--lambda``; default the model's stored best λ) on
  ``--lif_trials`` fresh trials: accuracy, firing rates, raster, read-outs.
* ``all`` (default) — train, convert, then evaluate at the best λ on fresh trials.

``--model`` (convert, eval) is a ``.mat`` of the published code, a ``model.pt``, or a run
directory of this workflow; the rate options then come from the model.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/rate_to_lif.md``), and a test checks them against what the workflow writes.
Arrays: ``training.npz``, ``rate_outputs.npz``, ``lif_grid.npz``, ``lif_eval.npz``.
Figures: ``training``, ``rate_outputs``, ``lambda_grid``, ``lif_outputs``, ``lif_raster``.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path

from nrmkit.core.base import SweepWorkflow
from nrmkit.core.checks import check, check_finite
from nrmkit.core.errors import ConfigError, DataError
from nrmkit.core.registry import TASKS, TRANSFER_FUNCTIONS
from nrmkit.runs.summaries import mean_std, summary_statistics

MODES = ("all", "train", "convert", "eval")


TRAINING_CHECKPOINT = "checkpoints/training.pt"


LYAPUNOV_TRAJECTORIES = 10


#: N × N matrices alive while training (in floats of the run's dtype): the weights, their
#: gradient, Adam's two moments, the SOM mask, the effective weights and the temporaries
#: that form them, and a checkpoint of weights, mask and moments.
TRAINING_MATRICES = 12


#: N × N float64 matrices while the ``.mat`` is written: ``w``, ``m`` and ``som_m``, their
#: float64 copies, and the compressed file.
MAT_MATRICES = 7


#: N × N matrices of a LIF simulation: the network's weights, mask and effective weights,
#: and the synaptic jumps ``[W/τ | diag(1/τ)]`` (N × 2N) with the temporaries forming them.
LIF_MATRICES = 7


#: bytes per (network, neuron) of the LIF state (:func:`nrmkit.nn.lif.simulate_lif`): ten
#: float buffers (v, [IPSC | r] and its rise, last spike, drive, two scratch, r summed over a
#: rate step), the int64 spike counts and the bool spikes.
LIF_STATE_FLOATS, LIF_STATE_BYTES = 10, 8 + 1


#: copies of ``(T, trials, N)`` in a run of the rate network without gradients: the noise,
#: the input drive, the rates of every step and their stacked copy, and a transfer temporary.
RATE_RUN_COPIES = 5


#: floats kept per step, trial and unit for backpropagation through a training batch (the
#: state, rates, recurrent input and update, the noise and drive), with allocator slack.
RATE_TRAINING_FLOATS = 14


#: firing rate assumed for sizing spike records and spike-driven temporaries (converted
#: networks at their best λ fire at 10–50 Hz, untrained ones or small λ at 150–210 Hz; the
#: refractory period alone would allow ~500 Hz).
SPIKE_RATE_BOUND_HZ = 200.0


#: resident memory over the size of one step's spike-driven temporaries (``(spikes, 2N)``,
#: a different size every step, so the allocator keeps fragments of many: measured 8× at
#: N = 800 and up to 30× at N = 1500, 20 trials, ``lif_dt`` 0.5 ms).
SPIKE_TEMPORARY_SLACK = 4


#: bytes per N² entry while a model is loaded: a ``.mat``'s float64 ``w``, ``m`` and
#: ``som_m`` with their squeezed copies, and the network they are copied into (measured
#: 54–64).
MODEL_LOAD_BYTES = 64


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
        """See :func:`rate_to_lif_memory_terms`."""
        return rate_to_lif_memory_terms(config, itemsize=itemsize)

    def n_units(self, config: RateToLifConfig) -> int:
        return len(_lambdas(config, _load(config, _task(config))[0]))

    def run_units(self, config: RateToLifConfig, context, units: list[int]) -> dict:
        network, _ = _load(config, _task(config))
        network = _prepared(network, context)
        lambdas = _lambdas(config, network)
        accuracy, rates, outputs, _ = _grid_simulation(
            config, context, _task(config), network, [lambdas[u] for u in units])
        return {"accuracy": accuracy, "firing_rate_hz": rates,
                "outputs": outputs.transpose(1, 0, 2)}

    def aggregate(self, config: RateToLifConfig, context, arrays) -> dict:
        task = _task(config)
        network, _ = _load(config, task)
        network = _prepared(network, context)
        results = {"task": task.name, "mode": config.mode,
                   "model": str(Path(config.model).resolve()), "n": network.spec.n,
                   "activation": network.spec.activation}
        trials = task.trials(config.lif_trials, context.stream("grid trials"))
        _grid_report(config, context, task, network, _lambdas(config, network),
                     arrays["accuracy"], arrays["firing_rate_hz"],
                     arrays["outputs"].transpose(1, 0, 2), trials, results)
        if config.lyapunov:
            check(config.lyapunov <= network.spec.n, "--lyapunov",
                  f"cannot exceed the model's {network.spec.n} units")
            results["lyapunov_exponents"] = _lyapunov(config, context, network)
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
            network, losses = _train(config, context, task, results)
        else:
            network, stored_lambda = _load(config, task)
            results["model"] = str(Path(config.model).resolve())
        network = _prepared(network, context)
        results["n"] = network.spec.n
        results["activation"] = network.spec.activation
        if config.mode == "all":
            _grid_search(config, context, task, network, results)
        if config.mode in ("eval", "all"):
            scaling = (results["best_lambda"] if config.mode == "all" else
                       config.scaling if config.scaling is not None else stored_lambda)
            if scaling is None:
                raise ConfigError("--lambda", "give the scaling factor to evaluate (the model "
                                              "stores no best λ)")
            _evaluate_lif(config, context, task, network, float(scaling), results)
        if config.lyapunov:
            check(config.lyapunov <= network.spec.n, "--lyapunov",
                  f"cannot exceed the model's {network.spec.n} units")
            results["lyapunov_exponents"] = _lyapunov(config, context, network)
        if losses is not None and context.run_dir.path is not None:
            _write_models(context, task, network, results, losses)
        return results


def rate_to_lif_memory_terms(config: RateToLifConfig, *, itemsize: int) -> list:
    """Estimated peak allocations of one run, in bytes, for ``N`` units, trials of ``T``
    5-ms steps, ``L`` scaling factors and floats of ``itemsize`` bytes. Training and the LIF
    runs come one after the other: the terms of the phase with the larger sum are returned.

    Training (``train``, ``all``):

    * ``N²·(itemsize·12 + 8·7)`` — weights, gradient, Adam state, mask, effective weights and
      a checkpoint (:data:`TRAINING_MATRICES`), and the float64 ``.mat`` fields
      (:data:`MAT_MATRICES`);
    * ``itemsize·14·T·batch·N`` — backpropagation through a batch of trials, or, when
      larger, ``itemsize·5·T·100·N`` for the evaluations on 100 trials between updates
      (:data:`RATE_RUN_COPIES`).

    LIF (``convert``, ``eval``, ``all``), with ``M = --lif_trials · L`` networks
    (``L = 1`` for ``eval``):

    * ``itemsize·7·N²`` — the weights and the synaptic jumps (:data:`LIF_MATRICES`), plus
      ``64·N²`` to load ``--model`` (:data:`MODEL_LOAD_BYTES`);
    * ``4·2·itemsize·2N`` per spike of one LIF step of ``dt`` ms at
      :data:`SPIKE_RATE_BOUND_HZ` (``M·N·rate·dt`` spikes): their synaptic jumps, with the
      allocator's slack (:data:`SPIKE_TEMPORARY_SLACK`);
    * ``M·N·(10·itemsize + 9)`` — the state of every network; or, if larger,
      ``itemsize·5·T·trials·N`` for the rate network on the same trials;
    * ``eval``: the spike times and neurons of trial 0 (16 bytes per spike, twice) at
      :data:`SPIKE_RATE_BOUND_HZ`.

    With ``--model``, ``N`` comes from the file without loading its weights (a ``.mat``'s
    header, a run folder's ``results.json``); a bare ``model.pt`` gives no estimate.
    """
    from nrmkit.core.base import MemoryTerm
    from nrmkit.datasets.cognitive import get_task
    from nrmkit.training.rate_task import EVAL_TRIALS

    steps = get_task(config.task).n_steps
    if config.model is None:
        n, size_option = config.n, "--n"
    else:
        n, size_option = _model_units(config.model), "--model"
        if n is None:
            return []
    phases = []
    if config.mode in ("train", "all"):
        backpropagation = MemoryTerm(
            "--batch", itemsize * RATE_TRAINING_FLOATS * steps * config.batch * n,
            f"backpropagation through {config.batch} trials of {steps} steps")
        evaluation = MemoryTerm(size_option, itemsize * RATE_RUN_COPIES * steps * EVAL_TRIALS
                                * n, f"the evaluations on {EVAL_TRIALS} trials")
        phases.append([
            MemoryTerm(size_option, n * n * (itemsize * TRAINING_MATRICES + 8 * MAT_MATRICES),
                       f"the {n}×{n} weights with their gradient, Adam state and copies"),
            max(backpropagation, evaluation, key=lambda term: term.nbytes),
        ])
    if config.mode != "train":
        params = _lif_parameters(config)
        lambdas = 1 if config.mode == "eval" else len(config.lambdas) or _default_grid_size(
            config)
        networks = config.lif_trials * lambdas
        spikes_per_step = networks * n * SPIKE_RATE_BOUND_HZ * params.dt / 1000.0
        state = networks * n * (LIF_STATE_FLOATS * itemsize + LIF_STATE_BYTES)
        rate_run = itemsize * RATE_RUN_COPIES * steps * config.lif_trials * n
        loading = MODEL_LOAD_BYTES * n * n if config.model is not None else 0
        phase = [
            MemoryTerm(size_option, itemsize * LIF_MATRICES * n * n + loading,
                       f"the {n}×{n} weights of the LIF networks and their synaptic jumps"),
            # M·N spiking neurons, each adding a row of 2N: named after the larger factor.
            MemoryTerm(size_option if n >= networks else "--lif_trials",
                       SPIKE_TEMPORARY_SLACK * spikes_per_step * 2 * itemsize * 2 * n,
                       "the synaptic jumps of one LIF step's spikes at "
                       f"{SPIKE_RATE_BOUND_HZ:g} Hz"),
            MemoryTerm("--lif_trials", max(state, rate_run),
                       f"{networks:,} LIF networks of {n} neurons"),
        ]
        if config.mode in ("eval", "all"):
            duration_s = steps * params.rate_step_ms / 1000.0
            spikes = n * SPIKE_RATE_BOUND_HZ * duration_s
            phase.append(MemoryTerm(size_option, 2 * 16 * spikes,
                                    "the spike times of the raster"))
        phases.append(phase)
    return max(phases, key=lambda terms: sum(term.nbytes for term in terms))


def _model_units(model: str) -> int | None:
    """``N`` of ``--model`` read without its weights: the shape of a ``.mat``'s ``w`` or a run
    folder's ``results.json``; None otherwise (a bare ``model.pt``, an unreadable file:
    loading it reports why)."""
    import json

    import scipy.io
    from scipy.io.matlab import MatReadError

    path = Path(model)
    try:
        if path.is_dir():
            return int(json.loads((path / "results.json").read_text())["n"])
        if path.suffix == ".mat":
            shapes = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
            return int(max(shapes["w"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError, MatReadError):
        return None
    return None


def _default_grid_size(config) -> int:
    """λ values of the published grid: the model's transfer function's, or the largest
    grid when the model's function is not known before loading it."""
    from nrmkit.core.registry import TRANSFER_FUNCTIONS

    if config.model is None:
        return len(TRANSFER_FUNCTIONS.get(config.act).lif_scaling_grid)
    return max(len(TRANSFER_FUNCTIONS.get(name).lif_scaling_grid)
               for name in TRANSFER_FUNCTIONS.names())


def _train(config, context, task, results):
    import numpy as np

    from nrmkit import plotting
    from nrmkit.nn.dale import DaleRateRNN, DaleSpec
    from nrmkit.runs.checkpoints import EpochCheckpoint
    from nrmkit.training.rate_task import EVAL_TRIALS, RateTaskTrainer, evaluate_rate

    spec = DaleSpec(n=config.n, n_inputs=task.n_inputs, p_inh=config.p_inh,
                    p_rec=config.p_rec, gain=config.gain, som_n=config.som_n,
                    apply_dale=config.apply_dale, taus=config.decay_taus,
                    activation=config.act)
    network = DaleRateRNN(spec, generator=context.stream("initialisation"))
    network = network.to(device=context.device, dtype=context.torch_dtype)
    trainer = RateTaskTrainer(network, task, n_trials=config.n_trials, batch=config.batch,
                              lr=config.lr, loss=config.loss_fn,
                              generator=context.stream("training trials"))
    run_dir = context.run_dir
    checkpoint = EpochCheckpoint(
        None if run_dir.path is None else run_dir.path / TRAINING_CHECKPOINT, trainer)
    if checkpoint.restore() is not None:
        context.log(f"rate_to_lif: resuming after {trainer.updates} updates")
    context.log(f"rate_to_lif: training a {spec.n}-unit {spec.activation} Dale network on "
                f"{task.name} (batch {config.batch}, at most {config.n_trials} updates)")
    progress = context.progress("training")
    started = time.perf_counter()

    trainer.fit_until_rule(on_epoch_end=(
        checkpoint, lambda epoch, metrics: progress(trainer.updates, config.n_trials)))
    seconds = time.perf_counter() - started
    if not np.isfinite(trainer.losses[-1] if trainer.losses else 0.0):
        from nrmkit.core.errors import DivergenceError

        raise DivergenceError("rate training diverged (non-finite loss); lower --lr or --gain")
    network.eval()
    trials = task.trials(EVAL_TRIALS, context.stream("evaluation trials"))
    evaluation = evaluate_rate(network, task, trials, loss=config.loss_fn,
                               generator=context.stream("evaluation noise"))
    results.update({
        "rate_accuracy": evaluation["accuracy"], "rate_loss": evaluation["loss"],
        "trials_used": trainer.trials_used, "updates": trainer.updates,
        "stopping_rule_met": trainer.stopping_rule_met,
        "training_seconds": round(seconds, 2),
        "dale_violations": network.dale_violations(),
        "taus_ms": summary_statistics(network.taus_ms()),
    })
    context.log(f"  {trainer.updates} updates ({trainer.trials_used} trials, {seconds:.1f} s): "
                f"accuracy {100 * evaluation['accuracy']:.1f} %, loss {evaluation['loss']:.2f}, "
                f"stopping rule {'met' if trainer.stopping_rule_met else 'not met'}")
    history = trainer.history
    arrays = {key: np.array([entry[key] for entry in history], dtype=float)
              for key in ("updates", "train_loss", "eval_loss", "eval_accuracy")}
    run_dir.write_arrays("training.npz", losses=np.asarray(trainer.losses), **arrays)
    title = f"{task.name}, N = {spec.n}, {spec.activation}"
    run_dir.save_figure(plotting.rate_training_curve(
        arrays["updates"], arrays["eval_loss"], arrays["eval_accuracy"], title=title),
        "training")
    trials = task.trials(EVAL_TRIALS, context.stream("evaluation trials"))
    outputs = evaluation["outputs"].detach().cpu().numpy()
    run_dir.write_arrays("rate_outputs.npz", outputs=outputs,
                         targets=trials.targets.numpy(), conditions=trials.conditions.numpy(),
                         labels=trials.labels.numpy())
    run_dir.save_figure(plotting.rate_task_outputs(
        outputs, trials.targets.numpy(), trials.conditions.numpy(), trials.condition_names,
        title=f"rate network: {title}"), "rate_outputs")
    return network, list(trainer.losses)


def _write_models(context, task, network, results, losses) -> None:
    """``model.pt`` and the published ``.mat`` (with the grid's results in mode all, under
    the published names ``opt_scaling_factor``, ``scaling_factors``, ``all_perfs``)."""
    import numpy as np

    from nrmkit.datasets.matfile import mat_file_name, write_rate_model_mat
    from nrmkit.nn.dale import mat_fields
    from nrmkit.training.checkpoint import save_dale_network

    path = context.run_dir.path
    spec = network.spec
    extras = {"task": task.name, "eval_perf_mean": results.get("rate_accuracy", float("nan")),
              "eval_loss_mean": results.get("rate_loss", float("nan")),
              "tr": max(results.get("updates", 1) - 1, 0)}
    if "best_lambda" in results:
        lambdas = [float(v) for v in results["lif_accuracy"]]
        extras.update({"opt_scaling_factor": results["best_lambda"],
                       "scaling_factors": np.asarray(lambdas),
                       "all_perfs": np.asarray([results["lif_accuracy"][str(v)]
                                                for v in results["lif_accuracy"]])})
    name = mat_file_name(task.name, spec.n, spec.taus[0], spec.taus[-1], spec.activation,
                         _dt.datetime.now())
    network = network.cpu()
    write_rate_model_mat(path / name, {**mat_fields(network), **extras,
                                       "losses": np.asarray(losses)})
    save_dale_network(path / "model.pt", network, {"task": task.name,
                                              "best_lambda": results.get("best_lambda")})
    network.to(device=context.device)
    context.run_dir.written.extend([path / name, path / "model.pt"])
    results["mat_file"] = name


def _load(config, task):
    """The network of ``--model`` and its stored best λ (or None).

    Raises:
        ConfigError: naming ``--model`` when its file cannot be read, is not a rate model,
            lacks fields or holds non-finite weights (one line naming the file); naming
            ``--task`` when the model was trained on another task.
    """
    import json

    path = Path(config.model)
    stored_lambda = None
    if path.is_dir():
        if (path / "results.json").exists():
            try:
                stored_lambda = json.loads((path / "results.json").read_text()).get(
                    "best_lambda")
            except (OSError, ValueError):
                stored_lambda = None
        path = path / "model.pt"
        if not path.exists():
            raise ConfigError("--model", f"no model.pt in {config.model}")
    try:
        network, record = _read_model(path)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    stored_task = record.get("task")
    if path.suffix == ".mat":
        if "opt_scaling_factor" in record:
            value = float(record["opt_scaling_factor"].squeeze())
            stored_lambda = value if value == value else None
    else:
        stored_lambda = record.get("best_lambda") or stored_lambda
    if stored_task and str(stored_task) != task.name:
        raise ConfigError("--task", f"the model was trained on {stored_task}, not {task.name}")
    if network.spec.n_inputs != task.n_inputs:
        raise ConfigError("--task", f"the model has {network.spec.n_inputs} input channel(s); "
                                    f"{task.name} needs {task.n_inputs}")
    return network, stored_lambda


def _read_model(path: Path):
    """``(network, record)`` from a published-layout ``.mat`` (record: its fields) or a
    ``model.pt`` of this workflow; every failure is a :class:`DataError` naming the file."""
    from nrmkit.datasets.matfile import NETWORK_FIELDS, read_rate_model_mat
    from nrmkit.nn.dale import network_from_mat_fields
    from nrmkit.training.checkpoint import load_dale_network, require_finite

    if path.suffix == ".mat":
        fields = read_rate_model_mat(path)
        require_finite({name: fields[name] for name in NETWORK_FIELDS if name in fields},
                       path)
        try:
            network, record = network_from_mat_fields(fields, noise_std=0.1), fields
        except KeyError:
            raise DataError(f"{path}: unknown activation {fields.get('activation')!r}") \
                from None
    else:
        network, record = load_dale_network(path)
    taus = network.spec.taus
    # the bounds --decay_taus enforces: a decay under one step makes the Euler update and
    # the LIF synapses meaningless
    if not (1.0 <= taus[0] <= taus[-1] < float("inf")):
        raise DataError(f"{path}: taus must be [τ_min, τ_max] or [τ] in 5-ms steps with "
                        f"1 ≤ τ_min ≤ τ_max < ∞, got {list(taus)}")
    return network, record


def _lif_parameters(config):
    from nrmkit.nn.lif import LIFParameters

    return LIFParameters(dt=config.lif_dt, t_ref=config.t_ref, tau_rise=config.tau_rise,
                         noise_std=config.lif_noise)


def _simulate(config, context, network, trials, lambdas, *, purpose, record_spikes, label):
    import torch

    from nrmkit.nn.lif import simulate_lif

    with torch.no_grad():
        return simulate_lif(network.effective_weights(), network.w_in, network.w_out,
                            float(network.b_out), network.taus_ms(),
                            trials.inputs.to(device=context.device, dtype=context.torch_dtype),
                            scaling=torch.as_tensor(lambdas), params=_lif_parameters(config),
                            generator=context.stream(purpose), record_spikes=record_spikes,
                            progress=context.progress(label))


def _rate_on(network, task, trials, context, purpose):
    import torch

    with torch.no_grad():
        outputs, _ = network(trials.inputs.to(device=context.device,
                                               dtype=context.torch_dtype),
                             generator=context.stream(purpose))
    return outputs, task.correct(outputs, trials.labels)


def _task(config):
    from nrmkit.datasets.cognitive import get_task

    return get_task(config.task)


def _prepared(network, context):
    network = network.to(device=context.device, dtype=context.torch_dtype)
    network.requires_grad_(False)
    return network


def _lambdas(config, network) -> list[float]:
    """``--lambdas``, else the published grid of the network's transfer function."""
    return list(config.lambdas or network.transfer.lif_scaling_grid)


def _grid_simulation(config, context, task, network, lambdas):
    """LIF networks at ``lambdas`` on the grid's trials (the same trials and noise for any
    subset of λ): ``(accuracy (L,), rate_hz (L,), outputs (T, L, B), trials)``."""
    trials = task.trials(config.lif_trials, context.stream("grid trials"))
    lif = _simulate(config, context, network, trials, lambdas, purpose="grid noise",
                    record_spikes=False, label="λ grid")
    correct = task.correct(lif.output, trials.labels, spiking=True)            # (L, B)
    return (correct.float().mean(-1).cpu().numpy(), lif.mean_rate_hz.mean(-1).cpu().numpy(),
            lif.output.cpu().numpy(), trials)


def _grid_search(config, context, task, network, results) -> None:
    lambdas = _lambdas(config, network)
    context.log(f"rate_to_lif: λ grid search, {len(lambdas)} scaling factors × "
                f"{config.lif_trials} trials")
    started = time.perf_counter()
    accuracy, rates, outputs, trials = _grid_simulation(config, context, task, network, lambdas)
    results["grid_seconds"] = round(time.perf_counter() - started, 2)
    _grid_report(config, context, task, network, lambdas, accuracy, rates, outputs, trials,
                 results)


def _grid_report(config, context, task, network, lambdas, accuracy, rates, outputs, trials,
                 results) -> None:
    """Best λ, the rate network on the same trials, ``lif_grid.npz`` and the figure."""
    import numpy as np

    from nrmkit import plotting

    best = int(np.argmax(accuracy))
    _, rate_correct = _rate_on(network, task, trials, context, "grid rate noise")
    rate_accuracy = float(rate_correct.float().mean())
    results.update({
        "lif_accuracy": {f"{v:g}": float(a) for v, a in zip(lambdas, accuracy, strict=True)},
        "firing_rate_hz": {f"{v:g}": float(r) for v, r in zip(lambdas, rates, strict=True)},
        "best_lambda": float(lambdas[best]), "best_lif_accuracy": float(accuracy[best]),
        "mean_firing_rate_hz": float(rates[best]),
        "rate_accuracy_same_trials": rate_accuracy, "lif_trials": config.lif_trials,
    })
    context.log(f"  best λ = {lambdas[best]:g}: LIF accuracy {100 * accuracy[best]:.1f} % "
                f"(rate network on the same trials {100 * rate_accuracy:.1f} %), "
                f"{rates[best]:.1f} Hz")
    context.run_dir.write_arrays(
        "lif_grid.npz", lambdas=np.asarray(lambdas), accuracy=accuracy, firing_rate_hz=rates,
        outputs=outputs, labels=trials.labels.numpy())
    context.run_dir.save_figure(plotting.lambda_grid(
        np.asarray(lambdas), accuracy, rates, best=lambdas[best], rate_accuracy=rate_accuracy,
        title=f"{task.name}, N = {network.spec.n}, {config.lif_trials} trials per λ"),
        "lambda_grid")


def _evaluate_lif(config, context, task, network, scaling, results) -> None:

    from nrmkit import plotting

    trials = task.trials(config.lif_trials, context.stream("LIF evaluation trials"))
    lif = _simulate(config, context, network, trials, [scaling], purpose="LIF evaluation noise",
                    record_spikes=True,
                    label=f"LIF at λ = {scaling:g}")
    outputs = lif.output[:, 0]                                              # (T, B)
    correct = task.correct(outputs, trials.labels, spiking=True)
    rate_outputs, rate_correct = _rate_on(network, task, trials, context, "rate noise")
    counts = lif.spike_counts[0].double()                                   # (B, N)
    inhibitory = network.inhibitory.cpu().numpy()
    per_neuron_hz = (counts.mean(0) / lif.duration_ms * 1000.0).cpu().numpy()
    evaluation = {
        "lambda": scaling, "accuracy": float(correct.float().mean()),
        "rate_accuracy_same_trials": float(rate_correct.float().mean()),
        "mean_firing_rate_hz": float(per_neuron_hz.mean()),
        "excitatory_rate_hz": float(per_neuron_hz[~inhibitory].mean())
        if (~inhibitory).any() else None,
        "inhibitory_rate_hz": float(per_neuron_hz[inhibitory].mean())
        if inhibitory.any() else None,
        "trials": config.lif_trials,
    }
    results["lif_eval"] = evaluation
    results["mean_firing_rate_hz"] = evaluation["mean_firing_rate_hz"]
    context.log(f"rate_to_lif: LIF at λ = {scaling:g} on {config.lif_trials} fresh trials: "
                f"accuracy {100 * evaluation['accuracy']:.1f} % (rate network "
                f"{100 * evaluation['rate_accuracy_same_trials']:.1f} %), "
                f"{evaluation['mean_firing_rate_hz']:.1f} Hz")
    times, neurons = lif.spikes[0]
    lif_np = outputs.cpu().numpy()
    rate_np = rate_outputs.cpu().numpy()
    targets = trials.targets.numpy()
    context.run_dir.write_arrays(
        "lif_eval.npz", lif_outputs=lif_np, rate_outputs=rate_np, targets=targets,
        labels=trials.labels.numpy(), conditions=trials.conditions.numpy(),
        spike_times_ms=times.cpu().numpy(), spike_neurons=neurons.cpu().numpy(),
        firing_rate_hz=per_neuron_hz, inhibitory=inhibitory)
    title = f"{task.name}, N = {network.spec.n}, λ = {scaling:g}"
    context.run_dir.save_figure(plotting.rate_task_outputs(
        lif_np, targets, trials.conditions.numpy(), trials.condition_names,
        title=f"LIF network: {title}", ylabel="LIF read-out"), "lif_outputs")
    condition = trials.condition_names[int(trials.conditions[0])]
    context.run_dir.save_figure(plotting.lif_raster(
        times.cpu().numpy(), neurons.cpu().numpy(), inhibitory, lif_np[:, 0], rate_np[:, 0],
        targets[:, 0], title=f"{title}, trial 0 ({condition})"), "lif_raster")


def _lyapunov(config, context, network) -> dict:
    import torch

    from nrmkit.dynamics.lyapunov import lyapunov_spectrum
    from nrmkit.nn.dale import DaleDynamics

    model = DaleDynamics(network, LYAPUNOV_TRAJECTORIES)
    step = model.dt
    with torch.no_grad():
        result = lyapunov_spectrum(model, config.lyapunov, tsim=2000 * step, tons=5 * step,
                                   ttrans=200 * step, generator=context.stream("lyapunov"),
                                   check_finite=False)
    spread = mean_std(result.sorted().exponents, axis=0)
    return {"mean_per_s": spread["mean"].tolist(), "std_per_s": spread["std"].tolist(),
            "trajectories": LYAPUNOV_TRAJECTORIES, "t_accumulated_s": result.t_accumulated}


