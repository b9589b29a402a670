"""The memory estimate of an ``smnist`` run (:meth:`Smnist.memory_terms`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrmkit.training.sequence_files import model_file
from nrmkit.training.sequence_memory import STATE_PER_UNIT

if TYPE_CHECKING:
    from nrmkit.experiments.sequences.smnist import SmnistConfig
from nrmkit.training.sequence_memory import (
    DATASET_SIZES,
    saved_floats_per_unit,
    sequence_shape,
    training_memory_terms,
)

#: float64 arrays of orders × conditions × steps × units the fractional-order fit holds at
#: its peak (101 orders, 4 step amplitudes, 150 steps; see
#: :func:`nrmkit.dynamics.fractional.fractional_order`): the derivatives, the complex
#: spectrum they come from and their window of half the steps. Measured: 2.1 arrays
#: (400 units, ``ru_maxrss``).
FRACTIONAL_ARRAYS, FRACTIONAL_SIZE = 2.5, 101 * 4 * 150


def smnist_memory_terms(config: SmnistConfig, *, itemsize: int) -> list:
    """Estimated peak allocations of one ``smnist`` run (one seed of a sweep: seeds run one
    after the other in a process), in bytes:

    * training (:func:`training_memory_terms`): ``itemsize·7·P`` with ``P ≈ blocks·H·(H + I
      + 2)`` (blocks: 1 RNN/ANRU/GLIFR, 4 LSTM, 3 GRU) and ``itemsize·T·B·H·2·s`` with ``s``
      from :func:`saved_floats_per_unit`;
    * the images, as float32 arrays, their sequences and the tensors:
      ``n_images·pixels·(8 + itemsize)``;
    * ``--fractional_order``: ``2.5 · 8 · 101·4·150 · H`` (float64 fits of 101 orders);
    * ``--lyapunov K``: ``itemsize · 8 · samples · K · D``, an allowance of eight copies of
      the tangent vectors for their pushes (``D`` the state dimension,
      :data:`STATE_PER_UNIT` · H; not measured).

    With ``--test`` the model's size is not in the options: its file, loaded and copied into
    the network (``2 ×`` its size), stands for it.
    """
    import os

    from nrmkit.core.base import MemoryTerm

    steps, inputs = sequence_shape(config.dataset, config.input)
    (height, width), n_images = DATASET_SIZES[config.dataset]
    terms = [MemoryTerm("--dataset", n_images * height * width * (8 + itemsize),
                        f"the {n_images:,} {config.dataset} images and their sequences")]
    if config.test:
        try:
            size = os.stat(model_file(config.model)).st_size
        except (OSError, TypeError):
            return terms
        return [*terms, MemoryTerm("--model", 2 * size, f"the saved model {config.model}")]
    hidden = config.nhid
    saved = saved_floats_per_unit(config.net_type, gamma=config.uses_gamma)
    terms += training_memory_terms(config.net_type, hidden=hidden, steps=steps, inputs=inputs,
                                   batch=config.batch, itemsize=itemsize, saved=saved,
                                   hidden_option="--nhid", batch_option="--batch")
    if config.fractional_order:
        terms.append(MemoryTerm("--fractional_order",
                                8 * FRACTIONAL_ARRAYS * FRACTIONAL_SIZE * hidden,
                                f"the fractional-order fit of {hidden} neurons"))
    if config.lyapunov:
        state_dim = STATE_PER_UNIT[config.net_type] * hidden
        terms.append(MemoryTerm("--lyapunov", itemsize * 8 * config.lyapunov_samples
                                * config.lyapunov * state_dim,
                                f"{config.lyapunov} tangent vectors of {state_dim} dimensions"))
    return terms
