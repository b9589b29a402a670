"""Memory estimates of training sequence models, made before anything is allocated.

The constants are measured (``ru_maxrss`` and ``torch.autograd.graph.saved_tensors_hooks``,
2-core CPU); every estimate is an upper bound of the peak, not a lower bound.
"""

from __future__ import annotations

from nrmkit.nn.sizing import ANRU_CONTROLLER_SIZE

#: ``(image height, width)`` and the number of images (train + validation + test) of each
#: dataset: the sequences of ``--input rows`` have ``height`` steps of ``width`` inputs,
#: those of ``--input pixels`` ``height·width`` steps of one input.
DATASET_SIZES = {"digits": ((8, 8), 1797), "mnist": ((28, 28), 70_000)}


#: hidden-to-hidden (and input-to-hidden) weight blocks of each cell: gates of LSTM and GRU.
WEIGHT_BLOCKS = {"RNN": 1, "ANRU": 1, "LSTM": 4, "GRU": 3, "GLIFR": 1}


#: floats that autograd keeps per time step, sequence and hidden unit for backpropagation
#: (counted with ``torch.autograd.graph.saved_tensors_hooks``): ANRU keeps its 50-unit
#: controller state of every neuron; GLIFR see :func:`saved_floats_per_unit`.
SAVED_PER_UNIT = {"RNN": 1, "ANRU": ANRU_CONTROLLER_SIZE + 7, "LSTM": 7, "GRU": 8}


#: peak resident memory over what autograd keeps: the allocator holds on to the freed
#: per-step temporaries (measured ``ru_maxrss`` over the saved tensors: 1.3–4 for the cells
#: above, at 100 sequences of 16 to 512 steps of 100 to 400 units).
ALLOCATOR_SLACK = 2


#: copies of the parameters during training: the parameters, their gradients, Adam's two
#: moments, and a checkpoint (parameters and moments serialised into one buffer). Measured:
#: 7.0 copies of the parameters' size at peak (RNN of 3000 units, ``ru_maxrss``).
TRAINING_COPIES = 4 + 3


def sequence_shape(dataset: str, input_mode: str) -> tuple[int, int]:
    """``(steps, inputs)`` of the sequences of ``dataset`` presented by ``input_mode``."""
    (height, width), _ = DATASET_SIZES[dataset]
    return (height, width) if input_mode == "rows" else (height * width, 1)


def saved_floats_per_unit(net_type: str, *, gamma: bool = False, per_step: bool = False,
                          n_ascs: int = 2, dropout: bool = False) -> int:
    """Floats autograd keeps per time step, sequence and hidden unit of a sequence model:
    :data:`SAVED_PER_UNIT` (+1 for a gamma nonlinearity's shape); GLIFR ``5 + 2·n_ascs``
    (its currents; a synaptic delay line only refers to rates kept anyway); +1 with a
    read-out at every step; +1 for a dropout mask."""
    if net_type == "GLIFR":
        saved = 5 + 2 * n_ascs
    else:
        saved = SAVED_PER_UNIT[net_type] + (1 if gamma else 0)
    return saved + (1 if per_step else 0) + (1 if dropout else 0)


def sequence_model_parameters(net_type: str, hidden: int, inputs: int) -> int:
    """Parameters of a cell with its 10-class read-out, up to a few ``hidden`` (an upper
    bound for every cell: the weight blocks, their biases, gamma or neuron parameters)."""
    return (WEIGHT_BLOCKS[net_type] * hidden * (hidden + inputs + 2) + 20 * hidden
            + 3 * ANRU_CONTROLLER_SIZE ** 2)


def training_memory_terms(net_type: str, *, hidden: int, steps: int, inputs: int,
                          batch: int, itemsize: int, saved: int, hidden_option: str,
                          batch_option: str):
    """The two large allocations of training a sequence model with Adam, in bytes:

    * ``itemsize · TRAINING_COPIES · P`` — the ``P`` parameters, their gradients, Adam's two
      moments and a checkpoint of parameters and moments (serialised);
    * ``itemsize · steps · batch · hidden · ALLOCATOR_SLACK · saved`` — the activations
      that backpropagation through time keeps for every step of a batch (``saved`` from
      :func:`saved_floats_per_unit`).
    """
    from nrmkit.core.base import MemoryTerm

    parameters = sequence_model_parameters(net_type, hidden, inputs)
    return [
        MemoryTerm(hidden_option, itemsize * TRAINING_COPIES * parameters,
                   f"the {parameters:,} parameters of the {hidden:,}-unit {net_type} with their "
                   "gradients, Adam state and checkpoint copies"),
        MemoryTerm(batch_option, itemsize * steps * batch * hidden * ALLOCATOR_SLACK * saved,
                   f"the activations of {batch} sequences × {steps} steps × {hidden} units "
                   "kept for backpropagation"),
    ]


#: state dimensions per hidden unit (GLIFR: rate, voltage, two after-spike currents and the
#: one-step delay buffer).
STATE_PER_UNIT = {"RNN": 1, "GRU": 1, "LSTM": 2, "ANRU": 1 + ANRU_CONTROLLER_SIZE, "GLIFR": 5}
