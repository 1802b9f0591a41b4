"""FeatureStore on real SQLite files and PostgreSQL: round trips, CTR sets, history, pruning, errors and caching."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from data import matrix
from data.batches import FeatureBatch, ctr_frame
from data.store import FeatureStore, InvalidBatch, UnknownBuild, UnknownDataset
from tests.helpers import dense_batch
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines


def make_batch(seed: int, n_images: int = 12, n_features: int = 5, prefix: str = "img") -> FeatureBatch:
    """A small batch of deterministic values, some zero (left out), with full float precision."""
    rnd = random.Random(seed)
    images = [f"{prefix}_{i}" for i in range(n_images)]
    features = [f"feature_{j}" for j in range(n_features)]
    values = [(i, j, rnd.random()) for i in range(n_images) for j in range(n_features) if rnd.random() < 0.6]
    return FeatureBatch(images, features, values)


def make_ctr(images, seed: int, counts: bool = True) -> pd.DataFrame:
    """CTRs for ``images`` as clicks / impressions (or bare rates), deterministic."""
    rnd = random.Random(seed)
    impressions = [rnd.randrange(1_000, 50_000) for _ in images]
    clicks = [rnd.randrange(0, n // 20) for n in impressions]
    rates = [c / n for c, n in zip(clicks, impressions)]
    if not counts:
        return ctr_frame(images, rates)
    return ctr_frame(images, rates, clicks=clicks, impressions=impressions)


def test_store_add_build_round_trips_exact_values(store):
    """A stored build comes back with the same names, order and float values bit for bit."""
    batch = make_batch(1)
    info = store.add_build("Acme", "vision", batch)
    assert (info["images"], info["features"], info["values"]) == (12, 5, len(batch.values))
    dataset = store.dataset("Acme", "vision")
    assert dataset.images.tolist() == batch.images
    assert dataset.features.tolist() == batch.features
    assert np.array_equal(dataset.dense(), dense_batch(batch))
    assert np.isnan(dataset.ctr).all()


def test_store_keeps_images_and_features_without_values(store):
    """An image or feature with no non-zero value is still part of the build."""
    batch = FeatureBatch(["a", "blank", "c"], ["f", "unused"], [(0, 0, 0.5), (2, 0, 0.25)])
    store.add_build("Acme", "vision", batch)
    dataset = store.dataset("Acme", "vision")
    assert dataset.images.tolist() == ["a", "blank", "c"]
    assert dataset.features.tolist() == ["f", "unused"]
    assert dataset.dense().tolist() == [[0.5, 0.0], [0.0, 0.0], [0.25, 0.0]]


@pytest.mark.parametrize("ctr_first", [True, False])
def test_store_ctr_before_or_after_features(store, ctr_first):
    """CTRs align to the build by image name whichever arrived first; unknown images are ignored."""
    batch = make_batch(2)
    ctr = make_ctr(batch.images[:8] + ["not_in_build"], seed=3)
    if ctr_first:
        store.replace_ctr("Acme", "vision", ctr)
        store.add_build("Acme", "vision", batch)
    else:
        store.add_build("Acme", "vision", batch)
        store.replace_ctr("Acme", "vision", ctr)
    dataset = store.dataset("Acme", "vision")
    assert dataset.ctr[:8].tolist() == ctr["ctr"][:8].tolist()
    assert np.isnan(dataset.ctr[8:]).all()
    assert dataset.has_counts
    assert dataset.clicks[:8].tolist() == ctr["clicks"][:8].astype(float).tolist()
    assert store.datasets().loc[0, "images_with_ctr"] == 8


def test_store_replace_ctr_replaces_the_whole_set(store):
    """A second CTR upload replaces the first: images it omits lose their CTR and counts."""
    batch = make_batch(4)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, seed=5))
    second = make_ctr(batch.images[3:6], seed=6, counts=False)
    store.replace_ctr("Acme", "vision", second)
    pd.testing.assert_frame_equal(store.ctr("Acme", "vision"), second)
    dataset = store.dataset("Acme", "vision")
    assert np.isnan(dataset.ctr[:3]).all() and np.isnan(dataset.ctr[6:]).all()
    assert dataset.ctr[3:6].tolist() == second["ctr"].tolist()
    assert not dataset.has_counts
    assert len(snapshot(store)["ctr_sets"]) == 1
    assert len(snapshot(store)["ctr_values"]) == 3


def test_store_ctr_of_a_pair_without_upload_is_empty(store):
    """Asking for CTRs never uploaded gives an empty frame with the usual columns."""
    frame = store.ctr("Nobody", "vision")
    assert frame.empty
    assert list(frame.columns) == ["image", "ctr", "clicks", "impressions"]


def test_store_builds_lists_history_newest_first(store):
    """builds() lists a pair's builds newest first; the newest is the current one."""
    ids = [store.add_build("Acme", "vision", make_batch(seed, n_images=3 + seed))["build_id"] for seed in range(3)]
    store.add_build("Other", "vision", make_batch(9))
    history = store.builds("Acme", "vision")
    assert history["build_id"].tolist() == ids[::-1]
    assert history["images"].tolist() == [5, 4, 3]
    assert store.resolve_build("Acme", "vision") == ids[-1]
    assert len(store.dataset("Acme", "vision").images) == 5
    older = store.dataset("Acme", "vision", build_id=ids[0])
    assert np.array_equal(older.dense(), dense_batch(make_batch(0, n_images=3)))


def test_store_keep_builds_prunes_oldest_and_all_their_rows(db_url):
    """Only the newest keep_builds builds of a pair remain, with every row of the others gone."""
    store = FeatureStore(db_url, keep_builds=2)
    other = store.add_build("Other", "vision", make_batch(20))["build_id"]
    ids = [store.add_build("Acme", "vision", make_batch(seed))["build_id"] for seed in range(4)]
    assert store.builds("Acme", "vision")["build_id"].tolist() == [ids[3], ids[2]]
    rows = snapshot(store)
    kept = {other, ids[2], ids[3]}
    assert {row[0] for row in rows["builds"]} == kept
    for table in ("build_images", "build_features", "feature_values"):
        assert {row[0] for row in rows[table]} == kept, table
    with pytest.raises(UnknownBuild):
        store.dataset("Acme", "vision", build_id=ids[0])
    assert np.array_equal(store.dataset("Acme", "vision", build_id=ids[2]).dense(), dense_batch(make_batch(2)))
    store.close()


def test_store_keep_builds_must_be_positive(db_url):
    """keep_builds below 1 is refused."""
    with pytest.raises(ValueError, match="keep_builds"):
        FeatureStore(db_url, keep_builds=0)


def test_store_unknown_dataset_and_build(store):
    """An unknown pair raises UnknownDataset; a build id of another pair raises UnknownBuild."""
    other = store.add_build("Other", "vision", make_batch(1))["build_id"]
    store.add_build("Acme", "vision", make_batch(2))
    with pytest.raises(UnknownDataset):
        store.dataset("Acme", "labels")
    with pytest.raises(UnknownDataset):
        store.builds("Nobody", "vision")
    with pytest.raises(UnknownDataset):
        store.dataset("Nobody", "vision", build_id=other)
    with pytest.raises(UnknownBuild):
        store.dataset("Acme", "vision", build_id=other)
    with pytest.raises(UnknownBuild):
        store.resolve_build("Acme", "vision", 999)
    assert issubclass(UnknownDataset, LookupError) and issubclass(UnknownBuild, LookupError)


def test_store_version_changes_on_every_write(store):
    """Each build and each CTR upload gives a new version; reads leave it alone."""
    seen = [store.version()]
    batch = make_batch(3)
    for write in (
        lambda: store.add_build("Acme", "vision", batch),
        lambda: store.replace_ctr("Acme", "vision", make_ctr(batch.images, 1)),
        lambda: store.replace_ctr("Acme", "vision", make_ctr(batch.images, 1)),
        lambda: store.add_build("Acme", "vision", batch),
        lambda: store.add_build("Other", "vision", batch),
    ):
        write()
        seen.append(store.version())
        store.dataset("Acme", "vision")
        store.datasets()
        assert store.version() == seen[-1]
    assert len(set(seen)) == len(seen)


def test_store_datasets_fields_and_most_recently_updated_first(store):
    """datasets() has one row per pair with its current build and CTR state, latest update first."""
    acme_old = make_batch(1, n_images=4)
    store.add_build("Acme", "vision", acme_old)
    acme = make_batch(2, n_images=6)
    store.add_build("Acme", "vision", acme)
    other = make_batch(3, n_images=7, prefix="o")
    store.add_build("Other", "labels", other)
    listed = store.datasets()
    assert list(zip(listed["business"], listed["source"])) == [("Other", "labels"), ("Acme", "vision")]
    # A CTR upload counts as an update and brings its pair to the top.
    store.replace_ctr("Acme", "vision", make_ctr(acme.images[:5] + ["gone"], seed=4))
    listed = store.datasets()
    assert list(zip(listed["business"], listed["source"])) == [("Acme", "vision"), ("Other", "labels")]
    assert {
        "build_id",
        "received_at",
        "images",
        "features",
        "ctr_received_at",
        "has_counts",
        "images_with_ctr",
        "updated_at",
    } <= set(listed.columns)
    first, second = listed.iloc[0], listed.iloc[1]
    assert (first["build_id"], first["images"], first["features"]) == (store.resolve_build("Acme", "vision"), 6, 5)
    assert (first["images_with_ctr"], first["has_counts"]) == (5, True)
    assert first["updated_at"] == first["ctr_received_at"] > first["received_at"]
    assert (second["images_with_ctr"], second["has_counts"]) == (0, False)
    assert second["updated_at"] == second["received_at"] and pd.isna(second["ctr_received_at"])
    # A new build of the other pair makes it the latest again.
    store.add_build("Other", "labels", other)
    assert store.datasets()["business"].tolist() == ["Other", "Acme"]


def test_store_datasets_of_empty_store(store):
    """An empty store lists no datasets and says it is empty."""
    assert store.is_empty()
    assert store.datasets().empty
    assert store.version() == "0"
    assert store.ping()


def test_store_restart_keeps_data(db_url, store):
    """A new FeatureStore on the same file sees every build and CTR set."""
    batch = make_batch(7)
    ctr = make_ctr(batch.images, seed=8)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", ctr)
    before = snapshot(store)
    store.close()
    reopened = FeatureStore(db_url)
    try:
        assert snapshot(reopened) == before
        dataset = reopened.dataset("Acme", "vision")
        assert np.array_equal(dataset.dense(), dense_batch(batch))
        assert dataset.ctr.tolist() == ctr["ctr"].tolist()
        assert not reopened.is_empty()
    finally:
        reopened.close()


HOSTILE_NAMES = [
    'O\'Brien "Outdoor" Co.',
    "x'); DROP TABLE builds; --",
    "Łódź Ünïcödé 東京 🧢",
    "  padded  ",
    "semi;colon,comma\ttab",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_store_stores_header_like_values_as_given(store, name):
    """Quotes, SQL fragments, unicode and whitespace in names are stored and found as given."""
    batch = FeatureBatch([name, "plain"], [name, "f"], [(0, 0, 0.5), (1, 1, 0.25)])
    store.add_build(name, name, batch)
    store.replace_ctr(name, name, ctr_frame([name], [0.02]))
    listed = store.datasets()
    assert listed["business"].tolist() == [name] and listed["source"].tolist() == [name]
    dataset = store.dataset(name, name)
    assert dataset.images.tolist() == [name, "plain"]
    assert dataset.features.tolist() == [name, "f"]
    assert dataset.ctr[0] == 0.02
    assert store.ctr(name, name)["image"].tolist() == [name]
    assert [row[1:3] for row in snapshot(store)["builds"]] == [(name, name)]


def test_store_dataset_cache_sees_new_ctr_and_new_build(store):
    """A cached dataset is not served after a new CTR upload or a new build."""
    batch = make_batch(5)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, seed=1))
    first = store.dataset("Acme", "vision")
    assert store.dataset("Acme", "vision") is first
    second_ctr = make_ctr(batch.images, seed=2)
    store.replace_ctr("Acme", "vision", second_ctr)
    assert store.dataset("Acme", "vision").ctr.tolist() == second_ctr["ctr"].tolist()
    newer = make_batch(6)
    store.add_build("Acme", "vision", newer)
    assert np.array_equal(store.dataset("Acme", "vision").dense(), dense_batch(newer))


def test_store_out_of_range_position_changes_nothing(store):
    """A batch pointing past its images or features is refused before anything is written."""
    store.add_build("Acme", "vision", make_batch(1))
    before = snapshot(store)
    for values in ([(0, 0, 0.5), (2, 0, 0.5)], [(0, 2, 0.5)], [(-1, 0, 0.5)]):
        with pytest.raises(InvalidBatch):
            store.add_build("Acme", "vision", FeatureBatch(["a", "b"], ["f", "g"], values))
    assert snapshot(store) == before
    assert store.dataset("Acme", "vision").confidences.shape == (12, 5)


@pytest.mark.parametrize(
    "images, features",
    [(["a", "a"], ["f", "g"]), (["a", "b"], ["f", "f"])],
    ids=["repeated image", "repeated feature"],
)
def test_store_repeated_names_change_nothing(store, images, features):
    """Two columns or rows under one name would make lookups by name ambiguous: refused whole."""
    store.add_build("Acme", "vision", make_batch(1))
    before = snapshot(store)
    with pytest.raises(InvalidBatch, match="names repeat"):
        store.add_build("Acme", "vision", FeatureBatch(images, features, [(0, 0, 0.5), (1, 1, 0.25)]))
    assert snapshot(store) == before


def test_store_write_failing_mid_way_changes_nothing(store):
    """A build that fails after thousands of rows leaves no trace, and the store works after."""
    store.add_build("Acme", "vision", make_batch(1))
    store.replace_ctr("Acme", "vision", make_ctr(make_batch(1).images, seed=1))
    before = snapshot(store)
    version = store.version()
    images = [f"i{k}" for k in range(100)]
    # The NOT NULL confidence column rejects the last row, after all the others were sent.
    values = [(i, j, 0.5) for i in range(100) for j in range(30)] + [(99, 29, None)]
    integrity_error = store.engine.dialect.dbapi.IntegrityError  # sqlite3's or psycopg's
    with pytest.raises(integrity_error):
        store.add_build("Acme", "vision", FeatureBatch(images, [f"f{j}" for j in range(30)], values))
    with pytest.raises(integrity_error):
        # Likewise the missing image name, after the old set was already deleted in the transaction.
        store.replace_ctr("Acme", "vision", ctr_frame(["a", None], [0.1, 0.2]))
    assert snapshot(store) == before
    assert store.version() == version
    store.add_build("Acme", "vision", make_batch(2))
    assert store.builds("Acme", "vision").shape[0] == 2


def test_store_cache_is_bounded_in_bytes(db_url):
    """With room for one build, reading a second drops the first; both still read correctly."""
    store = FeatureStore(db_url)
    for name in ("one", "two"):
        store.add_build(name, "vision", make_batch(3, n_images=200, n_features=20, prefix=name))
    size = store.dataset("one", "vision").nbytes
    store.close()
    store = FeatureStore(db_url, cache_mb=1.5 * size / 2**20)
    one = store.dataset("one", "vision")
    assert store.dataset("one", "vision") is one
    two = store.dataset("two", "vision")
    assert store.dataset("two", "vision") is two
    again = store.dataset("one", "vision")
    assert again is not one and np.array_equal(again.dense(), one.dense())
    assert store.dataset("two", "vision") is not two
    store.close()


def test_store_cache_of_zero_bytes_keeps_nothing(db_url):
    """CACHE_MB=0 reads the build on every call, with the same values."""
    store = FeatureStore(db_url, cache_mb=0)
    batch = make_batch(4)
    store.add_build("Acme", "vision", batch)
    first = store.dataset("Acme", "vision")
    second = store.dataset("Acme", "vision")
    assert first is not second and np.array_equal(second.dense(), dense_batch(batch))
    store.close()


def test_store_new_ctr_reuses_the_cached_matrix(store):
    """A CTR upload realigns the CTRs but keeps the build's confidences instead of reading them again."""
    batch = make_batch(5)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, seed=1))
    first = store.dataset("Acme", "vision")
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, seed=2))
    second = store.dataset("Acme", "vision")
    assert second.confidences is first.confidences
    assert second.ctr.tolist() == make_ctr(batch.images, seed=2)["ctr"].tolist()


def test_store_reads_a_wide_sparse_build_as_sparse(store):
    """A 5,000 x 5,000 diagonal is read as its 5,000 values, not a 200 MB dense matrix."""
    n = 5_000
    names = [f"n{i}" for i in range(n)]
    store.add_build("Wide", "vision", FeatureBatch(names, names, [(i, i, 0.5 + i / (4 * n)) for i in range(n)]))
    dataset = store.dataset("Wide", "vision")
    assert matrix.is_sparse(dataset.confidences)
    assert dataset.nbytes < 2_000_000
    assert dataset.confidences[1234, 1234] == 0.5 + 1234 / (4 * n)
    assert dataset.confidences.nnz == n
