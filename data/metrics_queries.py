"""The SQL of dated metrics (clicks and impressions per image and day) on one connection.

Composed by FeatureStore into its transactions, as ``data/image_queries.py`` is. A pair's
rows live in ``image_metrics_daily``; ``image_metrics_totals`` keeps each image's all-days sums
in step with them, and ``metric_sets`` holds one row per pair that has any (a new id per write).
A dataset holds either a CTR set or dated metrics, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, and_, bindparam, delete, func, select, text

from data import database
from data.batches import CTR_COLUMNS
from data.errors import DatasetKindConflict, WindowUnavailable
from data.schema import build_images, ctr_sets, image_metrics_daily, image_metrics_totals, metric_sets
from data.window import Window

METRIC_COLUMNS = ["image", "day", "clicks", "impressions"]
# Rows written at once past which PostgreSQL's planner statistics are refreshed in the write: with
# the counts of an empty table it sorts a window's 300k rows on disk (0.8 s) instead of hashing
# them (0.3 s). SQLite plans the range scan by its key either way.
ANALYZE_AFTER_ROWS = 50_000
# Names or days per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 500
_d = image_metrics_daily.c
_t = image_metrics_totals.c
_s = metric_sets.c


@dataclass(frozen=True)
class MetricSet:
    """The row of a pair's dated metrics: its id (new on every write) and extent."""

    id: int
    received_at: str
    n_images: int
    n_rows: int
    first_day: str | None
    last_day: str | None


def _day(conn, day: str):
    # DATE on PostgreSQL takes a date; SQLite's ISO text compares as text.
    return date.fromisoformat(day) if conn.dialect.name == "postgresql" else day


def _text(day) -> str | None:
    return None if day is None else str(day)[:10]


def _chunks(items: list, size: int = _IN_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def metric_set(conn, business: str, source: str) -> MetricSet | None:
    """The pair's metric set row, or None when it has no dated metrics."""
    row = conn.execute(
        select(_s.id, _s.received_at, _s.n_images, _s.n_rows, _s.first_day, _s.last_day).where(
            _s.business == business, _s.source == source
        )
    ).first()
    if row is None:
        return None
    return MetricSet(row[0], row[1], row[2], row[3], _text(row[4]), _text(row[5]))


def _ctr_set_images(conn, business: str, source: str) -> int | None:
    return conn.execute(
        select(ctr_sets.c.n_images).where(ctr_sets.c.business == business, ctr_sets.c.source == source)
    ).scalar()


def refuse_ctr(conn, business: str, source: str) -> None:
    """Raise DatasetKindConflict when the pair holds dated metrics (a CTR write would mix the two)."""
    if metric_set(conn, business, source) is not None:
        raise DatasetKindConflict(
            f"{business!r} / {source!r} holds dated metrics (PUT/PATCH /api/metrics), not a CTR set; "
            "send dated metrics, or PUT /api/metrics with {} to remove them first"
        )


def _refuse_metrics(conn, business: str, source: str) -> None:
    n_images = _ctr_set_images(conn, business, source)
    if n_images:
        raise DatasetKindConflict(
            f"{business!r} / {source!r} holds a CTR set (PUT/PATCH /api/ctr), not dated metrics; "
            "send CTRs (PUT/PATCH /api/ctr), or store the dated metrics under another image source"
        )
    if n_images is not None:  # an emptied CTR set gives way to the dated metrics
        conn.execute(delete(ctr_sets).where(ctr_sets.c.business == business, ctr_sets.c.source == source))


def _rows(business: str, source: str, frame: pd.DataFrame):
    return zip(
        [business] * len(frame),
        [source] * len(frame),
        frame["day"].tolist(),
        frame["image"].tolist(),
        frame["clicks"].astype("int64").tolist(),
        frame["impressions"].astype("int64").tolist(),
    )


def _totals_rows(business: str, source: str, totals: pd.DataFrame):
    return zip(
        [business] * len(totals),
        [source] * len(totals),
        totals["image"].tolist(),
        totals["clicks"].astype("int64").tolist(),
        totals["impressions"].astype("int64").tolist(),
    )


def _sums(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby("image", sort=False, as_index=False)[["clicks", "impressions"]].sum()


def _write_set(
    conn, business: str, source: str, received_at: str, n_images: int, n_rows: int, first, last, written: int = 0
) -> dict:
    pair = (_s.business == business) & (_s.source == source)
    if written >= ANALYZE_AFTER_ROWS and conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE image_metrics_daily, image_metrics_totals"))
    conn.execute(delete(metric_sets).where(pair))
    if n_rows:
        # A new row, so a new id: the id keys the cached datasets of the pair.
        conn.execute(
            metric_sets.insert().values(
                business=business,
                source=source,
                received_at=received_at,
                n_images=n_images,
                n_rows=n_rows,
                first_day=None if first is None else _day(conn, first),
                last_day=None if last is None else _day(conn, last),
            )
        )
    return {
        "business": business,
        "source": source,
        "received_at": received_at,
        "images": n_images,
        "rows": n_rows,
        "first_day": first,
        "last_day": last,
    }


def replace_metrics(conn, business: str, source: str, frame: pd.DataFrame, received_at: str) -> dict:
    """Make ``frame`` (image, day, clicks, impressions) the pair's dated metrics; an empty one removes them."""
    _refuse_metrics(conn, business, source)
    for table in (image_metrics_daily, image_metrics_totals):
        conn.execute(delete(table).where(table.c.business == business, table.c.source == source))
    database.bulk_insert(
        conn,
        image_metrics_daily,
        ("business", "source", "day", "image", "clicks", "impressions"),
        _rows(business, source, frame),
    )
    totals = _sums(frame)
    database.bulk_insert(
        conn,
        image_metrics_totals,
        ("business", "source", "image", "clicks", "impressions"),
        _totals_rows(business, source, totals),
    )
    first, last = (frame["day"].min(), frame["day"].max()) if len(frame) else (None, None)
    return _write_set(conn, business, source, received_at, len(totals), len(frame), first, last, len(frame))


def merge_metrics(conn, business: str, source: str, frame: pd.DataFrame, received_at: str) -> dict:
    """Upsert ``frame``'s (image, day) rows into the pair's dated metrics, keeping every other day."""
    _refuse_metrics(conn, business, source)
    stored = metric_set(conn, business, source)
    if frame.empty:
        if stored is None:
            return _write_set(conn, business, source, received_at, 0, 0, None, None)
        return {
            "business": business,
            "source": source,
            "received_at": stored.received_at,
            "images": stored.n_images,
            "rows": stored.n_rows,
            "first_day": stored.first_day,
            "last_day": stored.last_day,
        }
    pair = (_d.business == business) & (_d.source == source)
    days = sorted(set(frame["day"]))
    old = []
    for chunk in _chunks(days):
        query = select(_d.day, _d.image, _d.clicks, _d.impressions).where(
            pair, _d.day.in_([_day(conn, d) for d in chunk])
        )
        old.extend((_text(d), i, c, n) for d, i, c, n in conn.execute(query))
    old = pd.DataFrame(old, columns=["day", "image", "clicks", "impressions"])
    replaced = old.merge(frame[["day", "image"]], on=["day", "image"])
    if len(replaced):
        statement = delete(image_metrics_daily).where(pair, _d.day == bindparam("d"), _d.image == bindparam("i"))
        conn.execute(statement, [{"d": _day(conn, d), "i": i} for d, i in zip(replaced["day"], replaced["image"])])
    database.bulk_insert(
        conn,
        image_metrics_daily,
        ("business", "source", "day", "image", "clicks", "impressions"),
        _rows(business, source, frame),
    )
    delta = _sums(pd.concat([frame[["image", "clicks", "impressions"]], _negated(replaced)], ignore_index=True))
    images = delta["image"].tolist()
    tpair = (_t.business == business) & (_t.source == source)
    current = []
    for chunk in _chunks(images):
        current.extend(
            map(tuple, conn.execute(select(_t.image, _t.clicks, _t.impressions).where(tpair, _t.image.in_(chunk))))
        )
        conn.execute(delete(image_metrics_totals).where(tpair, _t.image.in_(chunk)))
    current = pd.DataFrame(current, columns=["image", "clicks", "impressions"])
    totals = _sums(pd.concat([current, delta], ignore_index=True))
    database.bulk_insert(
        conn,
        image_metrics_totals,
        ("business", "source", "image", "clicks", "impressions"),
        _totals_rows(business, source, totals),
    )
    n_images = conn.execute(select(func.count()).select_from(image_metrics_totals).where(tpair)).scalar_one()
    n_rows = (stored.n_rows if stored else 0) - len(replaced) + len(frame)
    first = min(d for d in (stored and stored.first_day, days[0]) if d)
    last = max(d for d in (stored and stored.last_day, days[-1]) if d)
    return _write_set(conn, business, source, received_at, n_images, n_rows, first, last, len(frame))


def _negated(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image": frame["image"],
            "clicks": -frame["clicks"].astype("int64"),
            "impressions": -frame["impressions"].astype("int64"),
        }
    )


def window_sums(conn, business: str, source: str, window: Window | None = None) -> pd.DataFrame:
    """Per image, clicks and impressions summed over the window's days (image, clicks, impressions)."""
    window = window or Window()
    if window.is_everything:
        query = select(_t.image, _t.clicks, _t.impressions).where(_t.business == business, _t.source == source)
    else:
        conditions = [_d.business == business, _d.source == source]
        if window.start:
            conditions.append(_d.day >= _day(conn, window.start))
        if window.end:
            conditions.append(_d.day <= _day(conn, window.end))
        # SUM of BIGINT is NUMERIC on PostgreSQL: back to 64-bit integers, not Decimals.
        query = (
            select(_d.image, func.sum(_d.clicks).cast(BigInteger), func.sum(_d.impressions).cast(BigInteger))
            .where(and_(*conditions))
            .group_by(_d.image)
        )
    rows = conn.execute(query).all()
    frame = pd.DataFrame(list(map(tuple, rows)), columns=["image", "clicks", "impressions"])
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


def daily(conn, business: str, source: str, window: Window | None = None) -> pd.DataFrame:
    """The pair's stored rows (image, day, clicks, impressions) within the window, by day then image."""
    window = window or Window()
    conditions = [_d.business == business, _d.source == source]
    if window.start:
        conditions.append(_d.day >= _day(conn, window.start))
    if window.end:
        conditions.append(_d.day <= _day(conn, window.end))
    query = select(_d.image, _d.day, _d.clicks, _d.impressions).where(and_(*conditions)).order_by(_d.day, _d.image)
    rows = [(i, _text(d), c, n) for i, d, c, n in conn.execute(query)]
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    for column in ("clicks", "impressions"):
        frame[column] = frame[column].astype("int64")
    return frame


def dataset_key(conn, business: str, source: str, window: Window | None):
    """What keys the pair's CTRs in the dataset cache: ``("metrics", set id, window)`` for dated
    metrics, None for a CTR set (or none); raises WindowUnavailable for a window without dated metrics."""
    found = metric_set(conn, business, source)
    if found is None:
        if window is not None and not window.is_everything:
            raise WindowUnavailable(
                f"{business!r} / {source!r} has no dated metrics: a time window (from/to) needs clicks and "
                "impressions per day (PUT /api/metrics); leave from and to out for its CTR set"
            )
        return None
    return ("metrics", found.id, window or Window())


def same_ctrs(key, other) -> bool:
    """Whether two cache keys' CTR parts name the same stored CTRs (windows of one metric set do)."""
    if isinstance(key, tuple) and isinstance(other, tuple):
        return key[:2] == other[:2]
    return key == other


def with_metrics(conn, frame: pd.DataFrame) -> pd.DataFrame:
    """``queries.current_builds``'s frame with the dated metrics' time, counts flag and images with a CTR."""
    if frame.empty:
        return frame
    found = {
        (b, s): (received_at,) for b, s, received_at in conn.execute(select(_s.business, _s.source, _s.received_at))
    }
    if not found:
        return frame
    frame = frame.copy()
    for index, (b, s, build_id) in enumerate(zip(frame["business"], frame["source"], frame["build_id"])):
        if (b, s) not in found:
            continue
        measured = select(_t.image).where(_t.business == b, _t.source == s, _t.impressions > 0)
        count = conn.execute(
            select(func.count())
            .select_from(build_images)
            .where(build_images.c.build_id == int(build_id), build_images.c.name.in_(measured))
        ).scalar_one()
        row = frame.index[index]
        frame.loc[row, "ctr_received_at"] = found[(b, s)][0]
        frame.loc[row, "has_counts"] = 1
        frame.loc[row, "images_with_ctr"] = count
    return frame
