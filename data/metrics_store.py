"""DatedMetrics: the part of FeatureStore that writes and reads a pair's dated metrics.

Clicks and impressions per image and day (``data/metrics_queries.py`` holds the SQL), written in
the store's transactions through ``StoreWriter`` and read in its snapshots. FeatureStore inherits
these methods; they need its ``_write``, ``_writer`` and ``_reading``.
"""

from __future__ import annotations

import pandas as pd

from data import metrics_queries, metrics_windows


class DatedMetrics:
    """Writes and reads of dated metrics, as FeatureStore methods."""

    def replace_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """Make ``frame`` (image, day, clicks, impressions) the pair's dated metrics; raises DatasetKindConflict over a CTR set."""
        return self._write(lambda conn: self._writer(conn).replace_metrics(business, source, frame))

    def merge_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """Upsert ``frame``'s (image, day) rows into the pair's dated metrics, keeping every other day."""
        return self._write(lambda conn: self._writer(conn).merge_metrics(business, source, frame))

    def metrics(self, business: str, source: str, window=None) -> pd.DataFrame:
        """The pair's dated metrics (image, day, clicks, impressions) within ``window`` (a data.window.Window)."""
        with self._reading() as conn:
            return metrics_queries.daily(conn, business, source, window)

    def metric_ctr(self, business: str, source: str, window=None) -> pd.DataFrame:
        """The pair's CTRs summed over ``window`` (image, ctr, clicks, impressions; images with impressions in it)."""
        with self._reading() as conn:
            return metrics_windows.window_ctr(conn, business, source, window)

    def metric_set(self, business: str, source: str):
        """The pair's ``metrics_queries.MetricSet`` (id, extent), or None without dated metrics."""
        with self._reading() as conn:
            return metrics_queries.metric_set(conn, business, source)
