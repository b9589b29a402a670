"""``train_rd_model``: train random rate networks on their Lyapunov spectrum.

``n_samples`` networks ``W = g·J``, ``J_ij ~ N(0, 1/N)`` (zero diagonal; network ``s`` drawn
from its own seed, see :mod:`nrmkit.experiments.spectrum_training.training`), per-neuron gains
(1) and shifts (0); the sets chosen with ``--train_weights/--train_gains/--train_shifts``
are trained by Adam so that the loss of the top ``nle`` exponents reaches ``--target``.
Outputs: see :mod:`nrmkit.experiments.spectrum_training.training`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.spectrum_training.settings import TrainingSettings
from nrmkit.experiments.spectrum_training.training import NetworkBatch, TrainOnSpectrum


@dataclass(frozen=True)
class RandomTrainingConfig(TrainingSettings):
    """Options of ``train_rd_model``."""

    g: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        check_finite(self.g, "--g")
        check(self.g >= 0, "--g", f"couplings must be non-negative, got {self.g}")


def random_batch(config, context, generators: list, description: str) -> NetworkBatch:
    """One random network ``g·J`` per generator (``J`` drawn from it), gains 1, shifts 0."""
    import torch

    from nrmkit.nn.connectivity import gaussian_coupling
    from nrmkit.nn.rate_rnn import RateRNN

    dtype, device = context.torch_dtype, context.device
    unit = torch.cat([gaussian_coupling(config.n, batch=(1,), generator=generator,
                                        dtype=dtype, device=device)
                      for generator in generators])
    per_neuron = (len(generators), 1, config.n)
    model = RateRNN(config.g * unit, gain=torch.ones(per_neuron, dtype=dtype, device=device),
                    shift=torch.zeros(per_neuron, dtype=dtype, device=device),
                    activation=config.activation, dt=config.dt)
    return NetworkBatch(model=model, description=description)


class TrainRandomModel(TrainOnSpectrum):
    name = "train_rd_model"
    config_class = RandomTrainingConfig

    def build(self, config, context, generators, shared) -> NetworkBatch:
        return random_batch(config, context, generators, f"random networks, N={config.n}, "
                            f"g={config.g:g}, {config.activation}")
