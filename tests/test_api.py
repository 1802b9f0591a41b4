"""The read API on real SQLite files: datasets, builds, summary (exact numbers) and version."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from dashboard.api.routes import QueryError, SummaryQuery
from data import stats
from data.analysis import feature_summary
from data.batches import FeatureBatch, ctr_frame
from data.filters import Filters
from tests.helpers import pandas_summary
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Reference 2018", "Image-Source": "vision"}
PAIR = {"business": "Reference 2018", "source": "vision"}
CORE = ["n_with", "n_without", "prevalence_pct", "avg_ctr_with", "avg_ctr_without", "impact"]


def put(client, path, doc, headers=HEADERS):
    return client.put(path, data=json.dumps(doc), headers=headers)


@pytest.fixture
def reference_client(client, reference_frame):
    """A client whose store holds the reference CSV, sent through the two PUTs."""
    features = [c for c in reference_frame.columns if c not in ("image_name", "ctr")]
    doc = {row["image_name"]: {f: row[f] for f in features} for _, row in reference_frame.iterrows()}
    assert put(client, "/api/features", doc).status_code == 201
    ctr = dict(zip(reference_frame["image_name"], reference_frame["ctr"]))
    assert put(client, "/api/ctr", ctr).status_code == 200
    return client


def expected_summary(frame, confidence, min_pct, max_pct) -> dict:
    """The pandas reference summary as the API's rows: feature -> core fields, NaN as None."""
    reference = pandas_summary(frame, confidence, min_pct, max_pct)
    return {
        row["feature"]: {c: (None if isinstance(row[c], float) and math.isnan(row[c]) else row[c]) for c in CORE}
        for row in reference.to_dict("records")
    }


# -- /api/summary --------------------------------------------------------------------------

# 62 and 63 of 287 images are exact prevalences of reference features: inclusive bounds there.
EDGE_LOW, EDGE_HIGH = 100 * 62 / 287, 100 * 63 / 287


@pytest.mark.parametrize("confidence", [0.0, 0.1, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("min_pct, max_pct", [(0, 100), (5, 50), (10, 30), (EDGE_LOW, EDGE_HIGH), (0, 0)])
def test_summary_matches_an_independent_pandas_computation(
    reference_client, reference_frame, confidence, min_pct, max_pct
):
    query = dict(PAIR, confidence=repr(confidence), min_pct=repr(min_pct), max_pct=repr(max_pct))
    response = reference_client.get("/api/summary", query_string=query)
    assert response.status_code == 200
    body = response.get_json()
    expected = expected_summary(reference_frame, confidence, min_pct, max_pct)
    got = {row["feature"]: {k: row[k] for k in CORE} for row in body["features"]}
    assert got == expected  # exact equality: every float to the last bit
    impacts = [row["impact"] for row in body["features"] if row["impact"] is not None]
    assert impacts == sorted(impacts, reverse=True)
    assert (body["confidence"], body["min_pct"], body["max_pct"]) == (confidence, min_pct, max_pct)
    assert (body["images"], body["images_with_ctr"]) == (287, 287)
    assert (body["business"], body["source"]) == (PAIR["business"], PAIR["source"])


def test_summary_bounds_at_exact_prevalences_are_inclusive(reference_client, reference_frame):
    query = dict(PAIR, min_pct=repr(EDGE_LOW), max_pct=repr(EDGE_HIGH))
    features = reference_client.get("/api/summary", query_string=query).get_json()["features"]
    counts = sorted(row["n_with"] for row in features)
    assert counts and set(counts) <= {62, 63}


def test_summary_floats_round_trip_exactly(reference_client, store):
    response = reference_client.get("/api/summary", query_string=dict(PAIR, confidence="0.2"))
    parsed = json.loads(response.get_data(as_text=True))
    direct = feature_summary(store.dataset(**PAIR), confidence=0.2)
    assert [row["feature"] for row in parsed["features"]] == direct["feature"].tolist()
    for column in ("prevalence_pct", "avg_ctr_with", "avg_ctr_without", "impact"):
        sent = [row[column] for row in parsed["features"]]
        assert sent == direct[column].tolist()
        assert all(type(v) is float for v in sent)


def test_summary_sends_nan_as_null(client):
    put(client, "/api/features", {"a": {"everywhere": 1, "x": 0.5}, "b": {"everywhere": 1}})
    put(client, "/api/ctr", {"a": 0.1, "b": 0.3})
    response = client.get("/api/summary", query_string=PAIR)
    text = response.get_data(as_text=True)
    assert "NaN" not in text
    rows = {row["feature"]: row for row in json.loads(text)["features"]}
    assert rows["everywhere"]["avg_ctr_with"] == (0.1 + 0.3) / 2
    assert rows["everywhere"]["avg_ctr_without"] is None
    assert rows["everywhere"]["impact"] is None
    assert rows["x"]["impact"] == 0.1 - 0.3


def test_summary_reads_an_older_build_by_id(client):
    first = put(client, "/api/features", {"a": {"old": 0.5}, "b": {}}).get_json()["build_id"]
    second = put(client, "/api/features", {"a": {"new": 0.5}, "b": {}}).get_json()["build_id"]
    put(client, "/api/ctr", {"a": 0.2, "b": 0.1})
    current = client.get("/api/summary", query_string=PAIR).get_json()
    older = client.get("/api/summary", query_string=dict(PAIR, build_id=str(first))).get_json()
    assert (current["build_id"], [r["feature"] for r in current["features"]]) == (second, ["new"])
    assert (older["build_id"], [r["feature"] for r in older["features"]]) == (first, ["old"])


def test_summary_of_a_dataset_without_ctr_has_no_features(client):
    put(client, "/api/features", {"a": {"x": 0.5}})
    body = client.get("/api/summary", query_string=PAIR).get_json()
    assert (body["images"], body["images_with_ctr"], body["features"]) == (1, 0, [])


@pytest.mark.parametrize(
    "query, detail",
    [
        ({"source": "vision"}, "business is required"),
        ({"business": "Reference 2018"}, "source is required"),
        (dict(PAIR, business=" "), "business is required"),
        (dict(PAIR, confidence="high"), "confidence must be a number in [0, 1], got 'high'"),
        (dict(PAIR, confidence="1.5"), "confidence must be a number in [0, 1], got '1.5'"),
        (dict(PAIR, confidence="-0.1"), "confidence must be a number in [0, 1], got '-0.1'"),
        (dict(PAIR, confidence="nan"), "confidence must be a number in [0, 1], got 'nan'"),
        (dict(PAIR, min_pct="-1"), "min_pct must be a number in [0, 100], got '-1'"),
        (dict(PAIR, max_pct="100.5"), "max_pct must be a number in [0, 100], got '100.5'"),
        (dict(PAIR, max_pct="inf"), "max_pct must be a number in [0, 100], got 'inf'"),
        (dict(PAIR, min_pct="60", max_pct="40"), "min_pct (60) must not exceed max_pct (40)"),
        (dict(PAIR, build_id="1.5"), "build_id must be a whole number >= 1, got '1.5'"),
        (dict(PAIR, build_id="abc"), "build_id must be a whole number >= 1, got 'abc'"),
        (dict(PAIR, build_id="0"), "build_id must be a whole number >= 1, got '0'"),
        (dict(PAIR, build_id="-3"), "build_id must be a whole number >= 1, got '-3'"),
    ],
)
def test_summary_rejects_malformed_parameters_with_400(reference_client, query, detail):
    response = reference_client.get("/api/summary", query_string=query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid query parameters"
    assert detail in body["details"]


def test_summary_reports_every_bad_parameter(client):
    response = client.get("/api/summary", query_string={"confidence": "x", "build_id": "y"})
    assert response.get_json()["details"] == [
        "business is required",
        "source is required",
        "confidence must be a number in [0, 1], got 'x'",
        "build_id must be a whole number >= 1, got 'y'",
    ]


@pytest.mark.parametrize(
    "query, error",
    [
        ({"business": "Nobody", "source": "vision"}, "unknown dataset"),
        (dict(PAIR, source="other"), "unknown dataset"),
        (dict(PAIR, build_id="999"), "unknown build"),
    ],
)
def test_summary_unknown_dataset_or_build_is_404(reference_client, query, error):
    response = reference_client.get("/api/summary", query_string=query)
    assert response.status_code == 404
    assert response.get_json()["error"] == error


def test_summary_build_of_another_pair_is_404(reference_client):
    other = put(
        reference_client, "/api/features", {"a": {"x": 0.5}}, headers={"Business": "Other", "Image-Source": "vision"}
    )
    response = reference_client.get("/api/summary", query_string=dict(PAIR, build_id=str(other.get_json()["build_id"])))
    assert response.status_code == 404 and response.get_json()["error"] == "unknown build"


# -- SummaryQuery, the reusable parameter parser ------------------------------------------


def test_summary_query_defaults_match_the_analysis():
    query = SummaryQuery.from_args({"business": "B", "source": "S"})
    assert query == SummaryQuery("B", "S", Filters(), None, False)
    assert query.filters == Filters(confidence=0.0, min_pct=0.0, max_pct=100.0, min_n=5, weighting="mean")


def test_summary_query_parses_every_parameter():
    args = {
        "business": "B",
        "source": "S",
        "confidence": "0.25",
        "min_pct": "5",
        "max_pct": "50",
        "build_id": "7",
        "min_n": "3",
        "weighting": "impressions",
    }
    filters = Filters(confidence=0.25, min_pct=5.0, max_pct=50.0, min_n=3, weighting="impressions")
    assert SummaryQuery.from_args(args) == SummaryQuery("B", "S", filters, 7, False)


def test_summary_query_min_n_default_comes_from_the_caller():
    assert SummaryQuery.from_args({"business": "B", "source": "S"}, min_n=9).filters.min_n == 9
    assert SummaryQuery.from_args({"business": "B", "source": "S", "min_n": "4"}, min_n=9).filters.min_n == 4


def test_summary_query_raises_with_all_problems():
    with pytest.raises(QueryError) as caught:
        SummaryQuery.from_args(
            {"business": "B", "source": "S", "min_pct": "x", "max_pct": "200", "min_n": "1", "weighting": "median"}
        )
    assert caught.value.problems == [
        "min_pct must be a number in [0, 100], got 'x'",
        "max_pct must be a number in [0, 100], got '200'",
        "min_n must be a whole number >= 2, got '1'",
        "weighting must be one of mean, impressions, got 'median'",
    ]


# -- /api/datasets, /api/builds, /api/version ----------------------------------------------


def test_datasets_lists_current_builds_most_recently_updated_first(client, store):
    a = {"Business": "A", "Image-Source": "vision"}
    b = {"Business": "B", "Image-Source": "vision"}
    put(client, "/api/features", {"x": {"f": 0.5}}, headers=a)
    b_build = put(client, "/api/features", {"y": {"f": 0.5}, "z": {}}, headers=b).get_json()
    a_build = put(client, "/api/features", {"x": {"f": 0.5}, "w": {"g": 1}}, headers=a).get_json()
    assert [d["business"] for d in client.get("/api/datasets").get_json()["datasets"]] == ["A", "B"]

    put(client, "/api/ctr", {"y": 0.1, "nope": 0.2}, headers=b)
    listed = client.get("/api/datasets").get_json()["datasets"]
    assert listed == [
        {
            "business": "B",
            "source": "vision",
            "build_id": b_build["build_id"],
            "received_at": b_build["received_at"],
            "images": 2,
            "features": 1,
            "images_with_ctr": 1,
        },
        {
            "business": "A",
            "source": "vision",
            "build_id": a_build["build_id"],
            "received_at": a_build["received_at"],
            "images": 2,
            "features": 2,
            "images_with_ctr": 0,
        },
    ]


def test_datasets_is_empty_on_an_empty_store(client):
    response = client.get("/api/datasets")
    assert response.status_code == 200 and response.get_json() == {"datasets": []}


def test_builds_lists_history_newest_first(client):
    answers = [put(client, "/api/features", {f"img_{k}": {"x": 0.5} for k in range(n)}).get_json() for n in (1, 2, 3)]
    body = client.get("/api/builds", query_string=PAIR).get_json()
    assert body["business"] == PAIR["business"] and body["source"] == PAIR["source"]
    assert body["builds"] == [
        {
            "build_id": a["build_id"],
            "received_at": a["received_at"],
            "images": a["images"],
            "features": 1,
            "values": a["values"],
        }
        for a in reversed(answers)
    ]


def test_builds_unknown_pair_is_404_and_missing_pair_is_400(client):
    response = client.get("/api/builds", query_string={"business": "Nobody", "source": "vision"})
    assert response.status_code == 404 and response.get_json()["error"] == "unknown dataset"
    response = client.get("/api/builds", query_string={"business": "Nobody"})
    assert response.status_code == 400 and response.get_json()["details"] == ["source is required"]


def test_version_changes_on_every_write_and_only_then(client):
    def version():
        return client.get("/api/version").get_json()["version"]

    seen = [version()]
    put(client, "/api/features", {"a": {"x": 0.5}})
    seen.append(version())
    put(client, "/api/ctr", {"a": 0.1})
    seen.append(version())
    put(client, "/api/ctr", {"a": 0.2})
    seen.append(version())
    assert len(set(seen)) == 4
    client.get("/api/summary", query_string=PAIR)
    put(client, "/api/ctr", {"a": "bad"})
    assert version() == seen[-1]


def test_read_answers_are_not_cached(client):
    assert client.get("/api/version").headers["Cache-Control"] == "no-store"


def test_summary_agrees_with_a_store_loaded_without_http(store, client, reference_frame, reference_dataset):
    store.add_build("Direct", "vision", FeatureBatch.from_wide(reference_frame))
    store.replace_ctr("Direct", "vision", ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    body = client.get(
        "/api/summary", query_string={"business": "Direct", "source": "vision", "confidence": "0.3"}
    ).get_json()
    direct = feature_summary(reference_dataset, confidence=0.3)
    assert [row["feature"] for row in body["features"]] == direct["feature"].tolist()
    assert np.array_equal([row["impact"] for row in body["features"]], direct["impact"].to_numpy())


# -- statistics: intervals, p and q, minimum group size, weighting ----------------------------

STATS = [
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "low_n",
    "significant",
    "verdict",
    "lift_pct",
    "ci_low_fcr",
    "ci_high_fcr",
]


@pytest.mark.parametrize("confidence", [0.0, 0.5])
def test_summary_statistics_equal_the_analysis_module(reference_client, reference_dataset, confidence):
    body = reference_client.get("/api/summary", query_string=dict(PAIR, confidence=str(confidence))).get_json()
    expected = feature_summary(reference_dataset, confidence=confidence)
    assert [row["feature"] for row in body["features"]] == list(expected["feature"])
    for row, want in zip(body["features"], expected.to_dict("records")):
        for key in STATS:
            value = want[key]
            assert row[key] == (None if isinstance(value, float) and math.isnan(value) else value), key
    assert (body["min_n"], body["weighting"], body["has_counts"]) == (5, "mean", False)
    assert body["fcr_level"] == pytest.approx(stats.fcr_level(expected["q_value"]), rel=1e-15)
    assert 1 - 0.05 <= body["fcr_level"] < 1


def test_summary_csv_carries_the_verdict_and_fcr_interval(reference_client, reference_dataset):
    text = reference_client.get("/api/summary.csv", query_string=dict(PAIR, confidence="0.5")).get_data(as_text=True)
    frame = pd.read_csv(io.StringIO(text))
    expected = feature_summary(reference_dataset, confidence=0.5)
    assert list(frame["verdict"]) == list(expected["verdict"])
    np.testing.assert_allclose(frame["ci_low_fcr"], expected["ci_low_fcr"], rtol=1e-12)
    np.testing.assert_allclose(frame["lift_pct"], expected["lift_pct"], rtol=1e-12)


def test_summary_min_n_parameter_withholds_statistics(reference_client):
    query = dict(PAIR, confidence="0.5")
    strict = {
        r["feature"]: r
        for r in reference_client.get("/api/summary", query_string=dict(query, min_n="5")).get_json()["features"]
    }
    loose = {
        r["feature"]: r
        for r in reference_client.get("/api/summary", query_string=dict(query, min_n="2")).get_json()["features"]
    }
    assert strict["black_x"]["n_with"] == 2
    assert (
        strict["black_x"]["low_n"] is True
        and strict["black_x"]["p_value"] is None
        and strict["black_x"]["ci_low"] is None
    )
    assert strict["black_x"]["avg_ctr_with"] == loose["black_x"]["avg_ctr_with"]
    assert loose["black_x"]["low_n"] is False and loose["black_x"]["p_value"] is not None


def test_summary_min_n_default_comes_from_settings(tmp_path, reference_frame):
    from dashboard.factory import create_app
    from data.settings import Settings

    app = create_app(
        Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'm.db'}", demo_data=False, min_group_size=3)
    )
    client = app.server.test_client()
    put(client, "/api/features", {"a": {"f": 0.9}, "b": {"f": 0.9}, "c": {"f": 0.9}, "d": {}, "e": {}, "g": {}})
    put(client, "/api/ctr", {"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.01, "e": 0.012, "g": 0.011})
    body = client.get("/api/summary", query_string=PAIR).get_json()
    assert body["min_n"] == 3
    assert body["features"][0]["low_n"] is False and body["features"][0]["p_value"] is not None


def test_summary_impressions_weighting_without_counts_is_400(reference_client, store):
    before = snapshot(store)
    response = reference_client.get("/api/summary", query_string=dict(PAIR, weighting="impressions"))
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "impression weighting is not available for this dataset"
    assert "clicks" in body["details"][0] and "weighting=mean" in body["details"][0]
    assert snapshot(store) == before


def test_summary_impressions_weighting_uses_total_clicks_over_impressions(client):
    put(client, "/api/features", {"a": {"f": 0.9}, "b": {"f": 0.9}, "c": {}, "d": {}})
    counts = {"a": (10, 1000), "b": (30, 1000), "c": (5, 500), "d": (10, 2000)}
    put(client, "/api/ctr", {k: {"clicks": c, "impressions": n} for k, (c, n) in counts.items()})
    body = client.get("/api/summary", query_string=dict(PAIR, weighting="impressions", min_n="2")).get_json()
    (row,) = body["features"]
    assert body["has_counts"] is True and body["weighting"] == "impressions"
    assert row["avg_ctr_with"] == pytest.approx(40 / 2000, rel=1e-12)
    assert row["avg_ctr_without"] == pytest.approx(15 / 2500, rel=1e-12)
    assert row["ci_low"] < row["impact"] < row["ci_high"]
    mean = client.get("/api/summary", query_string=dict(PAIR, min_n="2")).get_json()["features"][0]
    assert mean["avg_ctr_with"] == (0.01 + 0.03) / 2


def test_summary_fields_come_in_documented_order(reference_client):
    text = reference_client.get("/api/summary", query_string=PAIR).get_data(as_text=True)
    body = json.loads(text)
    assert list(body)[:2] == ["business", "source"]
    assert list(body["features"][0])[:7] == ["feature", *CORE]


# -- /api/summary.csv and /api/points.csv --------------------------------------------------


@pytest.mark.parametrize("kind", ["summary", "points"])
@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_csv_endpoints_send_the_pages_download(client, store, kind, weighting):
    from dashboard.page import views
    from dashboard.page.compute import download_csv

    headers = {"Business": "Acme Inc", "Image-Source": "vision"}
    features = {f"img_{i}": {"=cmd|' /C calc'!A0": (i % 2) * 0.9, "-x": 0.6, "plain": (i % 3) / 2} for i in range(10)}
    assert put(client, "/api/features", features, headers=headers).status_code == 201
    ctr = {f"img_{i}": {"clicks": i, "impressions": 50} for i in range(10)}
    assert put(client, "/api/ctr", ctr, headers=headers).status_code == 200
    query = {"business": "Acme Inc", "source": "vision", "confidence": "0.5", "min_pct": "0", "max_pct": "100"}
    response = client.get(f"/api/{kind}.csv", query_string={**query, "weighting": weighting})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    state = views.ViewState(
        "Acme Inc",
        "vision",
        filters=Filters(confidence=0.5, min_n=5, weighting=weighting),
    )
    page = download_csv(store, state, kind)
    assert response.headers["Content-Disposition"] == f"attachment; filename={page['filename']}"
    assert response.get_data(as_text=True) == page["content"]
    assert "'=cmd|' /C calc'!A0" in page["content"] and "\n=" not in page["content"]


@pytest.mark.parametrize("kind", ["summary", "points"])
def test_csv_endpoints_refuse_like_the_summary(reference_client, kind):
    cases = [
        ({"business": "Reference 2018"}, 400, "invalid query parameters"),
        ({**PAIR, "build_id": "99999999999999999999"}, 404, "unknown build"),
        ({"business": "nobody", "source": "vision"}, 404, "unknown dataset"),
        ({**PAIR, "weighting": "impressions"}, 400, "impression weighting is not available for this dataset"),
    ]
    for query, status, error in cases:
        response = reference_client.get(f"/api/{kind}.csv", query_string=query)
        assert response.status_code == status
        assert response.get_json()["error"] == error
