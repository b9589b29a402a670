"""Time one training epoch of train_flybrain_pop on the whole shipped mushroom body.

2935 neurons, population gains/shifts by neurotransmitter, nle 10, tsim 200, t_ONS 0.2,
dt 0.1, ttrans 50, one network, float32, measured side by side in one run:

* the sparse connectome (what the workflow uses), forward + backward: a steady epoch and
  the first one (which also runs the state warm-up and the basis transient);
* the same network with a dense W (Jacobian-free engine), forward + backward;
* the FlyStability dense-Jacobian construction, forward only, 20 steps timed and
  extrapolated to the epoch's steps.

Run: python bash/flybrain_epoch_benchmark.py
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import torch

from nrmkit.core.streams import torch_generator
from nrmkit.dynamics.lyapunov import random_basis
from nrmkit.dynamics.reference import dense_jacobian_spectrum
from nrmkit.experiments.spectrum_training.train_flybrain_full import connectome_batch
from nrmkit.experiments.spectrum_training.train_flybrain_pop import FlybrainPopConfig
from nrmkit.nn.rate_rnn import RateRNN
from nrmkit.training.losses import get_loss
from nrmkit.training.spectrum import SpectrumTrainer

NLE, TSIM, TONS, TTRANS = 10, 200.0, 0.2, 50.0


def trainer_for(model: RateRNN) -> SpectrumTrainer:
    generator = torch_generator(0, 0, "states")
    state = model.initial_state(generator)
    basis = random_basis(model.batch_shape, NLE, model.state_dim, generator=generator)
    return SpectrumTrainer(model, n_exponents=NLE, loss=get_loss("MSE"), target=0.0, tsim=TSIM,
                           tons=TONS, ttrans=TTRANS, tbasis=None, state=state, basis=basis,
                           train=("gains", "shifts"))


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    config = FlybrainPopConfig(nle=NLE, tsim=TSIM, tons=TONS, ttrans=TTRANS, g=3.0)
    context = SimpleNamespace(torch_dtype=torch.float32, device="cpu",
                              stream=lambda purpose, unit=0: torch_generator(0, unit, purpose))
    model = connectome_batch(config, context, populations_by="neurotransmitter").model
    trainer = trainer_for(model)
    first = seconds(lambda: trainer.train_epoch(0))  # with the warm-up and basis transient
    sparse = seconds(lambda: trainer.train_epoch(1))
    dense_model = RateRNN(model.weight.to_dense(), coupling=model.coupling.clone(),
                          gain=model.gain.detach().clone(), shift=model.shift.detach().clone(),
                          population=model.population, activation=model.activation)
    dense = seconds(lambda: trainer_for(dense_model).train_epoch(0))
    n = model.n_neurons
    timed_steps = 20
    reference = seconds(lambda: dense_jacobian_spectrum(
        dense_model.weight.detach()[0], n_exponents=NLE, n_steps=timed_steps, steps_per_ons=2,
        coupling=float(model.coupling[0, 0]), gain=model.neuron_gain().detach()[0, 0],
        shift=model.neuron_shift().detach()[0, 0], activation="tanh_stretch",
        state=torch.zeros(n), basis=torch.linalg.qr(torch.randn(n, NLE))[0]))
    epoch_steps = round(TTRANS / 0.1) + round(1.1 * TSIM / 0.1)
    reference_epoch = reference / timed_steps * epoch_steps
    print(f"one epoch: sparse {sparse:.2f} s (the first, with the transients: {first:.2f} s); "
          f"dense W {dense:.2f} s (×{dense / sparse:.1f}); "
          f"FlyStability dense Jacobian, forward only ≈ {reference_epoch / 60:.1f} min "
          f"(×{reference_epoch / sparse:.0f})")


if __name__ == "__main__":
    main()
