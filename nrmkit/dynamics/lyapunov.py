r"""The Lyapunov engine: QR (Benettin) method, batched, Jacobian-free, differentiable.

For a map ``x_{t+1} = F(x_t)`` with time step ``Δt`` the ``k`` leading Lyapunov exponents
are

.. math::

    \lambda_i = \lim_{T\to\infty} \frac{1}{T} \sum_{m} \log |R^{(m)}_{ii}|,

where every ``t_ONS`` the propagated tangent basis is re-orthonormalised, ``Q R = Q'``,
and ``T`` is the time over which the logs were accumulated (never including transients).

The run has three phases (all times in the model's unit, τ for rate networks):

1. **state warm-up** of ``ttrans`` (default :data:`DEFAULT_TTRANS` = 100): the state alone,
   so that it reaches the attractor;
2. **basis transient** of ``tbasis`` (default 10 % of ``tsim``): the tangent basis is
   propagated and re-orthonormalised but nothing is accumulated, so that it aligns with
   the covariant directions;
3. **accumulation** over ``tsim``.

Each step applies the model's tangent map to the ``k`` basis vectors (one product of the
connectivity with ``k`` columns, shared with the state update): no ``N×N`` Jacobian is
formed. Everything is batched over the model's batch of independent systems, runs in the
model's dtype and device, and is differentiable by autograd through ``torch.linalg.qr``
(logs are accumulated in float64).

Adaptive interval (``tons="auto"``, :func:`choose_tons`)
--------------------------------------------------------
Between two re-orthonormalisations the ``k`` tangent vectors stretch by factors
``≈ e^{λ_i t_ONS}``. The QR factorisation recovers direction ``k`` only while the ratio
``R_kk/R_11 ≈ e^{−(λ_1−λ_k) t_ONS}`` stays above the round-off of the dtype, ``ε``: hence
the precision limit

.. math:: t_{ONS}\,(\lambda_1 - \lambda_k) \lesssim L, \qquad L \approx \ln(1/\varepsilon)

(:data:`TONS_SPREAD_LIMIT`: 15 in float32, 35 in float64, as measured for N = 200, g = 3).
The norms themselves, ``e^{λ_i t_ONS}``, must also stay representable:
``t_ONS·max(|λ_1|, |λ_k|) ≲ R = ln(largest float)`` (88.7 in float32, 709.8 in float64).
``tons="auto"`` measures the exponents in a short *pilot* after the state warm-up — QR every
``pilot_tons`` (default one step) for ``tpilot`` τ, the first half re-orthonormalised only,
the second half averaged, nothing of it counted in the result — and takes, with ``s`` the
safety factor (default ½) and the maxima over the whole batch (a batch shares one interval):

.. math::

    t_{ONS} = \Big\lfloor \min\Big(\frac{s L}{\max_b(\lambda_1 - \lambda_k)},
              \frac{s R}{\max_b \max(|\lambda_1|, |\lambda_k|)},\ t_{max},
              \frac{T}{n_{blocks}}\Big) \Big/ \Delta t \Big\rfloor\,\Delta t,

at least one step ``Δt``; ``t_max`` (default 10 τ) bounds it where the spread is tiny
(``k = 1``, or a near-neutral linear map), and ``T/n_blocks`` keeps at least ``n_blocks``
intervals for the standard error. The accumulation then continues from the pilot's state
and basis (the pilot is an extra transient; it runs without autograd). Within the limits the
interval changes nothing but the work: the QR factorisation of a product of Jacobians does
not depend on how the product is grouped (``R`` of a longer interval is the product of the
``R`` of its steps), so on one trajectory every admissible interval gives the same exponents
to round-off, and a longer one makes fewer QR factorisations.

References:
    Benettin, Galgani, Giorgilli & Strelcyn (1980), "Lyapunov characteristic exponents for
    smooth dynamical systems and for Hamiltonian systems; a method for computing all of
    them", Meccanica 15, 9–30 (the QR method). Engelken, Wolf & Abbott (2023), "Lyapunov
    spectra of chaotic recurrent neural networks", Phys. Rev. Research 5, 043044 (spectra of
    rate RNNs, the re-orthonormalisation interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nrmkit.core.errors import DivergenceError
from nrmkit.core.model import DynamicalModel
from nrmkit.dynamics.step_graphs import StepRunner

#: default state warm-up, in model time units (τ).
DEFAULT_TTRANS = 100.0
#: default basis transient as a fraction of the accumulation time.
DEFAULT_BASIS_FRACTION = 0.1
#: default number of blocks for the standard error of the exponents.
DEFAULT_BLOCKS = 20
#: ``t_ONS·(λ_1 − λ_k)`` beyond which the QR method loses the smallest exponents, per dtype
#: (measured: float32 correct at 5 τ and wrong at 10 τ, float64 correct at 10 τ and wrong at
#: 20 τ for a spread of 2.75/τ); other dtypes use ``ln(1/ε)``.
TONS_SPREAD_LIMIT = {torch.float32: 15.0, torch.float64: 35.0}
#: fraction of the limits an adaptive interval targets.
DEFAULT_TONS_SAFETY = 0.5
#: the longest adaptive interval, in model time units (τ).
DEFAULT_TONS_MAX = 10.0
#: duration of the pilot of an adaptive interval (half transient, half measurement) [τ].
DEFAULT_TPILOT = 10.0
#: steps of the state warm-up per run of steps (one CUDA graph replays a run on a GPU).
WARM_UP_RUN = 50

Drive = Tensor | Callable[[int], Tensor | None] | None
Progress = Callable[[int, int], None] | None


@dataclass
class LyapunovResult:
    """Output of :func:`lyapunov_spectrum`.

    Attributes:
        exponents: ``(*batch, k)`` exponents per model time unit, in QR order (which
            converges to descending order; use :meth:`sorted` to enforce it).
        log_increments: ``(n_ons, *batch, k)`` float64 ``log|R_ii|`` of every accumulated
            re-orthonormalisation.
        tons: effective interval between re-orthonormalisations (a whole number of steps).
        t_accumulated: time over which the exponents were averaged.
        state, basis: final state ``(*batch, D)`` and basis ``(*batch, k, D)`` (to continue).
        tons_choice: how an adaptive interval was chosen (``tons="auto"``), else None.
    """

    exponents: Tensor
    log_increments: Tensor
    tons: float
    t_accumulated: float
    state: Tensor
    basis: Tensor
    n_blocks: int = DEFAULT_BLOCKS
    order: Tensor | None = field(default=None, repr=False)
    tons_choice: TonsChoice | None = field(default=None, repr=False)

    @property
    def times(self) -> Tensor:
        """``(n_ons,)`` accumulation time at each re-orthonormalisation."""
        n_ons = self.log_increments.shape[0]
        return torch.arange(1, n_ons + 1, dtype=torch.float64) * self.tons

    @property
    def history(self) -> Tensor:
        """``(n_ons, *batch, k)`` running estimate ``λ(t)`` (convergence history)."""
        elapsed = self.times.to(self.log_increments.device)
        shape = (-1,) + (1,) * (self.log_increments.dim() - 1)
        return self.log_increments.cumsum(0) / elapsed.reshape(shape)

    @property
    def standard_error(self) -> Tensor:
        """``(*batch, k)`` standard error from ``n_blocks`` block averages of the increments.

        NaN when fewer than two blocks are available.
        """
        increments = self.log_increments.detach()
        n_ons = increments.shape[0]
        n_blocks = min(self.n_blocks, n_ons)
        if n_blocks < 2:
            return torch.full(increments.shape[1:], math.nan, dtype=torch.float64)
        blocks = torch.tensor_split(increments, n_blocks, dim=0)
        rates = torch.stack([block.mean(0) / self.tons for block in blocks])
        return rates.std(0, unbiased=True) / math.sqrt(n_blocks)

    def sorted(self) -> LyapunovResult:
        """A copy with exponents (and increments, basis rows) in descending order."""
        order = torch.argsort(self.exponents.detach(), dim=-1, descending=True)
        # gather with an expanded (stride-0) index: take_along_dim would first materialise
        # the index at the size of the increments, as large as the history itself
        increments_order = order.unsqueeze(0).expand_as(self.log_increments)
        basis_order = order.unsqueeze(-1).expand_as(self.basis)
        return LyapunovResult(
            exponents=torch.gather(self.exponents, -1, order),
            log_increments=torch.gather(self.log_increments, -1, increments_order),
            tons=self.tons,
            t_accumulated=self.t_accumulated,
            state=self.state,
            basis=torch.gather(self.basis, -2, basis_order),
            n_blocks=self.n_blocks,
            order=order,
            tons_choice=self.tons_choice,
        )


def orthonormalize(rows: Tensor) -> tuple[Tensor, Tensor]:
    """QR-orthonormalise row vectors ``(*batch, k, D)`` (``k ≤ D``).

    Returns:
        ``(Q, log|diag R|)``: orthonormal rows spanning the same nested subspaces, shape
        ``(*batch, k, D)``, and the float64 logs of the stretching factors ``(*batch, k)``.
    """
    if rows.shape[-2] == 1:  # one vector: QR is a normalisation (and far cheaper on a GPU)
        norm = torch.linalg.vector_norm(rows, dim=-1, keepdim=True)
        return rows / norm, torch.log(norm.squeeze(-1).to(torch.float64))
    q, r = torch.linalg.qr(rows.transpose(-1, -2), mode="reduced")
    log_diagonal = torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs().to(torch.float64))
    return q.transpose(-1, -2), log_diagonal


def random_basis(
    batch_shape: torch.Size, k: int, dim: int, *, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
) -> Tensor:
    """Random orthonormal rows ``(*batch, k, dim)``.

    Drawn on the CPU from ``generator`` (the same seed gives the same basis on any device),
    then orthonormalised where they will be used.
    """
    draw = torch.randn((*batch_shape, k, dim), generator=generator, dtype=torch.float64)
    return orthonormalize(draw.to(dtype=dtype, device=device))[0]


def lyapunov_spectrum(
    model: DynamicalModel,
    n_exponents: int,
    *,
    tsim: float,
    tons: float | str,
    ttrans: float = DEFAULT_TTRANS,
    tbasis: float | None = None,
    state: Tensor | None = None,
    basis: Tensor | None = None,
    drive: Drive = None,
    generator: torch.Generator | None = None,
    n_blocks: int = DEFAULT_BLOCKS,
    progress: Progress = None,
    check_finite: bool = True,
    one_pass: bool = False,
    cuda_graphs: bool = True,
    native: bool = True,
) -> LyapunovResult:
    """The ``n_exponents`` leading Lyapunov exponents of every system in ``model``'s batch.

    Args:
        model: any :class:`~nrmkit.core.model.DynamicalModel`; its ``dt`` sets the unit.
        n_exponents: ``k``, 1 ≤ k ≤ state dimension.
        tsim: accumulation time ``T`` (rounded to a whole number of ``tons`` intervals).
        tons: interval between re-orthonormalisations (rounded to whole steps, ≥ 1 step).
            Keep ``tons·(λ_1 − λ_k)`` below ≈15 in float32 and ≈35 in float64. ``"auto"``
            chooses it from a pilot after the warm-up (:func:`choose_tons`, defaults; the
            module docstring gives the rule); the choice is in ``result.tons_choice``.
        ttrans: state warm-up before the tangent basis is started.
        tbasis: basis transient (default ``0.1·tsim``).
        state: initial state ``(*batch, D)``; default ``model.initial_state(generator)``.
        basis: initial basis rows ``(*batch, k, D)``; default random orthonormal.
        drive: external input: None, a constant tensor, or ``step_index -> tensor``
            (the index counts every step, warm-up and pilot included).
        generator: source of the random initial state and basis.
        n_blocks: blocks for :attr:`LyapunovResult.standard_error`.
        progress: ``callback(done_steps, total_steps)``, called a few hundred times at most.
        check_finite: raise :class:`DivergenceError` if the state or exponents are not finite.
        one_pass: step the state and the basis with one product per step, reading the
            weights once through a kernel packed for that product (the model's
            ``fused_step`` in the warm-up and ``fused_step_with_tangent`` after it, where it
            has them and no gradient is needed): the same maths, but the state then agrees
            with ``model.step`` to round-off instead of bitwise (a matrix product's
            round-off depends on its kernel and on how many rows it multiplies).
            Deterministic for a given batch, so a sweep running one sample per call stays
            independent of its chunking.
        cuda_graphs: on a CUDA device, replay each run of steps between two
            re-orthonormalisations (and the warm-up in runs of :data:`WARM_UP_RUN` steps) as
            one CUDA graph (:mod:`nrmkit.dynamics.step_graphs`): bitwise the numbers of the
            eager steps, without the host's per-kernel launch work. Used where the drive is
            None or one constant tensor and nothing needs a gradient; ignored on a CPU.
        native: with ``one_pass`` and no drive, run the steps through the model's compiled
            kernel where it has one (``model.native_runs``; rate networks: tanh, float32 on
            a CPU, ``k = 1``, :mod:`nrmkit.nn.tangent_native`): the same maths, equal to
            round-off, a network's numbers independent of its batch and of the threads.

    Returns:
        :class:`LyapunovResult`.
    """
    dim = model.state_dim
    adaptive = _is_adaptive(tons, n_exponents, dim)
    dt = model.dt
    tbasis = DEFAULT_BASIS_FRACTION * tsim if tbasis is None else tbasis
    n_warm = max(0, round(ttrans / dt))
    steps_per_ons, n_pilot = _first_plan(dt, None if adaptive else tons)
    n_ons, n_basis = _intervals(tsim, tbasis, steps_per_ons * dt)
    report = _Reporter(progress, n_warm + n_pilot + (n_basis + n_ons) * steps_per_ons)

    state = model.initial_state(generator) if state is None else state
    runs = _native_runs(model, n_exponents, drive, one_pass and native, state, basis)
    state = _warm_up(model, state, n_warm, drive, report, one_pass, cuda_graphs, runs)
    step_index = n_warm

    if basis is None:
        basis = random_basis(model.batch_shape, n_exponents, dim, generator=generator,
                             dtype=state.dtype, device=state.device)

    choice = None
    if adaptive:
        choice = choose_tons(model, n_exponents, state=state, basis=basis, tsim=tsim,
                             drive=drive, step_offset=n_warm, n_blocks=n_blocks,
                             progress=lambda done, _total: report(n_warm + done),
                             one_pass=one_pass, cuda_graphs=cuda_graphs, native=native)
        state, basis = choice.state, choice.basis
        step_index += choice.pilot_steps
        steps_per_ons = choice.steps_per_ons
        n_ons, n_basis = _intervals(tsim, tbasis, steps_per_ons * dt)
        report.total = step_index + (n_basis + n_ons) * steps_per_ons
    tons_effective = steps_per_ons * dt

    state, basis, log_increments = _accumulate(model, state, basis, n_basis, n_ons,
                                               steps_per_ons, drive, step_index, report,
                                               one_pass, cuda_graphs, runs)
    t_accumulated = n_ons * tons_effective
    exponents = log_increments.sum(0) / t_accumulated
    if check_finite:
        _check_finite(state, exponents)
    return LyapunovResult(exponents=exponents, log_increments=log_increments,
                          tons=tons_effective, t_accumulated=t_accumulated,
                          state=state, basis=basis, n_blocks=n_blocks, tons_choice=choice)


def _is_adaptive(tons: float | str, n_exponents: int, dim: int) -> bool:
    """Whether ``tons`` asks for an adaptive interval (``"auto"``); checks ``tons`` and
    ``n_exponents`` (1 ≤ k ≤ ``dim``)."""
    if not 1 <= n_exponents <= dim:
        raise ValueError(f"n_exponents must lie in [1, {dim}], got {n_exponents}")
    adaptive = isinstance(tons, str)
    if adaptive and tons != "auto":
        raise ValueError(f"tons must be a number of time units or 'auto', got {tons!r}")
    return adaptive


def _first_plan(dt: float, tons: float | None) -> tuple[int, int]:
    """``(steps per interval, pilot steps)`` known before the run: for an adaptive interval
    (``tons`` None) one step and the default pilot, whose choice corrects the total later."""
    if tons is None:
        pilot_steps_per_ons, pilot_half = _pilot_plan(dt, DEFAULT_TPILOT, None)
        return 1, 2 * pilot_half * pilot_steps_per_ons
    return max(1, round(tons / dt)), 0


def _native_runs(model: DynamicalModel, n_exponents: int, drive: Drive, wanted: bool,
                 *tensors: Tensor | None):
    """The model's compiled runs of steps (``model.native_runs``) where ``wanted``, there
    is no drive and the model has them for these tensors, else None."""
    factory = getattr(model, "native_runs", None)
    if not wanted or drive is not None or factory is None:
        return None
    return factory(n_exponents, *tensors)


def _warm_up(model: DynamicalModel, state: Tensor, n_warm: int, drive: Drive,
             report: _Reporter, one_pass: bool = False, cuda_graphs: bool = True,
             runs=None) -> Tensor:
    """The state after ``n_warm`` steps of the state alone (step indices ``0 … n_warm−1``):
    through the compiled ``runs`` where given; else (with ``one_pass`` through the model's
    ``fused_step`` where it has one) in runs of :data:`WARM_UP_RUN` steps and the
    remainder."""
    if runs is not None:
        state = runs.warm_up(state, n_warm, report)
        report(n_warm)
        return state
    step = getattr(model, "fused_step", model.step) if one_pass else model.step
    run = _step_runs(step, WARM_UP_RUN, drive, cuda_graphs)
    done = 0
    while done + WARM_UP_RUN <= n_warm:
        (state,) = run((state,), done)
        done += WARM_UP_RUN
        report(done)
    (state,) = _step_runs(step, n_warm - done, drive, False)((state,), done)
    report(n_warm)
    return state


def _step_runs(step: Callable[..., Tensor | tuple[Tensor, ...]], n_steps: int, drive: Drive,
               cuda_graphs: bool) -> Callable[[tuple[Tensor, ...], int], tuple[Tensor, ...]]:
    """``(tensors, index of the first step) → tensors`` after ``n_steps`` steps
    ``step(*tensors, drive at the step's index)``: a :class:`StepRunner` (a CUDA graph where
    it applies) for a drive that is None or one tensor, a plain loop for a drive function."""
    def one_step(*tensors: Tensor, drive_now: Tensor | None) -> tuple[Tensor, ...]:
        result = step(*tensors, drive_now)
        return (result,) if isinstance(result, Tensor) else result

    if drive is None or isinstance(drive, Tensor):
        runner = StepRunner(lambda *tensors: one_step(*tensors, drive_now=drive), n_steps,
                            graphs=cuda_graphs)
        return lambda tensors, _first: runner(*tensors)

    def indexed(tensors: tuple[Tensor, ...], first: int) -> tuple[Tensor, ...]:
        for index in range(first, first + n_steps):
            tensors = one_step(*tensors, drive_now=drive(index))
        return tensors
    return indexed


def _accumulate(
    model: DynamicalModel, state: Tensor, basis: Tensor, n_basis: int, n_ons: int,
    steps_per_ons: int, drive: Drive, step_index: int, report: _Reporter,
    one_pass: bool = False, cuda_graphs: bool = True, runs=None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Propagate state and basis for ``n_basis + n_ons`` intervals of ``steps_per_ons``
    steps from ``step_index``, re-orthonormalising after each (through the compiled
    ``runs`` where given): ``(state, basis, log_increments)``, the ``(n_ons, *batch, k)``
    float64 logs of the last ``n_ons``."""
    if runs is not None:
        state, basis, logs = runs.accumulate(
            state, basis, steps_per_ons, n_basis + n_ons,
            lambda done: report(step_index + done))
        return state, basis, logs[n_basis:]
    # Without autograd the increments are written into one preallocated array: a list of
    # n_ons small tensors stacked at the end holds the history twice, plus per-tensor
    # overhead and heap fragmentation (≈3.5× the history in all). Autograd needs the list.
    log_increments: Tensor | None = None
    differentiable: list[Tensor] = []
    step_with_tangent = model.step_with_tangent
    if one_pass:  # where the model has it (it falls back itself where a gradient is needed)
        step_with_tangent = getattr(model, "fused_step_with_tangent", step_with_tangent)
    run = _step_runs(step_with_tangent, steps_per_ons, drive, cuda_graphs)
    for interval in range(n_basis + n_ons):
        state, basis = run((state, basis), step_index)
        step_index += steps_per_ons
        basis, log_diagonal = orthonormalize(basis)
        if interval >= n_basis:
            if log_diagonal.requires_grad:
                differentiable.append(log_diagonal)
            else:
                if log_increments is None:
                    log_increments = log_diagonal.new_empty((n_ons, *log_diagonal.shape))
                log_increments[interval - n_basis] = log_diagonal
        report(step_index)

    if differentiable:
        log_increments = torch.stack(differentiable)
    return state, basis, log_increments


def window_spectrum(model: DynamicalModel, n_exponents: int, *, tsim: float, tons: float,
                    state: Tensor, basis: Tensor, check_finite: bool = True) -> LyapunovResult:
    """:func:`lyapunov_spectrum` continuing from ``state`` and ``basis`` with no warm-up and
    no basis transient (a window of a carried trajectory): the same values, through the
    model's one-node window (:meth:`DynamicalModel.tangent_window`) where it has one."""
    steps_per_ons = max(1, round(tons / model.dt))
    n_ons, _ = _intervals(tsim, 0.0, steps_per_ons * model.dt)
    window = model.tangent_window(state, basis, n_ons, steps_per_ons)
    if window is None:
        return lyapunov_spectrum(model, n_exponents, tsim=tsim, tons=tons, ttrans=0.0,
                                 tbasis=0.0, state=state, basis=basis,
                                 check_finite=check_finite)
    state, basis, log_increments = window
    tons_effective = steps_per_ons * model.dt
    t_accumulated = n_ons * tons_effective
    exponents = log_increments.sum(0) / t_accumulated
    if check_finite:
        _check_finite(state, exponents)
    return LyapunovResult(exponents=exponents, log_increments=log_increments,
                          tons=tons_effective, t_accumulated=t_accumulated, state=state,
                          basis=basis)


def _intervals(tsim: float, tbasis: float, tons: float) -> tuple[int, int]:
    """``(accumulated, transient)`` re-orthonormalisations for an interval of ``tons``."""
    return max(1, round(tsim / tons)), max(0, round(tbasis / tons))


def tons_spread_limit(dtype: torch.dtype) -> float:
    """The precision limit ``L`` of ``t_ONS·(λ_1 − λ_k)`` for ``dtype``:
    :data:`TONS_SPREAD_LIMIT`, else ``ln(1/ε)`` of the dtype."""
    return TONS_SPREAD_LIMIT.get(dtype, -math.log(torch.finfo(dtype).eps))


def tons_range_limit(dtype: torch.dtype) -> float:
    """``R = ln(largest finite float)``: ``e^{λ t_ONS}`` must stay representable."""
    return math.log(torch.finfo(dtype).max)


@dataclass
class TonsChoice:
    """An interval chosen by :func:`choose_tons` (times in model units, rates per unit).

    Attributes:
        tons: the interval, a whole number of steps.
        steps_per_ons: ``tons / dt``.
        spread: ``max_b (λ_1 − λ_k)`` measured by the pilot (0 for ``k = 1``).
        magnitude: ``max_b max(|λ_1|, |λ_k|)`` measured by the pilot.
        limit, range_limit: ``L`` and ``R`` of the dtype (see the module docstring).
        bound: which bound set the interval: ``"spread"``, ``"range"``, ``"tons_max"``,
            ``"blocks"`` (``tsim / n_blocks``) or ``"one step"``.
        pilot_exponents: ``(*batch, k)`` the pilot's estimates, descending.
        pilot_steps: steps the pilot took (none of them accumulated).
        state, basis: state and orthonormal basis after the pilot (detached).
    """

    tons: float
    steps_per_ons: int
    spread: float
    magnitude: float
    limit: float
    range_limit: float
    bound: str
    pilot_exponents: Tensor = field(repr=False)
    pilot_steps: int = 0
    state: Tensor | None = field(default=None, repr=False)
    basis: Tensor | None = field(default=None, repr=False)

    @property
    def spread_product(self) -> float:
        """``t_ONS · max_b(λ_1 − λ_k)`` as measured by the pilot (≤ safety · limit)."""
        return self.tons * self.spread


def _pilot_plan(dt: float, tpilot: float, pilot_tons: float | None) -> tuple[int, int]:
    """``(steps per pilot interval, intervals per pilot half)``."""
    steps_per_ons = max(1, round((dt if pilot_tons is None else pilot_tons) / dt))
    half = max(1, round(0.5 * tpilot / (steps_per_ons * dt)))
    return steps_per_ons, half


def choose_tons(
    model: DynamicalModel,
    n_exponents: int,
    *,
    state: Tensor,
    basis: Tensor | None = None,
    tsim: float | None = None,
    drive: Drive = None,
    step_offset: int = 0,
    generator: torch.Generator | None = None,
    tpilot: float = DEFAULT_TPILOT,
    pilot_tons: float | None = None,
    safety: float = DEFAULT_TONS_SAFETY,
    tons_max: float = DEFAULT_TONS_MAX,
    n_blocks: int = DEFAULT_BLOCKS,
    progress: Progress = None,
    one_pass: bool = False,
    cuda_graphs: bool = True,
    native: bool = True,
) -> TonsChoice:
    """Choose the re-orthonormalisation interval of ``model`` from a pilot run.

    The pilot (without autograd) propagates ``basis`` (default random orthonormal) from
    ``state`` for ``tpilot``: QR every ``pilot_tons`` (default one step, whole steps), the
    first half re-orthonormalised only, the second half averaged into estimates of the ``k``
    exponents of every system. The interval is the largest whole number of steps below every
    bound of the module docstring (``safety·L/spread``, ``safety·R/magnitude``,
    ``tons_max``, ``tsim/n_blocks``), and at least one step. To continue, pass
    ``tons=choice.tons, state=choice.state, basis=choice.basis, ttrans=0`` to
    :func:`lyapunov_spectrum`.

    Args:
        model, n_exponents: as for :func:`lyapunov_spectrum`.
        state: ``(*batch, D)`` a state on the attractor (after the warm-up).
        basis: ``(*batch, k, D)`` initial basis rows.
        tsim: the accumulation time to come (bounds the interval by ``tsim / n_blocks``).
        drive, step_offset: external input, indexed by ``step_offset`` + pilot step.
        generator: source of the random basis when none is given.
        tpilot, pilot_tons: pilot duration and its interval (model time units).
        safety: the fraction of the limits targeted, in (0, 1].
        tons_max: the longest interval.
        n_blocks: see ``tsim``.
        progress: ``callback(done_steps, pilot_steps)``.
        one_pass, cuda_graphs, native: as for :func:`lyapunov_spectrum`.

    Raises:
        DivergenceError: the pilot's state or exponents are not finite.
    """
    if not 0 < safety <= 1:
        raise ValueError(f"safety must lie in (0, 1], got {safety}")
    dt = model.dt
    steps_per_ons, half = _pilot_plan(dt, tpilot, pilot_tons)
    interval = steps_per_ons * dt
    pilot_drive = drive
    if callable(drive):
        def pilot_drive(index: int) -> Tensor | None:
            return drive(step_offset + index)
    with torch.no_grad():
        if basis is None:
            basis = random_basis(model.batch_shape, n_exponents, model.state_dim,
                                 generator=generator, dtype=state.dtype, device=state.device)
        pilot = lyapunov_spectrum(
            model, n_exponents, tsim=half * interval, tons=interval, ttrans=0.0,
            tbasis=half * interval, state=state.detach(), basis=basis.detach(),
            drive=pilot_drive, n_blocks=2, progress=progress, one_pass=one_pass,
            cuda_graphs=cuda_graphs, native=native)
    ordered = torch.sort(pilot.exponents, dim=-1, descending=True).values
    spread = float((ordered[..., 0] - ordered[..., -1]).max())
    magnitude = float(ordered[..., [0, -1]].abs().max())
    dtype = state.dtype
    limit, range_limit = tons_spread_limit(dtype), tons_range_limit(dtype)
    bounds = {"tons_max": tons_max}
    if spread > 0:
        bounds["spread"] = safety * limit / spread
    if magnitude > 0:
        bounds["range"] = safety * range_limit / magnitude
    if tsim is not None:
        bounds["blocks"] = tsim / n_blocks
    bound = min(bounds, key=lambda name: bounds[name])
    steps = math.floor(bounds[bound] / dt * (1 + 1e-9))
    if steps < 1:
        steps, bound = 1, "one step"
    return TonsChoice(tons=steps * dt, steps_per_ons=steps, spread=spread,
                      magnitude=magnitude, limit=limit, range_limit=range_limit, bound=bound,
                      pilot_exponents=ordered, pilot_steps=2 * half * steps_per_ons,
                      state=pilot.state, basis=pilot.basis)


class _Reporter:
    """Calls ``progress`` at most ~200 times over a run (no per-step Python overhead)."""

    def __init__(self, progress: Progress, total: int):
        self.progress = progress
        self.total = total
        self.every = max(1, total // 200)
        self.next = self.every

    def __call__(self, done: int) -> None:
        if self.progress is not None and (done >= self.next or done == self.total):
            self.progress(done, self.total)
            self.next = done + self.every


def _check_finite(state: Tensor, exponents: Tensor) -> None:
    bad_state = ~torch.isfinite(state.detach()).all(dim=-1)
    bad_exponents = ~torch.isfinite(exponents.detach()).all(dim=-1)
    bad = bad_state | bad_exponents
    if bad.any():
        indices = [tuple(int(i) for i in index) for index in bad.nonzero()]
        raise DivergenceError(
            f"the simulation diverged (non-finite state or exponents) in {len(indices)} of "
            f"{bad.numel()} networks",
            indices,
        )
