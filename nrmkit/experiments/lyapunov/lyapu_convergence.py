"""``lyapu_convergence``: how the exponents converge in time, for several t_ONS values.

The same ``n_samples`` random networks at coupling ``g`` (same initial states and tangent
bases) are run once per ``t_ONS``; the running estimates ``λ_i(t)`` show the convergence
and the final spectra show whether a long ``t_ONS`` has corrupted the smallest exponents
(the QR method needs ``t_ONS·(λ_1 − λ_k)`` ≲ 15 in float32, ≲ 35 in float64).

``--tons auto`` (one of the values, or the only one) chooses the interval from a pilot run
after the warm-up so that ``t_ONS·max(λ_1 − λ_k)`` is half that limit (all networks share one
interval; :func:`nrmkit.dynamics.lyapunov.choose_tons`). ``--model RUN_DIR`` runs the
networks saved by a training run instead of random ones (``--untrained``: the same networks
before training); N, dt and the activation are then the model's, and ``--n``, ``--dt``,
``--activation``, ``--g``, ``--n_samples`` are refused with it.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/lyapu_convergence.md``), and a test checks them against what the workflow writes.
``--connectivity`` chooses the ensemble of the random matrices (``gaussian``, ``symmetric``,
``ei``; :mod:`nrmkit.nn.ensembles`). ``--activity_neurons K`` (default 10; 0: none) adds the
activity of the networks over ``--activity_time`` τ from a fresh initial state (stream
``(seed, 0, "activity")``, so the exponents are unchanged): the states of ``K`` neurons of
network 0, the population activity of every network and an image of network 0
(:func:`nrmkit.dynamics.activity.record_activity`).

Arrays: ``history_tons_<t>.npz`` (``history_tons_auto.npz`` for auto; time,
lambda[time, network, k]) for every t_ONS; ``activity.npz``.
Figures: ``figures/lyapu_convergence.{png,pdf}``, ``figures/activity.{png,pdf}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nrmkit.core.base import MemoryTerm, Workflow
from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.lyapunov.settings import (
    LOG_ITEMSIZE,
    MAX_STEPS,
    TONS_AUTO,
    RandomNetworkSettings,
    check_tons,
    engine_memory,
    memory_term,
    naming_divergence,
    plural,
    raised,
    weight_memory,
)
from nrmkit.experiments.lyapunov.trained_models import (
    adopt_trained_model,
    load_analysed_model,
    trained_memory_terms,
    trained_model_info,
)

MAX_HISTORY_POINTS = 400


@dataclass(frozen=True)
class ConvergenceConfig(RandomNetworkSettings):
    """Options of ``lyapu_convergence`` (``tons_values`` holds several values here; ``tons``
    is the one that bounds memory: ``auto`` if given, else the smallest).

    With ``model`` (a training run's folder) ``n``, ``dt``, ``activation`` and ``n_samples``
    (= its networks) are the model's, and ``model_sha256`` is its file's digest.
    ``activity_neurons`` neurons are traced over ``activity_time`` τ (0: no activity).
    """

    adaptive_tons: ClassVar[bool] = True

    n: int = 100
    nle: int | None = 20
    tsim: float = 700.0
    g: float = 1.5
    n_samples: int = 5
    tons_values: tuple[float | str, ...] = (0.2, 1.0, 5.0)
    model: str | None = None
    untrained: bool = False
    model_sha256: str | None = None
    activity_neurons: int = 10
    activity_time: float = 50.0

    def __post_init__(self):
        adopt_trained_model(self)
        check(len(self.tons_values) >= 1, "--tons", "give at least one value")
        values = tuple(check_tons(value) for value in self.tons_values)
        object.__setattr__(self, "tons_values", values)
        # validate every t_ONS against dt and tsim with the shared rules
        for value in values:
            object.__setattr__(self, "tons", value)
            super().__post_init__()
        fixed = [value for value in values if value != TONS_AUTO]
        object.__setattr__(self, "tons", TONS_AUTO if len(fixed) < len(values) else min(fixed))
        check_finite(self.g, "--g")
        check(self.g >= 0, "--g", f"couplings must be non-negative, got {self.g}")
        check(self.n_samples >= 1, "--n_samples", f"must be at least 1, got {self.n_samples}")
        check(0 <= self.activity_neurons <= self.n, "--activity_neurons",
              f"must lie in [0, {self.n}] (N), got {self.activity_neurons}")
        check_finite(self.activity_time, "--activity_time")
        check(self.activity_time > 0, "--activity_time",
              f"must be positive, got {self.activity_time}")
        check(self.activity_time / self.dt <= MAX_STEPS, "--activity_time",
              f"{self.activity_time:g} τ at --dt {self.dt:g} exceeds {MAX_STEPS:.0e} steps")

    @property
    def activity_steps(self) -> int:
        """Euler steps of the activity record (at least 1)."""
        return max(1, round(self.activity_time / self.dt))


class Convergence(Workflow):
    name = "lyapu_convergence"
    config_class = ConvergenceConfig

    def memory_terms(self, config: ConvergenceConfig, *, itemsize: int) -> list[MemoryTerm]:
        """``S = n_samples`` networks of ``N`` neurons in one engine call per t_ONS, ``k =
        nle``; ``n_ons`` re-orthonormalisations at the smallest t_ONS (bytes):

        * weights ``S · N² · (8 + itemsize)`` (:func:`weight_memory`; 12 or 17 instead of 8
          for the ``symmetric`` and ``ei`` ensembles);
        * engine ``7 · S·(k+1)·N · itemsize + S·k² · itemsize`` (:func:`engine_memory`);
        * history ``4 · n_ons · S · k · 8``: the float64 log increments, their sorted copy
          and the running estimate λ_i(t) (a cumulative sum, then divided by t), kept for
          every exponent until the arrays are written.

        Measured (float32, peak RSS above the same run at N = 20, or at tsim = 2): ``--n
        3000 --n_samples 10 --nle 1 --tons 0.2 --tsim 2``: 1670 MiB for 1718 estimated;
        ``--n 20 --nle 20 --n_samples 100 --tons 0.1 --tsim 2000``: 1217 MiB for 1219.

        ``--tons auto`` counts as one step (the most re-orthonormalisations it may make).
        With ``--model`` the networks of the model in one engine call
        (:func:`~nrmkit.experiments.lyapunov.trained_models.trained_memory_terms`).
        """
        if config.model is not None:
            return trained_memory_terms(config, networks=config.n_samples, itemsize=itemsize,
                                        history_copies=4.0)
        samples, n, k = config.n_samples, config.n, config.nle
        n_ons = config.n_ons  # config.tons is the smallest t_ONS
        working, _ = engine_memory(networks=samples, n=n, nle=k, n_ons=n_ons,
                                   itemsize=itemsize)
        history = 4.0 * n_ons * samples * k * LOG_ITEMSIZE
        growth = {"--n_samples": raised(config, "--n_samples"), "--nle": raised(config, "--nle")}
        return [
            memory_term({"--n": raised(config, "--n", 2), **growth},
                        weight_memory(n, samples, itemsize, config.draw_bytes),
                        f"the {n}×{n} weight matrices of {plural(samples, 'sample')}"),
            memory_term({"--n": raised(config, "--n"), **growth}, working,
                        f"the states and {plural(k, 'tangent vector')} of "
                        f"{plural(samples, 'network')} of {n} neurons"),
            memory_term({"--tsim": raised(config, "--tsim"),
                         "--tons": raised(config, "--tons", -1), **growth}, history,
                        f"the running estimates of {plural(k, 'exponent')} of "
                        f"{plural(samples, 'sample')} at {plural(n_ons, 're-orthonormalisation')}"),
        ]

    def run(self, config: ConvergenceConfig, context) -> dict:
        from nrmkit import plotting

        model, networks, title, info = _networks(config, context)
        context.log(f"lyapu_convergence: {networks}, N={config.n}, nle={config.nle}, "
                    f"t_ONS {', '.join(map(_text, config.tons_values))}")
        runs = [_one_interval(config, context, model, tons) for tons in config.tons_values]
        figure = plotting.convergence(
            [run["tons"] for run in runs], [run["time"] for run in runs],
            [run["lambda_1"] for run in runs], [run["exponents"] for run in runs],
            [run["stderr"] for run in runs],
            title=f"{config.activation}, {title}, N={config.n}, "
                  f"{plural(config.n_samples, 'network')}",
        )
        context.run_dir.save_figure(figure, "lyapu_convergence")
        activity = _activity(config, context, model, title)
        results = {
            "tons": [run["tons"] for run in runs],
            "tons_requested": list(config.tons_values),
            "tons_choice": [run["choice"] for run in runs],
            "g": config.g if config.model is None else None,
            "n": config.n,
            "nle": config.nle,
            "tsim": config.tsim,
            "dt": config.dt,
            "exponents": [run["exponents"] for run in runs],
            "exponents_stderr": [run["stderr"] for run in runs],
            "history": [run["summary"] for run in runs],
            "connectivity": config.connectivity_record() if config.model is None else None,
            "activity": activity,
        }
        if info is not None:
            results["model"] = info.record()
        return results


def _networks(config: ConvergenceConfig, context) -> tuple:
    """``(model, description, figure title, model info or None)``: random networks drawn
    from the stream ``(seed, 0, "networks")``, or the networks of ``--model``."""
    from nrmkit.nn.rate_rnn import random_rate_network

    if config.model is None:
        model = random_rate_network(
            config.n, [config.g], config.n_samples, activation=config.activation,
            dt=config.dt, generator=context.stream("networks"), dtype=context.torch_dtype,
            device=context.device, **config.network_kwargs(),
        )
        return (model, f"g={config.g}, {plural(config.n_samples, 'sample')}, "
                f"{config.connectivity} connectivity",
                f"g={config.g:g}, {config.connectivity}", None)
    info = trained_model_info(config.model, config.untrained)
    which = "trained" if info.trained else "initial"
    return (load_analysed_model(config, context),
            f"{plural(config.n_samples, f'{which} network')} of {config.model}",
            f"{info.workflow} ({which})", info)


def _one_interval(config: ConvergenceConfig, context, model, tons: float | str) -> dict:
    """The exponents of every network with re-orthonormalisation interval ``tons``, from
    the same initial states and basis (stream ``(seed, 0, "states")``) for every interval;
    writes ``history_tons_<t>.npz``. Returns the effective interval, the time points, the
    running λ_1 ``(time, network)``, the final exponents and standard errors ``(network,
    k)``, the summarised history and the choice record of ``auto``."""
    import numpy as np

    from nrmkit.dynamics import lyapunov_spectrum

    k, columns = config.nle, model.batch_shape[1]

    def describe(index: tuple[int, ...]) -> str:
        network = index[0] * columns + index[1]
        where = (f"g={config.g:g}, sample {network}" if config.model is None
                 else f"network {network}")
        return f"{where}, t_ONS={_text(tons)}"

    with naming_divergence(describe):
        result = lyapunov_spectrum(
            model, k, generator=context.stream("states"),
            progress=context.progress(f"t_ONS={_text(tons)}"),
            **{**config.engine_kwargs(), "tons": tons},
        )
    ordered = result.sorted()
    history = result.history.detach().cpu().numpy()
    history = history.reshape(history.shape[0], -1, k)         # (time, network, k)
    time = result.times.numpy()
    exponents = ordered.exponents.detach().cpu().numpy().reshape(-1, k)
    label = TONS_AUTO if tons == TONS_AUTO else f"{result.tons:g}"
    context.run_dir.write_arrays(f"history_tons_{label}.npz", time=time, **{"lambda": history})
    keep = np.unique(np.geomspace(1, len(time), MAX_HISTORY_POINTS).astype(int) - 1)
    chosen = "" if tons != TONS_AUTO else (
        f" (auto: pilot spread {result.tons_choice.spread:.3f}/τ, set by "
        f"{result.tons_choice.bound})")
    context.log(f"  t_ONS={result.tons:g}{chosen}: λ_1 median "
                f"{np.median(exponents[:, 0]):+.4f}, λ_{k} median "
                f"{np.median(exponents[:, -1]):+.4f}")
    return {"tons": result.tons, "time": time,
            "lambda_1": history[..., 0].copy(),      # a view would keep every exponent
            "exponents": exponents, "stderr": ordered.standard_error.numpy().reshape(-1, k),
            "summary": {"time": time[keep], "lambda": np.median(history[keep], axis=1)},
            "choice": _choice_record(result.tons_choice)}


def _text(tons: float | str) -> str:
    return tons if isinstance(tons, str) else f"{tons:g}"


def _choice_record(choice) -> dict | None:
    """The ``tons_choice`` entry of results.json (None for a fixed interval)."""
    if choice is None:
        return None
    return {"spread": choice.spread, "magnitude": choice.magnitude, "limit": choice.limit,
            "spread_product": choice.spread_product, "bound": choice.bound}


def _activity(config: ConvergenceConfig, context, model, title: str) -> dict | None:
    """The activity record (``activity.npz``, ``figures/activity``) and its results entry,
    or None with ``--activity_neurons 0``."""
    if config.activity_neurons == 0:
        return None
    import numpy as np

    from nrmkit.dynamics.activity import record_activity
    from nrmkit.plotting.lyapunov import network_activity

    record = record_activity(model, config.activity_steps, config.activity_neurons,
                             generator=context.stream("activity"))
    context.run_dir.write_arrays("activity.npz", **record.arrays())
    figure = network_activity(record.time, record.neurons, record.states, record.population,
                              record.image, title=f"{config.activation}, {title}, "
                                                  f"N={config.n}")
    context.run_dir.save_figure(figure, "activity")
    late = record.states[len(record.time) // 2:]
    return {"time": float(record.time[-1]), "points": len(record.time),
            "neurons": record.neurons, "image_neurons": record.image.shape[1],
            "state_rms_late": float(np.sqrt(np.mean(late ** 2)))}
