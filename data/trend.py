"""A feature's impact over time: the summary of one feature on each day, week or month of dated metrics.

``feature_trend`` splits a range of days into periods (weeks start on Monday, months on the 1st;
the first and last period are clipped to the range), loads the dataset of each period's window
and takes the feature's row of ``feature_summary`` there, so a point is exactly what
GET /api/summary?from=..&to=.. says of that feature. A notebook passes any ``dataset_for(window)``,
e.g. ``lambda w: store.dataset("Northwind Outfitters", "vision-daily", window=w)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd

from data import budget, refine
from data.analysis import feature_summary
from data.cache import AnalysisCache
from data.dataset import Dataset
from data.filters import Filters, as_filters
from data.window import Window, parse_day

PERIODS = ("day", "week", "month")
PROVISIONAL = "provisional"  # a trend frame's attrs key
MAX_TREND_POINTS = 400  # a year and more of days; beyond it a request asks for weeks or months
TREND_COLUMNS = [
    "from",
    "to",
    "n_with",
    "n_without",
    "avg_ctr_with",
    "avg_ctr_without",
    "impact",
    "ci_low",
    "ci_high",
    "p_value",
]


class UnknownFeature(LookupError):
    """The feature is not one of the build's features."""


class TrendTooLong(ValueError):
    """The range holds more periods than MAX_TREND_POINTS."""


def _period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next_start(start: date, period: str) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods(first_day, last_day, period: str = "week") -> list[Window]:
    """The windows of each period from ``first_day`` to ``last_day`` (inclusive), the ends clipped to them."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    first, last = parse_day(first_day, "from"), parse_day(last_day, "to")
    windows = []
    start = _period_start(first, period)
    while start <= last:
        following = _next_start(start, period)
        windows.append(Window(max(start, first).isoformat(), min(following - timedelta(days=1), last).isoformat()))
        if len(windows) > MAX_TREND_POINTS:
            raise TrendTooLong(
                f"{first} to {last} holds more than {MAX_TREND_POINTS} {period}s: choose a longer period or a shorter window"
            )
        start = following
    return windows


def feature_trend(
    dataset_for: Callable[[Window], Dataset],
    feature: str,
    first_day,
    last_day,
    period: str = "week",
    filters: Filters | None = None,
    *,
    cache: AnalysisCache | None = None,
    **criteria,
) -> pd.DataFrame:
    """One row per period (columns ``TREND_COLUMNS``): the feature's summary on that period's window.

    ``filters`` as in ``feature_summary`` (its window is ignored: each period is its own). A period
    where the feature is left out of the summary (no image with a CTR has it, or the prevalence
    range drops it) has 0 or NaN throughout but its window. Raises UnknownFeature, TrendTooLong.
    ``frame.attrs["provisional"]``: whether some period was answered from a smaller null (``data/refine.py``).
    """
    filters = as_filters(filters, **criteria).replace(date_from=None, date_to=None)
    windows = periods(first_day, last_day, period)
    rows, provisional = [], False
    for done, window in enumerate(windows):
        budget.current().check(done, len(windows), "the trend")
        dataset = dataset_for(window)
        if feature not in set(dataset.features.tolist()):
            raise UnknownFeature(f"feature {feature!r} is not in the build")
        # The period's window, so that a cache with a refiner may answer it provisionally (data/refine.py).
        summary = feature_summary(dataset, filters.replace(date_from=window.start, date_to=window.end), cache=cache)
        provisional |= refine.pending(summary) is not None
        found = summary[summary["feature"] == feature]
        row = {"from": window.start, "to": window.end}
        if len(found):
            values = found.iloc[0]
            row |= {c: values[c] for c in TREND_COLUMNS[2:]}
        else:
            row |= {"n_with": 0, "n_without": 0} | dict.fromkeys(TREND_COLUMNS[4:], np.nan)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=TREND_COLUMNS)
    frame["n_with"] = frame["n_with"].astype("int64")
    frame["n_without"] = frame["n_without"].astype("int64")
    frame.attrs[PROVISIONAL] = provisional
    return frame
