"""The connectome data layer: the shipped FlyWire mushroom body, ROI folders, Sinkhorn–Knopp."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from nrmkit.core.errors import DataError
from nrmkit.datasets.connectome import (
    PACKAGE_CONNECTOMES,
    SHIPPED_ROIS,
    Connectome,
    connectome_root,
    load_connectome,
    load_flywire_npz,
    read_roi_folder,
)

SHIPPED_NPZ = PACKAGE_CONNECTOMES / SHIPPED_ROIS["flywire_mb_right"]


@pytest.fixture(scope="module")
def mb() -> Connectome:
    return load_flywire_npz(SHIPPED_NPZ)


# -- the shipped FlyWire right mushroom body ----------------------------------------------
def test_shipped_file_and_provenance_are_present():
    assert SHIPPED_NPZ.is_file()
    provenance = (SHIPPED_NPZ.parent / "PROVENANCE.md").read_text()
    assert "CC-BY 4.0" in provenance


def test_shipped_loader_sizes_and_orientation(mb):
    with np.load(SHIPPED_NPZ, allow_pickle=False) as raw:
        n = raw["root_id"].size
        pre_post = sp.csr_matrix((raw["data"], raw["indices"], raw["indptr"]), shape=(n, n))
        root_id = raw["root_id"]
    expected_nnz = pre_post.nnz - np.count_nonzero(pre_post.diagonal())
    assert mb.n == n == 2935
    assert mb.weight.nnz == expected_nnz == 24_777
    assert mb.density == pytest.approx(24_777 / 2935**2)
    assert mb.density == pytest.approx(0.003, abs=3e-4)
    assert mb.weight.dtype == np.float64 and mb.weight.format == "csr"
    assert np.count_nonzero(mb.weight.diagonal()) == 0
    # W[post, pre] is the transpose of the file's rows = presynaptic CSR
    assert abs(mb.weight - pre_post.T.astype(np.float64)).max() == 0
    np.testing.assert_array_equal(mb.neuron_ids, root_id)
    assert mb.name == "flywire_mb_right"


def test_shipped_dale_law(mb):
    csc = mb.weight.tocsc()
    pre = np.repeat(np.arange(mb.n), np.diff(csc.indptr))
    positive = csc.data > 0
    np.testing.assert_array_equal(positive, mb.excitatory[pre])  # one sign per column
    assert np.all(csc.data != 0)
    senders = np.diff(csc.indptr) > 0
    dan = mb.labels["cell_class"] == "DAN"
    assert not senders[dan].any()  # dopaminergic output is neuromodulatory, not in W
    assert senders.sum() == 2766  # 3 ALPNs and 1 MBON have no connection of >= 5 synapses
    assert int(mb.excitatory.sum()) == 2746


def test_shipped_cell_classes(mb):
    counts = Counter(mb.labels["cell_class"].tolist())
    assert counts == {"ALPN": 124, "KC": 2597, "APL": 1, "MBON": 48, "DAN": 165}
    apl = np.flatnonzero(mb.labels["cell_class"] == "APL")
    assert mb.labels["cell_type"][apl].tolist() == ["APL"]
    assert mb.labels["neurotransmitter"][apl].tolist() == ["gaba"]
    assert not mb.excitatory[mb.labels["cell_class"] == "DAN"].any()
    assert len(set(mb.labels["cell_type"].tolist())) == 131


def test_load_connectome_by_name(monkeypatch):
    monkeypatch.delenv("NRMKIT_DATA_DIR", raising=False)
    assert connectome_root() == PACKAGE_CONNECTOMES
    connectome = load_connectome("FlyWire_MB_Right")
    assert connectome.name == "flywire_mb_right" and connectome.n == 2935
    assert load_connectome(str(SHIPPED_NPZ)).weight.nnz == connectome.weight.nnz


# -- selection and populations ------------------------------------------------------------
def test_select_keeps_only_connections_among_selected(mb):
    sub = mb.select(["KC", "mbon", "APL"])
    index = np.flatnonzero(np.isin(mb.labels["cell_class"], ["KC", "MBON", "APL"]))
    assert sub.n == index.size == 2646
    expected = mb.weight.toarray()[np.ix_(index, index)]
    np.testing.assert_array_equal(sub.weight.toarray(), expected)
    np.testing.assert_array_equal(sub.neuron_ids, mb.neuron_ids[index])
    np.testing.assert_array_equal(sub.excitatory, mb.excitatory[index])
    assert set(sub.labels["cell_class"].tolist()) == {"KC", "MBON", "APL"}
    assert sub.weight.nnz == 942 + 7485 + 2596 + 2586 + 160 + 23 + 19 + 2


def test_select_errors(mb):
    with pytest.raises(DataError, match=r"PN.*available.*ALPN"):
        mb.select(["KC", "PN"])
    with pytest.raises(DataError, match="empty"):
        mb.select([])
    bare = Connectome("bare", sp.csr_matrix((2, 2)), np.arange(2), {}, np.ones(2, bool), "-")
    with pytest.raises(DataError, match="cell_class"):
        bare.select(["KC"])


@pytest.mark.parametrize("by, key", [("neurotransmitter", "neurotransmitter"),
                                     ("cell_fibers", "cell_type"),
                                     ("cell_class", "cell_class")])
def test_populations(mb, by, key):
    index, names = mb.populations(by)
    labels = mb.labels[key]
    assert index.shape == (mb.n,) and index.dtype == np.int64
    assert names == sorted(names)
    assert len(names) == len(set(labels.tolist()))
    np.testing.assert_array_equal(np.asarray(names)[index], labels)
    if by == "neurotransmitter":
        assert names == ["acetylcholine", "dopamine", "gaba", "glutamate"]
    if by == "cell_fibers":
        assert len(names) == 131


def test_populations_errors_and_unknown(mb):
    with pytest.raises(ValueError, match="neurotransmitter"):
        mb.populations("glomerulus")
    labels = {"neurotransmitter": np.array(["gaba", "", "gaba"])}
    small = Connectome("s", sp.csr_matrix((3, 3)), np.arange(3), labels, np.ones(3, bool), "-")
    index, names = small.populations("neurotransmitter")
    assert names == ["gaba", "unknown"] and index.tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="cell_type"):
        small.populations("cell_type")


# -- Sinkhorn–Knopp -----------------------------------------------------------------------
def _parts(weight: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    return weight.maximum(0).tocsr(), (-weight).maximum(0).tocsr()


def _sums(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(matrix.sum(axis=1)).ravel(), np.asarray(matrix.sum(axis=0)).ravel()


def test_sinkhorn_on_a_scalable_matrix():
    rng = np.random.default_rng(0)
    n = 12
    dense = np.zeros((n, n))
    dense[6:, :6] = rng.uniform(0.1, 5.0, (6, 6))  # excitatory neurons 0-5 → 6-11
    dense[:6, 6:] = -rng.uniform(0.1, 5.0, (6, 6))  # inhibitory neurons 6-11 → 0-5
    excitatory = np.arange(n) < 6
    connectome = Connectome("toy", sp.csr_matrix(dense), np.arange(n), {}, excitatory, "toy")
    normalized = connectome.normalized()
    assert "E: converged" in normalized.source and "I: converged" in normalized.source
    for before, after in zip(_parts(connectome.weight), _parts(normalized.weight), strict=True):
        rows, cols = _sums(after)
        np.testing.assert_allclose(rows[rows > 0], 0.5, atol=1e-8)
        np.testing.assert_allclose(cols[cols > 0], 0.5, atol=1e-8)
        assert (rows > 0).sum() == (cols > 0).sum() == 6
        # a diagonal scaling diag(x) M diag(y): the ratio after/before has rank one
        ratio = np.divide(after.toarray(), before.toarray(), out=np.zeros((n, n)),
                          where=before.toarray() > 0)
        block = ratio[6:, :6] if ratio[6:, :6].all() else ratio[:6, 6:]
        assert np.linalg.matrix_rank(block, tol=1e-9 * block.max()) == 1
    np.testing.assert_array_equal(np.sign(normalized.weight.toarray()), np.sign(dense))
    assert normalized.excitatory is connectome.excitatory


def test_sinkhorn_on_the_shipped_connectome(mb):
    normalized = mb.normalized()  # no exact ½-scaling exists: must still terminate quickly
    assert normalized.weight.nnz == mb.weight.nnz
    np.testing.assert_array_equal(normalized.weight.indptr, mb.weight.indptr)
    np.testing.assert_array_equal(normalized.weight.indices, mb.weight.indices)
    np.testing.assert_array_equal(np.sign(normalized.weight.data), np.sign(mb.weight.data))
    assert np.all(np.isfinite(normalized.weight.data))
    for part in _parts(normalized.weight):
        rows, _ = _sums(part)
        np.testing.assert_allclose(rows[rows > 0], 0.5, atol=1e-6)
    assert "Sinkhorn" in normalized.source


def test_sinkhorn_respects_max_iter(mb):
    sub = mb.select(["KC", "MBON", "APL"])
    normalized = sub.normalized(max_iter=3)
    assert "after 3 iterations" in normalized.source
    rows, _ = _sums(_parts(normalized.weight)[0])
    np.testing.assert_allclose(rows[rows > 0], 0.5, atol=1e-12)


# -- FlyStability ROI folders -------------------------------------------------------------
IDS = np.array([101, 102, 103, 104, 105], dtype=np.int64)
EI = np.array([1, 0, 1, 1, 0], dtype=np.int64)


def _write_roi(folder: Path, *, protocol: int = pickle.HIGHEST_PROTOCOL) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    adjacency = np.zeros((5, 5))  # A[pre, post]
    adjacency[0, 1] = 3.0
    adjacency[1, 0] = 2.0
    adjacency[1, 2] = 4.0
    adjacency[2, 4] = 1.5
    adjacency[4, 3] = 6.0
    adjacency[3, 3] = 9.0  # a self-connection: dropped
    np.save(folder / "adjacency_scc.npy", adjacency)
    np.save(folder / "ei_neuron_types.npy", EI)
    np.save(folder / "nid_scc.npy", IDS)
    transmitters = {101: "acetylcholine", 102: "gaba", 103: "acetylcholine", 105: "glutamate"}
    fibers = {"101": "PDM25", "102": "ADM09", "103": "PDM25", "104": "PDL06", "105": "ADM09"}
    with (folder / "neurotransmitter_assignments.pkl").open("wb") as handle:
        pickle.dump(transmitters, handle, protocol=protocol)
    with (folder / "cell_body_fiber_assignments.pkl").open("wb") as handle:
        pickle.dump(fibers, handle, protocol=protocol)
    return adjacency


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_read_roi_folder(tmp_path, protocol):
    adjacency = _write_roi(tmp_path / "EB", protocol=protocol)
    roi = read_roi_folder(tmp_path / "EB")
    assert roi.name == "EB" and roi.n == 5
    expected = adjacency.T * (2 * EI - 1)[None, :]  # W[post, pre] · sign(pre)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_array_equal(roi.weight.toarray(), expected)
    assert roi.weight[0, 1] == -2.0  # neuron 1 (inhibitory) → neuron 0
    assert roi.weight[1, 0] == 3.0  # neuron 0 (excitatory) → neuron 1
    np.testing.assert_array_equal(roi.excitatory, EI == 1)
    np.testing.assert_array_equal(roi.neuron_ids, IDS)
    assert roi.labels["neurotransmitter"].tolist() == [
        "acetylcholine", "gaba", "acetylcholine", "", "glutamate"]
    assert roi.labels["cell_fibers"].tolist() == ["PDM25", "ADM09", "PDM25", "PDL06", "ADM09"]
    assert roi.labels["ei"].tolist() == [
        "excitatory", "inhibitory", "excitatory", "excitatory", "inhibitory"]
    index, names = roi.populations("cell_fibers")
    assert names == ["ADM09", "PDL06", "PDM25"] and index.tolist() == [2, 0, 2, 1, 0]
    _, transmitters = roi.populations("neurotransmitter")
    assert "unknown" in transmitters
    assert load_connectome(str(tmp_path / "EB")).weight.nnz == roi.weight.nnz


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["os.system", "numpy"])
def test_malicious_pickle_is_refused(tmp_path, payload):
    folder = tmp_path / "EB"
    _write_roi(folder)
    marker = tmp_path / "pwned"
    value = {101: _Evil(marker)} if payload == "os.system" else np.array(["gaba"] * 5)
    with (folder / "neurotransmitter_assignments.pkl").open("wb") as handle:
        pickle.dump(value, handle)
    with pytest.raises(DataError, match="refusing to unpickle") as info:
        read_roi_folder(folder)
    assert "neurotransmitter_assignments.pkl" in str(info.value)
    assert not marker.exists()


def test_pickle_that_is_not_a_dict(tmp_path):
    folder = tmp_path / "EB"
    _write_roi(folder)
    with (folder / "cell_body_fiber_assignments.pkl").open("wb") as handle:
        pickle.dump(["PDM25"] * 5, handle)
    with pytest.raises(DataError, match="expected a dict"):
        read_roi_folder(folder)


def test_roi_folder_errors(tmp_path):
    folder = tmp_path / "EB"
    _write_roi(folder)
    np.save(folder / "nid_scc.npy", IDS[:4])
    with pytest.raises(DataError, match=r"nid_scc\.npy"):
        read_roi_folder(folder)
    (folder / "ei_neuron_types.npy").unlink()
    with pytest.raises(DataError, match=r"ei_neuron_types\.npy.*EB"):
        read_roi_folder(folder)


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"PK\x03\x04truncated"])
def test_damaged_array_files_are_named_in_one_line(tmp_path, content):
    """Empty, foreign and truncated files: a DataError naming the file (an empty one made
    np.load raise EOFError, which the command line took for Ctrl-C), never numpy's advice
    to load pickles."""
    folder = tmp_path / "EB"
    _write_roi(folder)
    (folder / "adjacency_scc.npy").write_bytes(content)
    archive = tmp_path / "damaged.npz"
    archive.write_bytes(content)
    for load, path in ((read_roi_folder, folder), (load_connectome, archive)):
        with pytest.raises(DataError, match=r"not an \.npz archive|not a \.npy array") as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message and "allow_pickle" not in message
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npy").rename(archive)
    with pytest.raises(DataError, match=r"a single array, not an \.npz archive"):
        load_connectome(archive)


# -- names and locations --------------------------------------------------------------------
def test_unknown_roi_name():
    with pytest.raises(DataError, match=r"unknown ROI 'nope'.*flywire_mb_right"):
        load_connectome("nope")


def test_data_dir_without_the_shipped_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NRMKIT_DATA_DIR", str(tmp_path))
    assert connectome_root() == tmp_path / "connectomics"
    with pytest.raises(DataError, match="NRMKIT_DATA_DIR") as info:
        load_connectome("flywire_mb_right")
    assert str(tmp_path) in str(info.value)


def test_data_dir_with_a_copy_of_the_shipped_file(tmp_path, monkeypatch):
    copy = tmp_path / "connectomics" / SHIPPED_ROIS["flywire_mb_right"]
    copy.parent.mkdir(parents=True)
    copy.write_bytes(SHIPPED_NPZ.read_bytes())
    monkeypatch.setenv("NRMKIT_DATA_DIR", str(tmp_path))
    assert load_connectome("flywire_mb_right").n == 2935


# -- torch ----------------------------------------------------------------------------------
def test_to_torch_and_rate_rnn(mb):
    from nrmkit.nn.rate_rnn import RateRNN

    sub = mb.select(["MBON", "APL"])
    weight = sub.to_torch(dtype=torch.float64)
    assert weight.layout == torch.sparse_coo and weight.shape == (sub.n, sub.n)
    np.testing.assert_array_equal(weight.to_dense().numpy(), sub.weight.toarray())
    assert mb.to_torch().dtype == torch.float32

    model = RateRNN(weight, activation="tanh_stretch")
    state = model.initial_state(torch.Generator().manual_seed(0))
    following = model.step(state)
    expected = 0.9 * state + 0.1 * torch.tanh(state) @ torch.from_numpy(sub.weight.toarray()).T
    torch.testing.assert_close(following, expected)
