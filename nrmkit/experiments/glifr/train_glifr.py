"""``train_glifr``: GLIFR networks (and parameter-matched RNN / LSTM) on the published tasks,
with neuronal heterogeneity learned or fixed, dropout, silencing tests and analyses of the
trained neurons.

Tasks (``--task``, defaults per task in :data:`TASK_DEFAULTS`): ``sine`` — generate
``sin(2πft) + c`` for 6 log-spaced frequencies from a constant input ``c`` (100 steps of
``--dt``; MSE; per-step read-out); ``lmnist`` — digits row by row; ``pmnist`` — pixel by
pixel (``--dataset digits``, the bundled 8×8 digits, or ``mnist``, as in ``smnist``);
``nmnist`` — N-MNIST event recordings from ``--data-dir`` as 15 binary frames. Models
(``--model``): ``glifr`` (variant ``hom`` fixed homogeneous neurons, ``lhet`` learned from
the homogeneous init, ``fhet`` fixed heterogeneous, ``rhet`` learned from the heterogeneous
init — resampled, neuron parameters and weights, from trial k of a trained lhet run given by
``--lhet_run``, or drawn from the published ranges; ``--ascs/--no-ascs``), ``rnn`` (tanh,
with the synaptic delay) and ``lstm``, initialised as published (:func:`~nrmkit.experiments.
glifr.trials.model_spec`). Hidden sizes are matched by parameter count
(:func:`model_sizes`; ``parameter_counts`` in the results).

``--ntrials`` independent trials (trial ``k`` draws from the streams ``(seed, k,
purpose)``); per trial a checkpoint ``checkpoints/trial<k>.pt`` (atomic, every 5 % of the
epochs and at the end; ``--resume`` continues). ``--dropout_prob`` drops hidden rates while
training. ``--silence 0,0.2,0.4`` scores every trained network with those fractions of
hidden neurons silenced (random subsets, ``--silence_draws`` each; a silenced neuron's rate
is 0 for the recurrent input and the read-out).

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/train_glifr.md``), and a test checks them against what the workflow writes.
Files and figures: :mod:`nrmkit.experiments.glifr.analyses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nrmkit.core.base import IncrementalSweep
from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.glifr.trials import (
    CELLS,
    VARIANTS,
    ParameterTrajectory,
    build_trial,
    evaluate_trial,
    learning_curves,
    lhet_trials,
    silencing_scores,
    task_data,
    train_trial,
)
from nrmkit.nn.sizing import matched_hidden_size, parameter_count

#: the published defaults of each task (GLIFS_ASC ``config/<task>_task.yaml``); times in ms.
TASK_DEFAULTS = {
    "sine": {"hidden": 128, "epochs": 5000, "lr": 1e-4, "batch": 6, "delay": 1.0, "dt": 0.05},
    "lmnist": {"hidden": 256, "epochs": 30, "lr": 1e-3, "batch": 256, "delay": 1.0, "dt": 0.05},
    "pmnist": {"hidden": 256, "epochs": 50, "lr": 1e-4, "batch": 512, "delay": 15.0, "dt": 0.05},
    "nmnist": {"hidden": 256, "epochs": 30, "lr": 1e-3, "batch": 512, "delay": 1.0, "dt": 1.0},
}


def digits_delay(task: str, delay: float, dt: float) -> float:
    """The published synaptic delay of ``task`` (ms, for MNIST) scaled to the sequences of the
    bundled 8×8 digits: the same fraction of a sequence, in whole steps of ``dt``
    (``lmnist``: 1 ms = 20 of 28 rows → 6 of 8, 0.3 ms at 0.05 ms; ``pmnist``: 15 ms = 300 of
    784 pixels → 24 of 64, 1.2 ms). Unscaled, a delay longer than the 8 or 64 steps of a
    digit would keep every lateral input from arriving within a sequence."""
    from nrmkit.training.sequence_memory import sequence_shape

    mode = "rows" if task == "lmnist" else "pixels"
    fraction = sequence_shape("digits", mode)[0] / sequence_shape("mnist", mode)[0]
    return round(max(1, round(delay / dt * fraction)) * dt, 12)


@dataclass(frozen=True)
class GlifrConfig:
    """Options of ``train_glifr`` (times in ms)."""

    task: str = "sine"
    model: str = "glifr"
    variant: str = "lhet"
    ascs: bool = True
    lhet_run: str | None = None
    delay: float | None = None
    dt: float | None = None
    sigma_v: float = 1.0
    anneal_sigma_v: bool = False
    hidden: int | None = None
    epochs: int | None = None
    lr: float | None = None
    batch: int | None = None
    ntrials: int = 1
    silence: str | None = None
    silence_draws: int = 10
    dropout_prob: float = 0.0
    dataset: str = "digits"
    data_dir: str | None = None

    def __post_init__(self):
        scale_delay = (self.delay is None and self.dataset == "digits"
                       and self.task in ("lmnist", "pmnist"))
        for name, value in TASK_DEFAULTS[self.task].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        check_finite(self.dt, "--dt")
        if scale_delay and self.dt > 0:
            object.__setattr__(self, "delay", digits_delay(self.task, self.delay, self.dt))
        for name in ("epochs", "batch", "ntrials", "hidden", "silence_draws"):
            value = getattr(self, name)
            check(value >= 1, f"--{name}", f"must be at least 1, got {value}")
        for name in ("lr", "dt", "sigma_v", "delay", "dropout_prob"):
            check_finite(getattr(self, name), f"--{name}")
        check(0.0 <= self.dropout_prob < 1.0, "--dropout_prob",
              f"must lie in [0, 1), got {self.dropout_prob}")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        check(self.dt > 0, "--dt", f"must be positive, got {self.dt}")
        check(self.sigma_v > 0, "--sigma_v", f"must be positive, got {self.sigma_v}")
        check(self.delay_steps >= 1, "--delay",
              f"must be at least one step (--dt {self.dt:g} ms), got {self.delay:g} ms")
        if self.lhet_run is not None:
            from nrmkit.experiments.glifr.trials import LHET_FILES

            for name in LHET_FILES:
                check((Path(self.lhet_run) / name).is_file(), "--lhet_run",
                      f"no trained GLIFR run in {self.lhet_run} ({name} missing)")
        if self.task == "nmnist":
            check(self.data_dir is not None, "--data-dir",
                  "the nmnist task reads the N-MNIST files from --data-dir")
        fractions = self.silence_fractions
        check(all(0.0 <= f <= 1.0 for f in fractions), "--silence",
              f"fractions must lie in [0, 1], got {self.silence}")

    @property
    def delay_steps(self) -> int:
        return round(self.delay / self.dt)

    @property
    def silence_fractions(self) -> tuple[float, ...]:
        if not self.silence:
            return ()
        try:
            return tuple(float(part) for part in self.silence.split(","))
        except ValueError:
            check(False, "--silence", f"give comma-separated fractions, got {self.silence!r}")
            raise

    @property
    def metric(self) -> str:
        return "mse" if self.task == "sine" else "accuracy"


class TrainGlifr(IncrementalSweep):
    name = "train_glifr"
    config_class = GlifrConfig
    unit_name = "trial"
    unit_option = "--ntrials"
    resumable = True
    resume_free_options = ("epochs", "silence", "silence_draws")

    def n_units(self, config: GlifrConfig) -> int:
        return config.ntrials

    def memory_terms(self, config: GlifrConfig, *, itemsize: int) -> list:
        """Estimated peak allocations of one trial (trials run one after the other), as
        :func:`nrmkit.training.sequence_memory.training_memory_terms` computes them for the
        model's parameter-matched hidden size ``H`` (from ``--hidden``): ``itemsize·7·P`` for the
        parameters, gradients, Adam state and checkpoint, and ``itemsize·T·B·H·2·s`` for
        backpropagation through the ``T`` steps of a batch of ``B`` sequences, with ``s``
        floats per unit and step (:func:`~nrmkit.training.sequence_memory.
        saved_floats_per_unit`: GLIFR ``5 + 2·n_ascs``, +1 for the sine task's read-out at
        every step, +1 with dropout); plus the task's data (see :func:`task_shape`).
        """
        from nrmkit.experiments.glifr.trials import task_shape
        from nrmkit.training.sequence_memory import (
            saved_floats_per_unit,
            training_memory_terms,
        )

        shape = task_shape(config, itemsize=itemsize)
        n_ascs = 2 if config.ascs else 0
        hidden = model_sizes(config, shape["inputs"], shape["outputs"])[0][config.model][
            "hidden"]
        saved = saved_floats_per_unit(CELLS[config.model], per_step=config.task == "sine",
                                      n_ascs=n_ascs, dropout=config.dropout_prob > 0)
        return shape["terms"] + training_memory_terms(
            CELLS[config.model], hidden=hidden, steps=shape["steps"], inputs=shape["inputs"],
            batch=min(config.batch, shape["sequences"]), itemsize=itemsize, saved=saved,
            hidden_option="--hidden", batch_option="--batch")

    def iter_units(self, config: GlifrConfig, context, units: list[int]):
        """Train and score the trials ``units`` (trial ``k`` draws from the streams
        ``(seed, k, purpose)``), yielding each trial when it is done."""
        from nrmkit.experiments.glifr.analyses import trial_outputs
        from nrmkit.training.sequence import CLASSIFICATION, REGRESSION

        data = task_data(config, context)
        counts, budget = model_sizes(config, data["inputs"], data["outputs"])
        hidden = counts[config.model]["hidden"]
        context.log(f"train_glifr: {_label(config)} on {config.task}, {hidden} units "
                    f"({counts[config.model]['parameters']} parameters; budget of an RNN "
                    f"with {config.hidden}: {budget}), trial(s) {units} × "
                    f"{config.epochs} epochs")
        objective = REGRESSION if config.task == "sine" else CLASSIFICATION
        lhet = lhet_trials(config.lhet_run) if config.lhet_run else None
        learn_neuron = config.model == "glifr" and VARIANTS[config.variant][0]
        for trial in units:
            model, trainer = build_trial(config, context, data, hidden,
                                         2 if config.ascs else 0, trial, objective, lhet)
            trajectory = ParameterTrajectory(model.cell, config.epochs) if learn_neuron else None
            train_trial(config, context, trainer, trial, trajectory)
            test = evaluate_trial(model, data, objective)
            record = {"trial": trial, "seed": context.seed, "epochs": trainer.epoch,
                      "learning_curve": learning_curves(trainer.history),
                      f"test_{config.metric}": test,
                      "silencing": silencing_scores(config, model, data, objective,
                                                    context.stream("silencing", unit=trial))}
            arrays = trial_outputs(config, model, data, record)
            if trajectory is not None and context.run_dir.path is not None:
                context.run_dir.write_arrays(f"parameter_trajectories/trial{trial}.npz",
                                             **trajectory.arrays())
            context.log(f"  trial {trial + 1}: test {config.metric} {test:.4g}")
            if trial == 0 and context.run_dir.path is not None:
                from nrmkit.training.sequence_files import save_sequence_model

                save_sequence_model(context.run_dir.path / "model.pt", model,
                                    {"task": config.task, "permutation": None,
                                     "dataset": config.dataset, "input": data["mode"]})
            yield [trial], arrays

    def aggregate(self, config: GlifrConfig, context, arrays) -> dict:
        import json

        import numpy as np

        from nrmkit import plotting
        from nrmkit.experiments.glifr.analyses import (
            write_clustering_figure,
            write_outputs,
            write_trajectory_figure,
        )
        from nrmkit.experiments.glifr.trials import task_sizes

        label = _label(config)
        trials = [json.loads(str(text)) for text in arrays["record"]]
        counts, budget = model_sizes(config, *task_sizes(config))
        run_dir = context.run_dir
        fractions = [str(f) for f in config.silence_fractions]
        silencing = {f: float(np.mean([t["silencing"][f] for t in trials])) for f in fractions}
        run_dir.save_figure(plotting.glifr_learning_curves(
            [t["learning_curve"] for t in trials], metric=config.metric, title=label),
            "learning_curves")
        write_outputs(config, run_dir, arrays, label)
        write_clustering_figure(run_dir, trials, label)
        write_trajectory_figure(config, run_dir, label)
        if fractions:
            run_dir.save_figure(plotting.silencing_curve(
                {label: [[t["silencing"][f] for f in fractions] for t in trials]},
                [float(f) for f in fractions], metric=config.metric), "silencing")
        task = {"name": config.task}
        if "sine_frequencies" in arrays:
            task["frequencies_khz"] = [float(f) for f in arrays["sine_frequencies"][0]]
        return {
            "task": task, "model": config.model, "variant": config.variant,
            "ascs": config.ascs, "metric": config.metric,
            "hidden_size": counts[config.model]["hidden"],
            "parameter_counts": counts, "budget": budget, "trials": trials,
            "test_metric": float(np.mean([t[f"test_{config.metric}"] for t in trials])),
            "silencing": silencing, "dropout_prob": config.dropout_prob,
            "delay_steps": config.delay_steps if config.model != "lstm" else None,
        }


def model_sizes(config: GlifrConfig, inputs: int, outputs: int) -> tuple[dict, int]:
    """``({model: {hidden, parameters}}, budget)``: every model's hidden size matched to the
    parameters of an RNN with ``--hidden`` units (GLIFR with fixed neuron parameters counts
    only its weights, as published: hom and fhet keep the RNN's size)."""
    n_ascs = 2 if config.ascs else 0
    learn = VARIANTS[config.variant][0]
    budget = parameter_count("rnn", config.hidden, inputs=inputs, outputs=outputs)
    counts = {}
    for kind in CELLS:
        sizes = {"inputs": inputs, "outputs": outputs, "n_ascs": n_ascs, "learn_neuron": learn}
        hidden = matched_hidden_size(kind, budget, **sizes)
        counts[kind] = {"hidden": hidden, "parameters": parameter_count(kind, hidden, **sizes)}
    return counts, budget


def _label(config) -> str:
    if config.model != "glifr":
        return config.model.upper()
    return f"GLIFR-{config.variant}{'a' if config.ascs else ''}"
