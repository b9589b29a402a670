"""Connectivity ensembles of the rate network against random-matrix theory and the dynamics
they imply: the default stays the i.i.d. Gaussian draw bit for bit; FlyStability's symmetric
ensemble has a real semicircle spectrum of radius √2·g, so its fixed point loses stability at
g = 1/√2 and it never becomes chaotic; the balanced E/I ensemble obeys Dale's law, has rows
summing to zero and the Rajan–Abbott bulk radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nrmkit.dynamics import lyapunov_spectrum
from nrmkit.dynamics.activity import record_activity
from nrmkit.dynamics.theory import (
    BULK_EDGE,
    linear_exponents,
    linear_lambda_max,
    rajan_abbott_radius,
    semicircle_density,
)
from nrmkit.nn.connectivity import gaussian_coupling, normal_like
from nrmkit.nn.ensembles import (
    balanced_ei_coupling,
    ei_layout,
    symmetric_coupling,
    unit_coupling,
)
from nrmkit.nn.rate_rnn import random_rate_network

DT = 0.1


def seeded(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- the default ensemble ---------------------------------------------------------------

def test_default_network_is_the_gaussian_draw_bit_for_bit():
    """Without ``connectivity`` the weights, gains and every later draw of the stream are
    those of the i.i.d. Gaussian construction used before the ensembles existed."""
    model = random_rate_network(12, [0.5, 2.0], 3, vary=("weights", "gains"),
                                activation="tanh_stretch", generator=seeded())
    expected_stream = seeded()
    unit = gaussian_coupling(12, batch=(3,), generator=expected_stream)
    deviates = normal_like((3, 1, 12), generator=expected_stream, dtype=torch.float64)
    assert torch.equal(model.weight, unit)
    gains = (1.0 + torch.tensor([0.5, 2.0], dtype=torch.float64)[:, None] / 12**0.5 * deviates)
    assert torch.equal(model.gain, gains.float())
    state = model.initial_state(seeded())
    assert torch.equal(state, random_rate_network(
        12, [0.5, 2.0], 3, vary=("weights", "gains"), activation="tanh_stretch",
        generator=seeded(), connectivity="gaussian").initial_state(seeded()))


def test_unknown_ensemble_is_refused():
    with pytest.raises(ValueError, match="unknown connectivity"):
        unit_coupling("scale_free", 10)


# -- symmetric: FlyStability's (X + Xᵀ)/2 -------------------------------------------------

def test_symmetric_matches_the_published_construction_by_hand():
    """(X + Xᵀ)/2 with X = g·Z/√N, then a zero diagonal: g·J from the same normals Z."""
    n, g = 9, 2.5
    normals = torch.randn((n, n), generator=seeded(3), dtype=torch.float64)
    x = g * normals / math.sqrt(n)
    published = (x + x.T) / 2
    published.fill_diagonal_(0.0)
    ours = g * symmetric_coupling(n, generator=seeded(3), dtype=torch.float64)
    torch.testing.assert_close(ours, published, rtol=1e-14, atol=1e-15)
    assert torch.equal(ours, ours.T)


def test_symmetric_spectrum_is_the_semicircle_of_radius_root_two():
    """Off-diagonal variance 1/(2N) → R = 2√(N·Var) = √2: even moments R²/4 = 1/2 and
    2·(R²/4)² = 1/2 (Catalan), the edge at √2, and the eigenvalue distribution function
    within 0.02 of the semicircle's (an i.i.d. Gaussian's real parts are not)."""
    n = 600
    matrices = symmetric_coupling(n, batch=(2,), generator=seeded(), dtype=torch.float64)
    values = np.concatenate([np.linalg.eigvalsh(m) for m in matrices.numpy()])
    radius = math.sqrt(2.0)
    assert abs(np.mean(values**2) - radius**2 / 4) < 0.01
    assert abs(np.mean(values**4) - 2 * (radius**2 / 4) ** 2) < 0.03
    assert abs(values.max() - radius) < 0.05 and abs(values.min() + radius) < 0.05
    grid = np.linspace(-radius, radius, 2001)
    cdf = np.cumsum(semicircle_density(grid, radius)) * (grid[1] - grid[0])
    empirical = np.searchsorted(np.sort(values), grid) / values.size
    assert np.abs(empirical - cdf).max() < 0.02
    gaussian = np.linalg.eigvals(gaussian_coupling(n, generator=seeded(),
                                                   dtype=torch.float64).numpy()).real
    assert np.abs(np.searchsorted(np.sort(gaussian), grid) / n - cdf).max() > 0.05


def test_linear_lambda_max_by_hand():
    # symmetric, g = 0.5: top eigenvalue √2/2 → ln(1 − 0.1 + 0.1·0.7071)/0.1
    assert linear_lambda_max(0.5, DT, BULK_EDGE["symmetric"]) == pytest.approx(
        math.log(0.9 + 0.1 * math.sqrt(0.5)) / 0.1)
    assert linear_lambda_max(0.5, DT) == pytest.approx(math.log(0.95) / 0.1)
    assert np.isnan(linear_lambda_max(0.8, DT, BULK_EDGE["symmetric"]))   # 0.8·√2 > 1
    assert not np.isnan(linear_lambda_max(0.8, DT, BULK_EDGE["gaussian"]))


def lambda_max(connectivity: str, couplings: list[float], samples: int, n: int = 100,
               **kwargs) -> tuple[np.ndarray, torch.nn.Module]:
    model = random_rate_network(n, couplings, samples, connectivity=connectivity,
                                generator=seeded(11), dtype=torch.float64, **kwargs)
    result = lyapunov_spectrum(model, 1, tsim=200.0, tons=1.0, ttrans=100.0,
                               generator=seeded(12))
    return result.exponents[..., 0].numpy(), model


def test_symmetric_network_is_stable_below_root_half_and_never_chaotic(one_thread):
    """Below g = 1/√2 λ_max is the linearisation's, ln(1 − dt + dt·g·μ_max)/dt with μ_max
    the top eigenvalue of J (exact at finite N); at g = 0.85 and 3, beyond that edge and
    beyond the i.i.d. transition, the origin is unstable but a symmetric network with a
    monotone φ relaxes to fixed points: λ_max < 0, where i.i.d. networks are chaotic."""
    exponents, model = lambda_max("symmetric", [0.5, 0.85, 3.0], 3)
    top = np.array([np.linalg.eigvalsh(m).max() for m in model.weight.numpy()])
    expected = [linear_exponents(np.array([0.5 * mu]), DT)[0] for mu in top]
    np.testing.assert_allclose(exponents[:, 0], expected, atol=0.01)
    assert 0.85 * top.min() > 1.0                      # the origin is unstable …
    assert (exponents[:, 1:] < 0).all()                 # … but nothing is chaotic
    above = random_rate_network(100, [3.0], 1, connectivity="symmetric",
                                generator=seeded(11), dtype=torch.float64)
    activity = record_activity(above, 2000, 100, generator=seeded(5))
    late, settled = activity.states[-1], activity.states[-20]
    assert np.sqrt(np.mean(late**2)) > 0.1               # a non-zero fixed point …
    assert np.abs(late - settled).max() < 1e-3           # … at rest
    chaotic, _ = lambda_max("gaussian", [3.0], 3)
    assert (chaotic > 0.1).all()


# -- balanced E/I ---------------------------------------------------------------------------

def test_ei_obeys_dale_with_fixed_in_degree_and_balanced_rows():
    n, f, p = 200, 0.8, 0.1
    layout = ei_layout(n, f, p)
    assert (layout.n_exc, layout.n_inh, layout.k_exc, layout.k_inh) == (160, 40, 16, 4)
    assert layout.k_exc * layout.w_exc == pytest.approx(layout.k_inh * layout.w_inh)
    matrices = balanced_ei_coupling(n, frac_exc=f, connection_prob=p, batch=(3,),
                                    generator=seeded(), dtype=torch.float64)
    exc, inh = matrices[..., :160], matrices[..., 160:]
    assert (exc >= 0).all() and (inh <= 0).all()                       # Dale's law
    assert exc.unique().tolist() == [0.0, layout.w_exc]
    assert inh.unique().tolist() == [-layout.w_inh, 0.0]
    assert ((exc != 0).sum(-1) == 16).all() and ((inh != 0).sum(-1) == 4).all()
    assert (matrices.diagonal(dim1=-2, dim2=-1) == 0).all()
    assert matrices.sum(-1).abs().max() < 1e-12                        # balance


def test_ei_bulk_has_the_rajan_abbott_radius():
    """The eigenvalues fill a disk whose radius is √(f σ_E² + (1 − f) σ_I²) computed from
    the matrix's own column variances (≈ 1 by the normalisation): the largest modulus within
    6 % (no outliers from the mean part), and 0 an exact eigenvalue (rows sum to zero)."""
    n, f = 800, 0.8
    matrices = balanced_ei_coupling(n, frac_exc=f, connection_prob=0.2, batch=(2,),
                                    generator=seeded(), dtype=torch.float64).numpy()
    for matrix in matrices:
        variances = matrix.var(axis=0) * n                      # σ_j² of every column
        radius = rajan_abbott_radius(f, math.sqrt(variances[:640].mean()),
                                     math.sqrt(variances[640:].mean()))
        assert radius == pytest.approx(1.0, abs=0.01)
        moduli = np.abs(np.linalg.eigvals(matrix))
        assert abs(moduli.max() - radius) < 0.06 * radius
        assert np.abs(matrix @ np.ones(n)).max() < 1e-12


def test_ei_network_stable_below_one_and_chaotic_well_above(one_thread):
    """Radius g: below g = 1 λ_max is the linearisation at 0 (from the matrix's exact
    eigenvalues), at g = 4 the networks are chaotic (λ_max > 0)."""
    exponents, model = lambda_max("ei", [0.5, 4.0], 3, n=200, connection_prob=0.2)
    for sample, matrix in enumerate(model.weight.numpy()):
        eigenvalues = 0.5 * np.linalg.eigvals(matrix)
        assert exponents[sample, 0] == pytest.approx(linear_exponents(eigenvalues, DT)[0],
                                                     abs=0.01)
    assert np.median(exponents[:, 1]) > 0.05


def test_ei_layout_refuses_empty_populations():
    with pytest.raises(ValueError, match="inputs"):
        ei_layout(30, 0.8, 0.01)
    with pytest.raises(ValueError, match="at least 2"):
        ei_layout(10, 0.95, 0.5)


# -- activity record ------------------------------------------------------------------------

def test_activity_of_an_uncoupled_network_decays_exactly():
    """g = 0: h_t = (1 − dt)^t h_0, the population activity is the mean of tanh(h_t), and
    the record keeps the traced neurons, every network's mean and the image."""
    model = random_rate_network(20, [0.0], 2, generator=seeded(), dtype=torch.float64)
    record = record_activity(model, 30, 4, generator=seeded(9))
    stream = seeded(9)
    neurons = torch.randperm(20, generator=stream)[:4].sort().values.numpy()
    start = model.initial_state(stream).reshape(2, 20).numpy()
    steps = np.round(record.time / DT).astype(int)
    np.testing.assert_array_equal(record.neurons, neurons)
    np.testing.assert_allclose(record.states, start[0, neurons] * (0.9 ** steps[:, None]),
                               rtol=1e-12)
    decayed = start[None] * (0.9 ** steps[:, None, None])
    np.testing.assert_allclose(record.population, np.tanh(decayed).mean(-1), rtol=1e-12)
    assert record.image.shape == (len(steps), 20) and steps[-1] == 30


def test_varied_gains_enter_the_linearisation(one_thread):
    """`--parameter weights --parameter gains`: the gains a_i ~ N(1, g²/N) per neuron, and
    below the transition λ_max is the linearisation at h = 0 of tanh(a(h − 0)), i.e. of the
    matrix g·J·diag(a) (its exact eigenvalues)."""
    couplings = [0.5, 0.8]
    n = 30                      # few neurons: the gains' spread moves λ_max by up to 0.07
    model = random_rate_network(n, couplings, 2, vary=("weights", "gains"),
                                activation="tanh_stretch", generator=seeded(9),
                                dtype=torch.float64)
    result = lyapunov_spectrum(model, 1, tsim=200.0, tons=1.0, ttrans=100.0,
                               generator=seeded(10))
    gains = model.neuron_gain().detach().numpy()                  # (samples, couplings, N)
    for sample, matrix in enumerate(model.weight.detach().numpy()):
        for index, g in enumerate(couplings):
            a = gains[sample, index]
            assert 0.6 < np.std(a - 1.0) * math.sqrt(n) / g < 1.4
            eigenvalues = np.linalg.eigvals(g * matrix * a[None, :])
            assert result.exponents[sample, index, 0].item() == pytest.approx(
                linear_exponents(eigenvalues, DT)[0], abs=0.003)
    without_gains = linear_exponents(np.linalg.eigvals(0.8 * model.weight[1].numpy()), DT)[0]
    assert abs(result.exponents[1, 1, 0].item() - without_gains) > 0.05
