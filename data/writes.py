"""The one seam every write passes through: one transaction, then one ``after_write`` hook.

The HTTP routes (``ingest/routes.py``) and the command-line loader (``ingest/cli.py``) both call
``write``: their writes are stored all or nothing, and what has to follow a write is decided
here, once. Today that is drawing the permutation null tables of each dataset written
(``data/nulls.py``): they are derived data, so the writer does not wait for them where it
need not (the HTTP answer is sent first), and a failure to draw or store them is logged and only
means that the first summary draws them itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from data import nulls
from data.errors import UnknownDataset
from data.window import recent_windows

log = logging.getLogger(__name__)

Job = Callable[[], object]


def run_now(job: Job) -> None:
    """A ``schedule`` that runs the post-write work at once (the command line waits for it)."""
    job()


class _Recording:
    """A writer that notes each (business, source) it writes, for ``after_write``."""

    def __init__(self, writer, pairs: list):
        self._writer = writer
        self.pairs = pairs

    def add_build(self, business: str, source: str, batch, *, tag: str | None = None) -> dict:
        self.pairs.append((business, source))
        return self._writer.add_build(business, source, batch, tag=tag)

    def replace_ctr(self, business: str, source: str, ctr) -> dict:
        self.pairs.append((business, source))
        return self._writer.replace_ctr(business, source, ctr)

    def merge_ctr(self, business: str, source: str, ctr) -> dict:
        self.pairs.append((business, source))
        return self._writer.merge_ctr(business, source, ctr)

    def replace_metrics(self, business: str, source: str, frame) -> dict:
        self.pairs.append((business, source))
        return self._writer.replace_metrics(business, source, frame)

    def merge_metrics(self, business: str, source: str, frame) -> dict:
        self.pairs.append((business, source))
        return self._writer.merge_metrics(business, source, frame)

    def put_thumbnails(self, business: str, source: str, items) -> list[bool]:
        # Pictures change no statistic: nothing to draw after them.
        return self._writer.put_thumbnails(business, source, items)


def write(store, work: Callable, schedule: Callable[[Job], None] = run_now):
    """Run ``work(writer)`` as one transaction of ``store``, then ``after_write``; returns ``work``'s result.

    ``writer`` has ``add_build``, ``replace_ctr``, ``merge_ctr``, ``replace_metrics``, ``merge_metrics`` and
    ``put_thumbnails`` (as ``FeatureStore``'s). An
    exception from ``work`` or the store rolls everything back and schedules nothing.
    ``schedule(job)`` decides when the post-write work runs: ``run_now``, or after the answer.
    """
    pairs: list = []

    def recorded(writer):
        pairs.clear()  # the store runs the work again after a storage fault
        return work(_Recording(writer, pairs))

    result = store.write(recorded)
    after_write(store, pairs, schedule)
    return result


def after_write(store, pairs, schedule: Callable[[Job], None] = run_now) -> None:
    """Schedule the work that follows a write of the datasets ``pairs`` ((business, source), ...)."""
    for business, source in dict.fromkeys(pairs):
        schedule(partial(_logged, prepare_nulls, store, business, source))


def _logged(job, store, business: str, source: str) -> None:
    try:
        job(store, business, source)
    except Exception:  # derived data: the write stands, and a summary draws what is missing
        log.exception("permutation nulls of %r / %r were not prepared", business, source)


def prepare_nulls(store, business: str, source: str) -> int:
    """Draw and store the null tables of the pair's current build and CTRs unless stored; returns how many were drawn.

    Reading the dataset takes its stored tables into the cache already. A pair with CTRs but
    no build yet has none to draw. A pair with dated metrics also gets the tables of its recent
    windows (``data.window.RECENT_DAYS``), so that the first look at one does not draw them.
    """
    try:
        datasets = [store.dataset(business, source)]
        extent = store.metric_set(business, source)
        if extent is not None and extent.first_day and extent.last_day:
            # Dated metrics: the recent windows too (the page's presets), each with its own CTRs.
            windows = recent_windows(str(extent.first_day)[:10], str(extent.last_day)[:10])
            datasets += [store.dataset(business, source, window=window) for window in windows]
    except UnknownDataset:
        return 0
    tests = [test for dataset in datasets for test in store.null_tests(dataset)]
    return nulls.prepare(store.has_null_table, store.save_null_table, tests)
