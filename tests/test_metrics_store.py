"""Dated metrics in the store, on SQLite and PostgreSQL: replace, merge, windows, and the CTR-set exclusivity."""

from __future__ import annotations

import pandas as pd
import pytest

from data.errors import DatasetKindConflict, WindowUnavailable
from data.metrics_queries import METRIC_COLUMNS
from data.window import Window, WindowError
from tests.metrics_data import make_metrics, window_ctrs
from tests.tables import snapshot
from tests.test_store import make_batch, make_ctr

pytestmark = pytest.mark.both_engines


def sorted_rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, frame[METRIC_COLUMNS].itertuples(index=False, name=None)))


def test_metrics_replace_round_trips_every_row(store):
    frame = make_metrics([f"img_{i}" for i in range(8)])
    result = store.replace_metrics("Acme", "vision", frame)
    assert result["rows"] == len(frame) and result["images"] == 8
    assert (result["first_day"], result["last_day"]) == ("2026-03-01", "2026-03-20")
    assert sorted_rows(store.metrics("Acme", "vision")) == sorted_rows(frame)
    # A second PUT replaces the whole set.
    smaller = make_metrics(["img_0", "img_1"], days=3, seed=8)
    store.replace_metrics("Acme", "vision", smaller)
    assert sorted_rows(store.metrics("Acme", "vision")) == sorted_rows(smaller)


def test_metrics_merge_replaces_sent_days_and_keeps_the_others(store):
    frame = make_metrics(["img_0", "img_1", "img_2"], days=10)
    store.replace_metrics("Acme", "vision", frame)
    patch = pd.DataFrame(
        [("img_0", "2026-03-02", 5, 50), ("img_9", "2026-03-02", 1, 10), ("img_1", "2026-04-01", 0, 7)],
        columns=METRIC_COLUMNS,
    )
    result = store.merge_metrics("Acme", "vision", patch)
    expected = pd.concat(
        [frame[~((frame["image"] == "img_0") & (frame["day"] == "2026-03-02"))], patch], ignore_index=True
    )
    assert sorted_rows(store.metrics("Acme", "vision")) == sorted_rows(expected)
    assert result["rows"] == len(expected) and result["last_day"] == "2026-04-01"
    before = snapshot(store)
    store.merge_metrics("Acme", "vision", patch)  # the same PATCH again changes no row
    after = snapshot(store)
    for table in ("image_metrics_daily", "image_metrics_totals"):
        assert after[table] == before[table]


@pytest.mark.parametrize(
    "window",
    [
        (None, None),
        ("2026-03-05", None),
        (None, "2026-03-04"),
        ("2026-03-03", "2026-03-03"),
        ("2026-03-08", "2026-03-15"),
    ],
)
def test_metrics_window_sums_match_the_raw_rows(store, window):
    batch = make_batch(3, n_images=12)
    frame = make_metrics(batch.images[:10], days=20)
    store.add_build("Acme", "vision", batch)
    store.replace_metrics("Acme", "vision", frame)
    store.merge_metrics(
        "Acme", "vision", make_metrics(batch.images[5:], days=4, seed=9, start=pd.Timestamp("2026-03-06").date())
    )
    rows = store.metrics("Acme", "vision")
    expected = window_ctrs(rows, *window)
    dataset = store.dataset("Acme", "vision", window=Window(*window))
    got = {
        image: (int(c), int(n), r)
        for image, c, n, r in zip(dataset.images, dataset.clicks, dataset.impressions, dataset.ctr)
        if r == r
    }
    assert got == expected
    assert dataset.has_counts


def test_metrics_window_datasets_are_cached_per_window_and_renewed_by_a_write(store):
    batch = make_batch(3)
    store.add_build("Acme", "vision", batch)
    store.replace_metrics("Acme", "vision", make_metrics(batch.images, days=6))
    first = store.dataset("Acme", "vision", window=Window("2026-03-02", "2026-03-03"))
    everything = store.dataset("Acme", "vision")
    assert store.dataset("Acme", "vision", window=Window("2026-03-02", "2026-03-03")) is first
    assert store.dataset("Acme", "vision", window=Window()) is everything
    store.merge_metrics("Acme", "vision", pd.DataFrame([(batch.images[0], "2026-03-02", 9, 9)], columns=METRIC_COLUMNS))
    again = store.dataset("Acme", "vision", window=Window("2026-03-02", "2026-03-03"))
    assert again is not first and again.ctr[0] != first.ctr[0]


def test_a_window_without_dated_metrics_is_refused(store):
    batch = make_batch(3)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, 3))
    with pytest.raises(WindowUnavailable, match="no dated metrics"):
        store.dataset("Acme", "vision", window=Window("2026-03-01", None))
    assert store.dataset("Acme", "vision", window=Window()).images_with_ctr == 12


def test_a_dataset_holds_a_ctr_set_or_dated_metrics_never_both(store):
    batch = make_batch(3)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, 3))
    before = snapshot(store)
    with pytest.raises(DatasetKindConflict, match="holds a CTR set"):
        store.replace_metrics("Acme", "vision", make_metrics(batch.images))
    with pytest.raises(DatasetKindConflict, match="holds a CTR set"):
        store.merge_metrics("Acme", "vision", make_metrics(batch.images))
    assert snapshot(store) == before
    # Emptying the CTR set lets dated metrics in; then CTRs are refused.
    store.replace_ctr("Acme", "vision", make_ctr([], 3))
    store.replace_metrics("Acme", "vision", make_metrics(batch.images))
    before = snapshot(store)
    for write in (store.replace_ctr, store.merge_ctr):
        with pytest.raises(DatasetKindConflict, match="holds dated metrics"):
            write("Acme", "vision", make_ctr(batch.images, 3))
    assert snapshot(store) == before
    # An empty PUT of metrics removes them, and CTRs are welcome again.
    store.replace_metrics("Acme", "vision", make_metrics([]))
    assert store.metric_set("Acme", "vision") is None
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, 3))


def test_the_listing_counts_images_with_dated_metrics(store):
    batch = make_batch(3)
    store.add_build("Acme", "vision", batch)
    frame = make_metrics(batch.images[:7], days=3, skip=0)
    frame.loc[frame["image"] == batch.images[6], ["clicks", "impressions"]] = 0  # never shown
    store.replace_metrics("Acme", "vision", frame)
    row = store.datasets().iloc[0]
    assert row["has_counts"] and row["images_with_ctr"] == 6


def test_window_checks_its_bounds():
    assert Window("2026-01-02", "2026-01-02").as_dict() == {"from": "2026-01-02", "to": "2026-01-02"}
    with pytest.raises(WindowError) as refused:
        Window("2026-02-30", "yesterday")
    assert len(refused.value.problems) == 2
    with pytest.raises(WindowError, match="must not be after"):
        Window("2026-01-03", "2026-01-02")


def test_a_large_write_refreshes_the_planner_statistics_on_postgresql(store, engine_name):
    """PostgreSQL plans a window's sums by hashing once it knows the table's size (see ANALYZE_AFTER_ROWS)."""
    from sqlalchemy import text

    from data.metrics_queries import ANALYZE_AFTER_ROWS

    if engine_name != "postgresql":
        return  # SQLite plans the range scan by its key alone
    images = [f"img_{i}" for i in range(ANALYZE_AFTER_ROWS // 20)]
    store.replace_metrics("Acme", "vision", make_metrics(images, days=20, skip=0))
    with store.engine.connect() as conn:
        tuples = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'image_metrics_daily'::regclass")
        ).scalar()
    assert tuples >= 0.9 * ANALYZE_AFTER_ROWS


def raw_window_sums(rows: pd.DataFrame, start: str | None, end: str | None) -> dict:
    """From raw rows, per image with a row in [start, end]: (clicks, impressions) summed there."""
    kept = rows[(rows["day"] >= (start or "")) & (rows["day"] <= (end or "9999"))]
    sums = kept.groupby("image")[["clicks", "impressions"]].sum()
    return {image: (int(c), int(n)) for image, c, n in zip(sums.index, sums["clicks"], sums["impressions"])}


def stored_window_sums(store, start: str | None, end: str | None) -> dict:
    from data.metrics_windows import window_sums

    with store.engine.connect() as conn:
        sums = window_sums(conn, "Acme", "vision", Window(start, end))
    assert [str(t) for t in sums.dtypes] == ["object", "int64", "int64"]
    assert sums["image"].is_unique
    return {image: (c, n) for image, c, n in zip(sums["image"], sums["clicks"].tolist(), sums["impressions"].tolist())}


def stored_running_totals(store) -> pd.DataFrame:
    from sqlalchemy import select

    from data.schema import image_metrics_daily as daily

    with store.engine.connect() as conn:
        rows = conn.execute(
            select(daily.c.image, daily.c.day, daily.c.cum_clicks, daily.c.cum_impressions).where(
                daily.c.business == "Acme", daily.c.source == "vision"
            )
        ).all()
    frame = pd.DataFrame([(i, str(d)[:10], c, n) for i, d, c, n in rows], columns=["image", "day", "cc", "cn"])
    return frame.sort_values(["image", "day"], ignore_index=True)


# Windows over the days of check_windows' data (2026-02-27 .. 2026-04-02): open ends, one day, a
# day no image has, days before and after every stored one, and a window in the middle.
WINDOWS = [
    (None, None),
    ("2026-03-05", None),
    (None, "2026-03-04"),
    ("2026-03-03", "2026-03-03"),
    ("2026-03-08", "2026-03-15"),
    ("2026-03-21", "2026-03-31"),
    ("2026-01-01", "2026-02-26"),
    ("2026-04-03", None),
    ("2026-02-27", "2026-02-27"),
    ("2026-03-10", "2026-04-02"),
]


def check_windows(store) -> None:
    """Every window's sums equal the sums of the stored rows, and each row's running totals
    equal its image's rows summed through its day."""
    rows = store.metrics("Acme", "vision")
    for start, end in WINDOWS:
        assert stored_window_sums(store, start, end) == raw_window_sums(rows, start, end), (start, end)
    expected = rows.sort_values(["image", "day"], ignore_index=True)
    running = stored_running_totals(store)
    assert running[["image", "day"]].equals(expected[["image", "day"]])
    assert running["cc"].tolist() == expected.groupby("image")["clicks"].cumsum().tolist()
    assert running["cn"].tolist() == expected.groupby("image")["impressions"].cumsum().tolist()


def test_metrics_window_sums_match_the_raw_rows_after_every_patch(store):
    """Window sums read from the running totals equal sums of the raw rows after a PUT and after
    PATCHes that rewrite a middle day, add days before the first and after the last, and add images;
    among them images with gaps of a few days, one paused for four weeks, and one only at the end."""
    images = [f"img_{i}" for i in range(6)]
    frame = make_metrics(images, days=20)
    frame.loc[frame["image"] == "img_5", ["clicks", "impressions"]] = 0  # rows, never shown
    paused = pd.DataFrame(
        [("img_paused", "2026-03-01", 4, 40), ("img_paused", "2026-03-02", 1, 9)], columns=METRIC_COLUMNS
    )
    store.replace_metrics("Acme", "vision", pd.concat([frame, paused], ignore_index=True))
    check_windows(store)
    assert stored_window_sums(store, "2026-03-02", "2026-03-04")["img_5"] == (0, 0)

    middle = pd.DataFrame(
        [("img_0", "2026-03-10", 7, 70), ("img_1", "2026-03-10", 0, 0), ("img_2", "2026-03-11", 3, 40)],
        columns=METRIC_COLUMNS,
    )
    before_first = pd.DataFrame(
        [("img_0", "2026-02-27", 11, 111), ("img_3", "2026-02-28", 2, 20), ("img_new", "2026-03-12", 1, 5)],
        columns=METRIC_COLUMNS,
    )
    after_last = make_metrics(
        images[:4] + ["img_new", "img_paused"], days=3, seed=11, start=pd.Timestamp("2026-03-31").date()
    )
    spread = make_metrics(images[2:], days=15, seed=12, start=pd.Timestamp("2026-03-05").date(), skip=0.6)
    for patch in (middle, before_first, after_last, spread, middle.assign(clicks=1)):
        store.merge_metrics("Acme", "vision", patch)
        check_windows(store)
    assert store.metric_set("Acme", "vision").n_rows == len(store.metrics("Acme", "vision"))


def test_a_rejected_metrics_patch_leaves_the_running_totals_as_they_were(store):
    batch = make_batch(3)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "other", make_ctr(batch.images, 3))
    store.replace_metrics("Acme", "vision", make_metrics(batch.images, days=5))
    before = snapshot(store)
    with pytest.raises(DatasetKindConflict):
        store.merge_metrics("Acme", "other", make_metrics(batch.images, days=2))
    assert snapshot(store) == before


def test_metrics_window_sums_stay_exact_past_2_to_the_53(store):
    """Running totals of counts near 2**53 pass it; a window's sums are still exact integers."""
    big = 2**53 - 1
    frame = pd.DataFrame(
        [("img_a", "2026-03-01", big, big), ("img_a", "2026-03-02", 3, big - 2), ("img_b", "2026-03-02", 1, 5)],
        columns=METRIC_COLUMNS,
    )
    store.replace_metrics("Acme", "vision", frame)
    assert stored_window_sums(store, "2026-03-02", "2026-03-02") == {"img_a": (3, big - 2), "img_b": (1, 5)}
    assert stored_window_sums(store, None, "2026-03-02") == {"img_a": (big + 3, 2 * big - 2), "img_b": (1, 5)}
