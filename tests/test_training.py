"""The spectrum trainer: it moves the spectrum, respects masks, freezes, and resumes exactly."""

from __future__ import annotations

import pytest
import torch

from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.nn.connectivity import gaussian_coupling
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.training.checkpoint import load_checkpoint, save_checkpoint
from nrmkit.training.losses import custom_target, get_loss
from nrmkit.training.spectrum import SpectrumTrainer

F64 = torch.float64


def make_trainer(*, samples=2, n=20, g=3.0, k=3, train=("gains", "shifts"), seed=0,
                 lr=0.05, masks=None, early_stopping=None, loss="MSE", clip=2000.0):
    generator = torch.Generator().manual_seed(seed)
    weight = g * gaussian_coupling(n, batch=(samples,), generator=generator, dtype=F64)
    model = RateRNN(weight, gain=torch.ones(samples, 1, n, dtype=F64),
                    shift=torch.zeros(samples, 1, n, dtype=F64), activation="tanh_stretch")
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, k, n, generator=generator, dtype=F64)
    return SpectrumTrainer(model, n_exponents=k, loss=get_loss(loss), target=0.0, tsim=30.0,
                           tons=0.5, ttrans=10.0, tbasis=5.0, state=state, basis=basis,
                           train=train, lr=lr, masks=masks, early_stopping=early_stopping,
                           clip=clip)


def test_losses():
    exponents = torch.tensor([[0.3, -0.1, -0.5]], dtype=F64)
    assert get_loss("l2")(exponents, 0.0).item() == pytest.approx((0.09 + 0.01 + 0.25) ** 0.5)
    assert get_loss("mse")(exponents, 0.1).item() == pytest.approx((0.04 + 0.04 + 0.36) / 3)
    assert get_loss("Sinai")(exponents, 0.0).item() == pytest.approx(0.3 - 0.6)
    target = custom_target(3, dtype=F64)
    assert target.tolist() == pytest.approx([1.24, -0.005, -1.25])
    assert get_loss("MSE_Custom")(target[None], 5.0).item() == pytest.approx(0.0)


def test_training_moves_a_chaotic_network_to_the_edge_of_chaos():
    """N = 40, g = 4, gains and shifts trained toward λ_max = 0 (MSE): the loss of every
    network falls by at least half (median of the last 5 of 25 epochs vs the first)."""
    trainer = make_trainer(n=40, g=4.0, k=1, lr=0.02)
    history = trainer.fit(25)
    assert torch.all(torch.tensor(history[0]["lambda_max"]) > 0.05), "must start chaotic"
    first = torch.tensor(history[0]["loss"])
    late = torch.tensor([epoch["loss"] for epoch in history[-5:]]).median(0).values
    assert torch.all(late < 0.5 * first), (first, late)
    assert torch.all(torch.tensor(history[-1]["lambda_max"]).abs() < 0.05)


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


def test_early_stopping_freezes_each_network():
    probe = make_trainer()
    losses = probe.fit(1)[0]["loss"]
    threshold = (losses[0] + losses[1]) / 2  # one network is already below it
    trainer = make_trainer(early_stopping=threshold)
    below = int(torch.tensor(losses).argmin())
    gains = trainer.model.gain.detach()[below].clone()
    trainer.fit(40)
    assert torch.equal(trainer.model.gain.detach()[below], gains)
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
