"""Atomic checkpoints: a run killed at any moment leaves the last complete one.

A checkpoint is written to a temporary file in the same folder and moved into place with
``os.replace``; it is read back with ``torch.load(weights_only=True)``, which admits only
tensors and plain containers (no arbitrary code from a checkpoint file).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from nrmkit.core.rundir import atomic_write_bytes


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (CPU tensors)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def save_model(path: str | Path, model: Any) -> Path:
    """Save a trained :class:`~nrmkit.nn.rate_rnn.RateRNN` (weights, couplings, gains,
    shifts, populations, activation, dt) atomically; read back with :func:`load_trained_model`.
    """
    weight = model.weight.detach().cpu()
    if model.sparse:
        coo = weight.to_sparse_coo().coalesce()
        weight_record = {"indices": coo.indices(), "values": coo.values(),
                         "shape": list(coo.shape)}
    else:
        weight_record = {"dense": weight}
    state = {
        "weight": weight_record,
        "coupling": model.coupling.detach().cpu(),
        "gain": model.gain.detach().cpu(),
        "shift": model.shift.detach().cpu(),
        "population": None if model.population is None else model.population.cpu(),
        "activation": model.activation.name,
        "dt": model.dt,
        "self_connections": model.self_connections,
    }
    return save_checkpoint(path, state)


def load_trained_model(path: str | Path, *, device: str = "cpu"):
    """The :class:`~nrmkit.nn.rate_rnn.RateRNN` saved in ``path`` (a ``model.pt`` file or the
    run directory holding it), ready for :func:`nrmkit.dynamics.lyapunov_spectrum`."""
    from nrmkit.nn.rate_rnn import RateRNN

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    state = load_checkpoint(path)
    record = state["weight"]
    if "dense" in record:
        weight = record["dense"]
    else:
        weight = torch.sparse_coo_tensor(record["indices"], record["values"],
                                         tuple(record["shape"]), check_invariants=True)
    return RateRNN(weight.to(device), coupling=state["coupling"].to(device),
                   gain=state["gain"].to(device), shift=state["shift"].to(device),
                   population=state["population"], activation=state["activation"],
                   dt=state["dt"], self_connections=state["self_connections"])


def save_dale_network(path: str | Path, network: Any, extras: dict[str, Any] | None = None):
    """Save a :class:`~nrmkit.nn.dale.DaleRateRNN` atomically as
    ``{"kind": "dale_rate_rnn", "spec": …, "state": state_dict, **extras}``."""
    import dataclasses

    return save_checkpoint(path, {"kind": "dale_rate_rnn",
                                  "spec": dataclasses.asdict(network.spec),
                                  "state": network.state_dict(), **(extras or {})})


def load_dale_network(path: str | Path):
    """Read :func:`save_dale_network`'s file; returns ``(network, the whole record)``.

    Raises ``ValueError`` when the file holds something else.
    """
    from nrmkit.nn.dale import DaleRateRNN, DaleSpec

    record = load_checkpoint(path)
    if not isinstance(record, dict) or record.get("kind") != "dale_rate_rnn":
        raise ValueError("not a Dale rate network checkpoint")
    spec_values = dict(record["spec"])
    spec_values["taus"] = tuple(spec_values["taus"])
    network = DaleRateRNN(DaleSpec(**spec_values))
    network.load_state_dict(record["state"])
    return network, record

