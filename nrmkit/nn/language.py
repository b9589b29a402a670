r"""A character-level language model: embedding, one recurrent cell, a decoder at every step.

For a symbol stream ``c_1 … c_T`` (codes in ``0 … V−1``) and a carried state ``s_0``::

    x_t = E[c_t] ∈ ℝ^D,      s_t = cell(x_t, s_{t−1}),      z_t = W_o h_t + b_o ∈ ℝ^V,

and ``softmax(z_t)`` is the predicted distribution of ``c_{t+1}``. The cell is any of the
``MODELS`` registry's sequence cells (RNN with a gamma / ReLU / tanh nonlinearity, ANRU,
LSTM, GRU; :mod:`nrmkit.nn.recurrent`), run by its one time loop
(:func:`~nrmkit.nn.recurrent.run_cell`) from the state given, so that truncated
backpropagation through time can carry the state across segments.

Initialisation (as the published ``PTB_task.py``): embedding and decoder weights
``U(−0.1, 0.1)``, decoder bias 0; the cell's own initialisers (``rinit``, ``iinit``). All
drawn from one ``torch.Generator``: embedding, then cell, then decoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nrmkit.core.registry import MODELS
from nrmkit.nn.recurrent import State, run_cell

#: half-width of the uniform initialisation of the embedding and the decoder.
INIT_RANGE = 0.1


@dataclass(frozen=True)
class CharModelSpec:
    """Everything needed to rebuild a :class:`CharLanguageModel` (saved with its weights)."""

    net_type: str = "RNN"
    nonlin: str = "gamma"
    vocabulary_size: int = 50
    embedding_size: int = 200
    hidden_size: int = 600
    rinit: str = "henaff"
    iinit: str = "kaiming"
    gain: float = 1.0
    saturation: float = 1.0
    random: bool = False
    learn_params: bool = True


class CharLanguageModel(nn.Module):
    """``forward(tokens (T, B) int64, state=None) -> (logits (T, B, V), final state)``."""

    def __init__(self, spec: CharModelSpec, *, generator: torch.Generator | None = None):
        super().__init__()
        self.spec = spec
        vocabulary, width = spec.vocabulary_size, spec.embedding_size
        self.encoder = nn.Embedding(vocabulary, width)
        with torch.no_grad():
            self.encoder.weight.copy_(_uniform((vocabulary, width), generator))
        self.cell = MODELS.get(spec.net_type)(
            width, spec.hidden_size, nonlin=spec.nonlin, rinit=spec.rinit, iinit=spec.iinit,
            gain=spec.gain, saturation=spec.saturation, random=spec.random,
            learn_params=spec.learn_params, generator=generator)
        self.decoder = nn.Linear(spec.hidden_size, vocabulary)
        with torch.no_grad():
            self.decoder.weight.copy_(_uniform((vocabulary, spec.hidden_size), generator))
            self.decoder.bias.zero_()

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        final, trace = run_cell(self.cell, self.encoder(tokens), record=True, state=state)
        return self.decoder(trace["h"]), final

    def project_(self) -> None:
        """Restore the cell's parameter constraints after an optimiser step."""
        self.cell.project_()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _uniform(shape: tuple[int, int], generator: torch.Generator | None) -> Tensor:
    return INIT_RANGE * (2.0 * torch.rand(shape, generator=generator) - 1.0)


def build_char_model(spec: CharModelSpec | dict, *,
                     generator: torch.Generator | None = None) -> CharLanguageModel:
    """A fresh model from a spec (or its dict, as saved in a model file)."""
    if isinstance(spec, dict):
        names = {f.name for f in dataclasses.fields(CharModelSpec)}
        spec = CharModelSpec(**{k: v for k, v in spec.items() if k in names})
    return CharLanguageModel(spec, generator=generator)
