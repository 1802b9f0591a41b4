"""A new time window's first answer from a smaller permutation null, the full one drawn behind it.

A window has CTRs of its own, so its permutation nulls (``data/permutation.py``) are new: at
10,000 images the full table is seconds of CPU, at 659 half a second. When the app has a
``Refiner`` (``AnalysisCache.refiner``), a summary over a window whose full table is neither at
hand nor stored reads a smaller one instead: ``QUICK_RESAMPLES`` permutations, groups above
``QUICK_MAX_SIZE`` images read the null of that size, and each side keeps its largest tenth, with
the generalised Pareto tail beyond them fitted to those (``data/tails.py``). It is still a
permutation test of the same statistic on the window's own CTRs, read from fewer resamples; the
null simulations on windowed data (``tests/simulation.py`` ``provisional_summary``, README)
hold as for the full table. Meanwhile one thread draws the full table and stores it
(``data/nulls.py``), so the next answer, in any worker, is the exact one; the answer says which
it is (``pending``).

Without a refiner (a notebook, the command line, a download), every answer waits for the full table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from data import nulls, permutation

log = logging.getLogger(__name__)

QUICK_RESAMPLES = 999  # 2.5 % quantiles from 25 resamples a side; counted p from 0.002 (two-sided), fitted below
QUICK_MAX_SIZE = 1_000  # the draw's cost is resamples x the largest group: at most about 1e6 cells
# Each side keeps its largest tenth (100 resamples) and fits the tail beyond them to 99 of them.
QUICK_DRAW = {"max_size": QUICK_MAX_SIZE, "side": 0.1, "fit": 99}
MAX_QUEUED = 16  # full draws waiting at once: asking for more windows forgets the oldest asked
PENDING = "pending_null"  # a summary frame's attrs key: the storage key of the full table drawn behind it


class Refiner:
    """Draws the full null tables behind provisional answers on one background thread, newest
    request first, and stores each.

    ``save(storage key, bytes)`` keeps a drawn table where every worker finds it (the store).
    Draws queue up until ``start()``, which the app calls once a request's answer is made, so
    that the draw does not hold up the answer that asked for it.
    """

    def __init__(self, save: Callable[[str, bytes], None] | None = None):
        self._save = save
        self._wanted = threading.Condition()
        self._queue: dict = {}  # table key -> test, in the order asked (the newest drawn first)
        self._busy = False
        self._thread: threading.Thread | None = None

    def table(self, test: permutation.StudentizedTest):
        """``(table, pending)``: ``(None, None)`` when the full table is at hand (the test reads it),
        else the smaller table and the storage key of the full one, queued to be drawn."""
        if permutation.is_cached(test.cache, test.key):
            return None, None
        smaller = test.smaller_table(QUICK_RESAMPLES, **QUICK_DRAW)
        with self._wanted:
            self._queue.pop(test.key, None)
            self._queue[test.key] = test
            # Each draw is seconds of CPU at 10,000 images: a reader asking for window after window
            # must not queue hours of them. A forgotten one is drawn again when its window is asked again.
            while len(self._queue) > MAX_QUEUED:
                del self._queue[next(iter(self._queue))]
        return smaller, nulls.storage_key(test.key)

    def start(self) -> None:
        """Draw what is queued, on the background thread."""
        with self._wanted:
            if not self._queue:
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="null-refine", daemon=True)
                self._thread.start()
            self._wanted.notify_all()

    def _run(self) -> None:
        while True:
            with self._wanted:
                while not self._queue:
                    self._busy = False
                    self._wanted.notify_all()
                    self._wanted.wait()
                self._busy = True
                test = self._queue.pop(next(reversed(self._queue)))
            try:
                table = test.table()
                if self._save is not None:
                    self._save(nulls.storage_key(test.key), nulls.to_bytes(table))
            except Exception:  # the next answer asks for it again
                log.exception("the full permutation null of a window was not drawn")

    def wait(self, timeout: float | None = None) -> bool:
        """Start and wait until every queued draw is done (tests, benchmarks); returns whether it is."""
        self.start()
        with self._wanted:
            return self._wanted.wait_for(lambda: not self._queue and not self._busy, timeout)


def null_table(test: permutation.StudentizedTest, cache, filters, wait: bool = False):
    """``(table, pending)`` for a summary of ``filters``: a windowed one may get the smaller table
    (see the module), anything else ``(None, None)``, the test's own full table."""
    refiner = getattr(cache, "refiner", None)
    if wait or refiner is None or filters.window is None:
        return None, None
    return refiner.table(test)


def marked(summary, pending: str | None):
    """``summary`` (a summary frame) marked with the full null it was computed without (None: with it)."""
    summary.attrs[PENDING] = pending
    return summary


def pending(summary) -> str | None:
    """The storage key of the full table a provisional summary frame was computed without, else None."""
    return summary.attrs.get(PENDING)
