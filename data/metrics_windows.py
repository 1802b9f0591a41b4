"""Each image's dated metrics summed over a window of days, read from the running totals.

Every daily row holds its image's running totals through its day, and each image's all-days sums
hold its first and last stored days (``data/schema.py``). An image's sums over days ``a`` to
``b`` are its running totals at its last stored row on or before ``b`` less those at its last
row before ``a``; an image without a stored day in the window is left out, as a sum of the
window's rows leaves it out. Each bound's rows are found without reading the window:

- the rows of the pair's last stored day on or before the bound (one range scan of the daily key,
  which holds every image that has a row that day: all of them when each reports daily);
- an image whose days ended before that day: its last row's running totals are its sums;
- an image whose days begin after it has no row on or before the bound;
- any other (a gap in its days around the bound): bands of days before, each four times as long
  as the last, until its last row is found.

Composed by FeatureStore into its reads, as ``data/metrics_queries.py`` is.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, literal, select

from data import database
from data.batches import CTR_COLUMNS
from data.metrics_queries import as_day, chunks, day_text
from data.schema import image_metrics_daily, image_metrics_totals
from data.window import Window

_d = image_metrics_daily.c
_t = image_metrics_totals.c
ROW_COLUMNS = ["image", "day", "cum_clicks", "cum_impressions"]
SUMS_COLUMNS = ["image", "clicks", "impressions"]
# The first band of days searched before a bound's day for an image with no row on it.
FIRST_BAND_DAYS = 7


def _last_rows(conn, business: str, source: str, bound: str | None, before: bool) -> pd.DataFrame:
    """Each image's last stored row on or before ``bound`` (before it with ``before``; its last of
    all for None): image, day, cum_clicks, cum_impressions; images without one are left out."""
    pair = (_d.business == business) & (_d.source == source)
    limits = [] if bound is None else [_d.day < as_day(conn, bound) if before else _d.day <= as_day(conn, bound)]
    stored = conn.execute(select(func.max(_d.day)).where(pair, *limits)).scalar()
    if stored is None:
        return pd.DataFrame(columns=ROW_COLUMNS)
    on = day_text(stored)
    found = pd.DataFrame(_day_rows(conn, business, source, stored), columns=["image", "cum_clicks", "cum_impressions"])
    found.insert(1, "day", on)
    # The images with a stored day before that day but no row on it (none when each reports daily).
    on_day = select(literal(1)).where(pair, _d.day == stored, _d.image == _t.image)
    query = select(_t.image, _t.clicks, _t.impressions, _t.first_day, _t.last_day).where(
        _t.business == business, _t.source == source, _t.first_day < stored, ~on_day.exists()
    )
    rest = [(i, c, n, day_text(f), day_text(last)) for i, c, n, f, last in conn.execute(query)]
    if not rest:
        return found
    rest = pd.DataFrame(rest, columns=["image", "clicks", "impressions", "first_day", "last_day"])
    ended = rest[rest["last_day"] < on]  # its last row's running totals are its sums
    ended = pd.DataFrame(
        {
            "image": ended["image"],
            "day": ended["last_day"],
            "cum_clicks": ended["clicks"],
            "cum_impressions": ended["impressions"],
        }
    )
    parts = [found, ended]
    gaps = rest[rest["last_day"] > on]
    if len(gaps):
        parts.append(_search_back(conn, pair, on, gaps))
    return pd.concat([part for part in parts if len(part)], ignore_index=True)


def _day_rows(conn, business: str, source: str, stored) -> list[tuple]:
    """The pair's rows of one stored day (image, cum_clicks, cum_impressions) through the DBAPI
    cursor: plain tuples, a third of the objects of SQLAlchemy's rows, each one work for Python's
    collector of cyclic garbage (a full collection in a store's process took 80-100 ms here)."""
    mark = database.placeholder(conn)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(
            f"SELECT image, cum_clicks, cum_impressions FROM {image_metrics_daily.name} "
            f"WHERE business = {mark} AND source = {mark} AND day = {mark}",
            (business, source, stored),
        )
        return cursor.fetchall()
    finally:
        cursor.close()


def _search_back(conn, pair, on: str, gaps: pd.DataFrame) -> pd.DataFrame:
    """The last row before day ``on`` of each image of ``gaps`` (each has one: its first day is earlier)."""
    remaining, earliest = set(gaps["image"]), gaps["first_day"].min()
    upper, span, parts = date.fromisoformat(on), FIRST_BAND_DAYS, []
    while remaining:
        lower = upper - timedelta(days=span)
        band = [_d.day >= as_day(conn, lower.isoformat()), _d.day < as_day(conn, upper.isoformat())]
        if lower.isoformat() <= earliest:
            band = band[1:]
        rows = []
        for chunk in chunks(sorted(remaining)):
            query = select(_d.image, _d.day, _d.cum_clicks, _d.cum_impressions).where(pair, *band, _d.image.in_(chunk))
            rows.extend((i, day_text(d), c, n) for i, d, c, n in conn.execute(query))
        found = pd.DataFrame(rows, columns=ROW_COLUMNS).sort_values("day", kind="stable")
        found = found.drop_duplicates("image", keep="last")
        parts.append(found)
        remaining -= set(found["image"])
        if len(band) == 1:
            break
        upper, span = lower, span * 4
    return pd.concat(parts, ignore_index=True)


def window_sums(conn, business: str, source: str, window: Window | None = None) -> pd.DataFrame:
    """Per image, clicks and impressions summed over the window's days (image, clicks, impressions)."""
    window = window or Window()
    if window.is_everything:
        query = select(_t.image, _t.clicks, _t.impressions).where(_t.business == business, _t.source == source)
        return _sums_frame(pd.DataFrame(list(map(tuple, conn.execute(query))), columns=SUMS_COLUMNS))
    last = _last_rows(conn, business, source, window.end, before=False)
    if window.start is not None:
        last = last[last["day"] >= window.start]
        before = _last_rows(conn, business, source, window.start, before=True)
        if len(before):
            # Nullable integers, not floats: running totals may pass 2**53 and must stay exact.
            before = before.astype({"cum_clicks": "Int64", "cum_impressions": "Int64"})
            last = last.astype({"cum_clicks": "Int64", "cum_impressions": "Int64"})
            last = last.merge(before, on="image", how="left", suffixes=("", "_before"))
            for column in ("cum_clicks", "cum_impressions"):
                last[column] = last[column] - last[f"{column}_before"].fillna(0)
    return _sums_frame(pd.DataFrame(last[["image", "cum_clicks", "cum_impressions"]].to_numpy(), columns=SUMS_COLUMNS))


def _sums_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame["image"] = frame["image"].astype(object)
    for column in ("clicks", "impressions"):
        frame[column] = frame[column].astype("int64")
    return frame


def window_ctr(conn, business: str, source: str, window: Window | None = None) -> pd.DataFrame:
    """The window's CTR set (image, ctr, clicks, impressions): images with impressions in it, ctr = clicks / impressions."""
    sums = window_sums(conn, business, source, window)
    sums = sums[sums["impressions"] > 0]
    frame = pd.DataFrame(
        {
            "image": sums["image"].to_numpy(dtype=object),
            "ctr": sums["clicks"].to_numpy(dtype=np.float64) / sums["impressions"].to_numpy(dtype=np.float64),
            "clicks": pd.array(sums["clicks"].to_numpy(), dtype="Int64"),
            "impressions": pd.array(sums["impressions"].to_numpy(), dtype="Int64"),
        },
        columns=CTR_COLUMNS,
    )
    return frame
