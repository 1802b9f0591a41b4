"""Caches bounded by the bytes of what they hold: ByteLRU, and AnalysisCache, the analysis' caches of one app."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from contextlib import contextmanager


class ByteLRU:
    """Keeps values with their sizes, dropping the least recently used beyond ``max_bytes``.

    A value larger than the whole budget is not kept at all: holding it would push out
    everything else and still exceed the bound.
    """

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()  # key -> (value, nbytes)
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        """Bytes of the values held."""
        return self._bytes

    def get(self, key, default=None):
        """The value of ``key``, marked as just used, or ``default``."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return default
            self._items.move_to_end(key)
            return item[0]

    def find(self, predicate):
        """The most recently used value whose key satisfies ``predicate``, or None (not marked as used)."""
        with self._lock:
            for key in reversed(self._items):
                if predicate(key):
                    return self._items[key][0]
        return None

    def put(self, key, value, nbytes: int) -> None:
        """Keep ``value`` under ``key`` as the most recently used, evicting older values to fit."""
        with self._lock:
            self._pop(key)
            if nbytes > self.max_bytes:
                return
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                self._pop(next(iter(self._items)))

    def resize(self, max_bytes: int) -> None:
        """Change the budget, dropping the least recently used values until they fit."""
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        with self._lock:
            self.max_bytes = max_bytes
            while self._bytes > self.max_bytes:
                self._pop(next(iter(self._items)))

    def discard(self, predicate) -> None:
        """Drop every value whose key satisfies ``predicate``."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                self._pop(key)

    def _pop(self, key) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]


DEFAULT_CACHE_MB = 1024
NULL_TABLE_SHARE = 1 / 4  # of CACHE_MB, on top of the datasets: 256 MiB at the default
ADJUSTED_FIT_SHARE = 1 / 16  # 64 MiB at the default; a 480-feature fit holds about a megabyte


class AnalysisCache:
    """What the analysis keeps between requests, owned by one store (and so by one app).

    ``datasets``: loaded builds by (build, CTR set), within ``cache_mb``; ``null_tables``:
    permutation nulls by the values they were drawn from (``data/permutation.py``), within a
    quarter of it; ``adjusted_fits``: adjusted-impact fits by dataset and threshold
    (``data/adjusted.py``), within a sixteenth. ``cache_mb=0`` keeps nothing. Two apps in one
    process (tests, a notebook) each have their own, so neither sizes nor fills the other's.
    """

    def __init__(self, cache_mb: float = DEFAULT_CACHE_MB):
        if cache_mb < 0:
            raise ValueError("cache_mb must not be negative")
        budget = cache_mb * 2**20
        self.datasets = ByteLRU(int(budget))
        self.null_tables = ByteLRU(int(budget * NULL_TABLE_SHARE))
        self.adjusted_fits = ByteLRU(int(budget * ADJUSTED_FIT_SHARE))
        self._drawing: dict = {}  # null table key -> the lock its one draw holds
        self._drawing_lock = threading.Lock()
        self._computing: Counter = Counter()  # key -> computations of it running now
        # The app's data.refine.Refiner: with one, a new window's summary may answer from a smaller null first.
        self.refiner = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name} {len(lru)} ({lru.nbytes:,} B)" for name, lru in self._lrus())
        return f"AnalysisCache({sizes})"

    def _lrus(self):
        return (("datasets", self.datasets), ("null_tables", self.null_tables), ("adjusted_fits", self.adjusted_fits))

    @property
    def nbytes(self) -> int:
        """Bytes held by the three caches together."""
        return sum(lru.nbytes for _, lru in self._lrus())

    def clear(self) -> None:
        """Forget everything (benchmarks and tests measure a first request with it)."""
        for _, lru in self._lrus():
            lru.discard(lambda key: True)

    def drawing(self, key) -> threading.Lock:
        """The lock held while the null table of ``key`` is drawn, so that concurrent requests draw it once."""
        with self._drawing_lock:
            if len(self._drawing) > 64:  # forget idle locks now and then; a held one stays
                for old in [k for k, lock in self._drawing.items() if not lock.locked()]:
                    del self._drawing[old]
            return self._drawing.setdefault(key, threading.Lock())

    @contextmanager
    def computing(self, key):
        """Mark ``key`` as being computed while the block runs (see ``is_computing``)."""
        with self._drawing_lock:
            self._computing[key] += 1
        try:
            yield
        finally:
            with self._drawing_lock:
                self._computing[key] -= 1
                if self._computing[key] <= 0:
                    del self._computing[key]

    def is_computing(self, key) -> bool:
        """Whether some thread is computing ``key`` now: answers can say a result is on its way."""
        with self._drawing_lock:
            return self._computing[key] > 0
