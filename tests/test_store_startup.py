"""Start-up on both engines: schema and demo data once, in one transaction, whoever starts at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from dashboard.factory import create_app
from data.batches import ctr_frame
from data.demo import DEMO_BUSINESS, REFERENCE_BUSINESS, load_demo
from data.settings import Settings
from data.store import FeatureStore
from tests.tables import snapshot
from tests.test_store import make_batch

pytestmark = pytest.mark.both_engines


def test_initialise_seeds_an_empty_store_once(store):
    """The seed runs when no build is stored, and never again once one is."""
    calls = []

    def seed(writer):
        calls.append(1)
        return writer.add_build("Acme", "vision", make_batch(1))["build_id"]

    build_id = store.initialise(seed)
    assert store.initialise(seed) is None
    assert len(calls) == 1
    assert store.builds("Acme", "vision")["build_id"].tolist() == [build_id]


def test_initialise_seed_failing_half_way_leaves_nothing(store):
    """A seed that fails after its first writes leaves the database as it was, and a later start seeds it whole."""
    before = snapshot(store)

    def broken(writer):
        writer.add_build("Acme", "vision", make_batch(1))
        writer.replace_ctr("Acme", "vision", ctr_frame(["a"], [0.1]))
        raise RuntimeError("crash after the first writes")

    with pytest.raises(RuntimeError):
        store.initialise(broken)
    assert snapshot(store) == before
    loaded = store.initialise(load_demo)
    assert {b["business"] for b in loaded.values()} == {DEMO_BUSINESS, REFERENCE_BUSINESS}


def test_factory_loads_the_demo_on_first_start_only(settings, store):
    """The app's first start stores both demo datasets with their CTRs; the next start adds nothing."""
    create_app(settings.with_overrides(demo_data=True), store)
    listed = store.datasets()
    assert sorted(listed["business"]) == sorted([DEMO_BUSINESS, REFERENCE_BUSINESS])
    assert (listed["images_with_ctr"] > 0).all()
    create_app(settings.with_overrides(demo_data=True), store)
    assert len(snapshot(store)["builds"]) == 2


def test_stores_starting_at_once_load_the_demo_exactly_once(db_url):
    """Six stores on one fresh database, started together: each boots, the demo is stored once."""
    barrier = threading.Barrier(6)
    results, errors = [], []

    def start():
        try:
            barrier.wait()
            store = FeatureStore(db_url)
            results.append(store.initialise(load_demo))
            store.close()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r is not None for r in results) == 1
    store = FeatureStore(db_url)
    try:
        rows = snapshot(store)
        # The reference's CTR set and the demo's dated metrics, once each.
        assert len(rows["builds"]) == 2 and (len(rows["ctr_sets"]), len(rows["metric_sets"])) == (1, 1)
    finally:
        store.close()


def test_store_upgrades_a_database_without_build_tags(db_url):
    """A database made before build tags (and before migrations) gets the column and its unique index at start."""
    store = FeatureStore(db_url)
    first = store.add_build("Acme", "vision", make_batch(1))["build_id"]
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ux_builds_tag"))
        conn.execute(text("ALTER TABLE builds DROP COLUMN tag"))
        conn.execute(text("DROP TABLE alembic_version"))
        for table in (
            "image_thumbnails",
            "access_tokens",
            "app_secrets",
            "metric_sets",
            "image_metrics_daily",
            "image_metrics_totals",
        ):  # added by later revisions
            conn.execute(text(f"DROP TABLE {table}"))
    store.close()
    store = FeatureStore(db_url)
    try:
        tagged = store.add_build("Acme", "vision", make_batch(2), tag="jenkins-acme-7")
        again = store.add_build("Acme", "vision", make_batch(2), tag="jenkins-acme-7")
        assert (tagged["created"], again["created"], again["build_id"]) == (True, False, tagged["build_id"])
        assert store.builds("Acme", "vision")["build_id"].tolist() == [tagged["build_id"], first]
    finally:
        store.close()


def test_factory_without_demo_data_creates_only_the_schema(db_url):
    """DEMO_DATA=0 starts empty."""
    app = create_app(Settings.from_env({}, database_url=db_url, demo_data=False))
    store = app.server.extensions["feature_store"]
    try:
        assert store.is_empty() and store.version() == "0"
    finally:
        store.close()
