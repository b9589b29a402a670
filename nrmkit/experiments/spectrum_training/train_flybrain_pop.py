"""``train_flybrain_pop``: train gains and shifts shared by populations of a connectome.

As ``train_flybrain_full`` (fixed sparse signed weights), but one gain and one shift per
population: ``--subpopulation neurotransmitter`` or ``cell_fibers`` (cell-body fibres; the
cell type where the data has none, as for the shipped FlyWire data), or ``cell_type`` /
``cell_class``. The figure ``trained_parameters`` names the populations.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrmkit.core.checks import check
from nrmkit.experiments.spectrum_training.train_flybrain_full import (
    FlybrainConfig,
    TrainFlybrainFull,
    connectome_batch,
)
from nrmkit.experiments.spectrum_training.training import NetworkBatch

SUBPOPULATIONS = ("neurotransmitter", "cell_fibers", "cell_type", "cell_class")


@dataclass(frozen=True)
class FlybrainPopConfig(FlybrainConfig):
    subpopulation: str = "neurotransmitter"

    def __post_init__(self):
        check(self.subpopulation in SUBPOPULATIONS, "--subpopulation",
              f"choose from {', '.join(SUBPOPULATIONS)}")
        super().__post_init__()


class TrainFlybrainPop(TrainFlybrainFull):
    name = "train_flybrain_pop"
    config_class = FlybrainPopConfig

    def build(self, config, context, generators, shared) -> NetworkBatch:
        return connectome_batch(config, context, populations_by=config.subpopulation,
                                n_networks=len(generators), connectome=shared)
