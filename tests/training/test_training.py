"""The spectrum trainer: it moves the spectrum, respects masks, freezes, and resumes exactly."""

from __future__ import annotations

import pytest
import torch

from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.nn.connectivity import gaussian_coupling
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.training.checkpoint import load_checkpoint, save_checkpoint
from nrmkit.training.losses import custom_target, get_loss
from nrmkit.training.spectrum import (
    SpectrumTrainer,
    evaluate_spectra,
    global_gain_baseline,
    global_gain_model,
)

F64 = torch.float64


def make_trainer(*, samples=2, n=20, g=3.0, k=3, train=("gains", "shifts"), seed=0,
                 lr=0.05, masks=None, early_stopping=None, loss="MSE", clip=2000.0,
                 procedure="windows", replicas=None, tsim=30.0):
    """``replicas=None``: one trajectory per network, given as ``(S, G, N)``."""
    generator = torch.Generator().manual_seed(seed)
    weight = g * gaussian_coupling(n, batch=(samples,), generator=generator, dtype=F64)
    model = RateRNN(weight, gain=torch.ones(samples, 1, n, dtype=F64),
                    shift=torch.zeros(samples, 1, n, dtype=F64), activation="tanh_stretch")
    shape = model.batch_shape if replicas is None else (*model.batch_shape, replicas)
    state = torch.randn((*shape, n), generator=generator, dtype=F64)
    basis = random_basis(shape, k, n, generator=generator, dtype=F64)
    return SpectrumTrainer(model, n_exponents=k, loss=get_loss(loss), target=0.0, tsim=tsim,
                           tons=0.5, ttrans=10.0, tbasis=5.0, state=state, basis=basis,
                           train=train, lr=lr, masks=masks, early_stopping=early_stopping,
                           clip=clip, procedure=procedure, window=10.0)


def test_losses():
    exponents = torch.tensor([[0.3, -0.1, -0.5]], dtype=F64)
    assert get_loss("l2")(exponents, 0.0).item() == pytest.approx((0.09 + 0.01 + 0.25) ** 0.5)
    assert get_loss("mse")(exponents, 0.1).item() == pytest.approx((0.04 + 0.04 + 0.36) / 3)
    assert get_loss("Sinai")(exponents, 0.0).item() == pytest.approx(0.3 - 0.6)
    assert get_loss("Sinai_max")(exponents, 0.0).item() == pytest.approx(0.6 - 0.3)
    target = custom_target(3, dtype=F64)
    assert target.tolist() == pytest.approx([1.24, -0.005, -1.25])
    assert get_loss("MSE_Custom")(target[None], 5.0).item() == pytest.approx(0.0)


def test_training_moves_a_chaotic_network_to_the_edge_of_chaos():
    """N = 50, g = 4, gains and shifts trained toward λ_max = 0 (MSE, windows procedure):
    λ_max, evaluated from a fresh initial state over 300 τ before and after training, moves
    from chaotic (≈ 0.07) to within 0.02 of 0 for every network."""
    trainer = make_trainer(n=50, g=4.0, k=1, lr=0.01, clip=1.0, replicas=4, tsim=50.0)
    fresh = torch.Generator().manual_seed(123)
    state = trainer.networks.initial_state(fresh)
    basis = random_basis(trainer.networks.batch_shape, 1, 50, generator=fresh, dtype=F64)

    def evaluated():
        return evaluate_spectra(trainer.trained_networks(), 1, state=state, basis=basis,
                                tsim=300.0, tons=0.5, ttrans=50.0)[..., 0].flatten()

    before = evaluated()
    assert torch.all(before > 0.05), "must start chaotic"
    trainer.fit(20)
    after = evaluated()
    assert torch.all(after.abs() < 0.02), (before, after)


@pytest.mark.parametrize(("loss", "sign"), [("Sinai", -1.0), ("Sinai_max", 1.0)])
def test_sinai_lowers_and_sinai_max_raises_the_spectrum(loss, sign):
    """Minimising Σλ lowers the top-k exponents of a chaotic network; minimising −Σλ (the
    published direction of the fixed-parameter Sinai training) raises them."""
    trainer = make_trainer(n=30, g=2.0, k=3, lr=0.05, clip=1.0, loss=loss, tsim=30.0)
    fresh = torch.Generator().manual_seed(7)
    state = trainer.networks.initial_state(fresh)
    basis = random_basis(trainer.networks.batch_shape, 3, 30, generator=fresh, dtype=F64)

    def total():
        return evaluate_spectra(trainer.trained_networks(), 3, state=state, basis=basis,
                                tsim=100.0, tons=0.5, ttrans=20.0).sum(-1).flatten()

    before = total()
    trainer.fit(5)
    assert torch.all(sign * (total() - before) > 0.02), (loss, before, total())


def test_replicas_are_tied_and_identical_replicas_train_like_one():
    """Two replicas of a network share its parameters (every copy receives the gradient of
    the shared parameter); two replicas started from the same state train exactly like one
    trajectory (the loss sees their mean exponents, the gradient is the sum of halves)."""
    one = make_trainer(samples=1, k=2)
    state = one.state0.reshape(1, 1, 1, -1).expand(1, 1, 2, -1)
    basis = one.basis0.reshape(1, 1, 1, 2, -1).expand(1, 1, 2, 2, -1)
    two = SpectrumTrainer(
        one.networks, n_exponents=2, loss=get_loss("MSE"), target=0.0, tsim=30.0, tons=0.5,
        ttrans=10.0, tbasis=5.0, state=state, basis=basis, train=("gains", "shifts"),
        lr=0.05, clip=2000.0, window=10.0)
    assert two.model.batch_shape == (1, 2)
    one.fit(3)
    two.fit(3)
    torch.testing.assert_close(two.network_parameter("gains"), one.network_parameter("gains"))
    distinct = make_trainer(samples=1, k=2)
    generator = torch.Generator().manual_seed(7)
    three = SpectrumTrainer(
        distinct.networks, n_exponents=2, loss=get_loss("MSE"), target=0.0, tsim=30.0,
        tons=0.5, ttrans=10.0, tbasis=5.0,
        state=torch.randn(1, 1, 3, 20, generator=generator, dtype=F64),
        basis=random_basis((1, 1, 3), 2, 20, generator=generator, dtype=F64),
        train=("gains", "shifts"), lr=0.05)
    three.fit(2)
    gains = three.model.gain.detach()
    assert not torch.equal(gains[0, 0], torch.ones(20, dtype=F64))
    assert torch.equal(gains[0, 1], gains[0, 0]) and torch.equal(gains[0, 2], gains[0, 0])


def test_a_global_gain_is_a_coupling():
    """With shifts 0, tanh_stretch(c·h) under h = y/c is the network at coupling c·g: the
    baseline's exponents at gain c equal those of coupling c·g (from the scaled state)."""
    generator = torch.Generator().manual_seed(3)
    unit = gaussian_coupling(30, batch=(1,), generator=generator, dtype=F64)
    model = RateRNN(2.0 * unit, gain=torch.ones(1, 1, 30, dtype=F64),
                    shift=torch.zeros(1, 1, 30, dtype=F64), activation="tanh_stretch")
    gains = (0.5, 1.5)
    state = model.initial_state(generator)
    basis = random_basis((1, 1), 3, 30, generator=generator, dtype=F64)
    grid = global_gain_model(model, gains)
    scanned = evaluate_spectra(grid, 3, state=state.expand(1, 2, 30), basis=basis.expand(
        1, 2, 3, 30), tsim=50.0, tons=0.5, ttrans=10.0)
    for j, c in enumerate(gains):
        scaled = RateRNN(2.0 * c * unit, activation="tanh")
        direct = evaluate_spectra(scaled, 3, state=c * state, basis=basis, tsim=50.0,
                                  tons=0.5, ttrans=10.0)
        torch.testing.assert_close(scanned[0, j], direct[0, 0], rtol=1e-9, atol=1e-9)
    baseline = global_gain_baseline(model, 3, loss=get_loss("MSE"), target=0.0, state=state,
                                    basis=basis, tsim=50.0, tons=0.5, ttrans=10.0, gains=gains)
    torch.testing.assert_close(baseline["loss"][0], get_loss("MSE")(scanned[0], 0.0))
    assert baseline["best_loss"][0] == baseline["loss"][0].min()


def test_batched_networks_train_as_if_alone():
    together = make_trainer(samples=2, clip=0.05)
    together.fit(3)
    alone = make_trainer(samples=2, clip=0.05)
    # the second network alone: same weights, state, basis
    single = SpectrumTrainer(
        RateRNN(alone.model.weight.detach()[1:2], gain=torch.ones(1, 1, 20, dtype=F64),
                shift=torch.zeros(1, 1, 20, dtype=F64), activation="tanh_stretch"),
        n_exponents=3, loss=get_loss("MSE"), target=0.0, tsim=30.0, tons=0.5, ttrans=10.0,
        tbasis=5.0, state=alone.state0[1:2], basis=alone.basis0[1:2], train=("gains", "shifts"),
        lr=0.05, clip=0.05)
    single.fit(3)
    torch.testing.assert_close(together.model.gain[1], single.model.gain[0])
    torch.testing.assert_close(together.model.shift[1], single.model.shift[0])


def test_masks_keep_untrainable_entries_unchanged():
    generator = torch.Generator().manual_seed(5)
    gain_mask = torch.zeros(2, 1, 20, dtype=torch.bool)
    gain_mask[..., torch.randperm(20, generator=generator)[:4]] = True
    weight_mask = torch.rand(2, 20, 20, generator=generator) < 0.05
    trainer = make_trainer(train=("weights", "gains"),
                           masks={"gains": gain_mask, "weights": weight_mask})
    gain0, weight0 = trainer.model.gain.detach().clone(), trainer.model.weight.detach().clone()
    trainer.fit(3)
    gain, weight = trainer.model.gain.detach(), trainer.model.weight.detach()
    assert torch.equal(gain[~gain_mask], gain0[~gain_mask])
    assert torch.equal(weight[~weight_mask], weight0[~weight_mask])
    assert not torch.equal(gain[gain_mask], gain0[gain_mask])
    assert torch.all(weight.diagonal(dim1=-2, dim2=-1) == 0)
    assert trainer.n_trainable() == {"weights": int(weight_mask[0].sum()), "gains": 4,
                                     "shifts": 0}


@pytest.mark.parametrize("procedure", ["windows", "single"])
def test_early_stopping_freezes_each_network(procedure):
    """A network whose epoch loss is below the threshold keeps the parameters it had at the
    end of that epoch (windows: updated during the epoch; single: the update is skipped)."""
    probe = make_trainer(procedure=procedure)
    losses = probe.fit(1)[0]["loss"]
    threshold = (losses[0] + losses[1]) / 2  # one network is below it after one epoch
    below = int(torch.tensor(losses).argmin())
    trainer = make_trainer(early_stopping=threshold, procedure=procedure)
    after_first = []
    trainer.fit(40, on_epoch_end=(
        lambda epoch, _: after_first.append(trainer.model.gain.detach()[below].clone())
        if epoch == 0 else None,))
    expected = after_first[0] if procedure == "windows" else torch.ones_like(after_first[0])
    assert torch.equal(trainer.model.gain.detach()[below], expected)
    assert trainer.epochs_run[below] == 1
    assert bool(trainer.frozen.all()) == (trainer.epoch < 40)


def test_resume_equals_uninterrupted(tmp_path):
    straight = make_trainer(train=("weights", "gains", "shifts"))
    straight.fit(6)
    interrupted = make_trainer(train=("weights", "gains", "shifts"))
    interrupted.fit(3)
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", interrupted.state_dict())
    resumed = make_trainer(train=("weights", "gains", "shifts"), seed=99)  # other init
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoints" / "last.pt"))
    resumed.fit(6)
    for name in ("weight", "gain", "shift"):
        assert torch.equal(getattr(resumed.model, name), getattr(straight.model, name)), name
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
