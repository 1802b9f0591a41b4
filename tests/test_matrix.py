"""Sparse and dense confidences give the same numbers bit for bit; the compact form is the smaller."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from data import matrix
from data.analysis import Dataset, feature_summary, image_features, scatter_points
from data.demo import demo_build
from data.filters import FilterError

THRESHOLDS = [0.0, 0.1, 0.5, 0.7106531262397766, 0.9, 1.0]


def as_sparse(dataset: Dataset) -> Dataset:
    """The same dataset with its confidences as a scipy.sparse CSC array."""
    ctr = pd.DataFrame({"image": dataset.images, "ctr": dataset.ctr})
    if dataset.clicks is not None:
        ctr = ctr.assign(clicks=dataset.clicks, impressions=dataset.impressions)
    sparse = Dataset.from_matrix(dataset.images, dataset.features, sp.csc_array(dataset.dense()), ctr)
    assert matrix.is_sparse(sparse.confidences)
    return sparse


@pytest.fixture(scope="module")
def demo_pair() -> tuple[Dataset, Dataset]:
    """The demo build (with counts, a few CTRs missing) as a dense and a sparse Dataset."""
    batch, ctr = demo_build(n_images=400, n_features=120)
    ctr = ctr.iloc[7:].reset_index(drop=True)  # some images without a CTR
    dense = np.zeros((len(batch.images), len(batch.features)))
    for i, j, c in batch.values:
        dense[i, j] = c
    dense_ds = Dataset.from_matrix(batch.images, batch.features, dense, ctr)
    assert not matrix.is_sparse(dense_ds.confidences)
    return dense_ds, as_sparse(dense_ds)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_matrix_sparse_summary_equals_dense_on_reference(reference_dataset, threshold):
    """Every column of the summary, statistics included, is identical for sparse and dense input."""
    dense = feature_summary(reference_dataset, confidence=threshold)
    sparse = feature_summary(as_sparse(reference_dataset), confidence=threshold)
    assert len(dense) or threshold == 1.0
    pd.testing.assert_frame_equal(sparse, dense, check_exact=True)


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
@pytest.mark.parametrize("threshold", [0.0, 0.55, 0.8])
def test_matrix_sparse_summary_equals_dense_on_demo(demo_pair, threshold, weighting):
    """With counts, missing CTRs and both weightings, sparse and dense agree to the last bit."""
    dense_ds, sparse_ds = demo_pair
    dense = feature_summary(dense_ds, confidence=threshold, min_pct=1, max_pct=90, weighting=weighting)
    sparse = feature_summary(sparse_ds, confidence=threshold, min_pct=1, max_pct=90, weighting=weighting)
    assert len(dense) > 20
    pd.testing.assert_frame_equal(sparse, dense, check_exact=True)


def test_matrix_sparse_points_and_image_features_equal_dense(demo_pair):
    """Scatter points (in feature order) and one image's features are the same from either form."""
    dense_ds, sparse_ds = demo_pair
    order = feature_summary(dense_ds, confidence=0.5)["feature"]
    pd.testing.assert_frame_equal(
        scatter_points(sparse_ds, confidence=0.5, features=order),
        scatter_points(dense_ds, confidence=0.5, features=order),
    )
    for image in dense_ds.images[[0, 10, 399]]:
        pd.testing.assert_frame_equal(
            image_features(sparse_ds, image, 0.3), image_features(dense_ds, image, 0.3), check_exact=True
        )


def test_matrix_negative_threshold_makes_unstored_zeros_present(reference_dataset):
    """Below zero every cell is present, stored or not, as with a dense matrix (the analysis' filters stop at 0)."""
    sparse = as_sparse(reference_dataset)
    present = matrix.presence(sparse.confidences, -0.5)
    assert present.nnz == reference_dataset.dense().size
    assert np.array_equal(present.toarray(), matrix.presence(reference_dataset.dense(), -0.5).toarray())
    with pytest.raises(FilterError, match=r"confidence must be a number in \[0, 1\], got -0.5"):
        feature_summary(sparse, confidence=-0.5)


def test_matrix_presence_is_strictly_above_the_threshold():
    """A stored value equal to the threshold is not present; unstored cells never are."""
    conf = sp.csc_array(np.array([[0.5, 0.0], [0.0, 0.25], [0.75, 0.5]]))
    assert matrix.presence(conf, 0.5).toarray().tolist() == [[False, False], [False, False], [True, False]]
    assert matrix.presence(conf, 0.0).toarray().tolist() == [[True, False], [False, True], [True, True]]


def test_matrix_keep_rows_renumbers_and_keeps_order():
    """Selecting rows by a mask keeps each column's present rows, renumbered, ascending."""
    present = sp.csc_array(np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 1]], dtype=bool))
    kept = matrix.keep_rows(present, np.array([False, True, True, True]))
    assert kept.toarray().tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 1]]
    assert matrix.column_counts(kept).tolist() == [2, 0, 2]
    assert matrix.column_rows(kept, 2).tolist() == [1, 2]


def test_matrix_compact_picks_the_smaller_form():
    """A mostly-zero matrix becomes sparse, a mostly-full one stays dense, with the same values."""
    rare = np.zeros((50, 40))
    rare[np.arange(50), np.arange(50) % 40] = 0.5
    full = np.full((50, 40), 0.25)
    assert matrix.is_sparse(matrix.compact(rare))
    assert not matrix.is_sparse(matrix.compact(full))
    assert np.array_equal(matrix.dense(matrix.compact(rare)), rare)
    assert not matrix.is_sparse(matrix.compact(sp.csc_array(full)))
    assert matrix.nbytes(matrix.compact(rare)) < rare.nbytes


def test_matrix_from_long_of_a_wide_diagonal_build_stays_small():
    """A 40,000 x 40,000 diagonal from long rows holds its 40,000 values, not 12.8 GB of zeros."""
    n = 40_000
    names = [f"x{i}" for i in range(n)]
    values = pd.DataFrame({"image": names, "feature": names, "confidence": np.full(n, 0.9)})
    dataset = Dataset.from_long(values, pd.Series(np.linspace(0.01, 0.02, n), index=names))
    assert matrix.is_sparse(dataset.confidences)
    assert matrix.nbytes(dataset.confidences) < 1_000_000
    summary = feature_summary(dataset, confidence=0.5)
    assert len(summary) == n and (summary["n_with"] == 1).all()
    assert summary["prevalence_pct"].iloc[0] == 100 / n
