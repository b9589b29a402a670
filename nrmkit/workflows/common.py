"""Options and configuration shared by the Lyapunov workflows (no torch import here)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import click

from nrmkit.cli.options import RegistryChoice, option
from nrmkit.core.base import IncrementalSweep, MemoryTerm
from nrmkit.core.errors import ConfigError, DivergenceError
from nrmkit.core.registry import ACTIVATIONS

PARAMETER_SETS = ("weights", "shifts", "gains")
GAIN_SHIFT_FREE = ("tanh",)  # activations whose value ignores gains and shifts

#: the most Euler steps one computation may take. The engine's Python loop costs tens of µs
#: a step even for a tiny network (0.2 ms measured at N = 10 on a 2-core machine), so 10⁹
#: steps are hours at the very least and days to weeks at useful sizes: a larger value is a
#: typo, not a plan.
MAX_STEPS = 10**9

#: ``--tons auto``: the interval is chosen from a pilot run after the warm-up (see
#: :func:`nrmkit.dynamics.lyapunov.choose_tons`).
TONS_AUTO = "auto"


def check(condition: bool, option_name: str, reason: str) -> None:
    """Raise :class:`ConfigError` for ``option_name`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(option_name, reason)


def check_finite(value: float, option_name: str) -> None:
    check(math.isfinite(value), option_name, f"must be a finite number, got {value}")


class TonsType(click.ParamType):
    """``--tons``: a number of τ, or ``auto`` (any case) for an interval chosen from a pilot
    run; anything else is a usage error naming the option."""

    name = "tons"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "FLOAT|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        if isinstance(value, str) and value.strip().lower() == TONS_AUTO:
            return TONS_AUTO
        if not isinstance(value, bool):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        self.fail(f"{value!r} is neither a number of τ nor 'auto'", param, ctx)


TONS_TYPE = TonsType()


def check_tons(value: Any, option_name: str = "--tons") -> float | str:
    """A ``--tons`` value as the engine takes it: a finite float or :data:`TONS_AUTO`."""
    if isinstance(value, str):
        check(value.strip().lower() == TONS_AUTO, option_name,
              f"{value!r} is neither a number of τ nor 'auto'")
        return TONS_AUTO
    check(not isinstance(value, bool), option_name, f"{value!r} is not a number of τ")
    value = float(value)
    check_finite(value, option_name)
    return value


@dataclass(frozen=True)
class LyapunovSettings:
    """Network size, activation and the time grid of a Lyapunov computation.

    Attributes:
        n: neurons per network (≥ 2).
        nle: number of exponents (1 ≤ nle ≤ n); None = all n.
        activation: activation name (registry; FlyStability aliases accepted).
        tsim: accumulation time in τ (> 0).
        dt: Euler step in τ, in (0, 1].
        tons: time between re-orthonormalisations in τ (≥ dt; rounded to whole steps), or
            ``"auto"`` where the workflow allows it (:attr:`adaptive_tons`): chosen per
            engine call from a pilot run (:func:`nrmkit.dynamics.lyapunov.choose_tons`).
        ttrans: state warm-up in τ before the tangent basis starts (≥ 0).
        tbasis: basis transient in τ (None = 10 % of tsim).
    """

    #: whether ``--tons auto`` is accepted (analyses: yes; training differentiates through
    #: a fixed interval and a benchmark times one).
    adaptive_tons: ClassVar[bool] = False

    n: int = 1000
    nle: int | None = 1
    activation: str = "tanh"
    tsim: float = 200.0
    dt: float = 0.1
    tons: float | str = 0.2
    ttrans: float = 100.0
    tbasis: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "tons", check_tons(self.tons))
        check(self.tons != TONS_AUTO or self.adaptive_tons, "--tons",
              "auto is for the analyses (spectrum, lyapu_convergence, transition_2_chaos); "
              "training and benchmarks need a fixed interval: give a number of τ")
        check(self.n >= 2, "--n", f"a network needs at least 2 neurons, got {self.n}")
        nle = self.n if self.nle is None else self.nle
        check(nle >= 1, "--nle", f"must be at least 1, got {nle}")
        check(nle <= self.n, "--nle", f"cannot exceed --n ({nle} > {self.n})")
        object.__setattr__(self, "nle", nle)
        check(self.activation in ACTIVATIONS, "--activation",
              f"unknown activation {self.activation!r}; choose from "
              f"{', '.join(ACTIVATIONS.choices())}")
        object.__setattr__(self, "activation", ACTIVATIONS.canonical(self.activation))
        for name in ("tsim", "dt", "ttrans"):
            check_finite(getattr(self, name), f"--{name}")
        check(0.0 < self.dt <= 1.0, "--dt", f"must lie in (0, 1], got {self.dt}")
        check(self.tsim > 0, "--tsim", f"must be positive, got {self.tsim}")
        if self.tons != TONS_AUTO:
            check(self.tons >= self.dt * (1 - 1e-9), "--tons",
                  f"must be at least --dt ({self.tons} < {self.dt})")
            check(self.tons <= self.tsim, "--tons",
                  f"cannot exceed --tsim ({self.tons} > {self.tsim})")
        check(self.ttrans >= 0, "--ttrans", f"must be non-negative, got {self.ttrans}")
        if self.tbasis is not None:
            check_finite(self.tbasis, "--tbasis")
            check(self.tbasis >= 0, "--tbasis", f"must be non-negative, got {self.tbasis}")
        self._check_step_count()

    @property
    def tbasis_effective(self) -> float:
        """The basis transient [τ]: ``--tbasis``, or 10 % of ``tsim`` when not given."""
        return 0.1 * self.tsim if self.tbasis is None else self.tbasis

    @property
    def euler_steps(self) -> float:
        """Euler steps of one computation, ``(ttrans + tbasis + tsim) / dt`` (a float: inf
        when the division overflows)."""
        return (self.ttrans + self.tbasis_effective + self.tsim) / self.dt

    @property
    def tangent_steps(self) -> float:
        """Euler steps that propagate the tangent basis, ``(tbasis + tsim) / dt``."""
        return (self.tbasis_effective + self.tsim) / self.dt

    @property
    def n_ons(self) -> int:
        """Accumulated re-orthonormalisations, ``tsim / t_ONS`` (≥ 1); for ``auto`` the most
        there can be (an interval of one step), which memory estimates need."""
        return max(1, round(self.tsim / self.tons_effective))

    def _check_step_count(self) -> None:
        """Refuse more than :data:`MAX_STEPS` Euler steps, naming the option that raised the
        count most above this workflow's default (a time, or ``--dt``)."""
        steps = self.euler_steps
        if math.isfinite(steps) and steps <= MAX_STEPS:
            return
        times = {"--tsim": self.tsim, "--ttrans": self.ttrans}
        if self.tbasis is not None:  # by default the basis transient follows --tsim
            times["--tbasis"] = self.tbasis
        growth = {name: value / max(default_value(self, name), 1e-300)
                  for name, value in times.items()}
        growth["--dt"] = default_value(self, "--dt") / self.dt
        blamed = leading_option(growth)
        count = f"{steps:.2g}" if math.isfinite(steps) else "over 1e+308"
        total = self.ttrans + self.tbasis_effective + self.tsim
        if blamed == "--dt":
            reason = (f"{self.dt:g} τ makes {count} Euler steps over --ttrans + --tbasis + "
                      f"--tsim = {total:g} τ")
        else:
            reason = (f"{times[blamed]:g} τ at --dt {self.dt:g} makes {count} Euler steps in "
                      "all (--ttrans + --tbasis + --tsim)")
        raise ConfigError(blamed, f"{reason}; a run may take at most {MAX_STEPS:.0e}")

    @property
    def steps_per_ons(self) -> int:
        """Steps per interval (``auto``: 1, the shortest interval it may choose)."""
        if self.tons == TONS_AUTO:
            return 1
        return max(1, round(self.tons / self.dt))

    @property
    def tons_effective(self) -> float:
        """The interval in τ, whole steps (``auto``: one step, its lower bound)."""
        return self.steps_per_ons * self.dt

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`nrmkit.dynamics.lyapunov_spectrum`."""
        return {"tsim": self.tsim, "tons": self.tons, "ttrans": self.ttrans,
                "tbasis": self.tbasis}


def default_value(config: Any, option_name: str) -> float:
    """The default of ``option_name`` (``"--tsim"``) in ``config``'s class: what a user gets
    without the option (``--tbasis``: 10 % of ``tsim``; ``--nle``: all ``N`` when None)."""
    fields = {field.name: field.default for field in dataclasses.fields(config)}
    name = option_name.lstrip("-").replace("-", "_")
    value = fields[name]
    if value is None and name == "tbasis":
        return 0.1 * fields["tsim"]
    if value is None and name in ("nle", "spectrum_nle"):
        return fields["n"]
    return value


def raised(config: Any, option_name: str, power: float = 1.0) -> float:
    """``(value / default) ** power``: how much an option multiplies a size that grows as its
    value to ``power`` (e.g. ``--n`` with power 2 for an N×N matrix, ``--dt`` with −1 for a
    step count), relative to the workflow's default."""
    name = option_name.lstrip("-").replace("-", "_")
    value = getattr(config, name)
    default = default_value(config, option_name)
    if value is None:
        value = default
    if value == TONS_AUTO:          # an adaptive interval: its lower bound, one step
        value = config.tons_effective
    return (max(float(value), 1e-300) / max(float(default), 1e-300)) ** power


def leading_option(growth: Mapping[str, float]) -> str:
    """The option that raised a size most above its default: the key of the largest value
    of ``growth`` (option → factor, see :func:`raised`; the first on ties)."""
    return max(growth, key=lambda name: growth[name])


def plural(count: float, noun: str) -> str:
    """``"1 network"``, ``"7 networks"``."""
    return f"{count:g} {noun}" if count == 1 else f"{count:g} {noun}s"


def memory_term(growth: Mapping[str, float], nbytes: float, what: str) -> MemoryTerm:
    """A :class:`~nrmkit.core.base.MemoryTerm` of ``nbytes`` charged to the option that made
    it large: :func:`leading_option` of ``growth``."""
    return MemoryTerm(leading_option(growth), float(nbytes), what)


def steps_growth(config: Any) -> dict[str, float]:
    """How ``--tsim`` and ``--dt`` multiply a step count relative to the defaults."""
    return {"--tsim": raised(config, "--tsim"), "--dt": raised(config, "--dt", -1)}


#: peak bytes of dense-matrix drawing per entry, beyond the entry itself: the standard
#: normals in float64, scaled in place before the cast.
DRAW_BYTES_PER_ENTRY = 8
#: measured peak of one engine step in floats per entry of the stacked rows ``[φ | φ'⊙Q]``
#: (``B·(k+1)·N``): state, φ, φ', the rows, their product with W, the new basis, the
#: initial draws (float64) and the QR's copies (6.2–6.6× at N = 200, B = 2000, k = 1 … 50).
ENGINE_FLOATS_PER_ROW_ENTRY = 7
#: bytes kept per result value of a sweep: the float64 parts, arrays and their copies, and
#: a Python float in the lists of results.json.
RESULT_BYTES_PER_VALUE = 128
#: float64 logs of the engine (``log|R_ii|``, accumulated in float64 whatever the dtype).
LOG_ITEMSIZE = 8


def weight_memory(n: int, matrices: float, itemsize: int) -> float:
    """Peak bytes of drawing ``matrices`` dense N×N weight matrices:
    ``matrices · N² · (8 + itemsize)`` (drawn and scaled in place in float64, then cast)."""
    return float(matrices) * n * n * (DRAW_BYTES_PER_ENTRY + itemsize)


def engine_memory(*, networks: float, n: int, nle: int, n_ons: float,
                  itemsize: int) -> tuple[float, float]:
    """Peak bytes of one :func:`nrmkit.dynamics.lyapunov_spectrum` call on ``networks``
    (``B``) networks of ``N`` neurons with ``k = nle`` exponents and ``n_ons``
    re-orthonormalisations, then :meth:`~nrmkit.dynamics.LyapunovResult.sorted`:

    * working set ``7 · B·(k+1)·N · itemsize + B·k² · itemsize`` (the step's tensors and
      the QR's R factor);
    * history ``2 · n_ons · B · k · 8`` (the float64 log increments and their sorted copy).

    Returns ``(working set, history)``. Measured (float32, peak RSS above a tiny run): B =
    2000, N = 200, k = 50: 517 MiB for 565 estimated; B = 2000, N = k = 100: 475 for 616;
    B = 100, N = k = 20, 20000 re-orthonormalisations: 617 MiB for 610.
    """
    working = (ENGINE_FLOATS_PER_ROW_ENTRY * networks * (nle + 1) * n
               + networks * nle * nle) * itemsize
    history = 2.0 * n_ons * networks * nle * LOG_ITEMSIZE
    return float(working), float(history)


@contextlib.contextmanager
def naming_divergence(describe: Callable[[tuple[int, ...]], str], *,
                      hint: str | None = None,
                      every: list[tuple[int, ...]] = ()) -> Iterator[None]:
    """Re-raise a :class:`~nrmkit.core.errors.DivergenceError` of the block as one that
    names the parameters of every network that diverged (:func:`divergence_message`); one
    that does not say which networks names all of ``every``."""
    try:
        yield
    except DivergenceError as error:
        if not error.batch_indices:
            error.batch_indices = list(every)
        raise DivergenceError(divergence_message(error, describe, hint=hint),
                              list(error.batch_indices)) from None


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
            "--tons", type=TONS_TYPE, default=value("tons"),
            help="Time between QR re-orthonormalisations [τ]; auto: chosen from a pilot "
                 "run so that t_ONS·(λ_1 − λ_k) stays at half the dtype's precision limit "
                 "(analyses only)."),
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


#: what to try after a divergence.
DIVERGENCE_HINT = "try a smaller --dt or coupling, or --dtype float64"


def divergence_message(error: Exception, describe: Callable[[tuple[int, ...]], str], *,
                       hint: str | None = None) -> str:
    """``"<error> (<describe(index)>; …); <hint>"``: the parameters of the networks that
    diverged (the first five, then how many more), and what to try."""
    indices = getattr(error, "batch_indices", [])
    named = "; ".join(describe(index) for index in indices[:5])
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    which = f" ({named}{more})" if named else ""
    return f"{error}{which}; {hint or DIVERGENCE_HINT}"


def unit_seed(seed: int, unit: int) -> int:
    """The seed of one unit (sample, trial…) of a sweep: a hash of ``(seed, unit)``.

    Every random number of a unit is drawn from this seed, so a unit's numbers do not depend
    on which other units run with it (any executor, any chunking).
    """
    import numpy as np

    return int(np.random.SeedSequence([int(seed) % 2**32, int(unit)]).generate_state(1)[0])


@dataclass(frozen=True)
class SweepResult:
    """Exponents of a coupling sweep as ``[g, sample, k]`` numpy arrays (descending in k).

    ``tons`` is the longest interval any sample used (the interval of every sample unless
    ``--tons auto``), ``tons_per_sample`` the interval of each sample's engine call, and
    ``t_accumulated`` the shortest accumulation time.
    """

    exponents: Any
    stderr: Any
    tons: float
    t_accumulated: float
    tons_per_sample: Any = None

    @classmethod
    def from_units(cls, arrays: Any) -> SweepResult:
        """From :func:`iter_coupling_sweep`'s arrays of every sample (first axis = sample)."""
        tons = arrays["tons"].reshape(-1)
        return cls(exponents=arrays["exponents"].transpose(1, 0, 2),
                   stderr=arrays["stderr"].transpose(1, 0, 2), tons=float(tons.max()),
                   t_accumulated=float(arrays["t_accumulated"].min()), tons_per_sample=tons)


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

        def describe(index: tuple[int, ...], sample: int = sample,
                     columns: int = model.batch_shape[1]) -> str:
            return f"g={couplings[index[0] * columns + index[1]]:g}, sample {sample}"

        with naming_divergence(describe):
            result = lyapunov_spectrum(model, settings.nle, state=state, basis=basis,
                                       progress=report, **settings.engine_kwargs()).sorted()
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

    @abstractmethod
    def couplings_growth(self, config: Any) -> dict[str, float]:
        """The option that sets the number of couplings, and how much it raised that number
        above the default (see :func:`raised`)."""

    def memory_terms(self, config: Any, *, itemsize: int) -> list[MemoryTerm]:
        """One sample at a time, batched over the ``m`` couplings (``k = nle``, ``n_ons =
        tsim / t_ONS``; bytes):

        * weights ``M · N² · (8 + itemsize)`` with ``M = m`` under ``--independent-draws``,
          else 1 (:func:`weight_memory`);
        * engine ``7 · m·(k+1)·N · itemsize + m·k² · itemsize``, plus
          ``m · N · (8 + itemsize)`` for each drawn set of gains or shifts;
        * history ``2 · n_ons · m · k · 8`` (:func:`engine_memory`);
        * results ``128 · n_samples · m · k``: every exponent of every sample in the parts,
          the arrays and the lists of ``results.json``.

        Measured (float32, peak RSS above the same run at N = 20): ``transition_2_chaos
        --m_g 7 --n 3000 --independent-draws --tsim 2``: 1127 MiB for 1203 estimated;
        ``spectrum --n 500`` (full spectra at 12 couplings, ``--tons 1 --tsim 4``): 109 MiB
        for 97.
        """
        m, n, k = config.n_couplings, config.n, config.nle
        couplings = self.couplings_growth(config)
        n_growth = raised(config, "--n")
        k_growth = (k + 1) / (default_value(config, "--nle") + 1)
        matrices = m if config.independent_draws else 1
        working, history = engine_memory(networks=m, n=n, nle=k, n_ons=config.n_ons,
                                         itemsize=itemsize)
        drawn = len([name for name in config.parameter if name != "weights"])
        working += drawn * m * n * (LOG_ITEMSIZE + itemsize)
        each = (f"the {m} {n}×{n} weight matrices" if matrices > 1
                else f"the {n}×{n} weight matrix")
        return [
            memory_term({"--n": n_growth ** 2, **(couplings if matrices > 1 else {})},
                        weight_memory(n, matrices, itemsize), f"{each} of each sample"),
            memory_term({"--n": n_growth, **couplings, "--nle": k_growth}, working,
                        f"the states and {plural(k, 'tangent vector')} of "
                        f"{plural(m, 'network')} of {n} neurons"),
            memory_term({"--tsim": raised(config, "--tsim"),
                         "--tons": raised(config, "--tons", -1), **couplings,
                         "--nle": k_growth}, history,
                        f"the float64 logs of {plural(config.n_ons, 're-orthonormalisation')} of "
                        f"{plural(k, 'exponent')} of {plural(m, 'network')}"),
            memory_term({"--n_samples": raised(config, "--n_samples"), **couplings,
                         "--nle": k_growth},
                        RESULT_BYTES_PER_VALUE * config.n_samples * m * k,
                        f"the {config.n_samples}×{m}×{k} exponents of the sweep"),
        ]

    def iter_units(self, config: Any, context: Any, units: list[int]):
        for sample, arrays in iter_coupling_sweep(
                self.name, config, context, couplings=config.couplings, samples=units,
                parameter=config.parameter, independent_draws=config.independent_draws):
            yield [sample], arrays


# ------------------------------------------------------------------- trained networks (--model)

#: the workflows whose run folders hold trained rate networks: ``model.pt`` (after training)
#: and ``model_initial.pt`` (the same networks before it).
TRAINED_MODEL_WORKFLOWS = ("train_rd_model", "train_rd_model_fixed_param",
                           "train_flybrain_full", "train_flybrain_pop")
#: the file ``--model RUN_DIR`` analyses, by ``--untrained``.
MODEL_FILES = {False: "model.pt", True: "model_initial.pt"}
#: what ``--model`` and ``--untrained`` say in messages.
MODEL_FILE_OPTIONS = {False: "--model", True: "--untrained"}
#: peak bytes of loading a model file, per byte of the file: the tensors read, the copy
#: :class:`~nrmkit.nn.rate_rnn.RateRNN` makes, and a cast to the run's dtype (float32 →
#: float64 doubles it).
MODEL_LOAD_BYTES_PER_FILE_BYTE = 4
#: the options that describe random networks, refused together with ``--model`` (the
#: analysed networks have their own N, dt, activation and couplings).
RANDOM_NETWORK_OPTIONS = ("n", "dt", "activation", "g", "n_samples", "variance_max",
                          "parameter", "independent_draws")


@dataclass(frozen=True)
class TrainedModelInfo:
    """What :func:`trained_model_info` learns about the model file of a training run.

    Attributes:
        path: the model file (``RUN/model.pt`` or ``RUN/model_initial.pt``), resolved.
        run: the training run's folder; ``workflow``: the workflow that made it.
        trained: False for ``model_initial.pt`` (the networks before training).
        n, dt, activation: the networks' size, Euler step [τ] and activation.
        batch_shape: ``(S, G)`` of the saved :class:`~nrmkit.nn.rate_rnn.RateRNN`; its
            ``S·G`` networks are numbered in row-major order (= the training samples).
        sparse: whether the networks share one sparse matrix (a connectome).
        file_bytes: size of the file; ``sha256``: its digest (a changed model is another run).
    """

    path: str
    run: str
    workflow: str
    trained: bool
    n: int
    dt: float
    activation: str
    batch_shape: tuple[int, int]
    sparse: bool
    file_bytes: int
    sha256: str

    @property
    def networks(self) -> int:
        return self.batch_shape[0] * self.batch_shape[1]

    def record(self) -> dict[str, Any]:
        """The ``model`` entry of ``results.json``."""
        return {"path": self.path, "run": self.run, "workflow": self.workflow,
                "trained": self.trained, "file": Path(self.path).name, "sha256": self.sha256,
                "networks": self.networks, "sparse": self.sparse}


def trained_model_info(model: str, untrained: bool = False) -> TrainedModelInfo:
    """Check that ``model`` is the folder of a finished training run and read its model file
    (``model_initial.pt`` when ``untrained``), loading it once to validate it.

    Cached per file state (path, size, modification time) within a process.

    Raises:
        ConfigError: naming ``--model`` (``--untrained`` for a missing ``model_initial.pt``),
            one line: a missing path, a file instead of a folder, a folder that is no nrmkit
            run, a run of another workflow, no model file (an unfinished run), a corrupt or
            foreign model file.
    """
    from nrmkit.core.errors import DataError
    from nrmkit.core.rundir import MARKER_DIR, MARKER_FILE, read_marker

    folder = Path(model).expanduser()
    check(str(model).strip() != "", "--model", "is empty: give the folder of a training run")
    check(folder.exists(), "--model", f"{folder} does not exist")
    check(folder.is_dir(), "--model", f"{folder} is not a folder: give the run folder of a "
                                      f"training run (the folder that holds {MODEL_FILES[False]})")
    try:
        marker = read_marker(folder)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    check(marker is not None, "--model",
          f"{folder} is not an nrmkit run folder (no {MARKER_DIR}/{MARKER_FILE}); give the "
          "--output-dir of a training run")
    check(marker["workflow"] in TRAINED_MODEL_WORKFLOWS, "--model",
          f"{folder} holds a {marker['workflow']} run, not a training run "
          f"({', '.join(TRAINED_MODEL_WORKFLOWS)})")
    path = (folder / MODEL_FILES[untrained]).resolve()
    check(path.is_file(), MODEL_FILE_OPTIONS[untrained],
          f"{folder} has no {path.name} (the training run has not finished: resume it)"
          if not untrained else f"{folder} has no {path.name} (the networks before training "
                                "are saved by this version's training workflows)")
    stat = path.stat()
    return _model_info(str(path), stat.st_size, stat.st_mtime_ns, marker["workflow"],
                       untrained)


@functools.lru_cache(maxsize=8)
def _model_info(path: str, size: int, mtime_ns: int, workflow: str,
                untrained: bool) -> TrainedModelInfo:
    from nrmkit.core.errors import DataError
    from nrmkit.training.checkpoint import load_trained_model

    try:
        loaded = load_trained_model(path)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return TrainedModelInfo(
        path=path, run=str(Path(path).parent), workflow=workflow, trained=not untrained,
        n=loaded.n_neurons, dt=loaded.dt, activation=loaded.activation.name,
        batch_shape=tuple(int(size) for size in loaded.batch_shape), sparse=loaded.sparse,
        file_bytes=size, sha256=digest.hexdigest())


def adopt_trained_model(config: Any) -> TrainedModelInfo | None:
    """For a config with ``model`` set: fill ``n``, ``dt``, ``activation``, ``n_samples``
    (= the model's networks), ``model`` (resolved) and ``model_sha256`` from the model file
    (:func:`trained_model_info`); a default ``nle`` above the model's N becomes N. None when
    no model is given. Call it first in ``__post_init__``: the Lyapunov settings are then
    validated against the model's N."""
    if config.model is None:
        check(not config.untrained, "--untrained",
              "analyses the networks of a training run before training: give the run "
              "with --model")
        return None
    info = trained_model_info(config.model, config.untrained)
    for name, value in (("model", info.run), ("model_sha256", info.sha256), ("n", info.n),
                        ("dt", info.dt), ("activation", info.activation),
                        ("n_samples", info.networks)):
        object.__setattr__(config, name, value)
    default_nle = {field.name: field.default for field in dataclasses.fields(config)}["nle"]
    if default_nle is not None and config.nle == default_nle:   # a default above N: all N
        object.__setattr__(config, "nle", min(default_nle, info.n))
    nle = info.n if config.nle is None else config.nle
    check(1 <= nle <= info.n, "--nle",
          f"must lie in [1, {info.n}] (N of the networks of --model), got {nle}")
    return info


def model_options(function: Callable) -> Callable:
    """``--model RUN_DIR`` and ``--untrained``: analyse the networks of a training run."""
    decorators = [
        option("--model", type=click.Path(), default=None, show_default=False,
               help="Analyse the trained networks of this training run (its --output-dir: "
                    "train_rd_model, train_rd_model_fixed_param, train_flybrain_full, "
                    "train_flybrain_pop) instead of random networks; N, dt and the "
                    "activation are the model's."),
        option("--untrained", is_flag=True, default=False,
               help="With --model: the same networks before training (model_initial.pt)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


#: where a value that is not the default came from, for the message of a conflict.
_SOURCES = {"ENVIRONMENT": " (set in the environment)", "DEFAULT_MAP": " (set by --config)"}


def refuse_network_options(kwargs: Mapping[str, Any],
                           names: tuple[str, ...] = RANDOM_NETWORK_OPTIONS) -> None:
    """With ``--model``, a usage error (exit 2) naming the first option of ``names`` given on
    the command line, in the environment or by ``--config``: those options describe random
    networks, and the analysed networks have their own."""
    if kwargs.get("model") is None:
        return
    context = click.get_current_context()
    params = {param.name: param for param in context.command.params}
    for name in names:
        source = context.get_parameter_source(name) if name in params else None
        if source is None or source.name in ("DEFAULT", "PROMPT"):
            continue
        flag = params[name].opts[0]
        raise click.UsageError(
            f"Invalid value for '{flag}': not with --model{_SOURCES.get(source.name, '')}: "
            "the analysed networks are the model's own (its N, dt, activation and "
            f"couplings); leave {flag} out")


def network_of(model: Any, index: int) -> Any:
    """Network ``index`` (row-major over the batch ``(S, G)``) of a
    :class:`~nrmkit.nn.rate_rnn.RateRNN`, as a model of batch ``(1, 1)`` with its own copy of
    the weights (a sparse matrix is shared by every network)."""
    from nrmkit.nn.rate_rnn import RateRNN

    s, g = divmod(int(index), model.batch_shape[1])
    weight = model.weight.detach() if model.sparse else model.weight.detach()[s]
    return RateRNN(weight, coupling=model.coupling[s, g].reshape(1, 1),
                   gain=model.gain.detach()[s, g].reshape(1, 1, -1),
                   shift=model.shift.detach()[s, g].reshape(1, 1, -1),
                   population=model.population, activation=model.activation, dt=model.dt,
                   initial_std=model.initial_std, self_connections=model.self_connections)


def load_analysed_model(config: Any, context: Any) -> Any:
    """The model of ``config.model`` in the run's dtype and device (checked to be the file
    the configuration was made from)."""
    from nrmkit.core.errors import DataError
    from nrmkit.training.checkpoint import load_trained_model

    info = trained_model_info(config.model, config.untrained)
    if info.sha256 != config.model_sha256:
        raise DataError(f"{info.path} changed since the run started (another model); start "
                        "a new run")
    model = load_trained_model(info.path, device=context.device)
    return model.to(dtype=context.torch_dtype)


def trained_memory_terms(config: Any, *, networks: int, itemsize: int,
                         history_copies: float = 2.0) -> list[MemoryTerm]:
    """Memory of analysing ``networks`` networks of ``config.model`` in one engine call
    (``k = nle``, ``n_ons = tsim / t_ONS``, one step for ``auto``; bytes):

    * the loaded model ``4 × file size`` (:data:`MODEL_LOAD_BYTES_PER_FILE_BYTE`) and the
      copy of the analysed networks' weights (``networks · N² · (8 + itemsize)`` dense, the
      file size again for a shared sparse matrix);
    * engine ``7 · B·(k+1)·N · itemsize + B·k² · itemsize`` (:func:`engine_memory`);
    * history ``history_copies · n_ons · B · k · 8``;
    * results ``128 · n_networks · k``.
    """
    info = trained_model_info(config.model, config.untrained)
    n, k = info.n, config.nle
    working, _ = engine_memory(networks=networks, n=n, nle=k, n_ons=config.n_ons,
                               itemsize=itemsize)
    history = history_copies * config.n_ons * networks * k * LOG_ITEMSIZE
    copy = info.file_bytes if info.sparse else weight_memory(n, networks, itemsize)
    tsim = {"--tsim": raised(config, "--tsim"), "--tons": raised(config, "--tons", -1)}
    return [
        MemoryTerm("--model", MODEL_LOAD_BYTES_PER_FILE_BYTE * info.file_bytes + copy,
                   f"the {plural(info.networks, 'network')} of {n} neurons in {info.path}"),
        MemoryTerm("--nle" if k > 1 else "--model", working,
                   f"the states and {plural(k, 'tangent vector')} of "
                   f"{plural(networks, 'network')} of {n} neurons"),
        memory_term({**tsim, "--nle": k}, history,
                    f"the float64 logs of {plural(config.n_ons, 're-orthonormalisation')} of "
                    f"{plural(k, 'exponent')} of {plural(networks, 'network')}"),
        MemoryTerm("--nle" if k > 1 else "--model",
                   RESULT_BYTES_PER_VALUE * info.networks * k,
                   f"the {info.networks}×{k} exponents of the analysis"),
    ]


def iter_trained_networks(name: str, config: Any, context: Any, units: list[int]):
    """Exponents of the networks ``units`` of ``config.model``, one network per engine call.

    Network ``i`` draws its initial state and tangent basis from its own seed
    :func:`unit_seed` ``(seed, i)``: its numbers do not depend on the chunk, and the trained
    and untrained networks start from the same state and basis. Yields ``(i, arrays)`` with
    ``exponents``, ``stderr`` ``(1, nle)`` (descending) and ``tons``, ``t_accumulated``
    ``(1,)``.
    """
    import numpy as np
    import torch

    from nrmkit.dynamics import lyapunov_spectrum
    from nrmkit.dynamics.lyapunov import random_basis

    model = load_analysed_model(config, context)
    which = "initial" if config.untrained else "trained"
    context.log(f"{name}: {len(units)} of {plural(config.n_samples, f'{which} network')} of "
                f"{config.model}, N={config.n}, nle={config.nle}, t_ONS {config.tons}, on "
                f"{context.device} ({context.dtype})")
    progress = context.progress("lyapunov")
    for position, unit in enumerate(units):
        network = network_of(model, unit)
        generator = torch.Generator().manual_seed(unit_seed(context.seed, unit))
        state = network.initial_state(generator)
        basis = random_basis(network.batch_shape, config.nle, config.n, generator=generator,
                             dtype=context.torch_dtype, device=context.device)

        def report(done: int, total: int, position: int = position) -> None:
            progress(position * total + done, len(units) * total)

        with naming_divergence(lambda index, unit=unit: f"network {unit}",
                               every=[(0, 0)]):
            result = lyapunov_spectrum(network, config.nle, state=state, basis=basis,
                                       progress=report, **config.engine_kwargs()).sorted()
        yield unit, {
            "exponents": result.exponents.detach().cpu().numpy().reshape(1, config.nle),
            "stderr": result.standard_error.detach().cpu().numpy().reshape(1, config.nle),
            "tons": np.array([result.tons]), "t_accumulated": np.array([result.t_accumulated])}
