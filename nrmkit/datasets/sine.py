r"""The sine-generation task of the GLIFR paper.

``n_frequencies`` sequences (default 6, frequencies log-spaced over 0.08–0.6 kHz,
``f_i = 10^{linspace(log10 0.08, log10 0.6, n)}`` as published); the
network receives a constant input that identifies the frequency, ``c_i = i/n + 0.25``
(``i = 0..n−1``), and must output

.. math::  y_i(t) = \sin(2π f_i t) + c_i, \qquad t = k\,dt,\ k = 0..T−1 \text{ (ms)},

for ``T = 100`` steps of ``dt = 0.05`` ms (5 ms: 0.4 to 3 periods). Arrays are time-first:
``inputs (T, n, 1)``, ``targets (T, n, 1)``.
"""

from __future__ import annotations

import numpy as np

#: published task: 6 log-spaced frequencies from 0.08 to 0.6 kHz, 100 steps.
FREQUENCIES_KHZ = (0.08, 0.6)
N_FREQUENCIES = 6
N_STEPS = 100


def sine_task(*, n_steps: int = N_STEPS, dt: float = 0.05, n_frequencies: int = N_FREQUENCIES,
              frequency_range: tuple[float, float] = FREQUENCIES_KHZ
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs (T, n, 1), targets (T, n, 1), frequencies (n,) kHz)``, float32."""
    if n_steps < 1 or n_frequencies < 1 or dt <= 0:
        raise ValueError("n_steps and n_frequencies must be positive and dt > 0")
    frequencies = np.geomspace(*frequency_range, n_frequencies)
    offsets = np.arange(n_frequencies) / n_frequencies + 0.25
    time = np.arange(n_steps)[:, None] * dt                               # (T, 1) ms
    targets = np.sin(2 * np.pi * frequencies[None, :] * time) + offsets[None, :]
    inputs = np.broadcast_to(offsets[None, :], (n_steps, n_frequencies))
    return (inputs[..., None].astype(np.float32), targets[..., None].astype(np.float32),
            frequencies)


def block_constant_floor(targets: np.ndarray, block: int) -> float:
    """The lowest MSE that an output constant on consecutive blocks of ``block`` steps (from
    step 0) can reach on ``targets (T, n, O)``: the mean squared deviation of the targets
    from their block means.

    A tanh RNN whose recurrent input is delayed by ``d`` steps, ``h_t = φ(U x + V h_{t−d} +
    b)``, driven by a constant input from ``h = 0``, is constant on such blocks of ``d``
    steps (by induction over the blocks), and so is its linear read-out: on the sine task its
    test MSE cannot fall below ``block_constant_floor(targets, d)``.
    """
    targets = np.asarray(targets, dtype=np.float64)
    steps = targets.shape[0]
    starts = np.arange(0, steps, block)
    means = np.add.reduceat(targets, starts, axis=0) / np.diff(np.append(starts, steps))[
        :, None, None]
    expanded = np.repeat(means, np.diff(np.append(starts, steps)), axis=0)
    return float(((targets - expanded) ** 2).mean())
