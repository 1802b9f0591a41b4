"""ByteLRU: least recently used values leave first once their bytes exceed the budget; AnalysisCache: one app's caches."""

from __future__ import annotations

import numpy as np
import pytest

from data import permutation
from data.cache import AnalysisCache, ByteLRU
from tests.helpers import load_frame


def test_cache_evicts_least_recently_used_beyond_budget():
    """Adding past the budget drops the oldest unused entries until the total fits."""
    cache = ByteLRU(100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 40)
    assert "b" not in cache and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.nbytes == 80


def test_cache_evicts_several_for_one_large_value():
    """One value may push out several smaller ones."""
    cache = ByteLRU(100)
    for key in "abcd":
        cache.put(key, key.upper(), 25)
    cache.put("big", "BIG", 90)
    assert list(map(cache.__contains__, "abcd")) == [False] * 4
    assert cache.nbytes == 90 and len(cache) == 1


def test_cache_does_not_keep_a_value_larger_than_the_budget():
    """A value over the whole budget is not kept, and the others stay."""
    cache = ByteLRU(100)
    cache.put("a", "A", 60)
    cache.put("huge", "H", 101)
    assert "huge" not in cache and cache.get("a") == "A" and cache.nbytes == 60


def test_cache_replacing_a_key_counts_its_bytes_once():
    """Putting a key again replaces its value and its size."""
    cache = ByteLRU(100)
    cache.put("a", "A", 60)
    cache.put("a", "A2", 30)
    assert cache.get("a") == "A2" and cache.nbytes == 30 and len(cache) == 1


def test_cache_find_and_discard_by_key_predicate():
    """find returns the newest match without reordering; discard drops every match."""
    cache = ByteLRU(1000)
    cache.put((1, 10), "old", 10)
    cache.put((1, 11), "new", 10)
    cache.put((2, 10), "other", 10)
    assert cache.find(lambda k: k[0] == 1) == "new"
    assert cache.find(lambda k: k[0] == 3) is None
    cache.discard(lambda k: k[0] == 1)
    assert len(cache) == 1 and cache.nbytes == 10


def test_cache_refuses_a_negative_budget():
    """A negative budget is a mistake, not an empty cache."""
    with pytest.raises(ValueError):
        ByteLRU(-1)


def test_resize_drops_the_least_recently_used_until_the_values_fit():
    cache = ByteLRU(300)
    for key in "abc":
        cache.put(key, key.upper(), 100)
    cache.get("a")  # b is now the least recently used
    cache.resize(200)
    assert "b" not in cache and "a" in cache and "c" in cache and cache.nbytes == 200
    cache.resize(0)
    assert len(cache) == 0 and cache.nbytes == 0
    cache.put("d", "D", 1)
    assert "d" not in cache  # nothing fits a zero budget
    with pytest.raises(ValueError):
        cache.resize(-1)


# -- AnalysisCache: the caches of one app ------------------------------------------------------


def test_analysis_cache_splits_cache_mb_as_documented():
    cache = AnalysisCache(8)
    assert (cache.datasets.max_bytes, cache.null_tables.max_bytes, cache.adjusted_fits.max_bytes) == (
        8 * 2**20,
        2 * 2**20,
        2**19,
    )
    nothing = AnalysisCache(0)
    nothing.null_tables.put("k", "table", 1)
    assert len(nothing.null_tables) == 0  # CACHE_MB=0 keeps nothing
    with pytest.raises(ValueError, match="must not be negative"):
        AnalysisCache(-1)


def test_analysis_cache_clear_forgets_all_three_caches():
    cache = AnalysisCache(1)
    for lru in (cache.datasets, cache.null_tables, cache.adjusted_fits):
        lru.put("k", "v", 10)
    assert cache.nbytes == 30
    cache.clear()
    assert cache.nbytes == 0 and not any(map(len, (cache.datasets, cache.null_tables, cache.adjusted_fits)))


def test_a_null_table_is_drawn_once_per_cache_and_not_without_one(monkeypatch):
    calls = []
    real = permutation.compute_table
    monkeypatch.setattr(permutation, "compute_table", lambda *a: calls.append(1) or real(*a))
    ctr = np.linspace(0.001, 0.05, 40)
    first, second = AnalysisCache(), AnalysisCache()
    tables = [permutation.StudentizedTest("mean", ctr, n_tests=3, cache=c).table() for c in (first, first, second)]
    assert len(calls) == 2 and tables[0] is tables[1] and tables[2] is not tables[0]
    assert len(first.null_tables) == len(second.null_tables) == 1
    permutation.StudentizedTest("mean", ctr, n_tests=3).table()  # no cache: drawn for this use only
    assert len(calls) == 3


def test_two_apps_in_one_process_keep_separate_caches(tmp_path, reference_frame):
    """Neither app resizes nor fills the other's caches (tests and notebooks build several)."""
    from dashboard.factory import create_app
    from data.settings import Settings

    apps = {
        name: create_app(
            Settings.from_env({}, database_url=f"sqlite:///{tmp_path / name}.db", cache_mb=mb, demo_data=False)
        )
        for name, mb in (("big", 64), ("small", 8))
    }
    big, small = (apps[name].server.extensions["feature_store"] for name in ("big", "small"))
    try:
        assert big.cache is not small.cache
        # Building the small app after the big one left the big one's budgets as they were.
        assert (big.cache.datasets.max_bytes, big.cache.null_tables.max_bytes) == (64 * 2**20, 16 * 2**20)
        assert (small.cache.datasets.max_bytes, small.cache.null_tables.max_bytes) == (8 * 2**20, 2 * 2**20)
        assert big.cache.adjusted_fits.max_bytes == 4 * 2**20 and small.cache.adjusted_fits.max_bytes == 2**19
        for store in (big, small):
            load_frame(store, reference_frame, "Ref", "vision")
        query = {"business": "Ref", "source": "vision", "confidence": "0.5", "adjusted": "1"}
        answer = apps["big"].server.test_client().get("/api/summary", query_string=query)
        assert answer.status_code == 200
        assert (len(big.cache.datasets), len(big.cache.null_tables), len(big.cache.adjusted_fits)) == (1, 1, 1)
        assert small.cache.nbytes == 0  # the other app's request put nothing here
        # The same data in the small app: it loads and draws into its own caches, to the same numbers.
        again = apps["small"].server.test_client().get("/api/summary", query_string=query)
        assert again.get_json()["features"] == answer.get_json()["features"]
        assert (len(small.cache.datasets), len(small.cache.null_tables), len(small.cache.adjusted_fits)) == (1, 1, 1)
        assert big.cache.null_tables.find(bool) is not small.cache.null_tables.find(bool)
        big.cache.clear()
        assert big.cache.nbytes == 0 and len(small.cache.null_tables) == 1
    finally:
        big.close()
        small.close()
