"""The SQL of dated metrics (clicks and impressions per image and day) on one connection.

Composed by FeatureStore into its transactions, as ``data/image_queries.py`` is. A pair's
rows live in ``image_metrics_daily``, each with its image's running totals through its day;
``image_metrics_totals`` keeps each image's all-days sums and first and last days in step with
them, and ``metric_sets`` holds one row per pair that has any (a new id per write). A PATCH
writes again every row after its earliest day of the images it sends, whose running totals it
changes. Window sums are read in ``data/metrics_windows.py``. A dataset holds either a CTR set or
dated metrics, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import and_, delete, func, select, text

from data import database
from data.errors import DatasetKindConflict, WindowUnavailable
from data.schema import build_images, ctr_sets, image_metrics_daily, image_metrics_totals, metric_sets
from data.window import Window

METRIC_COLUMNS = ["image", "day", "clicks", "impressions"]
# A daily row as stored: the image's running totals through its day follow its day's counts.
DAILY_COLUMNS = ("business", "source", "day", "image", "clicks", "impressions", "cum_clicks", "cum_impressions")
TOTALS_COLUMNS = ("business", "source", "image", "clicks", "impressions", "first_day", "last_day")
# Rows written at once past which PostgreSQL's planner statistics are refreshed in the write, so
# the reads that follow are planned for the tables' size: with the counts of an empty table, a
# sum of a window's 300k rows was once sorted on disk (0.8 s) instead of hashed (0.3 s). SQLite
# plans its range scans by its keys either way.
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


def as_day(conn, day: str):
    """``day`` (ISO text) as the engine compares it with a stored day."""
    # DATE on PostgreSQL takes a date; SQLite's ISO text compares as text.
    return date.fromisoformat(day) if conn.dialect.name == "postgresql" else day


def day_text(day) -> str | None:
    """A stored day (a date on PostgreSQL, text on SQLite) as ISO text; None stays None."""
    return None if day is None else str(day)[:10]


def chunks(items: list, size: int = _IN_CHUNK):
    """``items`` in lists of at most ``size`` (an IN list each)."""
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
    return MetricSet(row[0], row[1], row[2], row[3], day_text(row[4]), day_text(row[5]))


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
        *(frame[column].astype("int64").tolist() for column in DAILY_COLUMNS[4:]),
    )


def _running(frame: pd.DataFrame, base: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame``'s rows in day order with each image's running totals (cum_clicks, cum_impressions),
    counted on from ``base``'s sums (image, clicks, impressions; 0 for images not in it)."""
    ordered = frame[METRIC_COLUMNS]
    if not ordered["day"].is_monotonic_increasing:  # as ad servers export them, usually
        ordered = ordered.sort_values("day", kind="stable")
    ordered = ordered.reset_index(drop=True)
    for column in ("clicks", "impressions"):
        ordered[column] = ordered[column].astype("int64")
    running = ordered.groupby("image", sort=False)[["clicks", "impressions"]].cumsum()
    for column in ("clicks", "impressions"):
        start = 0
        if base is not None and len(base):
            start = ordered["image"].map(dict(zip(base["image"], base[column]))).fillna(0).astype("int64")
        ordered[f"cum_{column}"] = running[column] + start
    return ordered


def _image_totals(running: pd.DataFrame) -> pd.DataFrame:
    """Each image's all-days sums and first and last days (TOTALS_COLUMNS after the pair) from all
    its rows in day order with their running totals (``_running``)."""
    last = running.drop_duplicates("image", keep="last")
    first = running.drop_duplicates("image", keep="first")
    return pd.DataFrame(
        {
            "image": last["image"].to_numpy(),
            "clicks": last["cum_clicks"].to_numpy(),
            "impressions": last["cum_impressions"].to_numpy(),
            "first_day": last["image"].map(dict(zip(first["image"], first["day"]))).to_numpy(),
            "last_day": last["day"].to_numpy(),
        }
    )


def _totals_rows(business: str, source: str, totals: pd.DataFrame):
    return zip(
        [business] * len(totals),
        [source] * len(totals),
        totals["image"].tolist(),
        totals["clicks"].astype("int64").tolist(),
        totals["impressions"].astype("int64").tolist(),
        totals["first_day"].tolist(),
        totals["last_day"].tolist(),
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
                first_day=None if first is None else as_day(conn, first),
                last_day=None if last is None else as_day(conn, last),
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
    running = _running(frame)
    database.bulk_insert(conn, image_metrics_daily, DAILY_COLUMNS, _rows(business, source, running))
    totals = _image_totals(running)
    database.bulk_insert(conn, image_metrics_totals, TOTALS_COLUMNS, _totals_rows(business, source, totals))
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
    days = sorted(set(frame["day"]))
    # Every stored row from the earliest sent day on of the sent images (of all images when they
    # are many: one range of the key) is written again: a day sent replaces the stored one, and
    # the running totals of the days after it change with it.
    pair = (_d.business == business) & (_d.source == source)
    since = [pair, _d.day >= as_day(conn, days[0])]
    if frame["image"].nunique() <= _IN_CHUNK:
        since.append(_d.image.in_(frame["image"].unique().tolist()))
    later = conn.execute(select(_d.image, _d.day, _d.clicks, _d.impressions).where(*since)).all()
    later = pd.DataFrame([(i, day_text(d), c, n) for i, d, c, n in later], columns=METRIC_COLUMNS)
    images = pd.unique(pd.concat([frame["image"], later["image"]], ignore_index=True)).tolist()
    tpair = (_t.business == business) & (_t.source == source)
    current = []
    for chunk in chunks(images):
        query = select(_t.image, _t.clicks, _t.impressions, _t.first_day).where(tpair, _t.image.in_(chunk))
        current.extend((i, c, n, day_text(f)) for i, c, n, f in conn.execute(query))
        conn.execute(delete(image_metrics_totals).where(tpair, _t.image.in_(chunk)))
    current = pd.DataFrame(current, columns=["image", "clicks", "impressions", "first_day"])
    base = _sums(pd.concat([current[["image", "clicks", "impressions"]], _negated(later)], ignore_index=True))
    sent = pd.MultiIndex.from_frame(frame[["image", "day"]])
    kept = later[~pd.MultiIndex.from_frame(later[["image", "day"]]).isin(sent)]
    rewritten = _running(pd.concat([kept, frame[METRIC_COLUMNS]], ignore_index=True), base)
    if len(later):
        conn.execute(delete(image_metrics_daily).where(*since))
    database.bulk_insert(conn, image_metrics_daily, DAILY_COLUMNS, _rows(business, source, rewritten))
    totals = _image_totals(rewritten)  # all of an image's days from the earliest sent one on
    stored_first = dict(zip(current["image"], current["first_day"]))
    totals["first_day"] = [min(stored_first.get(i) or f, f) for i, f in zip(totals["image"], totals["first_day"])]
    database.bulk_insert(conn, image_metrics_totals, TOTALS_COLUMNS, _totals_rows(business, source, totals))
    n_images = conn.execute(select(func.count()).select_from(image_metrics_totals).where(tpair)).scalar_one()
    n_rows = (stored.n_rows if stored else 0) - len(later) + len(rewritten)
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


def daily(conn, business: str, source: str, window: Window | None = None) -> pd.DataFrame:
    """The pair's stored rows (image, day, clicks, impressions) within the window, by day then image."""
    window = window or Window()
    conditions = [_d.business == business, _d.source == source]
    if window.start:
        conditions.append(_d.day >= as_day(conn, window.start))
    if window.end:
        conditions.append(_d.day <= as_day(conn, window.end))
    query = select(_d.image, _d.day, _d.clicks, _d.impressions).where(and_(*conditions)).order_by(_d.day, _d.image)
    rows = [(i, day_text(d), c, n) for i, d, c, n in conn.execute(query)]
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
