"""``train_rd_model``: train random rate networks on their Lyapunov spectrum.

``n_samples`` networks ``W = g·J``, ``J_ij ~ N(0, 1/N)`` (zero diagonal), per-neuron gains
(1) and shifts (0); the sets chosen with ``--train_weights/--train_gains/--train_shifts``
are trained by Adam so that the loss of the top ``nle`` exponents reaches ``--target``.
Outputs: see :mod:`nrmkit.workflows.training`.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from nrmkit.cli.options import Command, common_options, option
from nrmkit.cli.runner import CommonOptions, build_config, execute
from nrmkit.workflows.common import check, check_finite
from nrmkit.workflows.training import (
    NetworkBatch,
    TrainingSettings,
    TrainOnSpectrum,
    training_options,
)


@dataclass(frozen=True)
class RandomTrainingConfig(TrainingSettings):
    """Options of ``train_rd_model``."""

    g: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        check_finite(self.g, "--g")
        check(self.g >= 0, "--g", f"couplings must be non-negative, got {self.g}")


def random_batch(config, context, description: str) -> NetworkBatch:
    import torch

    from nrmkit.nn.connectivity import gaussian_coupling
    from nrmkit.nn.rate_rnn import RateRNN

    dtype, device = context.torch_dtype, context.device
    unit = gaussian_coupling(config.n, batch=(config.n_samples,), generator=context.generator(),
                             dtype=dtype, device=device)
    per_neuron = (config.n_samples, 1, config.n)
    model = RateRNN(config.g * unit, gain=torch.ones(per_neuron, dtype=dtype, device=device),
                    shift=torch.zeros(per_neuron, dtype=dtype, device=device),
                    activation=config.activation, dt=config.dt)
    return NetworkBatch(model=model, description=description)


class TrainRandomModel(TrainOnSpectrum):
    name = "train_rd_model"
    config_class = RandomTrainingConfig

    def build(self, config, context) -> NetworkBatch:
        return random_batch(config, context, f"{config.n_samples} random networks, "
                            f"N={config.n}, g={config.g:g}, {config.activation}")


@click.command("train_rd_model", cls=Command)
@option("--g", type=float, default=3.0, help="Coupling g: W_ij ~ N(0, g²/N).")
@training_options()
@common_options
def command(**kwargs):
    """Train random rate networks (weights, gains, shifts) on their Lyapunov spectrum.

    Example: train_rd_model --n 100 --g 3 --nle 5 --loss MSE --target 0 --n_epochs 50
    """
    common = CommonOptions.pop_from(kwargs)
    config = build_config(RandomTrainingConfig, **kwargs)
    execute(TrainRandomModel(), config, common)
