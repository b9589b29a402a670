"""Atomic checkpoints and model files: written whole or not at all, read back validated.

A checkpoint is written to a temporary file in the same folder and moved into place
(:func:`~nrmkit.runs.rundir.atomic_write_bytes`), so a run killed at any moment leaves the last
complete one. :func:`load_checkpoint` is the one place where torch files are read: with
``torch.load(weights_only=True)``, which admits only tensors and plain containers (no
arbitrary code from a file), and with every failure of a damaged or foreign file turned into
one :class:`~nrmkit.core.errors.DataError` line naming the file. Loaders of trained models
refuse non-finite weights (:func:`require_finite`): a model holding NaN would otherwise run
and report meaningless scores.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nrmkit.core.errors import DataError
from nrmkit.core.files import atomic_write_bytes

#: what torch raises on a truncated, damaged or foreign file (found by truncating and
#: corrupting real checkpoints at random: its zip reader raises RuntimeError, an empty file
#: EOFError, a text file KeyError, damaged records ValueError/UnicodeDecodeError/IndexError/
#: TypeError, a pickle that is not torch's UnpicklingError).
_UNREADABLE = (EOFError, RuntimeError, ValueError, KeyError, IndexError, TypeError,
               AttributeError, OverflowError, pickle.UnpicklingError, zipfile.BadZipFile,
               struct.error)
#: what ``load_state_dict`` and the model constructors raise on a readable torch file that
#: holds something else (missing entries, other shapes, other types).
_MISMATCH = (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError)
#: the advice of a run checkpoint that cannot be used.
_RESTART = "delete it to restart that part of the run from scratch"


def describe_error(error: BaseException, *, limit: int = 160) -> str:
    """``error`` as a few words on one line (torch's messages span several lines)."""
    if isinstance(error, KeyError) and error.args:
        return f"it has no entry {error.args[0]!r}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path, *, what: str = "an nrmkit checkpoint") -> dict[str, Any]:
    """Read a file written by :func:`save_checkpoint` (tensors on the CPU).

    Only tensors and plain containers are unpickled (``weights_only=True``); the file must
    hold a dict. ``what`` names the kind of file expected, for the message.

    Raises:
        DataError: one line naming the file: it cannot be read (missing, a folder, no
            permission), is truncated or not a torch file, holds other objects (refused for
            safety, never loaded with ``weights_only=False``), or holds no dict.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or describe_error(error)}") \
            from None
    try:
        with handle, warnings.catch_warnings():
            # torch warns about pickle protocols of foreign files; the outcome is reported
            # below as one line, or the file is fine.
            warnings.simplefilter("ignore")
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except (*_UNREADABLE, OSError) as error:   # OSError: seeking in a truncated archive
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]{1,100})", str(error))
        if refused is None:
            raise DataError(f"{path} is not {what} (truncated or not a torch file)") \
                from None
        raise DataError(f"{path} is not {what}: it holds objects other than tensors and "
                        f"plain containers ({refused.group(1)}) and is refused for safety") \
            from None
    if not isinstance(state, dict):
        raise DataError(f"{path} is not {what} (it holds a {type(state).__name__}, not a "
                        "dict)")
    return state


def restore_checkpoint(path: str | Path, target: Any, *, key: str | None = None
                       ) -> dict[str, Any]:
    """Resume ``target`` (a trainer) from the run checkpoint ``path``: its
    ``load_state_dict`` gets the checkpoint (or its entry ``key``); returns the checkpoint.

    Raises:
        DataError: the checkpoint is unreadable (see :func:`load_checkpoint`) or does not fit
            ``target`` (another model size or kind, entries missing); the message names the
            file and says to delete it to restart that part of the run.
    """
    try:
        state = load_checkpoint(path)
    except DataError as error:
        raise DataError(f"{error}; {_RESTART}") from None
    try:
        target.load_state_dict(state if key is None else state[key])
    except _MISMATCH as error:
        raise DataError(f"checkpoint {path} does not fit this run ({describe_error(error)}); "
                        f"{_RESTART}") from None
    return state


def require_finite(values: Mapping[str, Any], source: str | Path) -> None:
    """Refuse non-finite numbers in ``values`` (name → tensor or array) read from ``source``.

    Integer and boolean entries are skipped; a sparse tensor is checked on its values.

    Raises:
        DataError: ``"<source>: <name> holds <k> non-finite values (NaN or inf)"`` for the
            first entry holding any.
    """
    import numpy as np

    for name, value in values.items():
        if isinstance(value, torch.Tensor):
            if value.is_sparse:
                value = value.coalesce().values()
            if not (value.is_floating_point() or value.is_complex()):
                continue
            bad = int((~torch.isfinite(value.detach())).sum())
        else:
            array = np.asarray(value)
            if array.dtype.kind not in "fc":
                continue
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            plural = "s" if bad > 1 else ""
            raise DataError(f"{source}: {name} holds {bad} non-finite value{plural} "
                            "(NaN or inf)")


def build_from_record(path: Path, what: str, build):
    """``build()`` from a file's record; a record of another layout (entries missing, other
    types or shapes) becomes one :class:`DataError` line naming the file."""
    try:
        return build()
    except DataError:
        raise
    except _MISMATCH as error:
        raise DataError(f"{path} is not {what} ({describe_error(error)})") from None


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
    run directory holding it), ready for :func:`nrmkit.dynamics.lyapunov_spectrum`.

    Raises:
        DataError: naming the file: unreadable (see :func:`load_checkpoint`), not a model
            saved by :func:`save_model`, or non-finite weights, couplings, gains or shifts.
    """
    from nrmkit.nn.rate_rnn import RateRNN

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    what = "an nrmkit model file"
    state = load_checkpoint(path, what=what)

    def build():
        record = state["weight"]
        dense = "dense" in record
        values = record["dense"] if dense else record["values"]
        require_finite({"weight": values, "coupling": state["coupling"],
                        "gain": state["gain"], "shift": state["shift"]}, path)
        weight = values if dense else torch.sparse_coo_tensor(
            record["indices"], values, tuple(record["shape"]), check_invariants=True)
        return RateRNN(weight.to(device), coupling=state["coupling"].to(device),
                       gain=state["gain"].to(device), shift=state["shift"].to(device),
                       population=state["population"], activation=state["activation"],
                       dt=state["dt"], self_connections=state["self_connections"])

    return build_from_record(path, what, build)


def save_dale_network(path: str | Path, network: Any, extras: dict[str, Any] | None = None):
    """Save a :class:`~nrmkit.nn.dale.DaleRateRNN` atomically as
    ``{"kind": "dale_rate_rnn", "spec": …, "state": state_dict, **extras}``."""
    import dataclasses

    return save_checkpoint(path, {"kind": "dale_rate_rnn",
                                  "spec": dataclasses.asdict(network.spec),
                                  "state": network.state_dict(), **(extras or {})})


def load_dale_network(path: str | Path):
    """Read :func:`save_dale_network`'s file; returns ``(network, the whole record)``.

    The network is built only once the stored weights are known to be ``N × N`` for the
    stored ``N`` and finite, so a foreign record cannot make it allocate another size.

    Raises:
        DataError: naming the file: unreadable (see :func:`load_checkpoint`), not a Dale
            rate network, or non-finite weights.
    """
    from nrmkit.nn.dale import DaleRateRNN, DaleSpec

    path = Path(path)
    what = "a rate_to_lif model file"
    record = load_checkpoint(path, what=what)
    if record.get("kind") != "dale_rate_rnn":
        raise DataError(f"{path} is not {what} (it holds no Dale rate network)")

    def build():
        spec_values = dict(record["spec"])
        spec_values["taus"] = tuple(spec_values["taus"])
        spec = DaleSpec(**spec_values)
        state = record["state"]
        if tuple(state["w"].shape) != (spec.n, spec.n):
            raise ValueError(f"its weights w have shape {tuple(state['w'].shape)}, not "
                             f"({spec.n}, {spec.n})")
        require_finite(state, path)
        network = DaleRateRNN(spec)
        network.load_state_dict(state)
        return network

    return build_from_record(path, what, build), record
