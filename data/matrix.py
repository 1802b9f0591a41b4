"""Image x feature confidence matrices held dense or sparse, and presence computed from either.

A build's confidences are mostly zero (a featurizer names a few labels per image), so the store
keeps them as a ``scipy.sparse`` CSC array of float64 whenever that is smaller than the dense
matrix: memory then follows the stored values, not images x features. A notebook's dense
DataFrame stays dense. Presence (confidence strictly above a threshold) always comes back as a
boolean CSC array whose columns list each feature's images in ascending order, so the analysis
has one code path and per-feature sums see the same values in the same order as a dense mask.
"""

from __future__ import annotations

import io
import sys
from itertools import chain

import numpy as np
import scipy.sparse as sp

# CSC bytes per stored value: a float64 and an int32 row index.
_SPARSE_VALUE_BYTES = 12


def is_sparse(matrix) -> bool:
    """Whether ``matrix`` is a scipy.sparse matrix or array."""
    return sp.issparse(matrix)


def to_csc(matrix) -> sp.csc_array:
    """A canonical float64 CSC array (sorted row indices, no duplicates) of a dense or sparse matrix."""
    if isinstance(matrix, sp.csc_array) and matrix.dtype == np.float64 and matrix.has_canonical_format:
        return matrix
    csc = sp.csc_array(matrix, dtype=np.float64)
    if not csc.has_canonical_format:
        csc = csc.copy()  # the arrays may be the caller's: canonicalise a copy
        csc.sum_duplicates()  # also sorts each column's row indices
    return csc


def compact(matrix):
    """The smaller of the dense ndarray and the CSC array holding the same float64 confidences."""
    if is_sparse(matrix):
        n, m = matrix.shape
        csc = to_csc(matrix)
        csc.eliminate_zeros()
        sparse_bytes = csc.nnz * _SPARSE_VALUE_BYTES + (m + 1) * 4
        return csc if sparse_bytes < n * m * 8 else csc.toarray()
    dense = np.asarray(matrix, dtype=np.float64)
    n, m = dense.shape
    nnz = int(np.count_nonzero(dense))
    if nnz * _SPARSE_VALUE_BYTES + (m + 1) * 4 < n * m * 8:
        return to_csc(dense)
    return dense


def from_triples(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]):
    """A compact matrix (see ``compact``) from (row, column, value) triples without duplicates."""
    coo = sp.coo_array((np.asarray(values, dtype=np.float64), (rows, cols)), shape=shape)
    return compact(coo.tocsc())


def triples_to_bytes(triples, shape: tuple[int, int]) -> bytes:
    """(row, column, value) triples without duplicates as an ``.npz`` archive of their CSC arrays."""
    flat = np.fromiter(chain.from_iterable(triples), dtype=np.float64, count=3 * len(triples)).reshape(-1, 3)
    csc = sp.coo_array((flat[:, 2], (flat[:, 0].astype(np.int32), flat[:, 1].astype(np.int32))), shape=shape).tocsc()
    buffer = io.BytesIO()
    np.savez(buffer, shape=np.asarray(shape, dtype=np.int64), data=csc.data, indices=csc.indices, indptr=csc.indptr)
    return buffer.getvalue()


def from_bytes(data: bytes):
    """The compact matrix (see ``compact``) of an archive ``triples_to_bytes`` wrote."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        shape = tuple(int(v) for v in archive["shape"])
        csc = sp.csc_array((archive["data"], archive["indices"], archive["indptr"]), shape=shape)
    return compact(csc)


def dense(matrix) -> np.ndarray:
    """The matrix as a dense float64 ndarray (materialises a sparse one: only for small builds)."""
    return matrix.toarray() if is_sparse(matrix) else np.asarray(matrix, dtype=np.float64)


def nbytes(matrix) -> int:
    """Bytes held by the matrix's arrays."""
    if is_sparse(matrix):
        return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    return matrix.nbytes


def names_nbytes(names: np.ndarray) -> int:
    """Bytes held by an object array of names: the pointers and the strings themselves."""
    return names.nbytes + sum(map(sys.getsizeof, names))


def presence(confidences, confidence: float) -> sp.csc_array:
    """Boolean CSC image x feature array: True where a confidence is strictly above the threshold."""
    if is_sparse(confidences) and not confidence < 0:
        # Unstored entries are 0, never above a threshold >= 0: only the stored values matter.
        hit = confidences.data > confidence
        counts = _column_hits(hit, confidences.indptr)
        return _bool_csc(confidences.indices[hit], counts, confidences.shape)
    return sp.csc_array(dense(confidences) > confidence)


def keep_rows(present: sp.csc_array, rows: np.ndarray) -> sp.csc_array:
    """The rows selected by a boolean mask, renumbered, keeping each column's ascending order."""
    position = np.cumsum(rows) - 1
    hit = rows[present.indices]
    counts = _column_hits(hit, present.indptr)
    return _bool_csc(position[present.indices[hit]], counts, (int(rows.sum()), present.shape[1]))


def column_counts(present: sp.csc_array) -> np.ndarray:
    """Per column, how many rows are present (int64)."""
    return np.diff(present.indptr).astype(np.int64)


def column_rows(present: sp.csc_array, j: int) -> np.ndarray:
    """The present rows of column ``j``, ascending."""
    return present.indices[present.indptr[j] : present.indptr[j + 1]]


def present_values(confidences, confidence: float, rows: np.ndarray, columns: np.ndarray):
    """Feature-major (column position, row, confidence) of the present cells of a sub-matrix.

    ``rows`` (ascending indices) and ``columns`` (any order) select the sub-matrix; the result
    lists each selected column's present rows in ascending order, columns in the given order.
    """
    if is_sparse(confidences) and not confidence < 0:
        sub = confidences[:, columns]
        keep = np.zeros(sub.shape[0], dtype=bool)
        keep[rows] = True
        hit = (sub.data > confidence) & keep[sub.indices]
        col_pos = np.repeat(np.arange(len(columns)), np.diff(sub.indptr))[hit]
        return col_pos, sub.indices[hit], sub.data[hit]
    sub = dense(confidences)[np.ix_(rows, columns)]
    col_pos, row_pos = np.nonzero((sub > confidence).T)
    return col_pos, rows[row_pos], sub[row_pos, col_pos]


def row_values(confidences, row: int) -> np.ndarray:
    """One image's confidences for every feature, dense."""
    if is_sparse(confidences):
        out = np.zeros(confidences.shape[1])
        at = np.flatnonzero(confidences.indices == row)
        out[np.searchsorted(confidences.indptr, at, side="right") - 1] = confidences.data[at]
        return out
    return np.asarray(confidences[row], dtype=np.float64)


def _column_hits(hit: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per column, how many of its stored values ``hit`` (a mask over the stored values) marks."""
    cumulative = np.zeros(len(hit) + 1, dtype=np.int64)
    np.cumsum(hit, out=cumulative[1:])
    return cumulative[indptr[1:]] - cumulative[indptr[:-1]]


def _bool_csc(indices: np.ndarray, counts: np.ndarray, shape: tuple[int, int]) -> sp.csc_array:
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_dtype = np.int32 if max(shape[0], len(indices)) < 2**31 else np.int64
    out = sp.csc_array(
        (np.ones(len(indices), dtype=bool), indices.astype(index_dtype, copy=False), indptr.astype(index_dtype)),
        shape=shape,
    )
    out.has_sorted_indices = True
    return out
