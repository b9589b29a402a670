"""N-MNIST: decoding the 40-bit event files, binary frames, the folder splits and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nrmkit.core.errors import ConfigError, DataError
from nrmkit.datasets.nmnist import (
    DATA_URL,
    N_INPUTS,
    event_frames,
    load_nmnist_splits,
    read_events,
)
from nrmkit.datasets.nmnist import encode_events as encode

SIDE = 34


# -- helpers ------------------------------------------------------------------------------
def encode_events(x, y, polarity, timestamp_us) -> bytes:
    """Raw packing without checks (the tests also write invalid files); equal to the
    module's :func:`encode_events` on valid events (tested)."""
    x, y, p, t = (np.asarray(v, dtype=np.int64) for v in (x, y, polarity, timestamp_us))
    raw = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], axis=1)
    return raw.astype(np.uint8).tobytes()


def test_encode_events_is_the_inverse_of_read_events(tmp_path):
    events = np.array([[0, 33, 1, 2**23 - 1], [5, 7, 0, 70000], [33, 0, 1, 0]])
    assert encode(events) == encode_events(*events.T)
    path = tmp_path / "sample.bin"
    path.write_bytes(encode(events))
    assert np.array_equal(read_events(path), events)
    with pytest.raises(ValueError, match="sensor"):
        encode(np.array([[34, 0, 0, 0]]))


def write_sample(path: Path, events) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    events = np.asarray(events, dtype=np.int64).reshape(-1, 4)
    path.write_bytes(encode_events(*events.T))
    return path


def fingerprint_events(sample_id: int) -> list[tuple[int, int, int, int]]:
    """Events that make a sample's frames unique: pixel (id % 34, id // 34), OFF, frame 0."""
    return [(sample_id % SIDE, sample_id // SIDE, 0, 10), (5, 7, 1, 1500)]


def make_dataset(root: Path, counts: dict[str, dict[int, int]], *,
                 folders=("Train", "Test")) -> dict[str, dict[int, list[int]]]:
    """Write ``counts[split][digit]`` files per digit; the sample ids written there."""
    ids: dict[str, dict[int, list[int]]] = {}
    next_id = 0
    for split, folder in zip(("train", "test"), folders, strict=True):
        ids[split] = {}
        for digit, n in counts[split].items():
            ids[split][digit] = list(range(next_id, next_id + n))
            for sample_id in ids[split][digit]:
                write_sample(root / folder / str(digit) / f"{sample_id:05d}.bin",
                             fingerprint_events(sample_id))
            next_id += n
    return ids


def sample_ids(inputs: torch.Tensor) -> list[int]:
    """Recover the ids from the OFF pixel set in frame 0 (input y·34 + x = id)."""
    off = inputs[0, :, : SIDE * SIDE]
    assert torch.all(off.sum(dim=1) == 1)
    return off.argmax(dim=1).tolist()


COUNTS = {"train": {0: 4, 1: 5, 2: 3}, "test": {0: 2, 1: 1, 2: 2}}


# -- decoding -----------------------------------------------------------------------------
def test_read_events_round_trips_addresses_polarities_and_long_timestamps(tmp_path):
    events = np.array([
        (0, 0, 0, 0),
        (33, 0, 1, 1),
        (0, 33, 1, 255),
        (12, 21, 0, 256),
        (33, 33, 1, 65_535),
        (7, 3, 0, 65_536),
        (8, 9, 1, 70_001),
        (1, 2, 0, 300_000),
        (2, 1, 1, 2**23 - 1),
    ], dtype=np.int64)
    path = write_sample(tmp_path / "sample.bin", events)
    decoded = read_events(path)
    assert decoded.shape == (9, 4)
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, events)


def test_read_events_of_an_empty_file_is_empty(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    assert read_events(path).shape == (0, 4)


def test_truncated_file_is_a_data_error_naming_it(tmp_path):
    path = write_sample(tmp_path / "cut.bin", [(1, 2, 0, 3), (4, 5, 1, 6)])
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(DataError, match=r"cut\.bin.*truncated.*8 bytes"):
        read_events(path)


def test_address_outside_the_sensor_is_a_data_error(tmp_path):
    path = tmp_path / "wide.bin"
    path.write_bytes(encode_events([3, 34], [4, 5], [0, 1], [10, 20]))
    with pytest.raises(DataError, match=r"wide\.bin: event 1 .*x=34"):
        read_events(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"absent\.bin"):
        read_events(tmp_path / "absent.bin")


# -- frames -------------------------------------------------------------------------------
def test_frames_mark_each_event_in_its_frame_polarity_and_pixel():
    events = np.array([
        (3, 5, 0, 0),         # frame 0, OFF
        (3, 5, 0, 999),       # same frame and pixel: still 1 (binary)
        (3, 5, 1, 999),       # ON channel of the same pixel
        (33, 0, 1, 1_000),    # frame 1
        (0, 33, 0, 14_999),   # last frame
        (10, 10, 1, 15_000),  # after the last frame: dropped
        (11, 11, 0, 80_000),  # much later: dropped
    ])
    frames = event_frames(events)
    assert frames.shape == (15, N_INPUTS)
    assert frames.dtype == np.float32
    grid = frames.reshape(15, 2, SIDE, SIDE)  # (frame, polarity, y, x)
    expected = np.zeros_like(grid)
    expected[0, 0, 5, 3] = 1
    expected[0, 1, 5, 3] = 1
    expected[1, 1, 0, 33] = 1
    expected[14, 0, 33, 0] = 1
    np.testing.assert_array_equal(grid, expected)
    assert frames[0, 1 * SIDE * SIDE + 5 * SIDE + 3] == 1  # input p·34·34 + y·34 + x
    assert frames.sum() == 4


def test_frame_duration_and_count_set_the_bins():
    events = np.array([(1, 1, 0, 1_999), (1, 1, 0, 2_000), (2, 2, 1, 5_999)])
    frames = event_frames(events, n_frames=3, frame_ms=2.0)
    assert frames.shape == (3, N_INPUTS)
    assert np.flatnonzero(frames[:, 1 * SIDE + 1]).tolist() == [0, 1]
    assert frames[2, SIDE * SIDE + 2 * SIDE + 2] == 1
    assert event_frames(np.zeros((0, 4), dtype=np.int64), n_frames=2).sum() == 0


@pytest.mark.parametrize("kwargs", [{"n_frames": 0}, {"frame_ms": 0.0}, {"frame_ms": -1.0}])
def test_bad_binning_is_refused(kwargs):
    with pytest.raises(ValueError):
        event_frames(np.zeros((1, 4), dtype=np.int64), **kwargs)


# -- splits -------------------------------------------------------------------------------
def test_splits_have_time_first_shapes_labels_from_folders_and_disjoint_validation(tmp_path):
    ids = make_dataset(tmp_path, COUNTS)
    splits = load_nmnist_splits(tmp_path, n_frames=4, validation_fraction=0.25,
                                generator=np.random.default_rng(3))
    assert set(splits) == {"train", "validation", "test"}
    sizes = {"train": 9, "validation": 3, "test": 5}
    for name, (inputs, labels) in splits.items():
        assert inputs.shape == (4, sizes[name], N_INPUTS)
        assert inputs.dtype == torch.float32
        assert labels.shape == (sizes[name],)
        assert labels.dtype == torch.long
        assert inputs[1].sum() == sizes[name]  # the ON event at 1.5 ms, one per sample
    label_of = {i: d for split in ids.values() for d, group in split.items() for i in group}
    train_ids = sample_ids(splits["train"][0])
    validation_ids = sample_ids(splits["validation"][0])
    assert not set(train_ids) & set(validation_ids)
    assert sorted(train_ids + validation_ids) == [i for g in ids["train"].values() for i in g]
    for name in splits:
        found = sample_ids(splits[name][0])
        assert splits[name][1].tolist() == [label_of[i] for i in found]
        assert found == sorted(found)  # file order kept
    assert sample_ids(splits["test"][0]) == [i for g in ids["test"].values() for i in g]
    assert splits["test"][1].tolist() == [0, 0, 1, 2, 2]


def test_validation_split_follows_the_generator(tmp_path):
    make_dataset(tmp_path, COUNTS)

    def validation_ids(seed):
        splits = load_nmnist_splits(tmp_path, n_frames=1, validation_fraction=0.5,
                                    generator=np.random.default_rng(seed))
        return sample_ids(splits["validation"][0])

    assert validation_ids(7) == validation_ids(7)
    assert len({tuple(validation_ids(seed)) for seed in range(6)}) > 1


def test_lowercase_folders_limit_and_no_validation(tmp_path):
    make_dataset(tmp_path, COUNTS, folders=("train", "test"))
    splits = load_nmnist_splits(tmp_path, n_frames=2, validation_fraction=0.0, limit=6,
                                dtype=torch.float16)
    assert splits["train"][0].shape == (2, 6, N_INPUTS)
    assert splits["train"][0].dtype == torch.float16
    assert set(splits["train"][1].tolist()) == {0, 1, 2}  # evenly spaced: every digit
    assert splits["validation"][0].shape == (2, 0, N_INPUTS)
    assert splits["test"][0].shape == (2, 5, N_INPUTS)  # fewer files than the limit


def test_missing_folder_is_a_config_error_naming_the_option(tmp_path):
    with pytest.raises(ConfigError, match="N-MNIST") as info:
        load_nmnist_splits(tmp_path / "nowhere")
    assert info.value.option == "--data-dir"
    assert DATA_URL in info.value.reason
    assert "\n" not in str(info.value)


def test_missing_test_files_is_a_config_error(tmp_path):
    make_dataset(tmp_path, {"train": {0: 2}, "test": {}})
    with pytest.raises(ConfigError, match=r"no N-MNIST files in .*Test") as info:
        load_nmnist_splits(tmp_path)
    assert info.value.option == "--data-dir"
    assert "Test.zip" in info.value.reason


def test_truncated_file_in_the_data_dir_is_a_config_error_naming_it(tmp_path):
    make_dataset(tmp_path, {"train": {0: 2, 1: 2}, "test": {0: 1}})
    bad = tmp_path / "Train" / "1" / "00003.bin"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(ConfigError, match=r"00003\.bin.*truncated") as info:
        load_nmnist_splits(tmp_path)
    assert info.value.option == "--data-dir"
