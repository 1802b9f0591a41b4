"""GET /api/trend and data.trend: a feature's summary per day, week or month, each point the summary of its window."""

from __future__ import annotations

import json

import pytest

from data.trend import MAX_TREND_POINTS, TrendTooLong, periods
from data.window import Window
from tests.helpers import refined_get
from tests.metrics_data import make_metrics
from tests.test_store import make_batch
from tests.test_window_api import HEADERS, PAIR, metrics_body

pytestmark = pytest.mark.both_engines


def test_periods_start_weeks_on_monday_and_clip_the_ends():
    # 2026-03-04 is a Wednesday.
    assert periods("2026-03-04", "2026-03-17", "week") == [
        Window("2026-03-04", "2026-03-08"),
        Window("2026-03-09", "2026-03-15"),
        Window("2026-03-16", "2026-03-17"),
    ]
    assert periods("2026-01-30", "2026-03-02", "month") == [
        Window("2026-01-30", "2026-01-31"),
        Window("2026-02-01", "2026-02-28"),
        Window("2026-03-01", "2026-03-02"),
    ]
    assert periods("2026-12-31", "2027-01-01", "day") == [
        Window("2026-12-31", "2026-12-31"),
        Window("2027-01-01", "2027-01-01"),
    ]
    with pytest.raises(TrendTooLong):
        periods("2020-01-01", "2026-01-01", "day")
    assert len(periods("2026-01-01", "2026-12-31", "day")) == 365 <= MAX_TREND_POINTS


@pytest.fixture
def trended(client):
    batch = make_batch(21, n_images=40, n_features=4)
    doc = {image: {} for image in batch.images}
    for i, j, value in batch.values:
        doc[batch.images[i]][batch.features[j]] = value
    assert client.put("/api/features", data=json.dumps(doc), headers=HEADERS).status_code == 201
    frame = make_metrics(batch.images, days=20, seed=3, skip=0.1)  # 2026-03-01 (a Sunday) to 2026-03-20
    assert client.put("/api/metrics", data=json.dumps(metrics_body(frame)), headers=HEADERS).status_code == 200
    return batch


FIELDS = ["n_with", "n_without", "avg_ctr_with", "avg_ctr_without", "impact", "ci_low", "ci_high", "p_value"]


@pytest.mark.parametrize(
    ("period", "window", "expected"),
    [
        (
            "week",
            {},
            [
                ("2026-03-01", "2026-03-01"),
                ("2026-03-02", "2026-03-08"),
                ("2026-03-09", "2026-03-15"),
                ("2026-03-16", "2026-03-20"),
            ],
        ),
        (
            "day",
            {"from": "2026-03-05", "to": "2026-03-07"},
            [("2026-03-05", "2026-03-05"), ("2026-03-06", "2026-03-06"), ("2026-03-07", "2026-03-07")],
        ),
        ("month", {"to": "2026-03-10"}, [("2026-03-01", "2026-03-10")]),
    ],
)
@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_each_trend_point_is_the_summary_of_its_window(client, trended, period, window, expected, weighting):
    feature = trended.features[1]
    query = {**PAIR, "feature": feature, "period": period, "weighting": weighting, "min_n": 2, **window}
    answer = refined_get(client, "/api/trend", query)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["feature"] == feature and body["period"] == period
    assert body["window"] == {"from": expected[0][0], "to": expected[-1][1]}
    assert [(p["from"], p["to"]) for p in body["points"]] == expected
    for point in body["points"]:
        period_query = {**PAIR, "from": point["from"], "to": point["to"], "weighting": weighting, "min_n": 2}
        summary = client.get("/api/summary", query_string=period_query).get_json()
        assert summary["provisional"] is False  # the trend's refined periods are the summary's
        (row,) = [f for f in summary["features"] if f["feature"] == feature]
        assert {k: point[k] for k in FIELDS} == {k: row[k] for k in FIELDS}
    assert any(point["impact"] is not None for point in body["points"])


def test_trend_refusals(client, trended):
    base = {**PAIR, "feature": trended.features[0]}
    assert client.get("/api/trend", query_string={**base, "feature": "nope"}).status_code == 404
    bad = client.get("/api/trend", query_string={**base, "period": "year", "from": "x"}).get_json()
    assert bad["error"] == "invalid query parameters" and len(bad["details"]) == 2
    too_long = client.get("/api/trend", query_string={**base, "period": "day", "from": "2020-01-01"})
    assert too_long.status_code == 400 and too_long.get_json()["error"] == "too many periods"
    ctr_pair = {"Business": "Acme", "Image-Source": "rates"}
    assert client.put("/api/features", data=json.dumps({"a": {"x": 1}}), headers=ctr_pair).status_code == 201
    assert client.put("/api/ctr", data=json.dumps({"a": 0.1}), headers=ctr_pair).status_code == 200
    refused = client.get("/api/trend", query_string={"business": "Acme", "source": "rates", "feature": "x"})
    assert refused.status_code == 404 and refused.get_json()["error"] == "no dated metrics"
