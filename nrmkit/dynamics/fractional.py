r"""Spectral fractional derivatives, and the fractional order of a neuron's step response.

**Fractional derivative.** A signal ``x`` of ``n`` samples spaced ``dt`` apart is treated as
one period of a periodic signal of period ``n·dt``. Its discrete Fourier coefficients
:math:`\hat x(f)` sit at the frequencies :math:`f_k = k / (n\,dt)` (cycles per unit time,
``k = 0 … ⌊n/2⌋`` for a real signal), and the fractional derivative of real order ``α`` is
the Fourier multiplier

.. math::

    D^\alpha x = \mathcal{F}^{-1}\big[(i\,2\pi f)^\alpha\, \hat x(f)\big],
    \qquad (i\,2\pi f)^\alpha = (2\pi f)^\alpha\, e^{i\pi\alpha/2} \quad (f > 0),

with the negative frequencies given by Hermitian symmetry (so the result is real) and the
zero-frequency term set to 0 (so :math:`D^\alpha x` has zero mean for every ``α``). Hence

* ``α = 1`` is the exact derivative of the trigonometric interpolant of ``x``, ``α = 2`` the
  second derivative, and so on; ``α = 0`` returns ``x`` minus its mean;
* ``α < 0`` is a fractional integral (the antiderivative with zero mean for ``α = −1``);
* on a sinusoid with a whole number of periods in the window,
  :math:`D^\alpha \sin(\omega t) = \omega^\alpha \sin(\omega t + \alpha\pi/2)`;
* the orders compose, :math:`D^a D^b x = D^{a+b} x`, for signals without a Nyquist
  component.

For even ``n`` the Nyquist coefficient (``f = 1/(2dt)``) belongs to the real interpolant
:math:`c \cos(\pi t/dt)`; applying ``D^α`` to that cosine and sampling it on the grid gives
the factor :math:`(\pi/dt)^\alpha \cos(\alpha\pi/2)`, which is what is used (it is the real
part of the multiplier). This factor is exact for each ``α`` but does not compose, so the
semigroup law holds only up to the Nyquist component.

Units: if ``x`` is in units ``u`` and ``dt`` in time units ``s``, ``D^α x`` is in ``u·s^{−α}``.

**Fractional order of a response.** A unit driven by a step-shaped input ``ξ(t)`` whose
response ``r(t)`` behaves like a fractional integral of the drive, ``r ∝ D^{−α}ξ + const``,
is a fractional differentiator of order ``α`` in reverse: ``D^α r`` is an affine image of
the drive. :func:`fractional_order` scans a grid of ``α`` and, for each unit, scores how
well the drive is explained by an affine map of ``D^α r`` (the fraction of the drive's
variance left unexplained, ``1 − R²``) and returns the best order ``α̂``.

Reference: Lundstrom, Higgs, Spain & Fairhall (2008), "Fractional differentiation by
neocortical pyramidal neurons", Nat. Neurosci. 11, 1335–1342 (the fractional order of a
neuron's response); the analysis of trained adaptive networks follows Geadah et al. (see
:mod:`nrmkit.nn.gamma`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["FractionalOrder", "fracdiff", "fractional_order"]

DEFAULT_ALPHAS = np.linspace(0.0, 1.0, 101)
"""The default grid of orders scanned by :func:`fractional_order`: 0, 0.01, …, 1."""

_DEGENERATE_RTOL = 1e-10
"""Relative size below which a signal's fluctuation over the window counts as constant."""


def _as_finite_real(name: str, value: ArrayLike) -> np.ndarray:
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must be real, got a complex array")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (it contains NaN or inf)")
    return array


def _check_dt(dt: float) -> float:
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite positive number, got {dt}")
    return dt


def _fourier_multiplier(alphas: np.ndarray, n_samples: int, dt: float) -> np.ndarray:
    """``(len(alphas), n_samples // 2 + 1)`` complex factors ``(i 2π f)^α`` for ``rfft``.

    Zero frequency → 0; Nyquist bin (even ``n_samples``) → its real part, see the module.
    """
    angular = 2.0 * np.pi * np.fft.rfftfreq(n_samples, d=dt)  # ω_k = 2π f_k, rad / time
    positive = angular > 0
    safe_angular = np.where(positive, angular, 1.0)  # avoid 0 ** (negative α)
    magnitude = np.where(positive, safe_angular[None, :] ** alphas[:, None], 0.0)
    multiplier = magnitude * np.exp(0.5j * np.pi * alphas)[:, None]
    if n_samples % 2 == 0 and n_samples > 1:
        multiplier[:, -1] = multiplier[:, -1].real
    return multiplier


def fracdiff(
    signal: ArrayLike, alpha: float | ArrayLike, *, dt: float = 1.0, axis: int = -1
) -> np.ndarray:
    r"""Spectral fractional derivative :math:`D^\alpha` of real signals along ``axis``.

    .. math:: D^\alpha x = \mathrm{IFFT}\big[(i\,2\pi f)^\alpha\, \mathrm{FFT}(x)\big],

    with ``f`` in cycles per unit time (``f_k = k / (n·dt)``) and the zero-frequency term
    set to 0, so the result has zero mean along ``axis``. The signal is treated as
    **periodic** over its length ``n·dt``: a jump between its last and first sample is a
    discontinuity like any other. See the module docstring for the Nyquist bin.

    Parameters
    ----------
    signal
        Real array of any shape; ``axis`` is time, ``n = signal.shape[axis] ≥ 1`` samples
        (odd or even).
    alpha
        The order: any real scalar (``α < 0`` is a fractional integral, ``α = 0`` removes
        the mean, ``α = 1`` is the derivative), or a 1-D array of ``n_alphas`` orders,
        applied all at once.
    dt
        Sampling interval (time units per sample), > 0. The result scales as ``dt^{−α}``.
    axis
        The time axis of ``signal``.

    Returns
    -------
    numpy.ndarray
        float64, ``signal.shape`` for a scalar ``alpha``; ``(n_alphas, *signal.shape)`` for
        an array of orders (new leading axis, ``out[j] == fracdiff(signal, alpha[j])``).
        Units: those of ``signal`` × time^{−α}.

    Raises
    ------
    ValueError
        ``signal`` or ``alpha`` complex, not finite or empty along ``axis``; ``alpha`` with
        more than one dimension; ``dt`` not finite and positive; ``axis`` out of range.
    """
    values = _as_finite_real("signal", signal)
    orders = _as_finite_real("alpha", alpha)
    dt = _check_dt(dt)
    if orders.ndim > 1:
        raise ValueError(f"alpha must be a scalar or a 1-D array, got shape {orders.shape}")
    if values.ndim == 0:
        raise ValueError("signal must have at least one dimension (the time axis)")
    if not -values.ndim <= axis < values.ndim:
        raise ValueError(f"axis {axis} is out of range for a signal of shape {values.shape}")
    time_axis = axis % values.ndim
    n_samples = values.shape[time_axis]
    if n_samples == 0:
        raise ValueError("signal is empty along the time axis")

    scalar_order = orders.ndim == 0
    multiplier = _fourier_multiplier(np.atleast_1d(orders), n_samples, dt)  # (A, F)
    spectrum = np.fft.rfft(np.moveaxis(values, time_axis, -1), axis=-1)  # (..., F)
    broadcast_shape = (multiplier.shape[0],) + (1,) * (spectrum.ndim - 1) + (-1,)
    derivative = np.fft.irfft(
        multiplier.reshape(broadcast_shape) * spectrum[None], n=n_samples, axis=-1
    )  # (A, ..., n)
    derivative = np.moveaxis(derivative, -1, time_axis + 1)
    return derivative[0] if scalar_order else derivative


@dataclass(frozen=True)
class FractionalOrder:
    r"""Result of :func:`fractional_order`: the best order per unit and the full error curves.

    Attributes
    ----------
    alpha_hat
        ``(n_units,)`` the order ``α̂`` on the grid minimising ``error`` for each unit.
    alphas
        ``(n_alphas,)`` the grid of orders scanned.
    error
        ``(n_units, n_alphas)`` mismatch ``1 − R²`` between the drive and the best affine
        map of :math:`D^\alpha` (response), averaged over conditions; in ``[0, 1]``, 0 is a
        perfect match and 1 means nothing of the drive's variance is explained.
    """

    alpha_hat: np.ndarray
    alphas: np.ndarray
    error: np.ndarray


def _window_indices(window: tuple[int, int] | None, n_samples: int) -> slice:
    if window is None:
        return slice(0, n_samples)
    try:
        start, stop = window
        selected = range(n_samples)[int(start) : int(stop)]
    except (TypeError, ValueError) as error:
        raise ValueError(f"window must be a (start, stop) pair of ints, got {window!r}") from error
    if len(selected) < 2:
        raise ValueError(
            f"window {window!r} selects {len(selected)} of {n_samples} time steps; "
            "at least 2 are needed for a fit"
        )
    return slice(selected.start, selected.stop)


def fractional_order(
    responses: ArrayLike,
    drive: ArrayLike,
    *,
    alphas: ArrayLike | None = None,
    window: tuple[int, int] | None = None,
    dt: float = 1.0,
) -> FractionalOrder:
    r"""Per unit, the order ``α`` whose fractional derivative of the response best fits the drive.

    For each unit ``i``, condition ``c`` (a step amplitude ``ξ`` or a repeat) and order ``α``
    of the grid, the drive ``ξ_c(t)`` is regressed on :math:`z = D^\alpha r_{c,i}(t)` with
    an intercept, ``ξ ≈ a·z + b``, by least squares over the time steps of ``window``.
    The mismatch is the fraction of the drive's variance left unexplained,

    .. math::

        e_{c,i}(\alpha) = 1 - R^2 = 1 - \frac{\mathrm{cov}(z, \xi)^2}
        {\mathrm{var}(z)\,\mathrm{var}(\xi)},

    set to 1 when ``z`` or the drive is constant over the window (to a relative
    ``1e-10``). The error curve of a unit is the mean over conditions,
    :math:`E_i(\alpha) = \langle e_{c,i}(\alpha) \rangle_c`, and
    :math:`\hat\alpha_i = \arg\min_\alpha E_i(\alpha)` (the first minimum on a tie).

    A unit that integrates its input fractionally, ``r = s·D^{−α₀}ξ + o`` with any scale
    ``s ≠ 0`` and offset ``o``, gives ``E(α₀) = 0`` (exactly, up to the Nyquist component
    of the drive for even ``T``). The fractional derivative treats each response as
    periodic over its ``T`` samples (see :func:`fracdiff`): restricting ``window`` to an
    interval away from the ends avoids comparing the wrap-around transient.

    Parameters
    ----------
    responses
        ``(n_conditions, T, n_units)`` the units' responses (any units).
    drive
        ``(n_conditions, T)`` the input that produced them, or ``(T,)`` shared by all
        conditions.
    alphas
        ``(n_alphas,)`` orders to scan; default :data:`DEFAULT_ALPHAS` = 0, 0.01, …, 1.
    window
        ``(start, stop)`` time indices (Python slice semantics, negatives allowed) where the
        comparison is made, at least 2 steps; default the whole signal. The derivative is
        always taken over the whole signal, then cut to the window.
    dt
        Sampling interval, > 0. It rescales :math:`D^\alpha r` by ``dt^{−α}``, which the
        affine fit absorbs: the errors do not depend on it.

    Returns
    -------
    FractionalOrder
        ``alpha_hat`` ``(n_units,)``, ``alphas`` ``(n_alphas,)``, ``error``
        ``(n_units, n_alphas)``.

    Notes
    -----
    Vectorised over units, conditions and orders: the peak memory is a few arrays of
    ``n_alphas × n_conditions × T × n_units`` float64 (8 bytes each, plus one complex
    array of half the length); e.g. 101 orders × 10 conditions × 1000 steps × 100 units
    ≈ 0.8 GB per array. Split the units into batches if that is too much.

    Noise in the responses biases ``α̂`` downward: ``D^α`` multiplies each frequency by
    ``(2πf)^α``, so white noise grows with ``α`` and a lower order trades a worse shape for
    less noise. With white noise of 0.1 % of a response's range over 400 steps the bias is
    ≲ 0.02 up to ``α₀ = 0.8``; at 1 % it reaches ≈ −0.2 at ``α₀ = 0.65``. Average repeats
    into one condition, or low-pass the responses, before calling this on noisy data
    (averaging the error over conditions lowers its variance, not this bias).

    Raises
    ------
    ValueError
        Shapes that do not match the above, fewer than 2 time steps, non-finite values,
        an empty or non-1-D ``alphas``, a bad ``window``, or ``dt ≤ 0``.
    """
    response_values, drive_values, orders, dt = _checked_order_inputs(responses, drive,
                                                                      alphas, dt)
    in_window = _window_indices(window, response_values.shape[1])

    # z: (A, C, T, N) → window (A, C, W, N); its fluctuation around the window mean.
    derivatives = fracdiff(response_values, orders, dt=dt, axis=1)
    derivative_scale = np.sum(derivatives**2, axis=2)  # (A, C, N), whole signal, mean 0
    windowed = derivatives[:, :, in_window, :]
    windowed = windowed - windowed.mean(axis=2, keepdims=True)
    del derivatives

    # ξ: (C, W) centred on the window.
    drive_centred, drive_variance, drive_constant = _drive_statistics(drive_values[:, in_window])
    covariance = np.einsum("acwn,cw->acn", windowed, drive_centred)  # (A, C, N)
    derivative_variance = np.sum(windowed**2, axis=2)  # (A, C, N)
    # Constant over the window relative to the whole signal's D^α (or constant overall).
    derivative_constant = (
        derivative_variance <= _DEGENERATE_RTOL**2 * derivative_scale
    ) | _constant_responses(response_values)[None]
    degenerate = derivative_constant | drive_constant[None, :, None]

    denominator = np.where(degenerate, 1.0, derivative_variance * drive_variance[None, :, None])
    explained = np.where(degenerate, 0.0, covariance**2 / denominator)
    error_per_condition = 1.0 - np.clip(explained, 0.0, 1.0)  # (A, C, N)
    error = error_per_condition.mean(axis=1).T  # (N, A)
    alpha_hat = orders[np.argmin(error, axis=1)]
    return FractionalOrder(alpha_hat=alpha_hat, alphas=orders.copy(), error=error)


def _checked_order_inputs(
    responses: ArrayLike, drive: ArrayLike, alphas: ArrayLike | None, dt: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(responses (C, T, N), drive (C, T), orders (A,), dt)`` of :func:`fractional_order`
    checked, as finite float64 arrays; a shared ``(T,)`` drive broadcast to every condition."""
    response_values = _as_finite_real("responses", responses)
    drive_values = _as_finite_real("drive", drive)
    dt = _check_dt(dt)
    if response_values.ndim != 3:
        raise ValueError(
            "responses must have shape (n_conditions, T, n_units), "
            f"got {response_values.ndim} dimension(s) {response_values.shape}"
        )
    n_conditions, n_samples, n_units = response_values.shape
    if n_conditions == 0 or n_units == 0 or n_samples < 2:
        raise ValueError(
            "responses needs at least one condition, one unit and 2 time steps, "
            f"got shape {response_values.shape}"
        )
    if drive_values.ndim == 1:
        drive_values = np.broadcast_to(drive_values, (n_conditions, drive_values.shape[0]))
    if drive_values.shape != (n_conditions, n_samples):
        raise ValueError(
            f"drive must have shape (n_conditions, T) = {(n_conditions, n_samples)} or (T,) = "
            f"({n_samples},) to match responses {response_values.shape}, "
            f"got {np.shape(drive)}"
        )
    orders = DEFAULT_ALPHAS if alphas is None else _as_finite_real("alphas", alphas)
    if orders.ndim != 1 or orders.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D array, got shape {orders.shape}")
    return response_values, drive_values, orders, dt


def _drive_statistics(drive_window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ξ centred (C, W), its variance sum (C,), constant (C,) bool)`` of the drive over
    the window; constant means a variance within ``_DEGENERATE_RTOL`` of its size."""
    drive_centred = drive_window - drive_window.mean(axis=1, keepdims=True)
    drive_variance = np.sum(drive_centred**2, axis=1)  # (C,)
    drive_scale = drive_window.shape[1] * np.max(np.abs(drive_window), axis=1) ** 2
    drive_constant = drive_variance <= _DEGENERATE_RTOL**2 * drive_scale  # (C,)
    return drive_centred, drive_variance, drive_constant


def _constant_responses(response_values: np.ndarray) -> np.ndarray:
    """``(C, N)`` whether each response is constant over the whole signal (to a relative
    ``_DEGENERATE_RTOL``)."""
    # A response that is constant overall has D^α ≈ 0 (round-off) everywhere: compare with
    # the response itself.
    response_centred = response_values - response_values.mean(axis=1, keepdims=True)
    return np.all(
        np.abs(response_centred)
        <= _DEGENERATE_RTOL * np.max(np.abs(response_values), axis=1, keepdims=True),
        axis=1,
    )  # (C, N)
