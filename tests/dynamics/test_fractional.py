"""Spectral fractional derivatives against closed forms, and recovery of a known order."""

from __future__ import annotations

import numpy as np
import pytest

from nrmkit.dynamics.fractional import FractionalOrder, fracdiff, fractional_order

DT = 0.05


def sampled_sine(n_samples: int, n_periods: int) -> tuple[np.ndarray, float]:
    """Times ``t`` (n_samples,) with step DT and ω giving a whole number of periods."""
    times = np.arange(n_samples) * DT
    return times, 2.0 * np.pi * n_periods / (n_samples * DT)


def band_limited_signal(n_samples: int, n_modes: int, seed: int) -> np.ndarray:
    """Zero-mean real periodic signal with random Fourier modes 1 … n_modes < n_samples/2."""
    rng = np.random.default_rng(seed)
    coefficients = np.zeros(n_samples // 2 + 1, dtype=complex)
    coefficients[1 : n_modes + 1] = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    return np.fft.irfft(coefficients, n=n_samples)


# -- fracdiff against closed forms ---------------------------------------------------------
@pytest.mark.parametrize("n_samples", [256, 255])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0, 1.5, 2.0, 2.7, -0.5])
def test_sine_is_scaled_and_phase_shifted(n_samples, alpha):
    """D^α sin(ωt) = ω^α sin(ωt + απ/2) for a whole number of periods."""
    times, omega = sampled_sine(n_samples, n_periods=7)
    result = fracdiff(np.sin(omega * times), alpha, dt=DT)
    expected = omega**alpha * np.sin(omega * times + alpha * np.pi / 2)
    assert result.shape == times.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-10 * omega**alpha)


@pytest.mark.parametrize("n_samples", [200, 201])
def test_first_order_is_the_analytic_derivative(n_samples):
    times, omega = sampled_sine(n_samples, n_periods=3)
    signal = 2.0 + np.sin(omega * times) + 0.3 * np.cos(3 * omega * times)
    derivative = omega * np.cos(omega * times) - 0.9 * omega * np.sin(3 * omega * times)
    np.testing.assert_allclose(fracdiff(signal, 1.0, dt=DT), derivative, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_samples", [64, 65])
def test_order_zero_removes_the_mean(n_samples):
    signal = np.random.default_rng(3).standard_normal(n_samples) + 4.0
    np.testing.assert_allclose(fracdiff(signal, 0.0), signal - signal.mean(), atol=1e-12)


def test_order_minus_one_integrates_cosine_to_sine():
    times, omega = sampled_sine(300, n_periods=4)
    integral = fracdiff(5.0 + np.cos(omega * times), -1.0, dt=DT)
    np.testing.assert_allclose(integral, np.sin(omega * times) / omega, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_samples", [512, 511])
@pytest.mark.parametrize(("first", "second"), [(0.3, 0.4), (0.5, -1.2), (1.7, -0.7), (-0.4, -0.6)])
def test_orders_compose(n_samples, first, second):
    """D^a D^b x = D^(a+b) x (band-limited x, no Nyquist component)."""
    signal = band_limited_signal(n_samples, n_modes=40, seed=11)
    composed = fracdiff(fracdiff(signal, second, dt=DT), first, dt=DT)
    direct = fracdiff(signal, first + second, dt=DT)
    np.testing.assert_allclose(composed, direct, rtol=0, atol=1e-10 * np.abs(direct).max())


def test_array_of_orders_stacks_scalar_calls_along_a_new_leading_axis():
    signals = np.random.default_rng(5).standard_normal((3, 101, 4))
    orders = np.array([-0.8, 0.0, 0.37, 1.0, 1.6])
    stacked = fracdiff(signals, orders, dt=DT, axis=1)
    assert stacked.shape == (len(orders), *signals.shape)
    for index, order in enumerate(orders):
        np.testing.assert_allclose(
            stacked[index], fracdiff(signals, order, dt=DT, axis=1), rtol=0, atol=1e-13
        )
    # the same along the default last axis
    moved = fracdiff(np.moveaxis(signals, 1, -1), orders, dt=DT)
    np.testing.assert_allclose(np.moveaxis(moved, -1, 2), stacked, rtol=0, atol=1e-13)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, -0.3])
def test_nyquist_mode_is_the_sampled_derivative_of_its_cosine(alpha):
    """x_n = cos(πn) = cos(ω_N t): D^α x = ω_N^α cos(ω_N t + απ/2) = ω_N^α cos(απ/2) x."""
    signal = np.cos(np.pi * np.arange(64))
    expected = (np.pi / DT) ** alpha * np.cos(alpha * np.pi / 2) * signal
    np.testing.assert_allclose(
        fracdiff(signal, alpha, dt=DT), expected, rtol=0, atol=1e-10 * (np.pi / DT) ** alpha
    )


def test_time_axis_in_the_middle_is_differentiated_row_by_row():
    times, omega = sampled_sine(128, n_periods=5)
    amplitudes = np.array([1.0, -2.0, 0.5])
    signals = amplitudes[:, None, None] * np.sin(omega * times)[None, :, None] * np.ones(2)
    result = fracdiff(signals, 0.5, dt=DT, axis=1)
    expected = amplitudes[:, None] * omega**0.5 * np.sin(omega * times + np.pi / 4)
    np.testing.assert_allclose(result, np.repeat(expected[:, :, None], 2, axis=2), atol=1e-10)


# -- fractional_order ----------------------------------------------------------------------
N_SAMPLES = 400
TRUE_ORDERS = np.array([0.2, 0.35, 0.5, 0.65, 0.8])
UNIT_SCALES = np.array([1.0, -2.0, 0.3, 5.0, 0.01])
UNIT_OFFSETS = np.array([0.0, 1.0, -3.0, 10.0, 0.5])
STEP_AMPLITUDES = np.array([0.5, 1.0, 2.0, -1.0])


def step_drive() -> np.ndarray:
    """(n_conditions, T): steps of amplitude ξ switched on over the middle half."""
    steps = np.arange(N_SAMPLES)
    on = (steps >= N_SAMPLES // 4) & (steps < 3 * N_SAMPLES // 4)
    return STEP_AMPLITUDES[:, None] * on[None, :].astype(float)


def fractional_integrator_responses(drive: np.ndarray) -> np.ndarray:
    """(n_conditions, T, n_units): unit i responds s_i·D^(−α_i) ξ + o_i."""
    integrals = fracdiff(drive, -TRUE_ORDERS, dt=DT)  # (n_units, n_conditions, T)
    return np.moveaxis(integrals, 0, -1) * UNIT_SCALES + UNIT_OFFSETS


def test_recovers_the_order_of_fractional_integrators():
    drive = step_drive()
    result = fractional_order(fractional_integrator_responses(drive), drive, dt=DT)
    assert isinstance(result, FractionalOrder)
    assert result.alphas.shape == (101,)
    assert result.error.shape == (len(TRUE_ORDERS), 101)
    np.testing.assert_allclose(result.alpha_hat, TRUE_ORDERS, atol=1e-12)
    best = result.error[np.arange(len(TRUE_ORDERS)), np.argmin(result.error, axis=1)]
    np.testing.assert_array_less(best, 1e-10)
    # away from α0 the drive is no longer explained by an affine map
    assert np.all(result.error[:, 0] > 1e-3)
    assert np.all((result.error >= 0) & (result.error <= 1))


def test_error_is_the_unexplained_variance_of_an_affine_least_squares_fit():
    rng = np.random.default_rng(7)
    responses = rng.standard_normal((3, 60, 2)).cumsum(axis=1)
    drive = step_drive()[:3, ::4][:, :60] + 0.1 * rng.standard_normal((3, 60))
    orders = np.array([0.0, 0.4, 0.9])
    window = (5, 50)
    result = fractional_order(responses, drive, alphas=orders, window=window, dt=DT)
    for unit in range(2):
        for index, order in enumerate(orders):
            errors = []
            for condition in range(3):
                regressor = fracdiff(responses[condition, :, unit], order, dt=DT)[5:50]
                target = drive[condition, 5:50]
                design = np.column_stack([regressor, np.ones_like(regressor)])
                residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
                errors.append(np.sum(residual**2) / np.sum((target - target.mean()) ** 2))
            np.testing.assert_allclose(result.error[unit, index], np.mean(errors), atol=1e-12)
    np.testing.assert_array_equal(result.alpha_hat, orders[np.argmin(result.error, axis=1)])


def test_shared_drive_window_and_dt_do_not_change_the_answer():
    drive = step_drive()
    responses = fractional_integrator_responses(drive)[1:2]  # the ξ = 1 condition only
    reference = fractional_order(responses, drive[1:2])
    shared = fractional_order(responses, drive[1], dt=0.3, window=(40, -40))
    np.testing.assert_allclose(shared.alpha_hat, TRUE_ORDERS, atol=1e-12)
    np.testing.assert_allclose(reference.alpha_hat, shared.alpha_hat)


def test_noisy_responses_give_the_order_within_five_hundredths():
    drive = step_drive()
    responses = fractional_integrator_responses(drive)
    rng = np.random.default_rng(2024)
    noise_scale = 1e-3 * np.ptp(responses, axis=1, keepdims=True)
    noisy = responses + noise_scale * rng.standard_normal(responses.shape)
    result = fractional_order(noisy, drive, dt=DT, window=(N_SAMPLES // 8, 7 * N_SAMPLES // 8))
    np.testing.assert_array_less(np.abs(result.alpha_hat - TRUE_ORDERS), 0.05)


def test_constant_unit_or_constant_drive_has_error_one():
    drive = step_drive()
    responses = fractional_integrator_responses(drive)
    responses[:, :, 0] = 3.0  # a silent unit
    result = fractional_order(responses, drive, alphas=[0.0, 0.5, 1.0])
    np.testing.assert_array_equal(result.error[0], 1.0)
    flat = fractional_order(responses, np.full(N_SAMPLES, 2.0), alphas=[0.0, 0.5])
    np.testing.assert_array_equal(flat.error, 1.0)


# -- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [0.0, -1.0, np.inf])
def test_non_positive_dt_is_rejected(dt):
    with pytest.raises(ValueError, match="dt"):
        fracdiff(np.ones(8), 0.5, dt=dt)
    with pytest.raises(ValueError, match="dt"):
        fractional_order(np.ones((1, 8, 2)), np.ones(8), dt=dt)


def test_bad_fracdiff_input_is_rejected():
    with pytest.raises(ValueError, match="finite"):
        fracdiff(np.array([1.0, np.nan, 2.0]), 0.5)
    with pytest.raises(ValueError, match="1-D"):
        fracdiff(np.ones(8), np.ones((2, 2)))
    with pytest.raises(ValueError, match="axis"):
        fracdiff(np.ones((2, 8)), 0.5, axis=2)


@pytest.mark.parametrize(
    ("responses_shape", "drive_shape", "message"),
    [
        ((8, 2), (8,), "responses"),
        ((1, 8, 2, 1), (8,), "responses"),
        ((3, 8, 2), (7,), "drive"),
        ((3, 8, 2), (2, 8), "drive"),
        ((3, 8, 2), (3, 8, 1), "drive"),
    ],
)
def test_bad_shapes_are_rejected(responses_shape, drive_shape, message):
    with pytest.raises(ValueError, match=message):
        fractional_order(np.ones(responses_shape), np.ones(drive_shape))


def test_bad_alphas_or_window_are_rejected():
    responses, drive = np.ones((2, 8, 3)), np.ones(8)
    with pytest.raises(ValueError, match="alphas"):
        fractional_order(responses, drive, alphas=np.ones((2, 2)))
    with pytest.raises(ValueError, match="alphas"):
        fractional_order(responses, drive, alphas=[])
    with pytest.raises(ValueError, match="window"):
        fractional_order(responses, drive, window=(5, 6))
    with pytest.raises(ValueError, match="window"):
        fractional_order(responses, drive, window=(0, 4, 1))
