r"""N-MNIST (neuromorphic MNIST) read from its binary event files and binned into frames.

N-MNIST (Orchard, Jayawant, Cohen & Thakor 2015, "Converting static image datasets to
spiking neuromorphic datasets using saccades", Front. Neurosci. 9:437) records each MNIST
digit with an ATIS event camera moved in three saccades: 60 000 training and 10 000 test
samples, each a list of events on a 34×34 pixel sensor over about 300 ms. Nothing is
downloaded here: get the data from https://www.garrickorchard.com/datasets/n-mnist and unzip
``Train.zip`` and ``Test.zip`` into one folder (the ``--data-dir``), giving::

    data_dir/Train/0/*.bin ... data_dir/Train/9/*.bin
    data_dir/Test/0/*.bin  ... data_dir/Test/9/*.bin

(``train`` / ``test`` in lower case are accepted too); the label of a sample is the name of
its digit folder.

File format (:func:`read_events`): one file per sample, a plain sequence of events of
40 bits (5 bytes) each, no header:

* byte 0 — x address, ``0..33`` (pixels);
* byte 1 — y address, ``0..33`` (pixels);
* byte 2, bit 7 — polarity, ``1`` for a brightness increase (ON), ``0`` a decrease (OFF);
* bits 22..0 of bytes 2–4 (big-endian) — timestamp in microseconds from the start of the
  recording.

Frames (:func:`event_frames`), as in the GLIFR code of Winston et al. (the ``nmnist`` task:
15 frames of 1 ms, 2312 inputs): frame ``k`` holds the events whose timestamp lies in
``[k·w, (k+1)·w)`` µs with ``w = frame_ms·1000``, counted from the start of the recording
(timestamp 0, not from the first event); events after the last frame are dropped, so the
default 15 frames of 1 ms see only the first 15 ms of each recording. Values are **binary**
(``1.0`` where at least one event of that polarity hit that pixel in that frame, else
``0.0``; no counts, no further normalisation). A frame is flattened from
``(polarity, y, x)`` in row-major order: input ``p·34·34 + y·34 + x``, ``2·34·34 = 2312``
inputs, OFF events first.

Splits (:func:`load_nmnist_splits`): ``{"train" | "validation" | "test": (inputs, labels)}``
with ``inputs`` a time-first tensor ``(T, n, 2312)`` (``T = n_frames``) and ``labels`` int64
``(n,)`` in ``0..9``, as :func:`nrmkit.datasets.digit_sequences.sequence_tensors` returns
them. The validation set is drawn from the training files (the test folder is kept
whole). The full set binned at float32 takes ``70 000·T·2312·4`` bytes (≈ 9.7 GB for
``T = 15``); ``limit`` reads fewer files, and a half-precision ``dtype`` holds the binary
values exactly.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from nrmkit.core.errors import ConfigError, DataError
from nrmkit.core.streams import numpy_generator

__all__ = [
    "DATA_URL",
    "EVENT_BYTES",
    "EVENT_COLUMNS",
    "N_INPUTS",
    "SENSOR_SIZE",
    "VALIDATION_FRACTION",
    "encode_events",
    "event_frames",
    "list_samples",
    "load_nmnist_splits",
    "read_events",
]

#: Where users get the data.
DATA_URL = "https://www.garrickorchard.com/datasets/n-mnist"
#: The sensor is ``SENSOR_SIZE × SENSOR_SIZE`` pixels.
SENSOR_SIZE: int = 34
#: Inputs per frame: two polarities × 34 × 34 pixels.
N_INPUTS: int = 2 * SENSOR_SIZE * SENSOR_SIZE
#: Bytes per event in the binary files.
EVENT_BYTES: int = 5
#: The columns of :func:`read_events`' array.
EVENT_COLUMNS: tuple[str, str, str, str] = ("x", "y", "polarity", "timestamp_us")
#: Default share of the training files set aside for validation (as MNIST's 10 000 of 60 000).
VALIDATION_FRACTION: float = 1 / 6

_N_CLASSES = 10
_SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {"train": ("Train", "train"),
                                              "test": ("Test", "test")}
_HOW_TO_GET = (f"get N-MNIST (Orchard et al. 2015) from {DATA_URL} and unzip Train.zip and "
               "Test.zip into that folder")


# ---------------------------------------------------------------------------------------
# Events and frames
# ---------------------------------------------------------------------------------------
def read_events(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode one N-MNIST binary file.

    Returns:
        ``(n, 4)`` int64, one row per event in file order, columns :data:`EVENT_COLUMNS`:
        x and y address (pixels, ``0..33``), polarity (``0`` OFF, ``1`` ON) and timestamp
        (µs from the start of the recording, ``0 .. 2**23 - 1``). An empty file gives
        ``(0, 4)``.

    Raises:
        DataError: naming the file, when it is missing or unreadable, truncated (its size is
            not a multiple of 5 bytes), or holds an address outside the 34×34 sensor.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read N-MNIST file {path}: {exc.strerror or exc}") from exc
    if len(data) % EVENT_BYTES:
        raise DataError(f"{path}: truncated N-MNIST event file ({len(data)} bytes, not a "
                        f"multiple of {EVENT_BYTES}); unzip it again")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, EVENT_BYTES).astype(np.int64)
    address = raw[:, :2]
    bad = np.flatnonzero((address >= SENSOR_SIZE).any(axis=1))
    if bad.size:
        x, y = address[bad[0]]
        raise DataError(f"{path}: event {bad[0]} has address (x={x}, y={y}) outside the "
                        f"{SENSOR_SIZE}×{SENSOR_SIZE} sensor ({bad.size} such events); not "
                        "an N-MNIST file")
    polarity = raw[:, 2] >> 7
    timestamp = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return np.column_stack([address, polarity, timestamp])


def encode_events(events: np.ndarray) -> bytes:
    """The bytes of an N-MNIST file holding ``events`` (``(n, 4)``: x, y, polarity,
    timestamp in µs, as :func:`read_events` returns them): its inverse, to write event data
    from elsewhere in the standard format."""
    x, y, polarity, timestamp = np.asarray(events, dtype=np.int64).reshape(-1, 4).T
    if np.any((x < 0) | (x >= SENSOR_SIZE) | (y < 0) | (y >= SENSOR_SIZE)):
        raise ValueError(f"addresses must lie on the {SENSOR_SIZE}×{SENSOR_SIZE} sensor")
    if np.any((timestamp < 0) | (timestamp >= 2**23)) or np.any((polarity < 0) | (polarity > 1)):
        raise ValueError("timestamps must lie in [0, 2**23) µs and polarities in {0, 1}")
    raw = np.stack([x, y, (polarity << 7) | (timestamp >> 16), (timestamp >> 8) & 0xFF,
                    timestamp & 0xFF], axis=1)
    return raw.astype(np.uint8).tobytes()


def event_frames(events: np.ndarray, *, n_frames: int = 15, frame_ms: float = 1.0) -> np.ndarray:
    """Bin events into binary frames of fixed duration.

    Frame ``k`` covers timestamps ``[k·w, (k+1)·w)`` µs, ``w = frame_ms·1000`` rounded to
    whole microseconds, from time 0 of the recording; later events are dropped.

    Args:
        events: ``(n, 4)`` integer events (:func:`read_events`).
        n_frames: ``T``, the number of frames.
        frame_ms: the duration of a frame in milliseconds.

    Returns:
        ``(T, 2312)`` float32: ``1.0`` at input ``p·34·34 + y·34 + x`` of frame ``k`` when at
        least one event of polarity ``p`` at pixel ``(x, y)`` falls in frame ``k``, else
        ``0.0`` (binary, not counts).

    Raises:
        ValueError: events that are not ``(n, 4)`` with addresses in ``0..33`` and
            polarities in ``{0, 1}``; ``n_frames < 1``; a frame shorter than 1 µs.
    """
    width_us = _frame_width_us(n_frames, frame_ms)
    frame, channel = _bin(np.asarray(events), n_frames, width_us)
    out = np.zeros((n_frames, N_INPUTS), dtype=np.float32)
    out[frame, channel] = 1.0
    return out


def _frame_width_us(n_frames: int, frame_ms: float) -> int:
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames}")
    width_us = round(float(frame_ms) * 1000.0) if math.isfinite(frame_ms) else 0
    if width_us < 1:
        raise ValueError(f"frame_ms must be at least 0.001 (1 µs), got {frame_ms}")
    return int(width_us)


def _bin(events: np.ndarray, n_frames: int, width_us: int) -> tuple[np.ndarray, np.ndarray]:
    """``(frame, input)`` indices of the events that fall in the first ``n_frames`` frames."""
    if events.ndim != 2 or events.shape[1] != len(EVENT_COLUMNS) or events.dtype.kind not in "iu":
        raise ValueError(f"events must be an integer array of shape (n, 4), got "
                         f"{events.dtype} {events.shape}")
    x, y, polarity, timestamp = (events[:, k].astype(np.int64) for k in range(4))
    if events.size and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) >= SENSOR_SIZE
                        or not np.isin(polarity, (0, 1)).all()):
        raise ValueError(f"event addresses must lie in 0..{SENSOR_SIZE - 1} and polarities "
                         "in {0, 1}")
    frame = np.floor_divide(timestamp, width_us)
    keep = (timestamp >= 0) & (frame < n_frames)
    channel = (polarity * SENSOR_SIZE + y) * SENSOR_SIZE + x
    return frame[keep], channel[keep]


# ---------------------------------------------------------------------------------------
# Files and splits
# ---------------------------------------------------------------------------------------
def list_samples(data_dir: str | os.PathLike[str], split: str) -> tuple[list[Path], np.ndarray]:
    """The ``.bin`` files of ``split`` (``"train"`` or ``"test"``) and their labels.

    Files are those directly in ``data_dir/<Train|train>/<digit>/`` (``<Test|test>`` for
    ``"test"``), digit folders ``0`` … ``9`` (other folders are ignored), sorted by digit and
    then by file name.

    Returns:
        ``(paths, labels)``, ``labels`` int64 ``(n,)``.

    Raises:
        ConfigError: naming ``--data-dir``, when ``data_dir`` is not a folder or the split's
            folder is missing or holds no ``.bin`` file; the message says where to get N-MNIST.
    """
    if split not in _SPLIT_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise ConfigError("--data-dir", f"{folder} is not a folder; {_HOW_TO_GET}")
    names = _SPLIT_FOLDERS[split]
    root = next((folder / name for name in names if (folder / name).is_dir()), None)
    paths: list[Path] = []
    labels: list[int] = []
    if root is not None:
        for digit in range(_N_CLASSES):
            files = sorted((root / str(digit)).glob("*.bin"))
            paths.extend(p for p in files if p.is_file())
            labels.extend([digit] * (len(paths) - len(labels)))
    if not paths:
        where = root if root is not None else folder / names[0]
        raise ConfigError("--data-dir", f"no N-MNIST files in {where}/<digit>/*.bin; "
                          f"{_HOW_TO_GET}")
    return paths, np.asarray(labels, dtype=np.int64)


def load_nmnist_splits(
    data_dir: str | os.PathLike[str],
    *,
    n_frames: int = 15,
    frame_ms: float = 1.0,
    validation_fraction: float = VALIDATION_FRACTION,
    generator: np.random.Generator | None = None,
    limit: int | None = None,
    dtype: Any = None,
    device: Any = None,
) -> dict[str, tuple[Any, Any]]:
    """N-MNIST's train / validation / test splits as time-first frame tensors.

    Args:
        data_dir: the folder with ``Train/`` and ``Test/`` (see the module docstring).
        n_frames, frame_ms: the binning of :func:`event_frames`.
        validation_fraction: share of the (read) training files set aside for validation,
            in ``[0, 1)``: ``round(fraction·n)`` of them, at least 1 when the fraction is
            positive; 0 gives an empty validation split.
        generator: draws the validation set: the last ``n_validation`` files of
            ``generator.permutation(n)``; ``None`` uses a fixed stream (the same split every
            run: a property of the data set, not of a run).
        limit: read at most this many files of each of ``Train/`` and ``Test/``, evenly
            spaced in the sorted file list (so every digit is represented), for quick runs;
            the validation set is drawn from the training files read.
        dtype, device: of the input tensors (float32 and the CPU by default).

    Returns:
        ``{"train" | "validation" | "test": (inputs (T, n, 2312), labels (n,) int64)}``;
        the samples of each split keep the sorted file order.

    Raises:
        ConfigError: naming ``--data-dir``: a missing folder, no files, or a file that
            cannot be read as N-MNIST (the message names the file).
        ValueError: bad ``n_frames``, ``frame_ms``, ``validation_fraction`` or ``limit``.
    """
    import torch

    width_us = _frame_width_us(n_frames, frame_ms)
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {validation_fraction}")
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit}")
    rng = generator if generator is not None else numpy_generator(0, 0, "nmnist validation split")
    sets = {split: _read_split(data_dir, split, n_frames, width_us, limit)
            for split in ("train", "test")}
    frames, labels = sets["train"]
    n = labels.size
    n_validation = math.floor(validation_fraction * n + 0.5)
    if validation_fraction > 0:
        if n < 2:
            raise ConfigError("--data-dir", f"only {n} N-MNIST training file: need at least 2 "
                              "to set some aside for validation")
        n_validation = min(max(n_validation, 1), n - 1)
    order = rng.permutation(n)
    train, validation = np.sort(order[:n - n_validation]), np.sort(order[n - n_validation:])
    parts = {"train": (frames[:, train], labels[train]),
             "validation": (frames[:, validation], labels[validation]),
             "test": sets["test"]}
    dtype = torch.float32 if dtype is None else dtype
    return {name: (torch.as_tensor(x, device=device).to(dtype), torch.as_tensor(y, device=device))
            for name, (x, y) in parts.items()}


def _read_split(data_dir: str | os.PathLike[str], split: str, n_frames: int, width_us: int,
                limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(frames (T, n, 2312) uint8 0/1, labels (n,))`` of one folder."""
    paths, labels = list_samples(data_dir, split)
    if limit is not None and limit < len(paths):
        keep = (np.arange(limit) * len(paths)) // limit
        paths, labels = [paths[i] for i in keep], labels[keep]
    frames = np.zeros((n_frames, len(paths), N_INPUTS), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            frame, channel = _bin(read_events(path), n_frames, width_us)
        except DataError as error:
            raise ConfigError("--data-dir", str(error)) from None
        frames[frame, i, channel] = 1
    return frames, labels
