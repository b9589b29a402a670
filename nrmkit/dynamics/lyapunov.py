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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nrmkit.core.errors import DivergenceError
from nrmkit.core.model import DynamicalModel

#: default state warm-up, in model time units (τ).
DEFAULT_TTRANS = 100.0
#: default basis transient as a fraction of the accumulation time.
DEFAULT_BASIS_FRACTION = 0.1
#: default number of blocks for the standard error of the exponents.
DEFAULT_BLOCKS = 20

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
    """

    exponents: Tensor
    log_increments: Tensor
    tons: float
    t_accumulated: float
    state: Tensor
    basis: Tensor
    n_blocks: int = DEFAULT_BLOCKS
    order: Tensor | None = field(default=None, repr=False)

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
    tons: float,
    ttrans: float = DEFAULT_TTRANS,
    tbasis: float | None = None,
    state: Tensor | None = None,
    basis: Tensor | None = None,
    drive: Drive = None,
    generator: torch.Generator | None = None,
    n_blocks: int = DEFAULT_BLOCKS,
    progress: Progress = None,
    check_finite: bool = True,
) -> LyapunovResult:
    """The ``n_exponents`` leading Lyapunov exponents of every system in ``model``'s batch.

    Args:
        model: any :class:`~nrmkit.core.model.DynamicalModel`; its ``dt`` sets the unit.
        n_exponents: ``k``, 1 ≤ k ≤ state dimension.
        tsim: accumulation time ``T`` (rounded to a whole number of ``tons`` intervals).
        tons: interval between re-orthonormalisations (rounded to whole steps, ≥ 1 step).
            Keep ``tons·(λ_1 − λ_k)`` below ≈15 in float32 and ≈35 in float64.
        ttrans: state warm-up before the tangent basis is started.
        tbasis: basis transient (default ``0.1·tsim``).
        state: initial state ``(*batch, D)``; default ``model.initial_state(generator)``.
        basis: initial basis rows ``(*batch, k, D)``; default random orthonormal.
        drive: external input: None, a constant tensor, or ``step_index -> tensor``
            (the index counts every step, warm-up included).
        generator: source of the random initial state and basis.
        n_blocks: blocks for :attr:`LyapunovResult.standard_error`.
        progress: ``callback(done_steps, total_steps)``, called a few hundred times at most.
        check_finite: raise :class:`DivergenceError` if the state or exponents are not finite.

    Returns:
        :class:`LyapunovResult`.
    """
    dim = model.state_dim
    if not 1 <= n_exponents <= dim:
        raise ValueError(f"n_exponents must lie in [1, {dim}], got {n_exponents}")
    dt = model.dt
    steps_per_ons = max(1, round(tons / dt))
    tons_effective = steps_per_ons * dt
    n_ons = max(1, round(tsim / tons_effective))
    n_warm = max(0, round(ttrans / dt))
    tbasis = DEFAULT_BASIS_FRACTION * tsim if tbasis is None else tbasis
    n_basis = max(0, round(tbasis / tons_effective))
    total = n_warm + (n_basis + n_ons) * steps_per_ons
    report = _Reporter(progress, total)
    drive_at = _drive_function(drive)

    if state is None:
        state = model.initial_state(generator)
    step_index = 0
    for _ in range(n_warm):
        state = model.step(state, drive_at(step_index))
        step_index += 1
        report(step_index)

    if basis is None:
        basis = random_basis(model.batch_shape, n_exponents, dim, generator=generator,
                             dtype=state.dtype, device=state.device)

    # Without autograd the increments are written into one preallocated array: a list of
    # n_ons small tensors stacked at the end holds the history twice, plus per-tensor
    # overhead and heap fragmentation (≈3.5× the history in all). Autograd needs the list.
    log_increments: Tensor | None = None
    differentiable: list[Tensor] = []
    for interval in range(n_basis + n_ons):
        for _ in range(steps_per_ons):
            state, basis = model.step_with_tangent(state, basis, drive_at(step_index))
            step_index += 1
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
    t_accumulated = n_ons * tons_effective
    exponents = log_increments.sum(0) / t_accumulated
    if check_finite:
        _check_finite(state, exponents)
    return LyapunovResult(exponents=exponents, log_increments=log_increments,
                          tons=tons_effective, t_accumulated=t_accumulated,
                          state=state, basis=basis, n_blocks=n_blocks)


def _drive_function(drive: Drive) -> Callable[[int], Tensor | None]:
    if drive is None or isinstance(drive, Tensor):
        return lambda _index: drive
    return drive


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
