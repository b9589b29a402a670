"""``train_rd_model_fixed_param``: like ``train_rd_model``, but only ``--number_param W G S``
entries of each set (weights, gains, shifts) are trainable in every network.

The trainable entries of each network are drawn once from that network's seed (weights
among the off-diagonal entries), saved with the run (``masks.npz``) and kept for the whole
run; all other entries keep their initial values exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrmkit.core.base import MemoryTerm
from nrmkit.core.checks import check
from nrmkit.experiments.lyapunov.settings import DRAW_BYTES_PER_ENTRY, memory_term, plural, raised
from nrmkit.experiments.spectrum_training.train_rd_model import RandomTrainingConfig, random_batch
from nrmkit.experiments.spectrum_training.training import NetworkBatch, TrainOnSpectrum


@dataclass(frozen=True)
class FixedParamConfig(RandomTrainingConfig):
    """Options of ``train_rd_model_fixed_param``."""

    number_param: tuple[int, int, int] = (100, 10, 10)

    def __post_init__(self):
        super().__post_init__()
        check(len(self.number_param) == 3, "--number_param", "give three counts: W G S")
        weights, gains, shifts = (int(v) for v in self.number_param)
        object.__setattr__(self, "number_param", (weights, gains, shifts))
        n = self.n
        check(0 <= weights <= n * (n - 1), "--number_param",
              f"W must lie in [0, N(N−1) = {n * (n - 1)}], got {weights}")
        for label, value in (("G", gains), ("S", shifts)):
            check(0 <= value <= n, "--number_param", f"{label} must lie in [0, N = {n}], got "
                  f"{value}")
        counts = dict(zip(("weights", "gains", "shifts"), self.number_param, strict=True))
        check(any(counts[name] > 0 for name in self.trained_sets), "--number_param",
              "nothing would be trained: the trained sets ("
              + ", ".join(f"{name} {counts[name]}" for name in self.trained_sets)
              + ") have no trainable entry")


class TrainFixedParam(TrainOnSpectrum):
    name = "train_rd_model_fixed_param"
    config_class = FixedParamConfig

    def memory_terms(self, config: FixedParamConfig, *, itemsize: int) -> list[MemoryTerm]:
        """Those of :class:`~nrmkit.experiments.spectrum_training.training.TrainOnSpectrum`,
        plus the boolean masks of the batch, ``B · N² · (2 + (1 + itemsize)·w)`` bytes
        (each network's mask and their stack; with trained weights (``w = 1``) the complement
        and the entries it restores after every step), and ``16 · N²`` for drawing one mask
        (the int64 indices of the off-diagonal entries and their permutation)."""
        n, batch = config.n, config.samples_per_batch
        trained = "weights" in config.trained_sets
        masks = batch * n * n * (2 + (1 + itemsize) * trained) + DRAW_BYTES_PER_ENTRY * n * n
        return [*super().memory_terms(config, itemsize=itemsize), memory_term(
            {"--samples_per_batch": raised(config, "--samples_per_batch"),
             "--n": raised(config, "--n", 2)}, masks,
            f"the {n}×{n} masks of trainable weights of {plural(batch, 'network')}")]

    def build(self, config, context, generators, shared) -> NetworkBatch:
        import torch

        batch = random_batch(config, context, generators, f"random networks, N={config.n}, "
                             f"g={config.g:g}, trainable W/G/S "
                             f"{'/'.join(map(str, config.number_param))}")
        n = config.n
        off_diagonal = (~torch.eye(n, dtype=torch.bool)).flatten().nonzero().flatten()
        weights, gains, shifts = config.number_param

        def mask(count: int, pool: torch.Tensor, size: int, generator) -> torch.Tensor:
            chosen = torch.zeros(size, dtype=torch.bool)
            chosen[pool[torch.randperm(len(pool), generator=generator)[:count]]] = True
            return chosen

        per_network = [
            {"weights": mask(weights, off_diagonal, n * n, generator).reshape(n, n),
             "gains": mask(gains, torch.arange(n), n, generator).reshape(1, n),
             "shifts": mask(shifts, torch.arange(n), n, generator).reshape(1, n)}
            for generator in generators]
        batch.masks = {name: torch.stack([masks[name] for masks in per_network])
                       .to(context.device) for name in ("weights", "gains", "shifts")}
        return batch
