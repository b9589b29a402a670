"""``train_flybrain_pop``: train gains and shifts shared by populations of a connectome.

As ``train_flybrain_full`` (fixed sparse signed weights), but one gain and one shift per
population: ``--subpopulation neurotransmitter`` or ``cell_fibers`` (cell-body fibres; the
cell type where the data has none, as for the shipped FlyWire data), or ``cell_type`` /
``cell_class``. The figure ``trained_parameters`` names the populations.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from nrmkit.cli.options import Command, common_options, option
from nrmkit.cli.runner import CommonOptions, build_config, execute
from nrmkit.cli.sweep import ExecutorOptions, executor_options
from nrmkit.workflows.common import check
from nrmkit.workflows.train_flybrain_full import (
    FlybrainConfig,
    TrainFlybrainFull,
    connectome_batch,
    connectome_options,
)
from nrmkit.workflows.training import NetworkBatch, training_options

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


@click.command("train_flybrain_pop", cls=Command)
@option("--subpopulation", type=click.Choice(SUBPOPULATIONS), default="neurotransmitter",
        help="Populations sharing one gain and one shift.")
@connectome_options
@training_options(with_n=False, replicas=FlybrainPopConfig.replicas)
@executor_options
@common_options
def command(**kwargs):
    """Train population-shared gains and shifts of a connectome network on its spectrum.

    Example: train_flybrain_pop --subpopulation neurotransmitter --nle 10 --n_epochs 20
    """
    common = CommonOptions.pop_from(kwargs)
    executor = ExecutorOptions.pop_from(kwargs)
    config = build_config(FlybrainPopConfig, **kwargs)
    execute(WORKFLOW, config, common, executor=executor)


WORKFLOW = TrainFlybrainPop()
