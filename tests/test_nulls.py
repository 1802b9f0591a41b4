"""Permutation nulls drawn when a build or CTR set lands, kept in the store, read by every worker."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from data import nulls, permutation, writes
from data import store as store_module
from data.analysis import feature_summary, permutation_tests
from data.demo import demo_build
from data.errors import StorageUnavailable
from data.store import FeatureStore
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "vision"}


def _demo(store, n_images=300, n_features=60):
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", ctr)
    return store.dataset("Acme", "vision")


def _stored_keys(store) -> list[str]:
    return [row[0] for row in snapshot(store)["null_tables"]]


def test_a_table_survives_the_round_trip_through_bytes():
    rng = np.random.default_rng(4)
    test = permutation.StudentizedTest("mean", rng.lognormal(0, 1, 40)[:, None], n_tests=20)
    table = test.table()
    assert table.exact  # small groups of 40 images are enumerated
    back = nulls.from_bytes(nulls.to_bytes(table))
    assert (back.n, back.resamples) == (table.n, table.resamples)
    for name in ("sizes", "upper", "lower", "body", "tails"):
        np.testing.assert_array_equal(getattr(back, name), getattr(table, name))
    assert back.exact.keys() == table.exact.keys()
    for k, values in table.exact.items():
        np.testing.assert_array_equal(back.exact[k], values)


def test_prepare_stores_a_table_per_weighting_once(store):
    dataset = _demo(store)
    assert len(permutation_tests(dataset)) == 2  # demo CTRs have clicks and impressions
    assert writes.prepare_nulls(store, "Acme", "vision") == 2
    keys = _stored_keys(store)
    assert sorted(keys) == sorted(nulls.storage_key(t.key) for t in permutation_tests(dataset))
    assert all(nulls.FORMAT in key for key in keys)
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    assert _stored_keys(store) == keys


def test_a_table_drawn_by_a_summary_is_stored_without_drawing_it_again(store, monkeypatch):
    dataset = _demo(store)
    feature_summary(dataset, confidence=0.5, cache=store.cache)  # draws the mean table in this app's cache
    feature_summary(dataset, confidence=0.5, weighting="impressions", cache=store.cache)
    monkeypatch.setattr(permutation, "compute_table", lambda *a, **k: pytest.fail("drawn again"))
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    assert len(_stored_keys(store)) == 2


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_another_worker_reads_the_stored_tables_and_gets_the_same_numbers(store, db_url, weighting, monkeypatch):
    dataset = _demo(store)
    expected = feature_summary(dataset, confidence=0.5, weighting=weighting, cache=store.cache)
    writes.prepare_nulls(store, "Acme", "vision")
    monkeypatch.setattr(permutation, "compute_table", lambda *a, **k: pytest.fail("drawn"))
    other = FeatureStore(db_url)
    try:
        pd.testing.assert_frame_equal(
            # Another worker: a store of its own, whose cache never drew them.
            feature_summary(other.dataset("Acme", "vision"), confidence=0.5, weighting=weighting, cache=other.cache),
            expected,
        )
    finally:
        other.close()


def test_dated_metrics_get_the_tables_of_their_recent_windows(store, db_url, monkeypatch):
    """Last 7, 30 and 90 days are drawn with every day, so another worker opens them without drawing."""
    from data.demo import demo_daily
    from data.window import recent

    batch, ctr = demo_build(n_images=200, n_features=30)
    store.add_build("Acme", "vision", batch)
    daily = demo_daily(batch, ctr, days=40)
    store.replace_metrics("Acme", "vision", daily)
    first, last = daily["day"].min(), daily["day"].max()
    # Every day, 7 days and 30 days, in both weightings; 90 days is every day again (40 days of data).
    assert writes.prepare_nulls(store, "Acme", "vision") == 6
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    monkeypatch.setattr(permutation, "compute_table", lambda *a, **k: pytest.fail("drawn"))
    other = FeatureStore(db_url)
    try:
        for days in (7, 30, 90):
            dataset = other.dataset("Acme", "vision", window=recent(days, first, last))
            for weighting in ("mean", "impressions"):
                feature_summary(dataset, confidence=0.5, weighting=weighting, cache=other.cache)
    finally:
        other.close()


def test_a_pair_without_a_build_or_ctrs_has_nothing_to_draw(store):
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    batch, _ = demo_build(n_images=50, n_features=10)
    store.add_build("Acme", "vision", batch)
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    assert _stored_keys(store) == []


def test_only_the_newest_tables_are_kept(store, monkeypatch):
    monkeypatch.setattr(store_module, "KEEP_NULL_TABLES", 3)
    for i in range(5):
        store.save_null_table(f"key-{i}", bytes([i]))
    kept = _stored_keys(store)
    assert sorted(kept) == ["key-2", "key-3", "key-4"]
    store.save_null_table("key-4", b"other")  # a second writer of the same table changes nothing
    assert store.null_table_data("key-4") == bytes([4])


def test_saving_a_table_does_not_change_the_store_version(store):
    before = store.version()
    store.save_null_table("k", b"x")
    assert store.version() == before


def _put(client, path, body):
    return client.put(path, data=json.dumps(body), headers=HEADERS)


def _features_and_ctr(n_images=200, n_features=40):
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    doc = {image: {} for image in batch.images}
    for i, j, value in batch.values:
        doc[batch.images[i]][batch.features[j]] = value
    rates = {row.image: float(row.ctr) for row in ctr.itertuples()}
    return doc, rates


@pytest.mark.parametrize("ctr_first", [False, True])
def test_the_write_that_completes_a_dataset_stores_its_nulls_once_the_answer_is_sent(client, store, ctr_first):
    doc, rates = _features_and_ctr()
    writes = (
        [("/api/ctr", rates), ("/api/features", doc)] if ctr_first else [("/api/features", doc), ("/api/ctr", rates)]
    )
    with _put(client, *writes[0]) as first:
        assert first.status_code in (200, 201)
    assert _stored_keys(store) == []  # features without CTRs, or CTRs without a build: nothing to test yet
    response = _put(client, *writes[1])
    assert response.status_code in (200, 201)
    assert _stored_keys(store) == []  # not before the answer is closed (sent)
    response.close()
    assert len(_stored_keys(store)) == 1  # rates: the mean weighting only


def test_the_first_summary_after_a_build_lands_reads_its_nulls(client, store, monkeypatch):
    doc, rates = _features_and_ctr()
    with _put(client, "/api/ctr", rates):
        pass
    with _put(client, "/api/features", doc):
        pass
    store.cache.clear()  # as a worker that has not read the build yet
    monkeypatch.setattr(permutation, "compute_table", lambda *a, **k: pytest.fail("drawn on a read"))
    answer = client.get("/api/summary", query_string={"business": "Acme", "source": "vision", "confidence": 0.5})
    assert answer.status_code == 200
    assert any(row["p_value"] is not None for row in answer.get_json()["features"])


def test_a_rejected_write_prepares_nothing(client, store):
    doc, rates = _features_and_ctr()
    with _put(client, "/api/features", doc):
        pass
    before = snapshot(store)
    with _put(client, "/api/ctr", {"a": "high"}) as response:
        assert response.status_code == 400
    assert snapshot(store) == before


def test_a_failure_to_store_the_nulls_is_logged_and_the_write_stands(client, store, monkeypatch, caplog):
    doc, rates = _features_and_ctr()
    with _put(client, "/api/features", doc):
        pass

    def broken(key, data):
        raise StorageUnavailable("disk full")

    monkeypatch.setattr(store, "save_null_table", broken)
    with caplog.at_level(logging.ERROR):
        with _put(client, "/api/ctr", rates) as response:
            assert response.status_code == 200
    assert "permutation nulls" in caplog.text
    assert len(store.ctr("Acme", "vision")) == len(rates)
    assert _stored_keys(store) == []


def test_a_draw_too_large_for_the_write_path_is_left_to_the_first_summary(store, monkeypatch):
    dataset = _demo(store)
    tests = permutation_tests(dataset)
    monkeypatch.setattr(nulls, "EAGER_CELLS", min(t.draw_cells for t in tests) - 1)
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    assert _stored_keys(store) == []
    feature_summary(dataset, confidence=0.5, cache=store.cache)  # the summary draws it; the next write stores it
    monkeypatch.setattr(permutation, "compute_table", lambda *a, **k: pytest.fail("drawn again"))
    assert writes.prepare_nulls(store, "Acme", "vision") == 0
    assert _stored_keys(store) == [nulls.storage_key(tests[0].key)]
