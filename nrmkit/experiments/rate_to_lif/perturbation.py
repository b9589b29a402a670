"""Perturbations and diagnostics of ``rate_to_lif --mode eval`` (after the published
``LIF_network_fnc.m`` of Kim, Li & Sejnowski 2019):

* artificial stimulation (``--stim_mode exc|inh``, ``--stim_window START END`` in ms,
  ``--stim_units``, ``--stim_amplitude``, ``--stim_prob``): the evaluation trials run a second
  time, with the same trials, ``v_0`` and noise, with the stimulation of
  :mod:`nrmkit.nn.lif_perturbation`; ``lif_stimulation.npz`` and the figure
  ``lif_stimulation`` (read-out with and without stimulation);
* membrane-voltage traces of ``--trace_units`` for the first ``--trace_trials`` trials:
  ``lif_traces.npz`` and the figure ``lif_traces``;
* ``--use_initial_weights`` is applied where the model is read
  (:func:`~nrmkit.experiments.rate_to_lif.models.with_initial_weights`).

``--stim_units`` takes 0-based unit indices (``"0,5,7"``; the published code takes MATLAB's
1-based indices) or a population, ``exc``, ``inh`` or ``all``, optionally ``exc:K`` for ``K``
of its units drawn at random (stream ``stimulated units``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrmkit.core.checks import check
from nrmkit.core.errors import ConfigError

if TYPE_CHECKING:
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig

#: ``--stim_mode`` choices (``none``: no stimulation).
STIM_MODES = ("none", "exc", "inh")
#: the populations ``--stim_units`` names.
POPULATIONS = ("exc", "inh", "all")


def parse_units(text: str) -> tuple[str, int | None] | tuple[int, ...]:
    """``"0,5 7"`` → ``(0, 5, 7)``; ``"exc"`` → ``("exc", None)``; ``"inh:10"`` →
    ``("inh", 10)``. Raises :class:`ConfigError` naming ``--stim_units``."""
    text = str(text).strip()
    population, _, count = text.partition(":")
    if population in POPULATIONS:
        if not count:
            return population, None
        if not count.isdigit() or int(count) < 1:
            raise ConfigError("--stim_units", f"the count after {population}: must be a "
                                              f"positive integer, got {count!r}")
        return population, int(count)
    try:
        units = tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise ConfigError("--stim_units", f"give unit indices (0-based) or exc, inh, all "
                                          f"(optionally :K), got {text!r}") from None
    check(len(units) > 0 and min(units) >= 0, "--stim_units",
          f"unit indices must be ≥ 0 and at least one, got {text!r}")
    return units


def check_perturbations(config: RateToLifConfig) -> None:
    """The perturbation options of ``config`` (one-line :class:`ConfigError` naming one)."""
    check(config.stim_mode in STIM_MODES, "--stim_mode", f"choose from {', '.join(STIM_MODES)}")
    object.__setattr__(config, "trace_units", tuple(int(u) for u in config.trace_units))
    if config.stim_window is not None:
        window = tuple(float(v) for v in config.stim_window)
        check(len(window) == 2, "--stim_window", f"give START END (ms), got {window}")
        object.__setattr__(config, "stim_window", window)
    if config.use_initial_weights:
        check(config.mode in ("convert", "eval"), "--use_initial_weights",
              f"applies to the model of --mode convert or eval, not {config.mode}")
    if config.trace_units:
        check(config.mode == "eval", "--trace_units", "is an option of --mode eval")
        check(min(config.trace_units) >= 0, "--trace_units", "unit indices must be ≥ 0")
    check(1 <= config.trace_trials <= config.lif_trials, "--trace_trials",
          f"must lie in [1, --lif_trials], got {config.trace_trials}")
    if config.stim_mode == "none":
        for name in ("stim_window", "stim_units"):
            check(getattr(config, name) is None, f"--{name}",
                  "needs --stim_mode exc or inh")
        return
    check(config.mode == "eval", "--stim_mode", "is an option of --mode eval")
    check(config.stim_window is not None, "--stim_window",
          f"--stim_mode {config.stim_mode} needs the window START END (ms)")
    start, end = config.stim_window
    check(0 <= start < end < float("inf"), "--stim_window",
          f"needs 0 ≤ START < END (ms), got {start:g} {end:g}")
    check(config.stim_units is not None, "--stim_units",
          f"--stim_mode {config.stim_mode} needs the units to stimulate")
    parse_units(config.stim_units)
    check(0 <= config.stim_amplitude < float("inf"), "--stim_amplitude",
          f"must be a finite number ≥ 0 (mV), got {config.stim_amplitude}")
    check(0 <= config.stim_prob <= 1, "--stim_prob",
          f"a probability must lie in [0, 1], got {config.stim_prob}")


def stimulated_units(config: RateToLifConfig, context, network) -> tuple[int, ...]:
    """The indices ``--stim_units`` selects in ``network`` (sorted)."""
    import torch

    spec = parse_units(config.stim_units)
    n = network.spec.n
    if isinstance(spec[0], int):
        check(max(spec) < n, "--stim_units", f"unit indices must be < N = {n}, got {max(spec)}")
        return tuple(sorted(set(spec)))
    population, count = spec
    inhibitory = network.inhibitory.cpu()
    members = {"exc": ~inhibitory, "inh": inhibitory,
               "all": torch.ones(n, dtype=torch.bool)}[population].nonzero().squeeze(1)
    check(members.numel() > 0, "--stim_units", f"the network has no {population} unit")
    if count is not None:
        check(count <= members.numel(), "--stim_units",
              f"{population}:{count} asks for more than its {members.numel()} units")
        order = torch.randperm(members.numel(), generator=context.stream("stimulated units"))
        members = members[order[:count]]
    return tuple(sorted(int(i) for i in members))


def trace_options(config: RateToLifConfig, network) -> dict:
    """Keyword arguments of :func:`nrmkit.nn.lif.simulate_lif` for ``--trace_units``."""
    if not config.trace_units:
        return {}
    n = network.spec.n
    check(max(config.trace_units) < n, "--trace_units",
          f"unit indices must be < N = {n}, got {max(config.trace_units)}")
    return {"trace_units": list(config.trace_units), "trace_trials": config.trace_trials}


def window_steps(window_ms, lif_dt: float, rate_steps: int) -> tuple[slice, slice]:
    """Rate steps ``(before, touched)``: those whose LIF steps all precede the window, and
    those holding at least one stimulated LIF step (rate step ``k`` holds the LIF steps
    ``k·n + 1 … (k+1)·n``, ``n = 5/lif_dt``; the stimulated ones are
    :meth:`~nrmkit.nn.lif_perturbation.Stimulation.step_range`)."""
    import math

    per = round(5.0 / lif_dt)
    first = max(math.ceil(window_ms[0] / lif_dt - 1e-9), 1)
    last = math.ceil(window_ms[1] / lif_dt - 1e-9) - 1
    before = min((first - 1) // per, rate_steps)
    end = min((last - 1) // per + 1, rate_steps) if last >= first else before
    return slice(0, before), slice(before, max(end, before))


def prepare(config: RateToLifConfig, context, task, network):
    """The checked perturbations of ``network`` before anything runs: ``(stimulation or
    None, trace keyword arguments of simulate_lif)`` (one-line :class:`ConfigError`s)."""
    from nrmkit.nn.lif_perturbation import Stimulation

    traces = trace_options(config, network)
    if config.stim_mode == "none":
        return None, traces
    units = stimulated_units(config, context, network)
    window = config.stim_window
    check(window[0] < task.n_steps * 5.0, "--stim_window",
          f"starts after the trial ends ({task.n_steps * 5.0:g} ms)")
    return Stimulation(config.stim_mode, window, units, config.stim_amplitude,
                       config.stim_prob), traces


def report(config: RateToLifConfig, context, task, network, scaling: float, trials, lif,
           evaluation: dict, plan) -> None:
    """The perturbation part of ``--mode eval`` after the unperturbed run ``lif`` (``plan``:
    :func:`prepare`'s): adds ``use_initial_weights``, ``traces`` and ``stimulation`` to
    ``evaluation``, writes ``lif_traces.npz``/``lif_stimulation.npz`` and their figures."""
    evaluation["use_initial_weights"] = config.use_initial_weights
    evaluation["stimulation"] = evaluation["traces"] = None
    stimulation, traces = plan
    stimulated = None
    if stimulation is not None:
        stimulated = _stimulated_run(config, context, task, network, scaling, trials, lif,
                                     evaluation, stimulation, traces)
    if config.trace_units:
        _write_traces(config, context, task, lif, stimulated, evaluation)


def _stimulated_run(config, context, task, network, scaling, trials, lif, evaluation,
                    stimulation, traces):
    """The evaluation trials again with the stimulation (same trials, ``v_0`` and noise):
    ``evaluation["stimulation"]``, ``lif_stimulation.npz``, figure ``lif_stimulation``."""
    import numpy as np

    from nrmkit import plotting
    from nrmkit.experiments.rate_to_lif.conversion import simulate

    units, window = stimulation.units, stimulation.window_ms
    run = simulate(config, context, network, trials, [scaling],
                   purpose="LIF evaluation noise", record_spikes=False,
                   label=f"LIF at λ = {scaling:g}, {config.stim_mode} stimulation",
                   stimulation=stimulation, stim_generator=context.stream("stimulation"),
                   **traces)
    without = lif.output[:, 0].cpu().numpy()                               # (T, B)
    with_stim = run.output[:, 0].cpu().numpy()
    before, touched = window_steps(window, config.lif_dt, without.shape[0])
    change = with_stim - without
    counts = [r.spike_counts[0][:, list(units)].double().mean().item() for r in (lif, run)]
    correct = task.correct(run.output[:, 0], trials.labels, spiking=True)
    evaluation["stimulation"] = {
        "mode": config.stim_mode, "window_ms": list(window), "units": list(units),
        "amplitude_mv": config.stim_amplitude, "probability": config.stim_prob,
        "accuracy": float(correct.float().mean()),
        "readout_change_in_window": float(change[touched].mean()) if change[touched].size
        else 0.0,
        "max_abs_change_before_window": float(np.abs(change[before]).max())
        if change[before].size else 0.0,
        "stimulated_units_rate_hz": [c / lif.duration_ms * 1000.0 for c in counts]}
    context.run_dir.write_arrays(
        "lif_stimulation.npz", outputs_without=without, outputs_with=with_stim,
        targets=trials.targets.numpy(), conditions=trials.conditions.numpy(),
        labels=trials.labels.numpy(), window_ms=np.asarray(window), units=np.asarray(units))
    context.run_dir.save_figure(plotting.stimulation_outputs(
        without, with_stim, trials.conditions.numpy(), trials.condition_names, window,
        mode=config.stim_mode, title=f"{task.name}, λ = {scaling:g}, {len(units)} unit(s) "
                                     f"stimulated"), "lif_stimulation")
    context.log(f"  {config.stim_mode} stimulation of {len(units)} unit(s) in "
                f"[{window[0]:g}, {window[1]:g}) ms: accuracy "
                f"{100 * evaluation['stimulation']['accuracy']:.1f} %, read-out change in "
                f"the window {evaluation['stimulation']['readout_change_in_window']:+.3f}")
    return run


def _write_traces(config, context, task, lif, stimulated, evaluation) -> None:
    """``lif_traces.npz`` (``voltage_mv (T_lif, trace_trials, K)``, with stimulation also
    ``voltage_stimulated_mv``), ``evaluation["traces"]`` and the figure ``lif_traces``."""
    import numpy as np

    from nrmkit import plotting

    voltage = lif.voltage[:, 0].cpu().numpy()
    arrays = {"voltage_mv": voltage, "units": np.asarray(config.trace_units),
              "time_ms": np.arange(1, voltage.shape[0] + 1) * lif.dt}
    if stimulated is not None:
        arrays["voltage_stimulated_mv"] = stimulated.voltage[:, 0].cpu().numpy()
    context.run_dir.write_arrays("lif_traces.npz", **arrays)
    evaluation["traces"] = {"units": list(config.trace_units), "trials": config.trace_trials,
                            "shape": list(voltage.shape)}
    window = None if stimulated is None else evaluation["stimulation"]["window_ms"]
    context.run_dir.save_figure(plotting.voltage_traces(
        arrays["time_ms"], voltage[:, 0], list(config.trace_units),
        stimulated=None if stimulated is None else arrays["voltage_stimulated_mv"][:, 0],
        window_ms=window,
        title=f"{task.name}: membrane voltage, trial 0"), "lif_traces")
