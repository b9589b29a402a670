"""Options and configuration shared by the Lyapunov workflows (no torch import here)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from nrmkit.cli.options import RegistryChoice, option
from nrmkit.core.base import IncrementalSweep
from nrmkit.core.errors import ConfigError
from nrmkit.core.registry import ACTIVATIONS

PARAMETER_SETS = ("weights", "shifts", "gains")
GAIN_SHIFT_FREE = ("tanh",)  # activations whose value ignores gains and shifts


def check(condition: bool, option_name: str, reason: str) -> None:
    """Raise :class:`ConfigError` for ``option_name`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(option_name, reason)


def check_finite(value: float, option_name: str) -> None:
    check(math.isfinite(value), option_name, f"must be a finite number, got {value}")


@dataclass(frozen=True)
class LyapunovSettings:
    """Network size, activation and the time grid of a Lyapunov computation.

    Attributes:
        n: neurons per network (≥ 2).
        nle: number of exponents (1 ≤ nle ≤ n); None = all n.
        activation: activation name (registry; FlyStability aliases accepted).
        tsim: accumulation time in τ (> 0).
        dt: Euler step in τ, in (0, 1].
        tons: time between re-orthonormalisations in τ (≥ dt; rounded to whole steps).
        ttrans: state warm-up in τ before the tangent basis starts (≥ 0).
        tbasis: basis transient in τ (None = 10 % of tsim).
    """

    n: int = 1000
    nle: int | None = 1
    activation: str = "tanh"
    tsim: float = 200.0
    dt: float = 0.1
    tons: float = 0.2
    ttrans: float = 100.0
    tbasis: float | None = None

    def __post_init__(self):
        check(self.n >= 2, "--n", f"a network needs at least 2 neurons, got {self.n}")
        nle = self.n if self.nle is None else self.nle
        check(nle >= 1, "--nle", f"must be at least 1, got {nle}")
        check(nle <= self.n, "--nle", f"cannot exceed --n ({nle} > {self.n})")
        object.__setattr__(self, "nle", nle)
        check(self.activation in ACTIVATIONS, "--activation",
              f"unknown activation {self.activation!r}; choose from "
              f"{', '.join(ACTIVATIONS.choices())}")
        object.__setattr__(self, "activation", ACTIVATIONS.canonical(self.activation))
        for name in ("tsim", "dt", "tons", "ttrans"):
            check_finite(getattr(self, name), f"--{name}")
        check(0.0 < self.dt <= 1.0, "--dt", f"must lie in (0, 1], got {self.dt}")
        check(self.tsim > 0, "--tsim", f"must be positive, got {self.tsim}")
        check(self.tons >= self.dt * (1 - 1e-9), "--tons",
              f"must be at least --dt ({self.tons} < {self.dt})")
        check(self.tons <= self.tsim, "--tons",
              f"cannot exceed --tsim ({self.tons} > {self.tsim})")
        check(self.ttrans >= 0, "--ttrans", f"must be non-negative, got {self.ttrans}")
        if self.tbasis is not None:
            check(self.tbasis >= 0, "--tbasis", f"must be non-negative, got {self.tbasis}")

    @property
    def steps_per_ons(self) -> int:
        return max(1, round(self.tons / self.dt))

    @property
    def tons_effective(self) -> float:
        return self.steps_per_ons * self.dt

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`nrmkit.dynamics.lyapunov_spectrum`."""
        return {"tsim": self.tsim, "tons": self.tons, "ttrans": self.ttrans,
                "tbasis": self.tbasis}


def check_coupling_grid(gmin: float, gmax: float, m_g: int, n_samples: int) -> None:
    """Validate ``--gmin``, ``--gmax``, ``--m_g`` and ``--n_samples`` of a coupling sweep."""
    check_finite(gmin, "--gmin")
    check_finite(gmax, "--gmax")
    check(gmin >= 0, "--gmin", f"couplings must be non-negative, got {gmin}")
    check(gmin <= gmax, "--gmin", f"must not exceed --gmax ({gmin} > {gmax})")
    check(m_g >= 1, "--m_g", f"must be at least 1, got {m_g}")
    check(gmin < gmax or m_g == 1, "--m_g", "gmin = gmax gives a single coupling: use --m_g 1")
    check(n_samples >= 1, "--n_samples", f"must be at least 1, got {n_samples}")


def coupling_grid(gmin: float, gmax: float, m_g: int) -> list[float]:
    """``m_g`` couplings evenly spaced in ``[gmin, gmax]`` (``[gmin]`` when ``m_g = 1``)."""
    if m_g == 1:
        return [float(gmin)]
    step = (gmax - gmin) / (m_g - 1)
    return [gmin + i * step for i in range(m_g)]


def check_parameter_sets(parameter: tuple[str, ...], activation: str) -> tuple[str, ...]:
    """Validate ``--parameter`` values against the activation; return them de-duplicated."""
    check(len(parameter) > 0, "--parameter", "give at least one of weights, shifts, gains")
    unknown = [p for p in parameter if p not in PARAMETER_SETS]
    check(not unknown, "--parameter", f"unknown parameter set(s) {unknown}")
    canonical = ACTIVATIONS.canonical(activation) if activation in ACTIVATIONS else activation
    varied = tuple(dict.fromkeys(parameter))
    ineffective = [p for p in varied if p in ("gains", "shifts")]
    check(not (ineffective and canonical in GAIN_SHIFT_FREE), "--parameter",
          f"{'/'.join(ineffective)} have no effect with activation {canonical!r} "
          "(use tanh_stretch or tanh_pos)")
    return varied


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
            "--tons", type=float, default=value("tons"),
            help="Time between QR re-orthonormalisations [τ]."),
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


def save_option() -> Callable:
    return option("--save", type=click.BOOL, default=True,
                  help="Write the run directory (false: print results only).")


def divergence_message(error: Exception, describe: Callable[[tuple[int, ...]], str]) -> str:
    """Name the parameters of the networks that diverged."""
    indices = getattr(error, "batch_indices", [])
    named = "; ".join(describe(index) for index in indices[:5])
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f"{error} ({named}{more}); try a smaller --dt or coupling, or --dtype float64"


def unit_seed(seed: int, unit: int) -> int:
    """The seed of one unit (sample, trial…) of a sweep: a hash of ``(seed, unit)``.

    Every random number of a unit is drawn from this seed, so a unit's numbers do not depend
    on which other units run with it (any executor, any chunking).
    """
    import numpy as np

    return int(np.random.SeedSequence([int(seed) % 2**32, int(unit)]).generate_state(1)[0])


@dataclass(frozen=True)
class SweepResult:
    """Exponents of a coupling sweep as ``[g, sample, k]`` numpy arrays (descending in k)."""

    exponents: Any
    stderr: Any
    tons: float
    t_accumulated: float

    @classmethod
    def from_units(cls, arrays: Any) -> SweepResult:
        """From :func:`iter_coupling_sweep`'s arrays of every sample (first axis = sample)."""
        return cls(exponents=arrays["exponents"].transpose(1, 0, 2),
                   stderr=arrays["stderr"].transpose(1, 0, 2),
                   tons=float(arrays["tons"][0]), t_accumulated=float(arrays["t_accumulated"][0]))


def iter_coupling_sweep(
    name: str, settings: LyapunovSettings, context: Any, *, couplings: list[float],
    samples: list[int], parameter: tuple[str, ...], independent_draws: bool,
):
    """Exponents of the networks of ``samples`` at every coupling, one sample at a time.

    Sample ``s`` draws its matrix (reused across the couplings unless
    ``independent_draws``), gains/shifts, initial states and tangent basis from its own
    seed :func:`unit_seed` ``(seed, s)`` and runs in its own engine call (batched over the
    couplings): its numbers are bit for bit the same in any chunk of samples (batching
    samples together changes float32 round-off, ≈ 1e-8). Yields ``(s, arrays)`` with
    ``exponents``, ``stderr`` of shape ``(1, couplings, nle)`` (descending in k) and
    ``tons``, ``t_accumulated`` of shape ``(1,)``. A divergence is re-raised naming the
    coupling and sample of every failed network.
    """
    import numpy as np
    import torch

    from nrmkit.core.errors import DivergenceError
    from nrmkit.dynamics import lyapunov_spectrum
    from nrmkit.dynamics.lyapunov import random_basis
    from nrmkit.nn.rate_rnn import random_rate_network

    m_g = len(couplings)
    context.log(f"{name}: {m_g} couplings × {len(samples)} samples, N={settings.n}, "
                f"nle={settings.nle}, on {context.device} ({context.dtype})")
    progress = context.progress("lyapunov")
    for position, sample in enumerate(samples):
        generator = torch.Generator().manual_seed(unit_seed(context.seed, sample))
        model = random_rate_network(
            settings.n, couplings, 1, vary=parameter, shared_matrix=not independent_draws,
            activation=settings.activation, dt=settings.dt, generator=generator,
            dtype=context.torch_dtype, device=context.device,
        )
        state = model.initial_state(generator)
        basis = random_basis(model.batch_shape, settings.nle, settings.n, generator=generator,
                             dtype=context.torch_dtype, device=context.device)

        def report(done: int, total: int, position: int = position) -> None:
            progress(position * total + done, len(samples) * total)

        try:
            result = lyapunov_spectrum(model, settings.nle, state=state, basis=basis,
                                       progress=report, **settings.engine_kwargs()).sorted()
        except DivergenceError as error:
            def describe(index: tuple[int, ...], sample: int = sample,
                         columns: int = model.batch_shape[1]) -> str:
                g_index = index[0] * columns + index[1]
                return f"g={couplings[g_index]:g}, sample {sample}"
            raise DivergenceError(divergence_message(error, describe)) from None
        yield sample, {
            "exponents": result.exponents.detach().cpu().numpy().reshape(1, m_g, settings.nle),
            "stderr": result.standard_error.detach().cpu().numpy().reshape(1, m_g, settings.nle),
            "tons": np.array([result.tons]), "t_accumulated": np.array([result.t_accumulated])}


class CouplingSweep(IncrementalSweep):
    """A sweep over random networks (units: samples) at every coupling of
    ``config.couplings`` (``transition_2_chaos``, ``spectrum``); each sample's part is stored
    as soon as it is done. Subclasses implement :meth:`aggregate`."""

    unit_name = "sample"
    resumable = True

    def n_units(self, config: Any) -> int:
        return config.n_samples

    def iter_units(self, config: Any, context: Any, units: list[int]):
        for sample, arrays in iter_coupling_sweep(
                self.name, config, context, couplings=config.couplings, samples=units,
                parameter=config.parameter, independent_draws=config.independent_draws):
            yield [sample], arrays
