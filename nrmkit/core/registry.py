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
WORKFLOWS = Registry("workflow")

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

for _name in ("henaff", "cayley", "orthogonal", "xavier", "kaiming"):
    INITIALIZERS.register_lazy(_name, f"nrmkit.nn.init:{_name}",
                               aliases=("random",) if _name == "orthogonal" else ())

# Nonlinearities of the RNN cell (``--nonlin``): factories ``(n_hidden, **shape) -> module``.
for _name in ("gamma", "gamma2", "ReLU", "tanh"):
    NONLINEARITIES.register_lazy(_name, f"nrmkit.nn.recurrent:{_name.lower()}_nonlinearity")

for _name, _function in (("l2", "l2_loss"), ("MSE", "mse_loss"),
                         ("MSE_Custom", "mse_custom_loss"), ("Sinai", "sinai_loss")):
    LOSSES.register_lazy(_name, f"nrmkit.training.losses:{_function}")

for _name in ("lyapu_convergence", "transition_2_chaos", "spectrum", "lyapu_benchmark",
              "train_rd_model", "train_rd_model_fixed_param", "train_flybrain_full",
              "train_flybrain_pop", "smnist", "train_glifr", "rate_to_lif"):
    WORKFLOWS.register_lazy(_name, f"nrmkit.workflows.{_name}:command")
