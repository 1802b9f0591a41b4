"""A thread-safe least-recently-used cache bounded by the bytes of what it holds."""

from __future__ import annotations

import threading
from collections import OrderedDict


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
