"""Name registries: activations, models, losses, tasks and workflows are looked up by name.

A registry maps a canonical name (plus optional aliases) to an object. Entries can be
registered *lazily* as ``"package.module:attribute"`` strings so that listing the names
(for a command-line ``--help``) never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any


class Registry:
    """A case-insensitive name → object map with aliases and lazy entries.

    Example::

        ACTIVATIONS.register("tanh", obj, aliases=("std",))
        ACTIVATIONS.register_lazy("tanh_pos", "nrmkit.nn.activations:TANH_POS")
        ACTIVATIONS.get("std")  # -> obj
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, obj: Any = None, *, aliases: tuple[str, ...] = ()):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""
        if obj is None:
            def decorator(target):
                self.register(name, target, aliases=aliases)
                return target
            return decorator
        key = name.lower()
        if key in self._entries and self._entries[key] is not obj:
            existing = self._entries[key]
            if not (isinstance(existing, _Lazy) and existing.resolved is obj):
                raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = obj
        for alias in aliases:
            self._aliases[alias.lower()] = key
        return obj

    def register_lazy(self, name: str, target: str, *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``"module:attribute"``, imported on first :meth:`get`."""
        self.register(name, _Lazy(target), aliases=aliases)

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` or one of its aliases (KeyError if unknown)."""
        key = name.lower()
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise KeyError(
                f"unknown {self.kind} {name!r}; choose from {', '.join(self.choices())}"
            )
        return key

    def get(self, name: str) -> Any:
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, _Lazy):
            return entry.resolve()
        return entry

    def location(self, name: str) -> str | None:
        """``"module:attribute"`` of a lazy entry (None for an object registered directly)."""
        entry = self._entries[self.canonical(name)]
        return entry.target if isinstance(entry, _Lazy) else None

    def names(self) -> list[str]:
        """Canonical names, in registration order."""
        return list(self._entries)

    def choices(self) -> list[str]:
        """Canonical names followed by aliases: what a command line accepts."""
        return self.names() + [a for a in self._aliases if a not in self._entries]

    def __contains__(self, name: str) -> bool:
        key = name.lower()
        return self._aliases.get(key, key) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class _Lazy:
    __slots__ = ("resolved", "target")

    def __init__(self, target: str):
        self.target = target
        self.resolved = None

    def resolve(self) -> Any:
        if self.resolved is None:
            module_name, _, attribute = self.target.partition(":")
            self.resolved = getattr(importlib.import_module(module_name), attribute)
        return self.resolved


ACTIVATIONS = Registry("activation")
MODELS = Registry("model")
LOSSES = Registry("loss")
TASKS = Registry("task")
TRANSFER_FUNCTIONS = Registry("transfer function")
INITIALIZERS = Registry("initializer")
NONLINEARITIES = Registry("nonlinearity")
#: click commands of the workflows (the command line)
WORKFLOWS = Registry("workflow")
#: their :class:`~nrmkit.core.base.Workflow` classes (the computation)
EXPERIMENTS = Registry("experiment")

# Built-in entries. Names only: nothing heavy is imported until an entry is used.
ACTIVATIONS.register_lazy("tanh", "nrmkit.nn.activations:TANH", aliases=("std",))
ACTIVATIONS.register_lazy(
    "tanh_stretch", "nrmkit.nn.activations:TANH_STRETCH",
    aliases=("strech", "tanh_streched", "tanh_strech", "tanh_stretched"),
)
ACTIVATIONS.register_lazy("tanh_pos", "nrmkit.nn.activations:TANH_POS", aliases=("pos",))
ACTIVATIONS.register_lazy("linear", "nrmkit.nn.activations:LINEAR")

MODELS.register_lazy("rate_rnn", "nrmkit.nn.rate_rnn:RateRNN")
# Recurrent cells of the sequence tasks (``--net-type``), canonical names as on the CLI.
for _name, _cell in (("RNN", "RNNCell"), ("ANRU", "ANRUCell"), ("LSTM", "LSTMCell"),
                     ("GRU", "GRUCell")):
    MODELS.register_lazy(_name, f"nrmkit.nn.recurrent:{_cell}")
MODELS.register_lazy("GLIFR", "nrmkit.nn.glifr:GLIFRCell")
MODELS.register_lazy("dale_rate_rnn", "nrmkit.nn.dale:DaleRateRNN")

# Cognitive tasks of rate_to_lif and the transfer functions of its Dale rate networks.
for _name, _task in (("go-nogo", "GO_NOGO"), ("xor", "XOR_TASK"), ("mante", "MANTE")):
    TASKS.register_lazy(_name, f"nrmkit.datasets.cognitive:{_task}")
for _name in ("sigmoid", "clipped_relu", "softplus"):
    TRANSFER_FUNCTIONS.register_lazy(_name, f"nrmkit.nn.dale:{_name.upper()}")

for _name in ("henaff", "cayley", "orthogonal", "xavier", "kaiming", "uniform", "normal"):
    INITIALIZERS.register_lazy(_name, f"nrmkit.nn.init:{_name}",
                               aliases=("random",) if _name == "orthogonal" else ())

# Nonlinearities of the RNN cell (``--nonlin``): factories ``(n_hidden, **shape) -> module``.
for _name in ("gamma", "gamma2", "ReLU", "tanh"):
    NONLINEARITIES.register_lazy(_name, f"nrmkit.nn.recurrent:{_name.lower()}_nonlinearity")
for _name in ("modrelu", "sigmoid"):
    NONLINEARITIES.register_lazy(_name, f"nrmkit.nn.pointwise:{_name}_nonlinearity")

for _name, _function in (("l2", "l2_loss"), ("MSE", "mse_loss"),
                         ("MSE_Custom", "mse_custom_loss"), ("Sinai", "sinai_loss"),
                         ("Sinai_max", "sinai_max_loss")):
    LOSSES.register_lazy(_name, f"nrmkit.training.losses:{_function}")

#: every workflow: (name, family, class, one-line summary). The family names the experiment package
#: ``nrmkit.experiments.<family>.<name>`` (its :class:`~nrmkit.core.base.Workflow` class) and
#: the command module ``nrmkit.cli.commands.<family>`` (its click command ``<name>``); the
#: console scripts of ``pyproject.toml``, the umbrella ``nrmkit`` command and its summaries
#: all come from here (a test checks pyproject against it).
WORKFLOW_TABLE = (
    ("lyapu_convergence", "lyapunov", "Convergence",
     "Convergence of the Lyapunov exponents in time, per t_ONS."),
    ("transition_2_chaos", "lyapunov", "TransitionToChaos",
     "λ_max of random networks across couplings (transition to chaos)."),
    ("spectrum", "lyapunov", "Spectrum",
     "Full spectra, Kaplan–Yorke dimension and entropy vs coupling."),
    ("lyapu_benchmark", "lyapunov", "LyapunovBenchmark",
     "Speed of the engine against the dense-Jacobian reference."),
    ("train_rd_model", "spectrum_training", "TrainRandomModel",
     "Train random networks on their Lyapunov spectrum."),
    ("train_rd_model_fixed_param", "spectrum_training", "TrainFixedParam",
     "Train a fixed number of parameters on the spectrum."),
    ("train_flybrain_full", "spectrum_training", "TrainFlybrainFull",
     "Train per-neuron gains/shifts of a connectome network."),
    ("train_flybrain_pop", "spectrum_training", "TrainFlybrainPop",
     "Train population-shared gains/shifts of a connectome network."),
    ("smnist", "sequences", "Smnist",
     "Gamma RNN / ANRU / LSTM / GRU on sequential (permuted) digits."),
    ("ptb_task", "sequences", "PtbTask",
     "Character-level Penn Treebank language model; bits per character."),
    ("smnist_grid", "sequences", "SmnistGrid",
     "smnist over a grid of fixed gamma shapes (n, s): accuracy heat map."),
    ("smnist_analysis", "sequences", "SmnistAnalysis",
     "Information, Jacobian norm, step λ₁ and gradient norms of a trained smnist model."),
    ("train_glifr", "glifr", "TrainGlifr",
     "GLIFR networks (and matched RNN/LSTM) on sine generation and digits."),
    ("rate_to_lif", "rate_to_lif", "RateToLif",
     "Dale rate RNNs on cognitive tasks, converted to spiking LIF networks."),
)
for _name, _family, _class, _summary in WORKFLOW_TABLE:
    WORKFLOWS.register_lazy(_name, f"nrmkit.cli.commands.{_family}:{_name}")
    EXPERIMENTS.register_lazy(_name, f"nrmkit.experiments.{_family}.{_name}:{_class}")


#: the one-line summary of each workflow (``nrmkit --help``).
WORKFLOW_SUMMARIES = {row[0]: row[3] for row in WORKFLOW_TABLE}


def workflow_named(name: str) -> Any:
    """A fresh :class:`~nrmkit.core.base.Workflow` of the registered workflow ``name``."""
    return EXPERIMENTS.get(name)()
