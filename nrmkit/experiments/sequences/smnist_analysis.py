"""``smnist_analysis``: analyses of a trained smnist network (its run folder's ``model.pt``).

On ``--samples`` test sequences of the run's own data (its permutation included):

* over the grid ``--gains`` × ``--saturations`` of gamma shapes (n, s), with the trained
  RNN's nonlinearity replaced by ``γ(·; n, s)`` (weights kept): the mutual information
  ``I(x_t; h_t)`` between the input and the hidden state at a step (Mixed-KSG,
  ``--mi_k`` neighbours, at most ``--mi_pairs`` pairs) and the mean norm ``‖J_t‖_∞`` of the
  step Jacobian ``diag(φ'(a_t)) V``; the same two numbers for the network as trained;
* λ₁ (finite time, from the onset of a step of amplitude ξ ∈ ``--amplitudes`` added to every
  pre-activation in smnist's step window) against ξ and against the time since the onset;
* the norm of the gradient of the loss with respect to the recurrent weights against the
  sequence length (``--lengths``; the loss of the read-out after the first L steps).

The grid analyses need an RNN (any ``--nonlin``); for an ANRU they are null and the other
analyses run. Methods: :mod:`nrmkit.dynamics.nonlinmod_analysis`. Arrays: ``analysis.npz``;
figures: ``mutual_information``, ``jacobian_norm``, ``lyapunov_step``, ``gradient_norm``;
results.json keys are documented on ``docs/workflows/smnist_analysis.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrmkit.core.base import Workflow
from nrmkit.core.checks import check, check_finite
from nrmkit.core.errors import ConfigError, DataError
from nrmkit.experiments.sequences.smnist_grid import GRID_GAINS, GRID_SATURATIONS
from nrmkit.training.sequence_files import MODEL_FILE, model_file

#: step amplitudes ξ of the published regularisation figure.
AMPLITUDES = (0.0, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)
#: sequence lengths of the gradient norms when ``--lengths`` is not given.
N_LENGTHS = 8


@dataclass(frozen=True)
class SmnistAnalysisConfig:
    """Options of ``smnist_analysis``."""

    model: str | None = None
    gains: tuple[float, ...] = GRID_GAINS
    saturations: tuple[float, ...] = GRID_SATURATIONS
    samples: int = 100
    mi_k: int = 5
    mi_pairs: int = 2000
    amplitudes: tuple[float, ...] = AMPLITUDES
    lengths: tuple[int, ...] = ()
    data_dir: str | None = None

    def __post_init__(self):
        check(self.model is not None, "--model", "give the run directory of a trained smnist "
              "model")
        check(model_file(self.model).is_file(), "--model",
              f"no saved smnist model in {self.model} (expected {MODEL_FILE})")
        for name, values in (("gains", self.gains), ("saturations", self.saturations),
                             ("amplitudes", self.amplitudes)):
            object.__setattr__(self, name, tuple(float(v) for v in values))
            check(len(values) > 0, f"--{name}", "give at least one value")
            for value in values:
                check_finite(value, f"--{name}")
        check(all(n > 0 for n in self.gains), "--gains", "every gain n must be positive")
        check(all(0 <= s <= 1 for s in self.saturations), "--saturations",
              "every saturation s must lie in [0, 1]")
        check(self.samples >= 2, "--samples", f"must be at least 2, got {self.samples}")
        check(self.mi_k >= 1, "--mi_k", f"must be at least 1, got {self.mi_k}")
        check(self.mi_pairs > self.mi_k, "--mi_pairs",
              f"must exceed --mi_k = {self.mi_k}, got {self.mi_pairs}")
        object.__setattr__(self, "lengths", tuple(int(v) for v in self.lengths))
        check(all(v >= 1 for v in self.lengths), "--lengths", "lengths must be at least 1")


class SmnistAnalysis(Workflow):
    """Information, Jacobian norms, step λ₁ and gradient norms of a trained smnist model."""

    name = "smnist_analysis"
    config_class = SmnistAnalysisConfig

    def run(self, config: SmnistAnalysisConfig, context) -> dict:
        model, data, record = _load(config, context)
        inputs, labels, steps = data
        context.log(f"smnist_analysis: {record['description']}; {inputs.shape[1]} test "
                    f"sequences of {steps} steps")
        results = {"model": record["model"], "data": record["data"]}
        results.update(_grid_analyses(config, context, model, inputs, record))
        results.update(_step_analyses(config, context, model, inputs, record))
        results.update(_gradient_analysis(config, context, model, inputs, labels, record))
        return results


def _load(config: SmnistAnalysisConfig, context):
    """The model, ``(test inputs, labels, steps)`` of its own data, and records."""
    import dataclasses

    from nrmkit.datasets.digit_sequences import load_splits, sequence_tensors
    from nrmkit.experiments.sequences.analyses import describe_run
    from nrmkit.training.sequence_files import load_sequence_model

    try:
        model, settings = load_sequence_model(config.model, device=context.device,
                                              dtype=context.torch_dtype)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    if model.spec.net_type not in ("RNN", "ANRU"):
        raise ConfigError("--model", f"the analyses need an RNN or ANRU model, "
                          f"{config.model} holds an {model.spec.net_type}")
    splits = load_splits(settings["dataset"], config.data_dir)
    inputs, labels = sequence_tensors(splits, input_mode=settings["input"],
                                      permutation=settings["permutation"],
                                      dtype=context.torch_dtype, device=context.device)["test"]
    inputs, labels = inputs[:, :config.samples], labels[:config.samples]
    steps = int(inputs.shape[0])
    data = {"dataset": settings["dataset"], "input": settings["input"],
            "permute": settings["permutation"] is not None, "steps": steps,
            "test": int(inputs.shape[1])}
    spec = dataclasses.asdict(model.spec)
    return model, (inputs, labels, steps), {
        "model": spec, "data": data, "description": describe_run(spec, data),
        "title": f"smnist_analysis: {describe_run(spec, data)}"}


def _grid_analyses(config, context, model, inputs, record) -> dict:
    """Mutual information and Jacobian norm over the grid (RNN), and as trained."""
    import numpy as np
    import torch

    from nrmkit.core.streams import numpy_generator
    from nrmkit.dynamics.nonlinmod_analysis import (
        input_output_information,
        rnn_trace,
        step_jacobian_norms,
        with_gamma_shape,
    )
    from nrmkit.plotting.nonlinmod import grid_heatmap

    def information(hidden):
        return input_output_information(
            inputs, hidden, k=config.mi_k, pairs=config.mi_pairs,
            generator=numpy_generator(context.seed, 0, "mutual information"))

    with torch.no_grad():
        _, trace = model.run(inputs, record=True)
    trained = {"mutual_information": information(trace["h"]), "jacobian_norm": None}
    if model.spec.net_type != "RNN":
        context.log("smnist_analysis: the grid analyses need an RNN; skipped for the ANRU")
        return {"gains": list(config.gains), "saturations": list(config.saturations),
                "mutual_information": None, "jacobian_norm": None, "trained": trained}
    pre, _ = rnn_trace(model.cell, inputs)
    trained["jacobian_norm"] = float(step_jacobian_norms(model.cell, pre).mean())
    shape = (len(config.gains), len(config.saturations))
    mi, norms = np.full(shape, np.nan), np.full(shape, np.nan)
    progress = context.progress("grid points")
    for i, n in enumerate(config.gains):
        for j, s in enumerate(config.saturations):
            cell = with_gamma_shape(model, n, s).cell
            pre, hidden = rnn_trace(cell, inputs)
            mi[i, j] = information(hidden)
            norms[i, j] = float(step_jacobian_norms(cell, pre).mean())
            progress(i * shape[1] + j + 1, mi.size)
    context.run_dir.write_arrays("analysis_grid.npz", gains=np.asarray(config.gains),
                                 saturations=np.asarray(config.saturations),
                                 mutual_information=mi, jacobian_norm=norms)
    for values, stem, label in ((mi, "mutual_information", "I(x_t; h_t) (nats)"),
                                (norms, "jacobian_norm", "mean ‖J_t‖_∞")):
        context.run_dir.save_figure(grid_heatmap(
            np.asarray(config.gains), np.asarray(config.saturations), values, label=label,
            title=record["title"]), stem)
    context.log(f"smnist_analysis: I(x; h) {np.nanmin(mi):.3f} … {np.nanmax(mi):.3f} nats, "
                f"‖J‖_∞ {np.nanmin(norms):.3f} … {np.nanmax(norms):.3f} over the grid")
    return {"gains": list(config.gains), "saturations": list(config.saturations),
            "mutual_information": mi.tolist(), "jacobian_norm": norms.tolist(),
            "trained": trained}


def _step_analyses(config, context, model, inputs, record) -> dict:
    """λ₁ against the step amplitude ξ and against the time since the step's onset."""
    import numpy as np
    import torch

    from nrmkit.datasets import digits
    from nrmkit.dynamics.nonlinmod_analysis import step_lyapunov
    from nrmkit.plotting.nonlinmod import analysis_curves

    steps = inputs.shape[0]
    window = torch.as_tensor(digits.step_drive(steps, size=1.0))
    if not bool((window > 0).any()):
        raise ConfigError("--model", f"its sequences ({steps} steps) are too short for a "
                          "step window")
    running = np.stack([
        step_lyapunov(model.cell, inputs, window, xi,
                      generator=context.stream("tangent vector")).mean(1)
        for xi in config.amplitudes])                                      # (ξ, W)
    onset = int(torch.nonzero(window > 0)[0])
    since = np.arange(running.shape[1])
    context.run_dir.write_arrays("lyapunov_step.npz", amplitudes=np.asarray(config.amplitudes),
                                 time_since_onset=since, lambda_1=running)
    context.run_dir.save_figure(analysis_curves([
        {"x": np.asarray(config.amplitudes), "ys": {"end of the step": running[:, -1]},
         "xlabel": "step amplitude ξ", "ylabel": "λ₁ (nats/step)", "zero": True},
        {"x": since, "ys": {f"ξ = {xi:g}": row for xi, row in zip(
            config.amplitudes, running, strict=True)},
         "xlabel": "time since onset (steps)", "ylabel": "λ₁ (nats/step)", "zero": True}],
        title=record["title"]), "lyapunov_step")
    return {"amplitudes": list(config.amplitudes),
            "step_window": [onset, onset + running.shape[1]],
            "lyapunov_vs_amplitude": running[:, -1].tolist(),
            "lyapunov_vs_time": running.tolist()}


def _gradient_analysis(config, context, model, inputs, labels, record) -> dict:
    """‖∂L/∂V‖_F against the sequence length."""
    import numpy as np

    from nrmkit.dynamics.nonlinmod_analysis import gradient_norms
    from nrmkit.plotting.nonlinmod import analysis_curves

    steps = inputs.shape[0]
    lengths = list(config.lengths) or sorted({int(v) for v in np.linspace(
        1, steps, min(N_LENGTHS, steps)).round()})
    if max(lengths) > steps:
        raise ConfigError("--lengths", f"the sequences have {steps} steps, fewer than "
                          f"{max(lengths)}")
    norms = gradient_norms(model, inputs, labels, lengths)
    context.run_dir.write_arrays("gradient_norm.npz", lengths=np.asarray(lengths),
                                 gradient_norm=norms)
    context.run_dir.save_figure(analysis_curves([
        {"x": np.asarray(lengths), "ys": {"‖∂L/∂V‖": norms}, "xlabel":
         "sequence length (steps)", "ylabel": "gradient norm ‖∂L/∂V‖_F",
         "logy": bool(np.all(norms > 0))}],
        title=record["title"]), "gradient_norm")
    return {"lengths": lengths, "gradient_norm": norms.tolist()}

