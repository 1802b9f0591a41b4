"""The store under concurrent writers and readers, on both engines: no lost build, no vanished read."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from data import matrix
from data.batches import ctr_frame
from data.store import FeatureStore, UnknownBuild
from tests.helpers import dense_batch
from tests.tables import snapshot
from tests.test_store import make_batch

pytestmark = pytest.mark.both_engines


def run_together(*jobs):
    """Run the callables in threads started at the same moment; returns the exceptions they raised."""
    barrier = threading.Barrier(len(jobs))
    errors = []

    def run(job):
        try:
            barrier.wait()
            job()
        except Exception as exc:  # collected for the test to assert on
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_store_build_tag_finds_the_stored_build(store):
    """A second add_build with a tag the pair already has stores nothing and returns that build."""
    first = store.add_build("Acme", "vision", make_batch(1), tag="acme-build-41")
    before = snapshot(store)
    version = store.version()
    again = store.add_build("Acme", "vision", make_batch(2), tag="acme-build-41")
    assert first.pop("created") is True and again.pop("created") is False
    assert again == first
    assert snapshot(store) == before
    assert store.version() == version
    # The same tag on another pair, or no tag, is a new build.
    other = store.add_build("Other", "vision", make_batch(1), tag="acme-build-41")
    untagged = [store.add_build("Acme", "vision", make_batch(3))["build_id"] for _ in range(2)]
    assert other["created"] and len(set(untagged)) == 2
    assert store.resolve_build("Acme", "vision") == untagged[-1]


def test_store_same_tag_at_once_stores_one_build(store):
    """Eight writers retrying one tagged build at the same moment store it once; all get its id."""
    results = []
    errors = run_together(
        *[lambda: results.append(store.add_build("Acme", "vision", make_batch(5), tag="jenkins-7"))] * 8
    )
    assert errors == []
    assert sorted(r["created"] for r in results) == [False] * 7 + [True]
    assert {r["build_id"] for r in results} == {store.resolve_build("Acme", "vision")}
    assert len(snapshot(store)["builds"]) == 1


def test_store_concurrent_ctr_uploads_of_one_pair_all_succeed(store):
    """Eight CTR uploads to the same pair at once: none fails, one whole set remains."""
    batch = make_batch(1)
    store.add_build("Acme", "vision", batch)
    rates = [k / 100 for k in range(1, 9)]
    errors = run_together(
        *[
            lambda r=r: store.replace_ctr("Acme", "vision", ctr_frame(batch.images, [r] * len(batch.images)))
            for r in rates
        ]
    )
    assert errors == []
    rows = snapshot(store)
    assert len(rows["ctr_sets"]) == 1 and len(rows["ctr_values"]) == len(batch.images)
    assert len(set(store.dataset("Acme", "vision").ctr.tolist())) == 1


def test_store_reads_never_lose_a_build_to_a_concurrent_prune(db_url):
    """With keep_builds=1 every new build prunes the last: reads of the current build still never fail."""
    store = FeatureStore(db_url, keep_builds=1, cache_mb=0)  # no cache: every read goes to the database
    batches = [make_batch(seed, n_images=4 + seed % 3) for seed in range(3)]
    store.add_build("Acme", "vision", batches[0])
    failures, seen = [], set()
    done = threading.Event()

    def write():
        try:
            for k in range(1, 25):
                store.add_build("Acme", "vision", batches[k % 3])
        finally:
            done.set()

    def read():
        while not done.is_set():
            try:
                dataset, build_id, gone = store.load_build("Acme", "vision")
                assert gone is None
                seen.add(build_id)
                assert any(np.array_equal(matrix.dense(dataset.confidences), dense_batch(b)) for b in batches)
            except Exception as exc:  # every failed read is reported
                failures.append(exc)

    errors = run_together(write, read, read)
    store.close()
    assert errors == [] and failures == []
    assert len(seen) > 1


def test_store_load_build_falls_back_from_a_pruned_build(db_url):
    """A pinned build that was pruned raises UnknownBuild, or with fall_back gives the current one."""
    store = FeatureStore(db_url, keep_builds=1)
    try:
        old = store.add_build("Acme", "vision", make_batch(1))["build_id"]
        new = store.add_build("Acme", "vision", make_batch(2))["build_id"]
        with pytest.raises(UnknownBuild):
            store.load_build("Acme", "vision", old)
        dataset, build_id, gone = store.load_build("Acme", "vision", old, fall_back=True)
        assert (build_id, gone) == (new, old)
        assert np.array_equal(matrix.dense(dataset.confidences), dense_batch(make_batch(2)))
    finally:
        store.close()
