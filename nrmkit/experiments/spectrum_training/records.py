"""The outputs of a spectrum-training run: each trained network as fixed-shape arrays
(:func:`network_record`), and those of all networks gathered into ``results.json``, the
arrays, ``training_log.csv`` and the figures (see
:mod:`nrmkit.experiments.spectrum_training.training` for what each holds).

``arrays`` below: the records of every network stacked along a first axis ``[sample]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nrmkit.experiments.lyapunov.settings import plural


def network_record(config: Any, trainer: Any, index: int, before: dict[str, Any],
                   final: Any, masks: dict[str, Any]) -> dict[str, Any]:
    """Network ``index`` of a trained batch as fixed-shape arrays (epochs after it stopped, or
    beyond ``--n_epochs``, are NaN).

    Keys: ``loss``, ``lambda_max`` ``(n_epochs,)``; ``grad_norm`` ``(n_epochs, sets)``
    (before clipping); ``frozen`` ``(n_epochs,)``; ``logged_spectrum`` ``(n_epochs //
    spectrum_every, spectrum_nle)``; ``eval_initial``, ``eval_final`` ``(k',)``: the
    evaluation spectra before and after training (``before``: :meth:`Evaluation.initial`,
    ``final``: :meth:`Evaluation.spectra`); ``baseline_loss``, ``baseline_lambda_max``
    ``(M,)``; ``gains``, ``shifts`` (and ``weights`` when trained); ``mask_<set>`` for masked
    sets; ``epochs_run``, ``stopped_early``, ``n_trainable`` (per set of
    ``PARAMETER_SETS``); ``seconds_per_epoch`` (of the batch's training, evaluations
    excluded).
    """
    import numpy as np

    from nrmkit.training.spectrum import PARAMETER_SETS

    n_epochs, sets = config.n_epochs, config.trained_sets
    epochs_run = int(trainer.epochs_run[index])
    history = trainer.history[:epochs_run]
    logged = [epoch["logged_spectrum"][index] for epoch in history
              if "logged_spectrum" in epoch]
    record = {
        "loss": _padded([epoch["loss"][index] for epoch in history], (n_epochs,)),
        "lambda_max": _padded([epoch["lambda_max"][index] for epoch in history], (n_epochs,)),
        "grad_norm": _padded([[epoch["grad_norm"][name][index] for name in sets]
                              for epoch in history], (n_epochs, len(sets))),
        "frozen": _padded([epoch["frozen"][index] for epoch in history], (n_epochs,)),
        "logged_spectrum": _padded(logged, (n_epochs // config.spectrum_every,
                                            config.spectrum_nle)),
        "eval_initial": before["spectrum"][index],
        "eval_final": final[index],
        "baseline_loss": before["baseline_loss"][index],
        "baseline_lambda_max": before["baseline_lambda_max"][index],
        "gains": trainer.network_parameter("gains").cpu().numpy()[index],
        "shifts": trainer.network_parameter("shifts").cpu().numpy()[index],
        "seconds_per_epoch": np.float64(trainer.seconds / max(trainer.epoch, 1)),
        "epochs_run": np.int64(epochs_run),
        "stopped_early": np.bool_(config.early_stopping is not None
                                  and bool(trainer.frozen[index])),
        "n_trainable": np.array([trainer.n_trainable()[name] for name in PARAMETER_SETS]),
    }
    if "weights" in sets:
        weight = trainer.trained_networks().weight.detach().cpu().numpy()
        record["weights"] = weight.reshape(-1, *weight.shape[-2:])[index]
    for name, mask in masks.items():
        record[f"mask_{name}"] = mask.cpu().numpy()[index]
    return record


def _padded(values: list, shape: tuple[int, ...]) -> Any:
    """``values`` as float64 at the start of a NaN array of ``shape``."""
    import numpy as np

    out = np.full(shape, np.nan)
    if values:
        out[:len(values)] = np.asarray(values, dtype=np.float64)
    return out


@dataclass
class Outcome:
    """What the outputs show of all ``S`` networks of a run.

    Attributes:
        lengths: epochs each network ran ``(S,)``; ``epochs``: the most.
        loss, lambda_max: of training per epoch ``(epochs, S)``, NaN after an early stop.
        initial, final: the evaluated spectra before and after training ``(S,
            spectrum_nle)`` [1/τ].
        loss_initial, loss_final: the loss of their top ``nle`` exponents ``(S,)``.
        baseline_gains: the global gains ``(M,)`` of the baseline scan.
    """

    lengths: Any
    epochs: int
    loss: Any
    lambda_max: Any
    initial: Any
    final: Any
    loss_initial: Any
    loss_final: Any
    baseline_gains: Any


def gather(config: Any, arrays: Any) -> Outcome:
    """The :class:`Outcome` of the stacked records ``arrays``; the evaluated losses from the
    top ``nle`` evaluated exponents (``--loss``, ``--target``)."""
    import numpy as np
    import torch

    from nrmkit.training.losses import get_loss
    from nrmkit.training.spectrum import BASELINE_GAINS

    lengths = arrays["epochs_run"].astype(int)
    epochs = int(lengths.max())
    shown = config.spectrum_nle
    loss = get_loss(config.loss)

    def evaluated(spectra: Any) -> Any:
        return loss(torch.as_tensor(spectra[:, :config.nle]), config.target).numpy()

    return Outcome(
        lengths=lengths, epochs=epochs,
        loss=arrays["loss"][:, :epochs].T, lambda_max=arrays["lambda_max"][:, :epochs].T,
        initial=arrays["eval_initial"][:, :shown], final=arrays["eval_final"][:, :shown],
        loss_initial=evaluated(arrays["eval_initial"]),
        loss_final=evaluated(arrays["eval_final"]),
        baseline_gains=np.asarray(BASELINE_GAINS))


def sample_results(config: Any, arrays: Any, out: Outcome) -> list[dict[str, Any]]:
    """``results.json``'s ``samples``: per network its training curves, evaluation, best
    global gain (``--baseline``), spectra, trainable counts and epochs run."""
    import numpy as np

    from nrmkit.training.spectrum import PARAMETER_SETS

    best = np.nanargmin(np.nan_to_num(arrays["baseline_loss"], nan=np.inf), axis=1)
    counts = dict(zip(PARAMETER_SETS, (int(c) for c in arrays["n_trainable"][0]),
                      strict=True))
    lengths, gains = out.lengths, out.baseline_gains
    return [{
        "loss": arrays["loss"][i, :lengths[i]],
        "lambda_max": arrays["lambda_max"][i, :lengths[i]],
        "evaluation": {
            "loss_initial": float(out.loss_initial[i]), "loss_final": float(out.loss_final[i]),
            "lambda_max_initial": float(out.initial[i, 0]),
            "lambda_max_final": float(out.final[i, 0]),
        },
        "baseline_global_gain": None if not config.baseline else {
            "gain": float(gains[best[i]]),
            "loss": float(arrays["baseline_loss"][i, best[i]]),
            "lambda_max": float(arrays["baseline_lambda_max"][i, best[i]]),
        },
        "spectrum_initial": out.initial[i], "spectrum_final": out.final[i],
        "n_trainable": counts, "epochs_run": int(lengths[i]),
        "stopped_early": bool(arrays["stopped_early"][i]),
    } for i in range(config.n_samples)]


def logged_spectra(config: Any, logged: Any, epochs: int) -> dict[str, list]:
    """``results.json``'s ``spectra``: the logged spectra ``(samples, logs, k)`` by epoch
    (every ``--spectrum_every`` up to ``epochs``), None for a network stopped before."""
    import numpy as np

    spectra = {}
    for row in range(logged.shape[1]):
        epoch = (row + 1) * config.spectrum_every
        if epoch <= epochs:
            spectra[str(epoch)] = [None if np.isnan(logged[i, row]).any()
                                   else logged[i, row] for i in range(config.n_samples)]
    return spectra


def baseline_losses(samples: list[dict[str, Any]]) -> Any:
    """The loss of each network's best global gain ``(S,)`` (with ``--baseline``)."""
    import numpy as np

    return np.array([sample["baseline_global_gain"]["loss"] for sample in samples])


def trained_parameters(config: Any, arrays: Any) -> dict[str, Any]:
    """``trained_parameters.npz``: gains, shifts (and weights when trained) per network."""
    trained = {"gains": arrays["gains"], "shifts": arrays["shifts"]}
    if "weights" in config.trained_sets:
        trained["weights"] = arrays["weights"]
    return trained


def load_parameters(model: Any, trained: dict[str, Any]) -> None:
    """Copy the ``trained`` parameters into ``model`` (built from every network)."""
    import torch

    with torch.no_grad():
        for name, values in trained.items():
            parameter = {"weights": model.weight, "gains": model.gain,
                         "shifts": model.shift}[name]
            parameter.copy_(torch.as_tensor(values).reshape(parameter.shape))


def write_arrays(run_dir: Any, config: Any, arrays: Any, out: Outcome,
                 trained: dict[str, Any]) -> None:
    """Write ``trained_parameters.npz``, ``masks.npz`` (masked sets only), ``spectra.npz``
    and ``training_log.csv``."""
    run_dir.write_arrays("trained_parameters.npz", **trained)
    masks = {name[len("mask_"):]: arrays[name] for name in arrays
             if name.startswith("mask_")}
    if masks:
        run_dir.write_arrays("masks.npz", **masks)
    run_dir.write_arrays("spectra.npz", initial=out.initial, final=out.final, loss=out.loss,
                         lambda_max=out.lambda_max, epochs_run=out.lengths,
                         loss_initial=out.loss_initial, loss_final=out.loss_final,
                         baseline_gains=out.baseline_gains,
                         baseline_loss=arrays["baseline_loss"],
                         baseline_lambda_max=arrays["baseline_lambda_max"])
    run_dir.write_text("training_log.csv", training_log(arrays, config.trained_sets))


def population_labels(populations: list[str] | None, model: Any) -> list[str] | None:
    """``"name (neurons)"`` per population of ``model`` (None: per neuron)."""
    import numpy as np

    if populations is None:
        return None
    sizes = np.bincount(model.population.cpu().numpy(), minlength=len(populations))
    return [f"{name} ({size})" for name, size in zip(populations, sizes, strict=True)]


def save_figures(run_dir: Any, config: Any, arrays: Any, out: Outcome, baseline: Any,
                 title: str, populations: list[str] | None) -> None:
    """``figures/training`` (loss and λ_max per epoch, the spectra before and after; the
    best global gains' loss ``baseline`` or None) and ``figures/trained_parameters``."""
    from nrmkit import plotting

    figure = plotting.training_curves(
        out.loss, out.lambda_max, out.initial, out.final, target=config.target,
        evaluated=(out.loss_initial, out.loss_final), baseline=baseline, title=title)
    run_dir.save_figure(figure, "training")
    figure = plotting.trained_parameters(arrays["gains"], arrays["shifts"],
                                         populations=populations, title=title)
    run_dir.save_figure(figure, "trained_parameters")


#: the activity record of trained networks: neurons traced and duration [τ] (as the
#: ``lyapu_convergence`` defaults).
ACTIVITY_NEURONS, ACTIVITY_TIME = 10, 50.0


def save_activity(run_dir: Any, model: Any, generator: Any, title: str) -> None:
    """``activity.npz`` and ``figures/activity``: the trained networks run from a fresh
    random state for :data:`ACTIVITY_TIME` τ (:func:`nrmkit.dynamics.activity.
    record_activity`): states of :data:`ACTIVITY_NEURONS` neurons of network 0, the
    population activity of every network and an activity image of network 0."""
    from nrmkit.dynamics.activity import record_activity
    from nrmkit.plotting.lyapunov import network_activity

    steps = max(1, round(ACTIVITY_TIME / model.dt))
    record = record_activity(model, steps, min(ACTIVITY_NEURONS, model.n_neurons),
                             generator=generator)
    run_dir.write_arrays("activity.npz", **record.arrays())
    run_dir.save_figure(network_activity(record.time, record.neurons, record.states,
                                         record.population, record.image,
                                         title=f"{title}, trained"), "activity")


def summary_line(name: str, config: Any, out: Outcome, baseline: Any,
                 seconds_per_epoch: float) -> str:
    """The run's last log line: evaluated loss and λ_max before → after over the samples,
    the best global gains' loss (``baseline``, None without ``--baseline``), time per
    epoch."""
    return (f"{name}: evaluated loss {span(out.loss_initial)} → {span(out.loss_final)}, "
            f"λ_max {span(out.initial[:, 0])} → {span(out.final[:, 0])} over "
            f"{plural(config.n_samples, 'sample')}"
            + ("" if baseline is None else ", best global gain: loss " + span(baseline))
            + f"; {seconds_per_epoch:.2f} s per epoch")


def results(config: Any, out: Outcome, samples: list[dict[str, Any]],
            spectra: dict[str, list], seconds_per_epoch: float,
            populations: list[str] | None) -> dict[str, Any]:
    """``results.json`` (its keys: ``docs/workflows/train_rd_model.md``)."""
    return {
        "samples": samples,
        "procedure": config.procedure,
        "seconds_per_epoch": seconds_per_epoch,
        "baseline_gains": out.baseline_gains if config.baseline else None,
        "target": config.target,
        "loss": config.loss,
        "nle": config.nle,
        "spectrum_nle": config.spectrum_nle,
        "epochs": out.epochs,
        "spectra": spectra,
        "populations": populations,
    }


def span(values: Any) -> str:
    """``value`` (one sample) or ``[min, max]``."""
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"[{min(values):.4g}, {max(values):.4g}]"


def training_log(arrays: dict[str, Any], sets: tuple[str, ...]) -> str:
    """``training_log.csv``: one line per network and epoch: loss, λ_max, the gradient norm
    of each set (before clipping) and whether the network froze (early stopping) at that
    epoch."""
    columns = ["epoch", "sample", "loss", "lambda_max", *[f"grad_norm_{s}" for s in sets],
               "frozen"]
    lines = [",".join(columns)]
    lengths = arrays["epochs_run"].astype(int)
    for epoch in range(int(lengths.max())):
        for sample, length in enumerate(lengths):
            if epoch >= length:
                continue
            norms = [f"{arrays['grad_norm'][sample, epoch, j]:.6g}" for j in range(len(sets))]
            lines.append(",".join([str(epoch + 1), str(sample),
                                   f"{arrays['loss'][sample, epoch]:.8g}",
                                   f"{arrays['lambda_max'][sample, epoch]:.8g}", *norms,
                                   str(int(arrays["frozen"][sample, epoch]))]))
    return "\n".join(lines) + "\n"
