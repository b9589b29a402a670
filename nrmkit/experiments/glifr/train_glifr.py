"""``train_glifr``: GLIFR networks (and parameter-matched RNN / LSTM) on sine generation and
sequential digits, with neuronal heterogeneity learned or fixed, and silencing tests.

Tasks (``--task``): ``sine`` — generate ``sin(2πft) + c`` for 6 frequencies from a constant
input ``c`` (100 steps of ``--dt``; MSE; per-step read-out); ``lmnist`` — digits row by row;
``pmnist`` — pixel by pixel (``--dataset digits``, the bundled 8×8 digits, or ``mnist``, as in
``smnist``). Models (``--model``): ``glifr`` (variant ``hom`` fixed homogeneous neurons,
``lhet`` learned from the homogeneous init, ``fhet`` fixed heterogeneous, ``rhet`` learned from
the heterogeneous init — resampled from a trained lhet run given by ``--lhet_run``, or drawn
from the documented ranges; ``--ascs/--no-ascs``), ``rnn`` (tanh) and ``lstm``. Hidden sizes
are matched by parameter count: an RNN of ``--hidden`` units sets the budget and every model
gets the largest size within it (``parameter_counts`` in the results).

``--ntrials`` independent trials (trial ``k`` draws from the streams ``(seed, k,
purpose)``); per trial a checkpoint ``checkpoints/trial<k>.pt`` (atomic, every 5 % of the
epochs and at the end; ``--resume`` continues). ``--silence 0,0.2,0.4`` scores every trained
network with those fractions of hidden neurons silenced (random subsets, ``--silence_draws``
each; a silenced neuron's rate is 0 for the recurrent input and the read-out).

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/train_glifr.md``), and a test checks them against what the workflow writes.
Arrays: ``neuron_parameters.npz`` (GLIFR, per trial), ``sine_outputs.npz``. Figures:
``learning_curves``, ``sine_outputs``, ``neuron_parameters`` (V_th, k_m, a_j, r_j, k_j
histograms), ``silencing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nrmkit.core.base import IncrementalSweep
from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.glifr.trials import (
    CELLS,
    build_trial,
    evaluate_trial,
    learning_curves,
    lhet_values,
    silencing_scores,
    sine_outputs,
    task_data,
    train_trial,
)
from nrmkit.nn.sizing import matched_hidden_size, parameter_count
from nrmkit.runs.summaries import summary_statistics

TASK_DEFAULTS = {"sine": {"epochs": 5000, "lr": 1e-4, "batch": 6},
                 "lmnist": {"epochs": 30, "lr": 1e-3, "batch": 256},
                 "pmnist": {"epochs": 30, "lr": 1e-3, "batch": 256}}






@dataclass(frozen=True)
class GlifrConfig:
    """Options of ``train_glifr`` (times in ms)."""

    task: str = "sine"
    model: str = "glifr"
    variant: str = "lhet"
    ascs: bool = True
    lhet_run: str | None = None
    delay: float = 1.0
    dt: float = 0.05
    sigma_v: float = 1.0
    anneal_sigma_v: bool = False
    hidden: int = 256
    epochs: int | None = None
    lr: float | None = None
    batch: int | None = None
    ntrials: int = 1
    silence: str | None = None
    silence_draws: int = 10
    dataset: str = "digits"
    data_dir: str | None = None

    def __post_init__(self):
        for name, value in TASK_DEFAULTS[self.task].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("epochs", "batch", "ntrials", "hidden", "silence_draws"):
            value = getattr(self, name)
            check(value >= 1, f"--{name}", f"must be at least 1, got {value}")
        for name in ("lr", "dt", "sigma_v", "delay"):
            check_finite(getattr(self, name), f"--{name}")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        check(self.dt > 0, "--dt", f"must be positive, got {self.dt}")
        check(self.sigma_v > 0, "--sigma_v", f"must be positive, got {self.sigma_v}")
        check(self.delay_steps >= 1, "--delay",
              f"must be at least one step (--dt {self.dt:g} ms), got {self.delay:g} ms")
        if self.lhet_run is not None:
            check((Path(self.lhet_run) / "neuron_parameters.npz").is_file(), "--lhet_run",
                  f"no trained GLIFR run in {self.lhet_run} (neuron_parameters.npz missing)")
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
        floats per unit and step (GLIFR: ``5 + 2·n_ascs + d``, its currents and the
        ``d``-step delay buffer, +1 for the sine task's read-out at every step); plus the
        digit images for lmnist and pmnist (see :func:`smnist_memory_terms
        <nrmkit.experiments.sequences.memory.smnist_memory_terms>`).
        """
        from nrmkit.core.base import MemoryTerm
        from nrmkit.datasets.sine import N_FREQUENCIES, N_STEPS
        from nrmkit.training.sequence_memory import (
            DATASET_SIZES,
            saved_floats_per_unit,
            sequence_shape,
            training_memory_terms,
        )

        terms = []
        if config.task == "sine":
            steps, inputs, outputs, n_sequences = N_STEPS, 1, 1, N_FREQUENCIES
        else:
            steps, inputs = sequence_shape(config.dataset,
                                           "rows" if config.task == "lmnist" else "pixels")
            (height, width), n_sequences = DATASET_SIZES[config.dataset]
            outputs = 10
            terms.append(MemoryTerm("--dataset", n_sequences * height * width * (8 + itemsize),
                                    f"the {n_sequences:,} {config.dataset} images and their "
                                    "sequences"))
        n_ascs = 2 if config.ascs else 0
        budget = parameter_count("rnn", config.hidden, inputs=inputs, outputs=outputs)
        hidden = matched_hidden_size(config.model, budget, inputs=inputs, outputs=outputs,
                                     n_ascs=n_ascs)
        saved = saved_floats_per_unit(CELLS[config.model], per_step=config.task == "sine",
                                      n_ascs=n_ascs, delay=config.delay_steps)
        return terms + training_memory_terms(
            CELLS[config.model], hidden=hidden, steps=steps, inputs=inputs,
            batch=min(config.batch, n_sequences), itemsize=itemsize, saved=saved,
            hidden_option="--hidden", batch_option="--batch")

    def iter_units(self, config: GlifrConfig, context, units: list[int]):
        """Train and score the trials ``units`` (trial ``k`` draws from the streams
        ``(seed, k, purpose)``), yielding each trial when it is done."""
        import json

        import numpy as np

        from nrmkit.training.sequence import CLASSIFICATION, REGRESSION

        data = task_data(config, context)
        n_ascs = 2 if config.ascs else 0
        budget = parameter_count("rnn", config.hidden, inputs=data["inputs"],
                                 outputs=data["outputs"])
        counts = {}
        for kind in CELLS:
            hidden = matched_hidden_size(kind, budget, inputs=data["inputs"],
                                         outputs=data["outputs"], n_ascs=n_ascs)
            counts[kind] = {"hidden": hidden, "parameters": parameter_count(
                kind, hidden, inputs=data["inputs"], outputs=data["outputs"], n_ascs=n_ascs)}
        hidden = counts[config.model]["hidden"]
        context.log(f"train_glifr: {_label(config)} on {config.task}, {hidden} units "
                    f"({counts[config.model]['parameters']} parameters; budget of an RNN "
                    f"with {config.hidden}: {budget}), trial(s) {units} × "
                    f"{config.epochs} epochs")
        objective = REGRESSION if config.task == "sine" else CLASSIFICATION
        trained_lhet = lhet_values(config.lhet_run) if config.lhet_run else None
        for trial in units:
            out: dict[str, list] = {"record": []}
            model, trainer = build_trial(config, context, data, hidden, n_ascs, trial, objective,
                                    trained_lhet)
            train_trial(config, context, trainer, trial)
            test = evaluate_trial(model, data, objective)
            silencing = silencing_scores(config, model, data, objective,
                                   context.stream("silencing", unit=trial))
            record = {"trial": trial, "seed": context.seed, "epochs": trainer.epoch,
                      "learning_curve": learning_curves(trainer.history),
                      f"test_{config.metric}": test, "silencing": silencing,
                      "hidden": hidden, "budget": budget, "counts": counts}
            if config.model == "glifr":
                values = {k: v.detach().cpu().numpy()
                          for k, v in model.cell.neuron_parameters().items()}
                for name, value in values.items():
                    out.setdefault(f"neuron_{name}", []).append(value)
                record["neuron_parameters"] = {k: summary_statistics(v) for k, v in values.items()}
            if config.task == "sine":
                for name, value in sine_outputs(model, data).items():
                    out.setdefault(f"sine_{name}", []).append(value)
            out["record"].append(json.dumps(record))
            context.log(f"  trial {trial + 1}: test {config.metric} {test:.4g}")
            if trial == 0 and context.run_dir.path is not None:
                from nrmkit.training.sequence_files import save_sequence_model

                save_sequence_model(context.run_dir.path / "model.pt", model,
                                    {"task": config.task, "permutation": None,
                                     "dataset": config.dataset, "input": data["mode"]})
            yield [trial], {name: np.stack([np.asarray(v) for v in values])
                            for name, values in out.items()}

    def aggregate(self, config: GlifrConfig, context, arrays) -> dict:
        import json

        import numpy as np

        from nrmkit import plotting

        label = _label(config)
        trials = [json.loads(str(text)) for text in arrays["record"]]
        first = trials[0]
        hidden, budget, counts = first.pop("hidden"), first.pop("budget"), first.pop("counts")
        for trial in trials[1:]:
            for key in ("hidden", "budget", "counts"):
                trial.pop(key)
        run_dir = context.run_dir
        fractions = [str(f) for f in config.silence_fractions]
        silencing = {f: float(np.mean([t["silencing"][f] for t in trials])) for f in fractions}
        run_dir.save_figure(plotting.glifr_learning_curves(
            [t["learning_curve"] for t in trials], metric=config.metric, title=label),
            "learning_curves")
        names = [name[len("neuron_"):] for name in arrays if name.startswith("neuron_")]
        if names:
            run_dir.write_arrays("neuron_parameters.npz",
                                 **{name: arrays[f"neuron_{name}"] for name in names})
            run_dir.save_figure(plotting.glifr_parameters(
                {name: arrays[f"neuron_{name}"][0] for name in names}, title=label,
                dt=config.dt), "neuron_parameters")
        if "sine_outputs" in arrays:
            sine = {"outputs": arrays["sine_outputs"][0], "targets": arrays["sine_targets"][0],
                    "frequencies": arrays["sine_frequencies"][0]}
            run_dir.write_arrays("sine_outputs.npz", **sine)
            run_dir.save_figure(plotting.sine_outputs(**sine, title=label), "sine_outputs")
        if fractions:
            run_dir.save_figure(plotting.silencing_curve(
                {label: [[t["silencing"][f] for f in fractions] for t in trials]},
                [float(f) for f in fractions], metric=config.metric), "silencing")
        task = {"name": config.task}
        if "sine_frequencies" in arrays:
            task["frequencies_khz"] = [float(f) for f in arrays["sine_frequencies"][0]]
        return {
            "task": task, "model": config.model, "variant": config.variant,
            "ascs": config.ascs, "metric": config.metric, "hidden_size": hidden,
            "parameter_counts": counts, "budget": budget, "trials": trials,
            "test_metric": float(np.mean([t[f"test_{config.metric}"] for t in trials])),
            "silencing": silencing,
            "delay_steps": config.delay_steps if config.model == "glifr" else None,
        }


def _label(config) -> str:
    if config.model != "glifr":
        return config.model.upper()
    return f"GLIFR-{config.variant}{'a' if config.ascs else ''}"


















