r"""MATLAB ``.mat`` model files of the published rate-to-spiking code (Kim, Li & Sejnowski 2019).

A trained rate network is stored with the published field names and layout, so that models
trained by the original TensorFlow code convert here and models trained here run in the
original MATLAB scripts. :func:`read_rate_model_mat` returns the squeezed form:

========================  =================  ==================================================
field                     written            meaning (read back as)
========================  =================  ==================================================
``w``                     ``(N, N)``         trained recurrent weights after the ReLU, unsigned,
                                             ``W[post, pre]`` (``(N, N)`` float)
``w0``                    ``(N, N)``         the same before training (optional; needed by
                                             ``--use_initial_weights``)
``w_in``                  ``(N, I)``         input weights (``(N, I)`` float, stays 2-D)
``w_in0``                 ``(N, I)``         the same before training (optional; ``W_in`` is
                                             fixed, so it equals ``w_in``)
``w_out``                 ``(1, N)``         read-out weights (``(N,)``)
``b_out``                 ``(1, 1)``         read-out bias (float; 0 when absent)
``taus``                  ``(1, 2)`` or      ``[τ_min, τ_max]`` in 5-ms steps, or ``[τ]`` when τ
                          ``(1, 1)``         is fixed (``(2,)`` or ``(1,)`` float)
``taus_gaus``             ``(N, 1)``         the raw parameter τ̃; the decay of unit ``i`` is
                                             ``τ_min + (τ_max − τ_min)·sigmoid(τ̃_i)`` steps
``taus_gaus0``            ``(N, 1)``         τ̃ before training (optional; the published LIF
                                             function reads it whenever τ trains)
``m``                     ``(N, N)``         Dale sign matrix ``diag(s)``, ``s_j = +1`` for an
                                             excitatory and ``−1`` for an inhibitory unit ``j``
``som_m``                 ``(N, N)``         0/1 connectivity mask (all ones without SOM cells)
``exc``, ``inh``          ``(N, 1)``         excitatory / inhibitory units (``(N,)`` bool)
``N``, ``som_N``          ``(1, 1)``         number of units, of SOM units (int)
``activation``            string             e.g. ``"sigmoid"`` (str; ``sigmoid`` when absent)
``eval_perf_mean``,       ``(1, 1)``         last evaluation's accuracy / loss (float)
``eval_loss_mean``
``losses``                ``(1, n)``         training loss of every update (``(n,)``)
``tr``                    ``(1, 1)``         index of the last training trial (int)
``task``                  string             task name (str)
``x0``, ``r0``            ``(T+1, N, 1)``    states and rates of the untrained network on one
                                             trial, ``x_0`` first (optional; ``(T+1, N)``)
``x``, ``r``, ``o``       ``(T+1, N, 1)``,   the trained network on one trial: states, rates
                          ``(T, 1, 1)``      and read-out (optional; ``(T+1, N)``, ``(T,)``)
``u``, ``target``         ``(I, T)``,        that trial's input and target (optional;
                          ``(1, T)``         ``(I, T)``, ``(T,)``)
``eval_os``               ``(n, T)``         read-outs of the last evaluation's ``n`` trials
``eval_labels``           ``(1, n)`` or      their labels (``(n,)``): numbers, or for XOR the
                          ``n`` strings      strings ``same``/``diff`` (a list of str)
========================  =================  ==================================================

The per-trial fields follow the published layout (a list of ``(N, 1)`` column vectors per
step, stored time first), with ``T + 1`` states where the published code has ``T`` (it runs
``T − 1`` updates per trial).

The Dale-signed weights the networks use are ``W_eff = (w @ m) ⊙ som_m``
(:func:`effective_weights`): ``m`` multiplies column ``j`` by the sign of presynaptic unit
``j``, as in the published ``relu(w) · m ⊙ som_m``.

Required fields (reading fails with :class:`~nrmkit.core.errors.DataError` naming the missing
ones): ``w, w_in, w_out, taus, taus_gaus, m, som_m, exc, inh, N`` — what the published LIF
code loads. Every other field present is returned as well. The fields that define the
network (:data:`NETWORK_FIELDS`) must be finite where a model is built from them
(:mod:`nrmkit.experiments.rate_to_lif.models` refuses a file holding NaN or inf there).
"""

from __future__ import annotations

import datetime as _dt
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from nrmkit.core.errors import DataError
from nrmkit.core.files import atomic_write_bytes

REQUIRED_FIELDS = ("w", "w_in", "w_out", "taus", "taus_gaus", "m", "som_m", "exc", "inh", "N")
#: the numbers a network's dynamics and read-out are built from.
NETWORK_FIELDS = ("w", "w_in", "w_out", "b_out", "taus", "taus_gaus", "m", "som_m")
_MATRICES = ("w", "w0", "w_in", "w_in0", "m", "som_m", "u", "eval_os")
_ROWS = ("w_out", "taus", "losses", "target")               # written (1, n), read (n,)
_STATES = ("x0", "r0", "x", "r")                            # written (T, N, 1), read (T, N)
_SCALAR_SERIES = ("o",)                                     # written (T, 1, 1), read (T,)
_COLUMNS = ("taus_gaus", "taus_gaus0")                      # written (n, 1), read (n,)
_BOOLEANS = ("exc", "inh")                                  # written (n, 1), read (n,) bool
_INTEGERS = ("N", "som_N", "tr")
_FLOATS = ("b_out", "eval_perf_mean", "eval_loss_mean")
_STRINGS = ("activation", "task")


def _to_mat(name: str, value: Any) -> Any:
    if name in _STRINGS:
        return str(value)
    if name == "eval_labels":
        arr = np.asarray(value)
        return arr if arr.dtype.kind in "US" else arr.astype(np.float64).reshape(1, -1)
    if name in _STATES:
        arr = np.asarray(value, dtype=np.float64)
        return arr.reshape(arr.shape[0], -1, 1)
    if name in _SCALAR_SERIES:
        return np.asarray(value, dtype=np.float64).reshape(-1, 1, 1)
    if name in _INTEGERS:
        return np.array([[int(value)]], dtype=np.float64)
    if name in _FLOATS:
        return np.array([[float(value)]], dtype=np.float64)
    arr = np.asarray(value)
    if name in _BOOLEANS:
        return arr.astype(bool).reshape(-1, 1)
    if name in _ROWS:
        return arr.astype(np.float64).reshape(1, -1)
    if name in _COLUMNS:
        return arr.astype(np.float64).reshape(-1, 1)
    if name in _MATRICES:
        arr = arr.astype(np.float64)
        return arr.reshape(-1, 1) if arr.ndim == 1 else arr
    return arr


def write_rate_model_mat(path: str | os.PathLike, fields: Mapping[str, Any]) -> Path:
    """Write a rate model as a MATLAB ``.mat`` file, atomically; returns the path.

    ``fields`` must hold every required field (see the module docstring); optional and extra
    fields are written too. The file is serialised in memory and written with
    :func:`~nrmkit.runs.rundir.atomic_write_bytes` (a temporary file moved into place), so a
    reader never sees a partial file.
    """
    missing = [f for f in REQUIRED_FIELDS if f not in fields]
    if missing:
        raise ValueError(f"missing required field(s): {', '.join(missing)}")
    path = Path(path)
    data = {name: _to_mat(name, value) for name, value in fields.items()}
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, data, do_compression=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _from_mat(name: str, value: Any) -> Any:
    if name in _STRINGS:
        arr = np.asarray(value)
        if arr.dtype.kind in "US":
            return "".join(str(x) for x in arr.ravel())
        return str(arr.squeeze())
    arr = np.asarray(value)
    if name == "eval_labels":
        if arr.dtype.kind in "US":
            return [str(label).strip() for label in arr.reshape(-1)]
        return arr.reshape(-1).astype(np.float64)
    if name in _STATES:
        return arr.reshape(arr.shape[0], -1).astype(np.float64)
    if name in _SCALAR_SERIES:
        return arr.reshape(-1).astype(np.float64)
    if name in _INTEGERS:
        number = float(arr.squeeze())
        if not number.is_integer():
            raise ValueError(f"a whole number is needed, got {number:g}")
        return int(number)
    if name in _FLOATS:
        return float(arr.squeeze())
    if name in _BOOLEANS:
        flags = arr.reshape(-1)
        if flags.dtype != bool and not np.isin(flags, (0, 1)).all():
            raise ValueError("only 0 and 1 (or booleans) are allowed")
        return flags.astype(bool)
    if name in _ROWS or name in _COLUMNS:
        return arr.reshape(-1).astype(np.float64)
    if name in _MATRICES:
        return np.atleast_2d(arr).astype(np.float64)
    return arr


def read_rate_model_mat(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``.mat`` rate model, squeezing MATLAB's 2-D shapes (see the module docstring).

    Raises:
        DataError: the file is missing or unreadable, or required fields are absent.
    """
    path = Path(path)
    try:
        raw = scipy.io.loadmat(str(path), squeeze_me=False, chars_as_strings=True)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except Exception as exc:    # scipy raises several types (ValueError, MatReadError, …)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: not a readable MATLAB .mat file ({reason})") from exc
    missing = [f for f in REQUIRED_FIELDS if f not in raw]
    if missing:
        raise DataError(f"{path}: missing required field(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name.startswith("__"):
            continue
        try:
            out[name] = _from_mat(name, value)
        except (TypeError, ValueError) as exc:
            reason = " ".join(str(exc).split())
            raise DataError(f"{path}: field {name!r} is malformed ({reason})") from exc
    out.setdefault("b_out", 0.0)
    out.setdefault("activation", "sigmoid")
    n = out["N"]
    for name in ("w", "m", "som_m", "w0"):
        if name in out and out[name].shape != (n, n):
            raise DataError(f"{path}: field {name!r} has shape {out[name].shape}, "
                            f"expected ({n}, {n})")
    if out["taus"].size not in (1, 2):
        raise DataError(f"{path}: field 'taus' must hold [tau_min, tau_max] or [tau], got "
                        f"{out['taus'].size} values")
    for name in ("w_out", "taus_gaus", "exc", "inh", "taus_gaus0"):
        if name in out and out[name].shape != (n,):
            raise DataError(f"{path}: field {name!r} has {out[name].size} values, expected {n}")
    if out["w_in"].shape[0] != n:
        raise DataError(f"{path}: field 'w_in' has shape {out['w_in'].shape}, expected ({n}, I)")
    return out


def effective_weights(fields: Mapping[str, Any]) -> np.ndarray:
    """Dale-signed ``(N, N)`` weights ``W_eff = (w @ m) ⊙ som_m``."""
    w_eff = np.asarray(fields["w"], dtype=np.float64) @ np.asarray(fields["m"], dtype=np.float64)
    return w_eff * np.asarray(fields["som_m"], dtype=np.float64)


def mat_file_name(task: str, n: int, taus, activation: str,
                  timestamp: str | _dt.datetime) -> str:
    """The published file name: ``Task_<task>_N_<N>_Taus_<min>_<max>_Act_<act>_<time>.mat``
    for a trainable ``taus = (min, max)``, ``Task_<task>_N_<N>_Tau_<τ>_Act_<act>_<time>.mat``
    for a fixed ``taus = (τ,)``.

    τ values (in steps) are written as Python ``str(float(x))`` (``4`` → ``4.0``, as the
    published code, whose τ option was a float); a :class:`datetime.datetime` timestamp is
    written ``%Y_%m_%d_%H%M%S``; a string as given.
    """
    if isinstance(timestamp, _dt.datetime):
        timestamp = timestamp.strftime("%Y_%m_%d_%H%M%S")
    return f"Task_{task}_N_{int(n)}_{_taus_label(taus)}_Act_{activation}_{timestamp}.mat"


def model_folder(task: str, p_rec: float, taus, *, apply_dale: bool = True) -> Path:
    """The published folder of a model, relative to the output folder:
    ``models/<task>/[NoDale/]P_rec_<p_rec>_Taus_<min>_<max>`` (``…_Tau_<τ>`` for a fixed τ),
    where the published MATLAB scripts look for ``*.mat`` files."""
    folder = Path("models") / task
    if not apply_dale:
        folder = folder / "NoDale"
    return folder / f"P_rec_{float(p_rec)}_{_taus_label(taus)}"


def _taus_label(taus) -> str:
    """``Taus_<min>_<max>`` or ``Tau_<τ>`` (τ in steps, as ``str(float)``)."""
    values = [float(t) for t in np.asarray(taus, dtype=np.float64).reshape(-1)]
    if len(values) == 1:
        return f"Tau_{values[0]}"
    if len(values) != 2:
        raise ValueError(f"taus must hold [min, max] or [τ], got {values}")
    return f"Taus_{values[0]}_{values[1]}"
