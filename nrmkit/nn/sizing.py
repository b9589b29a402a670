"""Parameter counts of the sequence models, and hidden sizes matched to a parameter budget.

The GLIFR comparisons set every model's hidden size so that all have (at most) the trainable
parameters of an RNN of the requested size (Allen Institute GLIFR study: a budget of an RNN
of 256 units on row-wise MNIST gives GLIFR 252 and LSTM 122 units).
"""

from __future__ import annotations

import math

#: controller units per ANRU neuron (the published value).
ANRU_CONTROLLER_SIZE = 50


def parameter_count(model: str, hidden: int, *, inputs: int, outputs: int,
                    n_ascs: int = 2) -> int:
    """Trainable parameters of a model with ``hidden`` units and its read-out (with bias).

    rnn: ``I·H + H + H²``; lstm: ``4H(I + H) + 4H``; glifr: ``I·H + H² + (2 + 3·n_ascs)·H``
    (``V_th, k_m`` and ``k_j, r_j, a_j`` per after-spike current); read-out ``H·O + O``.
    """
    cell = {"rnn": inputs * hidden + hidden + hidden ** 2,
            "lstm": 4 * hidden * (inputs + hidden) + 4 * hidden,
            "glifr": inputs * hidden + hidden ** 2 + (2 + 3 * n_ascs) * hidden}[model]
    return cell + hidden * outputs + outputs


def matched_hidden_size(model: str, budget: int, *, inputs: int, outputs: int,
                        n_ascs: int = 2) -> int:
    """The largest hidden size whose :func:`parameter_count` does not exceed ``budget``
    (at least 1).

    The count is a quadratic ``a·H² + b·H + c`` in ``H``: its root is the first guess, then
    whole steps make it exact, so a budget of millions of units costs no loop over them.
    """
    def count(hidden: int) -> int:
        return parameter_count(model, hidden, inputs=inputs, outputs=outputs, n_ascs=n_ascs)

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
