"""Options and configuration shared by the Lyapunov workflows (no torch import here)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nrmkit.core.base import MemoryTerm
from nrmkit.core.checks import check, check_finite
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


#: the connectivity ensembles of random networks (:mod:`nrmkit.nn.ensembles`; no torch here).
CONNECTIVITIES = ("gaussian", "symmetric", "ei")

#: peak bytes per entry of drawing one matrix of each ensemble beyond the entry itself:
#: the float64 draw; for ``symmetric`` the draw and its transposed sum; for ``ei`` the
#: float64 blocks and their concatenation. Measured (B = 10, N = 1000, float32, peak RSS):
#: 114, 153 and 198 MiB for 114, 153 and 200 estimated.
CONNECTIVITY_DRAW_BYTES = {"gaussian": 8, "symmetric": 12, "ei": 17}


@dataclass(frozen=True)
class RandomNetworkSettings(LyapunovSettings):
    """:class:`LyapunovSettings` plus the ensemble of the random matrices ``J`` (``W = g·J``).

    Attributes:
        connectivity: ``gaussian`` (``J_ij ~ N(0, 1/N)``), ``symmetric`` (FlyStability's
            ``(X + Xᵀ)/2``, semicircle of radius √2) or ``ei`` (sparse balanced E/I, Dale's
            law, bulk radius 1); see :mod:`nrmkit.nn.ensembles`.
        frac_exc: fraction of excitatory neurons (``ei``), in (0, 1).
        connection_prob: probability of a connection within each population (``ei``),
            in (0, 1].
    """

    connectivity: str = "gaussian"
    frac_exc: float = 0.8
    connection_prob: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        check(self.connectivity in CONNECTIVITIES, "--connectivity",
              f"unknown ensemble {self.connectivity!r}; choose from "
              f"{', '.join(CONNECTIVITIES)}")
        check_finite(self.frac_exc, "--frac_exc")
        check(0.0 < self.frac_exc < 1.0, "--frac_exc", f"must lie in (0, 1), got {self.frac_exc}")
        check_finite(self.connection_prob, "--connection_prob")
        check(0.0 < self.connection_prob <= 1.0, "--connection_prob",
              f"must lie in (0, 1], got {self.connection_prob}")
        if self.connectivity == "ei":
            n_exc = round(self.frac_exc * self.n)
            n_inh = self.n - n_exc
            check(min(n_exc, n_inh) >= 2, "--frac_exc",
                  f"{self.frac_exc:g} of N = {self.n} leaves {n_exc} excitatory and {n_inh} "
                  "inhibitory neurons; each population needs at least 2")
            inputs = min(round(self.connection_prob * n_exc), n_exc - 1), min(
                round(self.connection_prob * n_inh), n_inh - 1)
            check(min(inputs) >= 1, "--connection_prob",
                  f"{self.connection_prob:g} gives {inputs[0]} excitatory and {inputs[1]} "
                  f"inhibitory inputs per neuron at N = {self.n}; each must be at least 1")

    def network_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`nrmkit.nn.rate_rnn.random_rate_network`."""
        return {"connectivity": self.connectivity, "frac_exc": self.frac_exc,
                "connection_prob": self.connection_prob}

    def connectivity_record(self) -> dict[str, Any]:
        """The ``connectivity`` entry of results.json: the ensemble and, for ``ei``, its
        parameters."""
        record: dict[str, Any] = {"ensemble": self.connectivity}
        if self.connectivity == "ei":
            record.update(frac_exc=self.frac_exc, connection_prob=self.connection_prob)
        return record

    @property
    def draw_bytes(self) -> int:
        """Peak bytes per matrix entry of drawing the ensemble (beyond the entry)."""
        return CONNECTIVITY_DRAW_BYTES[self.connectivity]


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


def weight_memory(n: int, matrices: float, itemsize: int,
                  draw_bytes: int = DRAW_BYTES_PER_ENTRY) -> float:
    """Peak bytes of drawing ``matrices`` dense N×N weight matrices:
    ``matrices · N² · (8 + itemsize)`` (drawn and scaled in place in float64, then cast;
    ``draw_bytes`` replaces the 8 for ensembles that need more, see
    :data:`CONNECTIVITY_DRAW_BYTES`)."""
    return float(matrices) * n * n * (draw_bytes + itemsize)


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
