"""The rate network mapped to LIF networks (:mod:`nrmkit.nn.lif`): the λ grid search (the
weights divided by each scaling factor λ, every λ on the same trials and noise;
``lif_grid.npz``, figure ``lambda_grid``) and the evaluation at one λ on fresh trials
(``lif_eval.npz``, figures ``lif_outputs`` and ``lif_raster``).

Times: the rate network steps 5 ms; the LIF networks step ``--lif_dt`` ms.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig


def lif_parameters(config: RateToLifConfig):
    """The :class:`~nrmkit.nn.lif.LIFParameters` of ``--lif_dt``, ``--t_ref`` (ms),
    ``--tau_rise`` (ms) and ``--lif_noise`` (mV)."""
    from nrmkit.nn.lif import LIFParameters

    return LIFParameters(dt=config.lif_dt, t_ref=config.t_ref, tau_rise=config.tau_rise,
                         noise_std=config.lif_noise)


def lambda_values(config: RateToLifConfig, network) -> list[float]:
    """``--lambdas``, else the published grid of the network's transfer function."""
    return list(config.lambdas or network.transfer.lif_scaling_grid)


def simulate(config: RateToLifConfig, context, network, trials, lambdas, *, purpose,
             record_spikes, label, **perturbation):
    """LIF networks of ``network``'s weights divided by each of ``lambdas`` on ``trials``
    (noise: the stream ``purpose``); the result of :func:`nrmkit.nn.lif.simulate_lif`
    (``perturbation``: its stimulation and trace arguments)."""
    import torch

    from nrmkit.nn.lif import simulate_lif

    with torch.no_grad():
        return simulate_lif(network.effective_weights(), network.w_in, network.w_out,
                            float(network.b_out), network.taus_ms(),
                            trials.inputs.to(device=context.device, dtype=context.torch_dtype),
                            scaling=torch.as_tensor(lambdas), params=lif_parameters(config),
                            generator=context.stream(purpose), record_spikes=record_spikes,
                            progress=context.progress(label), **perturbation)


def rate_on(network, task, trials, context, purpose):
    """The rate network on ``trials`` (noise: the stream ``purpose``):
    ``(outputs (T, B), correct (B,))``."""
    import torch

    with torch.no_grad():
        outputs, _ = network(trials.inputs.to(device=context.device,
                                               dtype=context.torch_dtype),
                             generator=context.stream(purpose))
    return outputs, task.correct(outputs, trials.labels)


def grid_simulation(config: RateToLifConfig, context, task, network, lambdas):
    """LIF networks at ``lambdas`` on the grid's trials (the same trials and noise for any
    subset of λ): ``(accuracy (L,), rate_hz (L,), outputs (T, L, B), trials)``."""
    trials = task.trials(config.lif_trials, context.stream("grid trials"))
    lif = simulate(config, context, network, trials, lambdas, purpose="grid noise",
                   record_spikes=False, label="λ grid")
    correct = task.correct(lif.output, trials.labels, spiking=True)            # (L, B)
    return (correct.float().mean(-1).cpu().numpy(), lif.mean_rate_hz.mean(-1).cpu().numpy(),
            lif.output.cpu().numpy(), trials)


def grid_search(config: RateToLifConfig, context, task, network, results: dict) -> None:
    """The whole λ grid in one batch (mode ``all``), timed as ``grid_seconds``, then
    :func:`grid_report`."""
    lambdas = lambda_values(config, network)
    context.log(f"rate_to_lif: λ grid search, {len(lambdas)} scaling factors × "
                f"{config.lif_trials} trials")
    started = time.perf_counter()
    accuracy, rates, outputs, trials = grid_simulation(config, context, task, network, lambdas)
    results["grid_seconds"] = round(time.perf_counter() - started, 2)
    grid_report(config, context, task, network, lambdas, accuracy, rates, outputs, trials,
                results)


def grid_report(config: RateToLifConfig, context, task, network, lambdas, accuracy, rates,
                outputs, trials, results: dict) -> None:
    """Best λ, the rate network on the same trials, ``lif_grid.npz`` and the figure."""
    import numpy as np

    from nrmkit import plotting

    best = int(np.argmax(accuracy))
    _, rate_correct = rate_on(network, task, trials, context, "grid rate noise")
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


def evaluate_lif(config: RateToLifConfig, context, task, network, scaling: float,
                 results: dict) -> None:
    """The LIF network at λ = ``scaling`` and the rate network on ``--lif_trials`` fresh
    trials: ``results["lif_eval"]`` (accuracies, firing rates in Hz over all, excitatory and
    inhibitory neurons), ``lif_eval.npz`` and the figures ``lif_outputs`` and
    ``lif_raster`` (trial 0)."""
    from nrmkit.experiments.rate_to_lif import perturbation

    plan = perturbation.prepare(config, context, task, network)
    trials = task.trials(config.lif_trials, context.stream("LIF evaluation trials"))
    lif = simulate(config, context, network, trials, [scaling], purpose="LIF evaluation noise",
                   record_spikes=True, label=f"LIF at λ = {scaling:g}", **plan[1])
    outputs = lif.output[:, 0]                                              # (T, B)
    correct = task.correct(outputs, trials.labels, spiking=True)
    rate_outputs, rate_correct = rate_on(network, task, trials, context, "rate noise")
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
    perturbation.report(config, context, task, network, scaling, trials, lif, evaluation, plan)
    times, neurons = lif.spikes[0]
    lif_np = outputs.cpu().numpy()
    rate_np = rate_outputs.cpu().numpy()
    context.run_dir.write_arrays(
        "lif_eval.npz", lif_outputs=lif_np, rate_outputs=rate_np, targets=trials.targets.numpy(),
        labels=trials.labels.numpy(), conditions=trials.conditions.numpy(),
        spike_times_ms=times.cpu().numpy(), spike_neurons=neurons.cpu().numpy(),
        firing_rate_hz=per_neuron_hz, inhibitory=inhibitory)
    _evaluation_figures(context, task, network, scaling, trials, lif_np, rate_np,
                        times.cpu().numpy(), neurons.cpu().numpy(), inhibitory)


def _evaluation_figures(context, task, network, scaling, trials, lif_outputs, rate_outputs,
                        spike_times_ms, spike_neurons, inhibitory) -> None:
    """The figures ``lif_outputs`` (LIF read-outs ``(T, B)`` by condition) and
    ``lif_raster`` (spikes, LIF and rate read-outs and target of trial 0)."""
    from nrmkit import plotting

    targets = trials.targets.numpy()
    title = f"{task.name}, N = {network.spec.n}, λ = {scaling:g}"
    context.run_dir.save_figure(plotting.rate_task_outputs(
        lif_outputs, targets, trials.conditions.numpy(), trials.condition_names,
        title=f"LIF network: {title}", ylabel="LIF read-out"), "lif_outputs")
    condition = trials.condition_names[int(trials.conditions[0])]
    context.run_dir.save_figure(plotting.lif_raster(
        spike_times_ms, spike_neurons, inhibitory, lif_outputs[:, 0], rate_outputs[:, 0],
        targets[:, 0], title=f"{title}, trial 0 ({condition})"), "lif_raster")
