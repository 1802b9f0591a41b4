"""The page's date range and trend card: presets, the URL, the header's words, and trend points
that are exactly the summary of their window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.figures.trend import trend_figure, trend_text
from dashboard.page import ids, views
from dashboard.page.compute import compute_view
from dashboard.page.dates import (
    ALL_DAYS,
    CUSTOM,
    HIDDEN,
    Extent,
    date_outputs,
    matching_preset,
    page_window,
    preset_range,
    window_text,
)
from dashboard.page.trend import compute_trend
from data.analysis import feature_summary
from data.filters import Filters
from data.store import FeatureStore
from data.window import Window
from tests.metrics_data import make_metrics
from tests.test_store import make_batch, make_ctr

EXTENT = Extent("2026-03-01", "2026-05-29")  # 90 days
PAIR = ("Acme", "daily")


def test_presets_count_back_from_the_last_day_with_data_and_stay_within_it():
    assert preset_range("7", EXTENT) == ("2026-05-23", "2026-05-29")
    assert preset_range("30", EXTENT) == ("2026-04-30", "2026-05-29")
    assert preset_range("90", EXTENT) == ("2026-03-01", "2026-05-29")
    assert preset_range("90", Extent("2026-05-01", "2026-05-29")) == ("2026-05-01", "2026-05-29")  # clipped
    assert preset_range(ALL_DAYS, EXTENT) == (None, None)
    assert matching_preset("2026-04-30", "2026-05-29", EXTENT) == "30"
    assert matching_preset(None, None, EXTENT) == ALL_DAYS
    assert matching_preset("2026-04-01", "2026-04-30", EXTENT) == CUSTOM


def test_the_header_states_the_window_in_words():
    assert window_text(Filters(), EXTENT) == "CTR over 1 Mar 2026 – 29 May 2026, 90 days (every day)"
    assert window_text(Filters(date_from="2026-05-23"), EXTENT) == "CTR over 23 May 2026 – 29 May 2026, 7 days"
    # Ends beyond the data are shown as the days the data has.
    assert window_text(Filters(date_from="2026-01-01", date_to="2026-03-02"), EXTENT) == (
        "CTR over 1 Mar 2026 – 2 Mar 2026, 2 days"
    )
    assert window_text(Filters(date_from="2026-07-01"), EXTENT).endswith("no data")
    assert window_text(Filters(date_from="2026-05-01"), None) == ""  # no dated metrics: no words


def test_a_window_is_set_aside_for_a_dataset_without_days():
    windowed = Filters(date_from="2026-05-01", date_to="2026-05-07")
    assert page_window(windowed, None).window is None
    assert page_window(windowed, EXTENT) == windowed


def test_the_url_holds_the_window_and_reads_it_back():
    state = views.parse_view({"from": "2026-05-01", "to": "2026-05-07", "confidence": "0.3"})
    assert (state.filters.date_from, state.filters.date_to) == ("2026-05-01", "2026-05-07")
    query = views.view_query(state)
    assert "from=2026-05-01" in query and "to=2026-05-07" in query
    assert views.parse_view(views.query_from_url(query)) == state
    # Without a window the URL says nothing of days.
    assert "from=" not in views.view_query(views.parse_view({}))


def test_a_malformed_or_crossed_window_in_the_url_opens_every_day():
    assert views.parse_view({"from": "2026-02-30"}).filters.window is None
    crossed = views.parse_view({"from": "2026-05-07", "to": "2026-05-01", "min_pct": "10"})
    assert crossed.filters.window is None


def test_the_pickers_days_arrive_as_the_controls_send_them():
    state = views.state_from_controls(
        "Acme", "daily", "current", 0.5, [0, 100], "mean", "25", date_from="2026-05-01T00:00:00", date_to="2026-05-07"
    )
    assert state.filters.window == Window("2026-05-01", "2026-05-07")


def test_the_control_follows_its_presets_its_picker_and_the_dataset():
    preset = date_outputs(EXTENT, "7", None, None, ids.DATE_PRESET)
    assert (preset["start"], preset["end"], preset["preset"]) == ("2026-05-23", "2026-05-29", "7")
    picked = date_outputs(EXTENT, "7", "2026-04-01", "2026-04-30", ids.DATE_RANGE)
    assert (picked["start"], picked["end"], picked["preset"]) == ("2026-04-01", "2026-04-30", CUSTOM)
    cleared = date_outputs(EXTENT, "7", None, None, ids.DATE_RANGE)
    assert cleared["preset"] == ALL_DAYS and cleared["style"] is None
    # A dataset without dated metrics: the control and the trend hide and the window goes.
    other = date_outputs(None, "7", "2026-04-01", "2026-04-30", ids.BUSINESS)
    assert other["style"] == HIDDEN and other["trend"] == HIDDEN and (other["start"], other["end"]) == (None, None)
    assert (other["min"], other["max"]) == (None, None)


@pytest.fixture
def dated(tmp_path):
    """A build of 40 images whose CTRs come as 90 days of clicks and impressions, and one with a CTR set."""
    store = FeatureStore(f"sqlite:///{tmp_path / 'f.db'}")
    batch = make_batch(3, n_images=40, n_features=4)
    store.add_build(*PAIR, batch)
    metrics = make_metrics(batch.images, days=90, seed=5, skip=0.1)
    store.replace_metrics(*PAIR, metrics)
    store.add_build("Acme", "rates", batch)
    store.replace_ctr("Acme", "rates", make_ctr(batch.images, seed=2))
    yield store, metrics
    store.close()


def test_the_view_reads_the_window_of_a_dataset_with_days_and_ignores_it_elsewhere(dated):
    store, metrics = dated
    filters = Filters(confidence=0.3, date_from="2026-05-01", date_to="2026-05-29", min_n=2)
    view = compute_view(store, *PAIR, None, filters, shown=0)
    expected = feature_summary(store.dataset(*PAIR, window=filters.window), filters)
    pd.testing.assert_frame_equal(
        view.table_summary[["feature", "impact", "p_value"]].reset_index(drop=True),
        expected[["feature", "impact", "p_value"]].reset_index(drop=True),
    )
    every_day = compute_view(store, *PAIR, None, filters.replace(date_from=None, date_to=None), shown=0)
    assert not np.allclose(every_day.table_summary["impact"], view.table_summary["impact"])
    assert view.window == "CTR over 1 May 2026 – 29 May 2026, 29 days"
    # A CTR set has no days: the page shows it whole, and says nothing of a window.
    rates = compute_view(store, "Acme", "rates", None, filters, shown=0)
    assert rates.has_data and rates.window == ""


def test_trend_points_are_the_summary_of_each_period(dated):
    store, _ = dated
    filters = Filters(confidence=0.3, min_n=2, date_from="2026-04-06", date_to="2026-05-03")
    state = views.ViewState(business=PAIR[0], source=PAIR[1], filters=filters)
    feature = "feature_1"
    trend = compute_trend(store, state, feature, "week")
    assert trend.title == f"Trend of {feature}"
    figure = trend.figure
    points, bars = figure.data
    assert list(bars.x) == ["2026-04-06", "2026-04-13", "2026-04-20", "2026-04-27"]  # Mondays, within the window
    for start, impact, n_with in zip(bars.x, points.y, bars.y, strict=True):
        end = (pd.Timestamp(start) + pd.Timedelta(days=6)).strftime("%Y-%m-%d")
        row = (
            feature_summary(store.dataset(*PAIR, window=Window(start, end)), filters).set_index("feature").loc[feature]
        )
        assert impact == pytest.approx(row["impact"] * 100, abs=1e-6)
        assert n_with == row["n_with"]
    assert trend.text.startswith(f"Impact of {feature} per week, 4 weeks from 2026-04-06 to 2026-05-03")


def test_no_trend_without_days_and_a_hint_until_a_feature_is_chosen(dated):
    store, _ = dated
    assert compute_trend(store, views.ViewState(business="Acme", source="rates"), "feature_1", "week").figure is None
    waiting = compute_trend(store, views.ViewState(business=PAIR[0], source=PAIR[1]), None, "week")
    assert waiting.figure is None and "Select a feature" in waiting.hint


def test_trend_figure_marks_untested_periods_and_colours_clear_ones():
    trend = pd.DataFrame(
        {
            "from": ["2026-05-04", "2026-05-11", "2026-05-18"],
            "to": ["2026-05-10", "2026-05-17", "2026-05-24"],
            "n_with": [12, 1, 14],
            "n_without": [30, 40, 28],
            "avg_ctr_with": [0.02, np.nan, 0.011],
            "avg_ctr_without": [0.01, 0.01, 0.01],
            "impact": [0.01, np.nan, 0.001],
            "ci_low": [0.004, np.nan, -0.002],
            "ci_high": [0.016, np.nan, 0.004],
            "p_value": [0.001, np.nan, 0.6],
        }
    )
    points, bars = trend_figure(trend, "smile").data
    assert list(points.x) == ["2026-05-04", "2026-05-18"]  # the untested week has a bar, no point
    assert list(bars.y) == [12, 1, 14]
    assert points.marker.color[0] != points.marker.color[1]  # p < 0.05 coloured, the other muted
    assert list(points.error_y.array) == pytest.approx([0.6, 0.3])
    text = trend_text(trend, "smile")
    assert "2 tested weeks" in text and "1 of 2" in text
