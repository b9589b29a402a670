"""Parameter counts of the sequence models, and hidden sizes matched to a parameter budget.

The GLIFR comparisons set every model's hidden size so that all have (at most) the trainable
parameters of an RNN of the requested size (Allen Institute GLIFR study: a budget of an RNN
of 256 units on row-wise MNIST gives GLIFR 252 units with learned after-spike currents, 255
without them, 256 with fixed neuron parameters, and LSTM 122 units).
"""

from __future__ import annotations

import math

#: controller units per ANRU neuron (the published value).
ANRU_CONTROLLER_SIZE = 50


def parameter_count(model: str, hidden: int, *, inputs: int, outputs: int,
                    n_ascs: int = 2, learn_neuron: bool = True) -> int:
    """Trainable parameters of a model with ``hidden`` units and its read-out (with bias).

    rnn: ``I·H + H + H²``; lstm: ``4H(I + H) + 8H`` (two bias vectors, as
    ``torch.nn.LSTMCell``); glifr: ``I·H + H² + (2 + 3·n_ascs)·H`` (``V_th, k_m`` and
    ``k_j, r_j, a_j`` per after-spike current), ``I·H + H²`` when the neuron parameters are
    fixed (``learn_neuron=False``: hom, fhet); read-out ``H·O + O``.
    """
    neuron = (2 + 3 * n_ascs) * hidden if learn_neuron else 0
    cell = {"rnn": inputs * hidden + hidden + hidden ** 2,
            "lstm": 4 * hidden * (inputs + hidden) + 8 * hidden,
            "glifr": inputs * hidden + hidden ** 2 + neuron}[model]
    return cell + hidden * outputs + outputs


def matched_hidden_size(model: str, budget: int, *, inputs: int, outputs: int,
                        n_ascs: int = 2, learn_neuron: bool = True) -> int:
    """The largest hidden size whose :func:`parameter_count` does not exceed ``budget``
    (at least 1).

    The count is a quadratic ``a·H² + b·H + c`` in ``H``: its root is the first guess, then
    whole steps make it exact, so a budget of millions of units costs no loop over them.
    """
    def count(hidden: int) -> int:
        return parameter_count(model, hidden, inputs=inputs, outputs=outputs, n_ascs=n_ascs,
                               learn_neuron=learn_neuron)

    constant = count(0)
    quadratic = (count(2) - 2 * count(1) + constant) / 2
    linear = count(1) - constant - quadratic
    room = max(budget - constant, 0)
    hidden = max(1, int((math.sqrt(linear ** 2 + 4 * quadratic * room) - linear)
                        / (2 * quadratic)))
    while count(hidden + 1) <= budget:
        hidden += 1
    while hidden > 1 and count(hidden) > budget:
        hidden -= 1
    return hidden
