"""A build's confidences kept as one archive next to its long-format values, and read from either."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete

from data import matrix
from data.batches import FeatureBatch
from data.demo import demo_build
from data.schema import build_matrices
from data.store import FeatureStore
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines


def _without_archives(store, db_url):
    """The same database read by a fresh store after the archives are gone (as a build stored earlier)."""
    with store.engine.begin() as conn:
        conn.execute(delete(build_matrices))
    return FeatureStore(db_url)


def _batch(case: str) -> FeatureBatch:
    if case == "demo-sparse":
        return demo_build(n_images=300, n_features=60)[0]
    rng = np.random.default_rng(3)
    images, features = [f"i{k}" for k in range(40)], [f"f{k}" for k in range(3)]
    if case == "dense":  # every value non-zero: held as a dense matrix
        return FeatureBatch(images, features, [(i, j, float(rng.random()) + 1e-9) for i in range(40) for j in range(3)])
    if case == "no-features":
        return FeatureBatch(images, [], [])
    return FeatureBatch(images, features, [])  # no values


@pytest.mark.parametrize("case", ["demo-sparse", "dense", "no-features", "no-values"])
def test_a_build_reads_the_same_from_its_archive_and_from_its_values(store, db_url, case):
    batch = _batch(case)
    store.add_build("Acme", "vision", batch)
    assert len(snapshot(store)["build_matrices"]) == 1
    first, second = FeatureStore(db_url), _without_archives(store, db_url)
    try:
        from_archive, from_values = first.dataset("Acme", "vision"), second.dataset("Acme", "vision")
    finally:
        first.close()
        second.close()
    assert from_archive.images.tolist() == from_values.images.tolist() == list(batch.images)
    assert from_archive.features.tolist() == from_values.features.tolist()
    assert matrix.is_sparse(from_archive.confidences) == matrix.is_sparse(from_values.confidences)
    np.testing.assert_array_equal(from_archive.dense(), from_values.dense())
    if matrix.is_sparse(from_archive.confidences):
        for name in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(
                getattr(from_archive.confidences, name), getattr(from_values.confidences, name)
            )


def test_archive_holds_every_value_exactly():
    values = [(0, 1, 0.1 + 0.2), (2, 0, 1.0), (1, 1, 5e-324), (2, 2, 0.30000000000000004)]
    back = matrix.dense(matrix.from_bytes(matrix.triples_to_bytes(values, (3, 3))))
    expected = np.zeros((3, 3))
    for i, j, c in values:
        expected[i, j] = c
    np.testing.assert_array_equal(back, expected)


def test_pruned_builds_take_their_archives_with_them(db_url):
    store = FeatureStore(db_url, keep_builds=2)
    try:
        for k in range(4):
            store.add_build("Acme", "vision", FeatureBatch(["a", "b"], ["x"], [(0, 0, 0.1 * (k + 1))]))
        kept = sorted(row[0] for row in snapshot(store)["build_matrices"])
        assert kept == sorted(store.builds("Acme", "vision")["build_id"].tolist())
        assert len(kept) == 2
    finally:
        store.close()
