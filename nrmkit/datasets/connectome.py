r"""Signed connectomes as sparse weight matrices: loading, selection, populations, normalisation.

Conventions (every :class:`Connectome`, whatever its source):

* **Orientation.** ``weight`` is an ``(N, N)`` ``scipy.sparse.csr_matrix`` with
  ``W[post, pre]``: row ``i`` holds the inputs of neuron ``i``, column ``j`` the outputs of
  neuron ``j``, so that the rate network's recurrent input is ``W φ(h)``
  (:class:`nrmkit.nn.rate_rnn.RateRNN`). Magnitudes are synapse counts (FlyWire) or the
  folder's synapse weights (FlyStability ROI folders), as float64; no self-connections
  (zero diagonal).
* **Signs (Dale's law).** A connection's sign is its *presynaptic* neuron's:
  ``W[i, j] = s_j · |W[i, j]|`` with ``s_j = +1`` for an excitatory and ``−1`` for an
  inhibitory neuron ``j``. Every column of ``W`` therefore has a single sign, and
  ``excitatory[j]`` is ``True`` iff column ``j``'s nonzero entries are positive. A neuron
  with no outgoing connections in the network (e.g. the dopaminergic neurons of the shipped
  data, whose synapses are neuromodulatory and left out) is marked non-excitatory.
* **Labels.** ``labels[key]`` is an ``(N,)`` array of strings; an empty string means
  "no label" and becomes the population ``"unknown"`` in :meth:`Connectome.populations`.

Sources:

* the shipped FlyWire right mushroom body (FAFB v783, CC-BY 4.0, see
  ``nrmkit/datasets/connectomics/flywire_mb_right/PROVENANCE.md``, installed with the
  package): :func:`load_flywire_npz`;
* FlyStability's ROI folders (hemibrain regions of interest): :func:`read_roi_folder`;
* :func:`load_connectome` resolves a shipped name or a path to either format.

This module does not print, write files or hold global state.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pickle
import reprlib
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from nrmkit.core.errors import DataError

if TYPE_CHECKING:  # torch is imported lazily in Connectome.to_torch
    import torch

__all__ = [
    "POPULATION_KEYS",
    "SHIPPED_ROIS",
    "Connectome",
    "connectome_root",
    "load_connectome",
    "load_flywire_npz",
    "read_roi_folder",
]

#: Shipped connectomes: name → path relative to :func:`connectome_root`.
SHIPPED_ROIS: dict[str, str] = {"flywire_mb_right": "flywire_mb_right/mb_fafb783.npz"}

#: The label keys that :meth:`Connectome.populations` accepts.
POPULATION_KEYS: tuple[str, ...] = ("neurotransmitter", "cell_fibers", "cell_type", "cell_class")

#: Smallest scaled entry Sinkhorn–Knopp may produce: far above float64 underflow (~2e-308),
#: so no connection is lost to round-off (see :meth:`Connectome.normalized`).
_SINKHORN_FLOOR: float = 1e-290

#: FlyWire index groups of the shipped npz → the cell class they define.
_FLYWIRE_GROUPS: dict[str, str] = {
    "pn_idx": "ALPN",
    "kc_idx": "KC",
    "apl_idx": "APL",
    "mbon_idx": "MBON",
    "dan_idx": "DAN",
}

#: The files of a FlyStability ROI folder.
ROI_FILES: dict[str, str] = {
    "adjacency": "adjacency_scc.npy",
    "ei": "ei_neuron_types.npy",
    "ids": "nid_scc.npy",
    "neurotransmitter": "neurotransmitter_assignments.pkl",
    "cell_fibers": "cell_body_fiber_assignments.pkl",
}


# ---------------------------------------------------------------------------------------
# The connectome
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Connectome:
    """A signed connectome of ``N`` neurons (see the module docstring for the conventions).

    Attributes:
        name: short name, ``"flywire_mb_right"`` or the ROI folder's name.
        weight: ``(N, N)`` float64 CSR matrix of signed weights ``W[post, pre]``, zero
            diagonal, every column of a single sign (that of ``excitatory``).
        neuron_ids: ``(N,)`` integer neuron ids (FlyWire root ids are uint64).
        labels: per-neuron string labels, each ``(N,)``. Shipped FlyWire data:
            ``"neurotransmitter"``, ``"cell_type"``, ``"cell_class"`` (ALPN, KC, APL, MBON,
            DAN), ``"cell_sub_class"``, ``"flywire_cell_class"`` (FlyWire's own class names,
            e.g. ``Kenyon_Cell``, ``MBIN`` for the APL), ``"ei"`` (``"excitatory"``,
            ``"inhibitory"``, ``"neuromodulatory"`` for the DANs); it has no cell-body-fibre
            labels. ROI folders: ``"neurotransmitter"``, ``"cell_fibers"``, ``"ei"``
            (``"excitatory"`` / ``"inhibitory"``).
        excitatory: ``(N,)`` bool, the sign of each neuron's outgoing connections.
        source: where the data came from (a path, plus any selection or normalisation).
    """

    name: str
    weight: sp.csr_matrix
    neuron_ids: np.ndarray
    labels: dict[str, np.ndarray]
    excitatory: np.ndarray
    source: str

    def __post_init__(self) -> None:
        if not sp.issparse(self.weight) or self.weight.format != "csr":
            raise TypeError("weight must be a scipy.sparse CSR matrix")
        n = self.weight.shape[0]
        if self.weight.shape != (n, n):
            raise ValueError(f"weight must be square, got shape {self.weight.shape}")
        if self.neuron_ids.shape != (n,):
            raise ValueError(f"neuron_ids must have shape ({n},), got {self.neuron_ids.shape}")
        if self.excitatory.shape != (n,) or self.excitatory.dtype != np.bool_:
            raise ValueError(f"excitatory must be a bool array of shape ({n},)")
        for key, value in self.labels.items():
            if np.shape(value) != (n,):
                raise ValueError(f"labels[{key!r}] must have shape ({n},), got {np.shape(value)}")

    # -- sizes -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of neurons ``N``."""
        return int(self.weight.shape[0])

    @property
    def density(self) -> float:
        """Fraction of nonzero connections, ``nnz / N²`` (0 for an empty connectome)."""
        return self.weight.nnz / self.n**2 if self.n else 0.0

    # -- sub-networks and populations --------------------------------------------------
    def select(self, cell_classes: Sequence[str]) -> Connectome:
        """The sub-network of the neurons whose ``labels["cell_class"]`` is in ``cell_classes``.

        Matching is case-insensitive; neurons keep their relative order, and only the
        connections among selected neurons are kept: ``W_sub = W[idx][:, idx]``.

        Raises:
            DataError: the connectome has no ``"cell_class"`` labels; a requested class does
                not occur (the message names it and the available classes); or the
                selection is empty.
        """
        if isinstance(cell_classes, str):
            cell_classes = [cell_classes]
        if "cell_class" not in self.labels:
            raise DataError(f"connectome {self.name!r} has no 'cell_class' labels to select by")
        classes = np.char.upper(np.asarray(self.labels["cell_class"], dtype=str))
        available = sorted(set(classes.tolist()))
        wanted = [str(c).upper() for c in cell_classes]
        unknown = [c for c in cell_classes if str(c).upper() not in available]
        if unknown:
            raise DataError(
                f"unknown cell class(es) {', '.join(map(str, unknown))} in {self.name!r}: "
                f"available {', '.join(available)}"
            )
        index = np.flatnonzero(np.isin(classes, wanted))
        if index.size == 0:
            raise DataError(f"empty selection of cell classes from {self.name!r}")
        return self.subset(index, description=f"cell classes {', '.join(sorted(set(wanted)))}")

    def subset(self, index: np.ndarray, *, description: str = "subset") -> Connectome:
        """The sub-network on the neuron indices ``index`` (``(M,)`` ints, in that order)."""
        index = np.asarray(index, dtype=np.int64)
        weight = self.weight[index][:, index].tocsr()
        weight.sort_indices()
        return dataclasses.replace(
            self,
            weight=weight,
            neuron_ids=self.neuron_ids[index],
            labels={key: value[index] for key, value in self.labels.items()},
            excitatory=self.excitatory[index],
            source=f"{self.source} [{description}: {index.size} of {self.n} neurons]",
        )

    def populations(self, by: str) -> tuple[np.ndarray, list[str]]:
        """Group the neurons into populations by a label.

        Args:
            by: one of ``"neurotransmitter"``, ``"cell_fibers"``, ``"cell_type"``,
                ``"cell_class"``. ``"cell_fibers"`` falls back to ``"cell_type"`` when the
                connectome has no cell-body-fibre labels (the shipped FlyWire data).

        Returns:
            ``(index, names)``: ``index`` ``(N,)`` int64 with ``names[index[i]]`` neuron
            ``i``'s population; ``names`` sorted. Empty labels form the population
            ``"unknown"``. ``index`` is what :class:`~nrmkit.nn.rate_rnn.RateRNN` takes as
            ``population`` for population-shared gains and shifts.

        Raises:
            ValueError: ``by`` is not one of the choices above.
            DataError: the connectome has no labels of that kind.
        """
        if by not in POPULATION_KEYS:
            raise ValueError(f"unknown population key {by!r}: choose one of "
                             f"{', '.join(POPULATION_KEYS)}")
        key = "cell_type" if by == "cell_fibers" and by not in self.labels else by
        if key not in self.labels:
            raise DataError(
                f"connectome {self.name!r} has no {key!r} labels "
                f"(available: {', '.join(sorted(self.labels)) or 'none'})"
            )
        values = np.char.strip(np.asarray(self.labels[key], dtype=str))
        values = np.where(values == "", "unknown", values)
        names, index = np.unique(values, return_inverse=True)
        return index.astype(np.int64).reshape(-1), [str(name) for name in names]

    # -- normalisation and conversion --------------------------------------------------
    def normalized(self, *, tol: float = 1e-10, max_iter: int = 10_000) -> Connectome:
        r"""Sinkhorn–Knopp normalisation of the excitatory and inhibitory parts separately.

        With ``E = max(W, 0)`` and ``I = max(−W, 0)`` (both non-negative, disjoint supports),
        each part ``M`` is scaled to ``M' = diag(x) M diag(y)`` with ``x, y > 0`` on its
        nonzero rows/columns such that every *nonzero* row and every *nonzero* column of
        ``M'`` sums to ½, by alternating row passes ``x ← ½ / (M y)`` and column passes
        ``y ← ½ / (Mᵀ x)`` (Sinkhorn–Knopp). The result is ``W' = E' − I'``: same support,
        same signs (Dale's law preserved), rows and columns of each part summing to ½.

        Rows or columns that are entirely zero in a part cannot be scaled and stay zero.
        Iteration stops when the largest deviation of the nonzero row sums from ½ after a
        column pass (where the column sums are exact) is below ``tol``, or after
        ``max_iter`` row+column passes; a final row pass follows. If the part's support
        admits an exact scaling the result is doubly ½-stochastic to ~``tol``.

        If it does not — e.g. when the numbers of nonzero rows and columns differ, so that
        the totals ``½·#rows`` and ``½·#columns`` cannot both hold — Sinkhorn converges only
        slowly or not at all: the scaling vectors diverge and the mass concentrates on a
        sub-support while the other connections shrink geometrically. The loop then also
        stops (keeping the previous iterate) before any scaled connection would drop below
        1e-290, so that no connection is lost to float64 underflow; the row sums are exact
        after the final row pass and the column sums only approximate. This is the case
        for the shipped mushroom body (its dopaminergic neurons receive but do not send,
        and its inhibitory part has 24 presynaptic neurons and ~2,800 targets): there the
        loop stops after a few tens of iterations and the normalised weights span hundreds
        of orders of magnitude. ``source`` records, per part, whether it converged, the
        number of iterations, the largest column-sum deviation and the range of entries.
        (FlyStability's ``sinkhorn_knopp`` runs a fixed 10 iterations, ending with a column
        pass, because its convergence test compares the sums with 1 instead of ½;
        ``max_iter=10`` reproduces its number of passes.)

        Every pass is two sparse matrix–vector products (``O(nnz)``), no Python loop over
        entries; the scaling vectors are rebalanced each iteration (``x·c, y/c`` leaves
        ``M'`` unchanged) to avoid overflow.

        Args:
            tol: tolerance on the maximal deviation of nonzero row/column sums from ½.
            max_iter: maximal number of row+column passes per part.
        """
        if tol <= 0 or max_iter < 1:
            raise ValueError("tol must be > 0 and max_iter >= 1")
        weight = self.weight
        excitatory = weight.maximum(0).tocsr()
        inhibitory = (-weight).maximum(0).tocsr()
        e_scaled, e_info = _sinkhorn_knopp(excitatory, tol=tol, max_iter=max_iter)
        i_scaled, i_info = _sinkhorn_knopp(inhibitory, tol=tol, max_iter=max_iter)
        result = (e_scaled - i_scaled).tocsr()
        result.sort_indices()
        note = f"Sinkhorn–Knopp ½ (E: {e_info}; I: {i_info})"
        return dataclasses.replace(self, weight=result, source=f"{self.source} [{note}]")

    def to_torch(
        self, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """The signed weights as a coalesced sparse COO tensor ``(N, N)``, ``W[post, pre]``.

        Args:
            dtype: tensor dtype, default ``torch.float32``.
            device: target device.

        The result is accepted directly as the ``weight`` of
        :class:`nrmkit.nn.rate_rnn.RateRNN`.
        """
        import torch

        dtype = torch.float32 if dtype is None else dtype
        coo = self.weight.tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float64)).to(dtype)
        tensor = torch.sparse_coo_tensor(indices, values, (self.n, self.n),
                                         check_invariants=True)
        return tensor.coalesce().to(device)

    def __repr__(self) -> str:
        return (f"Connectome(name={self.name!r}, n={self.n}, nnz={self.weight.nnz}, "
                f"excitatory={int(self.excitatory.sum())}, labels={sorted(self.labels)})")


def _sinkhorn_knopp(matrix: sp.csr_matrix, *, tol: float, max_iter: int,
                    target: float = 0.5) -> tuple[sp.csr_matrix, str]:
    """Scale a non-negative sparse matrix so its nonzero rows and columns sum to ``target``.

    Returns ``(diag(x) M diag(y), summary)``; see :meth:`Connectome.normalized`. An
    iterate whose smallest scaled entry would fall below :data:`_SINKHORN_FLOOR` (or that is
    not finite) is discarded and the loop stops: this happens only when no exact scaling
    exists and the scaling vectors diverge.
    """
    matrix = matrix.tocsr().astype(np.float64)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    if matrix.nnz == 0:
        return matrix, "empty"
    transposed = matrix.T.tocsr()
    row_mask = np.diff(matrix.indptr) > 0
    col_mask = np.diff(transposed.indptr) > 0
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    cols = matrix.indices

    def inverse(sums: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.zeros_like(sums)
        np.divide(target, sums, out=out, where=mask)
        return out

    x = row_mask.astype(np.float64)
    y = col_mask.astype(np.float64)
    row_sums = matrix @ y  # row sums of M diag(y)
    iterations, deviation, status = 0, math.inf, "not converged (max_iter)"
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        while iterations < max_iter:
            new_x = inverse(row_sums, row_mask)  # row pass: rows sum to target
            new_y = inverse(transposed @ new_x, col_mask)  # column pass: columns exact
            scale = math.sqrt(new_x[row_mask].max() / new_y[col_mask].max())
            new_x, new_y = new_x / scale, new_y * scale  # x·c, y/c: same scaled matrix
            entries = new_x[rows] * matrix.data * new_y[cols]
            if not (np.all(np.isfinite(entries)) and entries.min() >= _SINKHORN_FLOOR):
                status = "stopped: scaling degenerates (no exact ½-scaling of this support)"
                break
            x, y, iterations = new_x, new_y, iterations + 1
            row_sums = matrix @ y
            deviation = float(np.abs(x[row_mask] * row_sums[row_mask] - target).max())
            if deviation < tol:
                status = "converged"
                break
        x = inverse(row_sums, row_mask)  # final row pass: row sums exact
    scaled = (sp.diags(x) @ matrix @ sp.diags(y)).tocsr()
    scaled.sort_indices()
    col_dev = float(np.abs(np.asarray(scaled.sum(axis=0)).ravel()[col_mask] - target).max())
    summary = (f"{status} after {iterations} iterations, max column-sum deviation "
               f"{col_dev:.2e}, entries {scaled.data.min():.1e}…{scaled.data.max():.1e}")
    return scaled, summary


# ---------------------------------------------------------------------------------------
# Locations and the shipped data
# ---------------------------------------------------------------------------------------
#: The folder of the connectomes installed with the package.
PACKAGE_CONNECTOMES = Path(__file__).resolve().parent / "connectomics"


def connectome_root() -> Path:
    """The folder that holds the shipped connectomes (:data:`SHIPPED_ROIS`):
    ``$NRMKIT_DATA_DIR/connectomics`` if that variable is set, else the copies installed
    with the package (:data:`PACKAGE_CONNECTOMES`, in wheels and source checkouts alike)."""
    env = os.environ.get("NRMKIT_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser() / "connectomics"
    return PACKAGE_CONNECTOMES


def load_connectome(roi: str | os.PathLike[str]) -> Connectome:
    """Load a connectome by shipped name or path.

    Args:
        roi: a name from :data:`SHIPPED_ROIS` (case-insensitive), a path to a FlyStability
            ROI folder, or a path to a ``.npz`` in the shipped FlyWire format.

    Raises:
        DataError: an unknown name that is not an existing path; a shipped file that is
            missing (the message says where it was looked for); malformed data.
    """
    text = os.fspath(roi)
    key = text.strip().lower()
    if key in SHIPPED_ROIS:
        path = connectome_root() / SHIPPED_ROIS[key]
        if not path.is_file():
            raise DataError(
                f"shipped connectome {key!r} not found at {path}; set $NRMKIT_DATA_DIR to a "
                f"folder that holds connectomics/{SHIPPED_ROIS[key]}, or unset it to use "
                "the copy installed with nrmkit"
            )
        return dataclasses.replace(load_flywire_npz(path), name=key)
    path = Path(text).expanduser()
    if path.is_dir():
        return read_roi_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_flywire_npz(path)
        raise DataError(f"{path}: a connectome file must be a FlyWire-format .npz")
    raise DataError(
        f"unknown ROI {text!r}: choose one of {', '.join(SHIPPED_ROIS)} or give the path to "
        f"a ROI folder"
    )


def load_flywire_npz(path: str | os.PathLike[str]) -> Connectome:
    """Read a FlyWire connectome ``.npz`` (the format of the shipped ``mb_fafb783.npz``).

    The file holds a CSR matrix with rows = *presynaptic* neuron: ``indptr`` ``(N+1,)``,
    ``indices`` (postsynaptic neuron), ``data`` = sign(presynaptic neurotransmitter) ×
    synapse count; per neuron ``root_id``, ``sign`` (+1, −1, or 0 for dopamine), and the
    labels ``nt``, ``cell_type``, ``cell_class``, ``cell_sub_class``; index groups
    ``pn_idx``, ``kc_idx``, ``apl_idx``, ``mbon_idx``, ``dan_idx``. It is read with
    ``allow_pickle=False``.

    The weight is the transpose, ``W[post, pre] = data[pre → post]`` (float64, diagonal
    dropped, duplicates summed), ``excitatory = sign > 0``. Dopaminergic edges
    (``dan_pre``, ``dan_post``, ``dan_syn_count``) are neuromodulatory and not part of the
    network. ``labels["cell_class"]`` is taken from the index groups (ALPN, KC, APL, MBON,
    DAN — FlyWire calls the Kenyon cells ``Kenyon_Cell`` and the APL ``MBIN``; those names
    are kept in ``labels["flywire_cell_class"]``), falling back to FlyWire's class for
    neurons in no group.

    Raises:
        DataError: the file is missing or unreadable, a required array is absent, the CSR
            arrays are inconsistent, or an edge's sign differs from its presynaptic
            neuron's (Dale's law).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"connectome file {path} not found")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"cannot read {path}: a single array, not an .npz archive")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except _UNREADABLE_ARRAYS as exc:
        raise DataError(_unreadable(path, exc, "an .npz archive of numeric arrays")) from exc
    for key in ("indptr", "indices", "data", "root_id", "sign"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r}")
    ids = np.asarray(arrays["root_id"]).reshape(-1)
    n = ids.size
    indptr = np.asarray(arrays["indptr"], dtype=np.int64)
    indices = np.asarray(arrays["indices"], dtype=np.int64)
    data = np.asarray(arrays["data"], dtype=np.float64)
    sign = np.asarray(arrays["sign"]).reshape(-1)
    if (indptr.shape != (n + 1,) or indptr[0] != 0 or indptr[-1] != indices.size
            or data.shape != indices.shape or np.any(np.diff(indptr) < 0)
            or (indices.size and (indices.min() < 0 or indices.max() >= n))):
        raise DataError(f"{path}: inconsistent CSR arrays for {n} neurons")
    if sign.shape != (n,):
        raise DataError(f"{path}: 'sign' has shape {sign.shape}, expected ({n},)")
    pre_post = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    pre_post.sum_duplicates()
    pre_of_edge = np.repeat(np.arange(n), np.diff(pre_post.indptr))
    if np.any(np.sign(pre_post.data) != np.sign(sign[pre_of_edge])):
        raise DataError(f"{path}: some connection signs differ from their presynaptic "
                        "neuron's sign (Dale's law)")
    weight = _finish_weight(pre_post.T)

    labels: dict[str, np.ndarray] = {}
    for source_key, label in (("nt", "neurotransmitter"), ("cell_type", "cell_type"),
                              ("cell_sub_class", "cell_sub_class"),
                              ("cell_class", "flywire_cell_class")):
        if source_key in arrays:
            labels[label] = _label_array(arrays[source_key], n, path, source_key)
    cell_class = labels.get("flywire_cell_class", np.full(n, "", dtype=str)).astype(object)
    for group, name in _FLYWIRE_GROUPS.items():
        if group in arrays:
            members = np.asarray(arrays[group], dtype=np.int64).reshape(-1)
            if members.size and (members.min() < 0 or members.max() >= n):
                raise DataError(f"{path}: index group {group!r} out of range")
            cell_class[members] = name
    if "flywire_cell_class" in labels or any(g in arrays for g in _FLYWIRE_GROUPS):
        labels["cell_class"] = cell_class.astype(str)
    labels["ei"] = np.where(sign > 0, "excitatory",
                            np.where(sign < 0, "inhibitory", "neuromodulatory"))
    return Connectome(
        name=path.resolve().parent.name or path.stem,
        weight=weight,
        neuron_ids=ids,
        labels=labels,
        excitatory=sign > 0,
        source=str(path),
    )


# ---------------------------------------------------------------------------------------
# FlyStability ROI folders
# ---------------------------------------------------------------------------------------
def read_roi_folder(path: str | os.PathLike[str]) -> Connectome:
    r"""Read a FlyStability ROI folder (a hemibrain region of interest, e.g. ``EB``).

    Files:

    * ``adjacency_scc.npy`` — ``(N, N)`` non-negative synapse weights ``A[pre, post]``.
      FlyStability transposes it on load; we adopt the same orientation: ``W = Aᵀ``, so
      ``W[post, pre]``.
    * ``ei_neuron_types.npy`` — ``(N,)`` 0 = inhibitory, 1 = excitatory.
    * ``nid_scc.npy`` — ``(N,)`` neuron ids.
    * ``neurotransmitter_assignments.pkl``, ``cell_body_fiber_assignments.pkl`` — each a
      dict neuron id → label string (ids missing from a dict get an empty label).

    Signed weights follow Dale's law with the *presynaptic* neuron's type:

    .. math:: W_{\mathrm{signed}}[i, j] = W[i, j] \, (2\,\mathrm{ei}_j - 1),
              \qquad W_{\mathrm{signed}}[i, i] = 0.

    (The published FlyStability code multiplies the *rows* by ``2·ei − 1``, i.e. signs a
    connection by its postsynaptic neuron, which violates Dale's law; we do not.)

    The ``.npy`` files are read with ``allow_pickle=False``; the ``.pkl`` files with a
    restricted unpickler (never a plain ``pickle.load``, see :func:`_load_label_pickle`):
    at most :data:`MAX_LABEL_PICKLE_BYTES`, no globals at all (dicts, lists, strings and
    numbers are pickle opcodes), and the result must be a dict of id → scalar label.

    Raises:
        DataError: a missing file (named, with the folder), a refused, oversized or
            malformed pickle, shapes that do not match, negative or non-finite weights, ei
            values other than 0/1.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"ROI folder {folder} not found")
    files = {key: folder / name for key, name in ROI_FILES.items()}
    for file in files.values():
        if not file.is_file():
            raise DataError(f"missing file {file.name} in ROI folder {folder}")

    adjacency = _load_npy(files["adjacency"])
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise DataError(f"{files['adjacency']}: expected a square matrix, got shape "
                        f"{adjacency.shape}")
    n = adjacency.shape[0]
    ei = _load_npy(files["ei"])
    ids = _load_npy(files["ids"])
    if ei.shape != (n,):
        raise DataError(f"{files['ei']}: shape {ei.shape} does not match "
                        f"{ROI_FILES['adjacency']} ({n} neurons)")
    if ids.shape != (n,):
        raise DataError(f"{files['ids']}: shape {ids.shape} does not match "
                        f"{ROI_FILES['adjacency']} ({n} neurons)")
    if not np.all(np.isin(ei, (0, 1))):
        raise DataError(f"{files['ei']}: values must be 0 (inhibitory) or 1 (excitatory)")
    try:
        adjacency = adjacency.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{files['adjacency']}: not numeric ({exc})") from exc
    if not np.all(np.isfinite(adjacency)) or np.any(adjacency < 0):
        raise DataError(f"{files['adjacency']}: weights must be finite and non-negative")

    excitatory = ei.astype(np.int64) == 1
    sign = np.where(excitatory, 1.0, -1.0)
    weight = _finish_weight(sp.csr_matrix(adjacency.T) @ sp.diags(sign))

    labels = {
        key: _labels_from_mapping(_load_label_pickle(files[key]), ids)
        for key in ("neurotransmitter", "cell_fibers")
    }
    labels["ei"] = np.where(excitatory, "excitatory", "inhibitory")
    return Connectome(
        name=folder.resolve().name,
        weight=weight,
        neuron_ids=ids,
        labels=labels,
        excitatory=excitatory,
        source=str(folder),
    )


#: Largest label pickle read (bytes), checked before unpickling: a dict of labels for the
#: ~25,000 neurons of the whole hemibrain takes about 1 MiB, so this leaves room for any
#: real region while refusing files that could make the unpickler build gigabytes.
MAX_LABEL_PICKLE_BYTES: int = 256 * 2**20

#: Label values accepted: what a label (or a missing one: None, NaN) can be.
_LABEL_TYPES = (str, int, float, bool, type(None))


class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler that resolves no global at all.

    A dict of neuron id → label needs none: dicts, lists, tuples, strings, numbers, booleans
    and None are protocol opcodes. Without globals no callable exists for ``REDUCE``, so a
    file can neither run code nor build objects through constructors (``str`` of a shared,
    deeply nested list would take exponential time and memory).
    """

    def __init__(self, file: io.BufferedIOBase, *, source: Path):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        raise DataError(f"refusing to unpickle {module}.{name} from {self._source}: a label "
                        "file may hold only a dict of plain ids and labels")


def _load_label_pickle(path: Path) -> dict[Any, Any]:
    """Read a pickled dict of neuron id → label, refusing anything else.

    Checked in this order, each failure a one-line :class:`DataError` naming the file: the
    size (at most :data:`MAX_LABEL_PICKLE_BYTES`, before unpickling), the pickle (no globals,
    see :class:`_NoGlobalsUnpickler`), the result (a dict whose keys are ints or strings and
    whose values are strings, numbers, booleans or None). A nested list or dict is refused
    without being walked, however large its shared structure.
    """
    try:
        size = path.stat().st_size
        if size > MAX_LABEL_PICKLE_BYTES:
            raise DataError(f"{path}: {size:,} bytes, more than the "
                            f"{MAX_LABEL_PICKLE_BYTES:,} a label file may hold")
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        # Unpickled from memory: a length field claiming more bytes than the file holds
        # then fails as truncated instead of asking a file object for that many bytes.
        value = _NoGlobalsUnpickler(io.BytesIO(data), source=path).load()
    except DataError:
        raise
    except Exception as exc:  # any malformed pickle: UnpicklingError, EOFError, ...
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a dict of neuron id → label, got "
                        f"{type(value).__name__}")
    for key, label in value.items():
        if not isinstance(key, (int, str)):
            raise DataError(f"{path}: neuron ids must be integers or strings, got a "
                            f"{type(key).__name__}")
        if not isinstance(label, _LABEL_TYPES):
            raise DataError(f"{path}: the label of neuron {reprlib.repr(key)} is a "
                            f"{type(label).__name__}, not a string or number")
    return value


def _labels_from_mapping(mapping: Mapping[Any, Any], ids: np.ndarray) -> np.ndarray:
    """``(N,)`` labels for ``ids`` from a dict keyed by id (int or str); missing → ``""``."""
    out = []
    for neuron_id in ids.tolist():
        value = mapping.get(neuron_id, mapping.get(str(neuron_id)))
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append("")
        else:
            out.append(str(value))
    return np.asarray(out, dtype=str).reshape(-1)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
#: what ``np.load`` raises on a damaged, empty or foreign file (numpy's own message for a
#: file it takes for a pickle suggests ``allow_pickle=True``: such files are refused).
_UNREADABLE_ARRAYS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def _unreadable(path: Path, error: Exception, expected: str) -> str:
    """One line: why ``path`` could not be read as ``expected``."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read {path}: {error.strerror}"
    return (f"cannot read {path}: not {expected} (empty, truncated, another format, or "
            "holding pickled objects, which are refused)")


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except _UNREADABLE_ARRAYS as exc:
        raise DataError(_unreadable(path, exc, "a .npy array of numbers")) from exc
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(f"cannot read {path}: an .npz archive, not a .npy array")
    return array


def _finish_weight(matrix: sp.spmatrix) -> sp.csr_matrix:
    """float64 CSR with explicit zeros and the diagonal removed, sorted indices."""
    coo = sp.coo_matrix(matrix, dtype=np.float64)
    keep = (coo.row != coo.col) & (coo.data != 0)
    weight = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)
    weight.sum_duplicates()
    weight.sort_indices()
    return weight


def _label_array(value: np.ndarray, n: int, path: Path, key: str) -> np.ndarray:
    array = np.asarray(value).reshape(-1)
    if array.shape != (n,):
        raise DataError(f"{path}: {key!r} has shape {np.shape(value)}, expected ({n},)")
    return array.astype(str)
