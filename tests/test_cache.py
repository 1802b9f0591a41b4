"""ByteLRU: least recently used values leave first once their bytes exceed the budget."""

from __future__ import annotations

import pytest

from data.cache import ByteLRU


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
