"""A window of days on every read: /api/summary (JSON, CSV), /api/points.csv, /api/drift, adjusted=1 and
/api/gallery sum each image's dated clicks and impressions over it, exactly as recomputed from the raw rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboard.api.downloads import points_csv, summary_csv
from dashboard.api.routes import records
from data.adjusted import adjusted_columns
from data.analysis import Dataset, feature_summary, scatter_points
from data.batches import ctr_frame
from data.cache import AnalysisCache
from data.drift import DRIFT_COLUMNS, feature_drift
from data.filters import Filters
from data.gallery import feature_gallery
from tests.helpers import refined_get
from tests.metrics_data import make_metrics, window_ctrs
from tests.test_store import make_batch

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "daily"}
PAIR = {"business": "Acme", "source": "daily"}
WINDOWS = [
    (None, None),
    ("2026-03-05", None),
    (None, "2026-03-03"),
    ("2026-03-08", "2026-03-15"),
    ("2026-03-11", "2026-03-11"),
]


def metrics_body(frame: pd.DataFrame) -> dict:
    body: dict = {}
    for image, day, clicks, impressions in frame.itertuples(index=False, name=None):
        body.setdefault(image, {})[day] = {"clicks": int(clicks), "impressions": int(impressions)}
    return body


@pytest.fixture
def loaded(client):
    """Two builds of 40 images and 20 days of dated metrics for 36 of them; returns (batches, rows)."""
    batches = [make_batch(seed, n_images=40, n_features=5) for seed in (11, 12)]
    for batch in batches:
        doc = {image: {} for image in batch.images}
        for i, j, value in batch.values:
            doc[batch.images[i]][batch.features[j]] = value
        assert client.put("/api/features", data=json.dumps(doc), headers=HEADERS).status_code == 201
    frame = make_metrics(batches[0].images[:36], days=20, seed=5)
    assert client.put("/api/metrics", data=json.dumps(metrics_body(frame)), headers=HEADERS).status_code == 200
    return batches, frame


def _from_batch(batch, frame, window) -> Dataset:
    ctrs = window_ctrs(frame, *window)
    images = list(ctrs)
    ctr = ctr_frame(images, [ctrs[i][2] for i in images], [ctrs[i][0] for i in images], [ctrs[i][1] for i in images])
    dense = np.zeros((len(batch.images), len(batch.features)))
    for i, j, value in batch.values:
        dense[i, j] = value
    return Dataset.from_matrix(batch.images, batch.features, dense, ctr)


def window_query(window) -> dict:
    start, end = window
    return {k: v for k, v in (("from", start), ("to", end)) if v}


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
@pytest.mark.parametrize("window", WINDOWS)
def test_summary_of_a_window_matches_the_raw_rows(client, loaded, window, weighting):
    batches, frame = loaded
    query = {**PAIR, **window_query(window), "weighting": weighting, "min_n": 2}
    answer = refined_get(client, "/api/summary", query)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["window"] == {"from": window[0], "to": window[1]}
    expected = _from_batch(batches[1], frame, window)
    filters = Filters(weighting=weighting, min_n=2)
    summary = feature_summary(expected, filters, cache=AnalysisCache())
    assert body["images_with_ctr"] == expected.images_with_ctr
    assert body["features"] == records(summary, list(summary.columns))
    # The CSVs of the same window: the same rows, and a file name that says which days.
    for kind, content in (
        ("summary", summary_csv(summary)),
        ("points", points_csv(scatter_points(expected, filters, features=summary["feature"]))),
    ):
        response = client.get(f"/api/{kind}.csv", query_string=query)
        assert response.status_code == 200
        assert response.data.decode() == content
        disposition = response.headers["Content-Disposition"]
        if window == (None, None):
            assert "days-" not in disposition
        else:
            assert f"days-{window[0] or 'start'}_{window[1] or 'end'}" in disposition


@pytest.mark.parametrize("window", [("2026-03-05", None), ("2026-03-08", "2026-03-15")])
def test_adjusted_drift_and_gallery_take_the_window(client, loaded, window):
    batches, frame = loaded
    before, after = (_from_batch(batch, frame, window) for batch in batches)
    wq = window_query(window)
    # adjusted=1
    body = refined_get(client, "/api/summary", {**PAIR, **wq, "min_n": 2, "adjusted": 1}).get_json()
    filters = Filters(min_n=2)
    cache = AnalysisCache()
    summary = adjusted_columns(feature_summary(after, filters, cache=cache), after, filters, cache=cache)
    assert body["features"] == records(summary, list(summary.columns))
    # drift between the two builds, both over the window
    builds = client.get("/api/builds", query_string=PAIR).get_json()["builds"]
    ids = sorted(b["build_id"] for b in builds)
    answer = client.get("/api/drift", query_string={**PAIR, **wq, "from_build": ids[0], "to_build": ids[1], "min_n": 2})
    assert answer.status_code == 200, answer.get_json()
    drift_body = answer.get_json()
    assert drift_body["window"] == {"from": window[0], "to": window[1]}
    assert drift_body["features"] == records(feature_drift(before, after, filters), DRIFT_COLUMNS)
    # the gallery: the window's CTRs, clicks and impressions
    feature = after.features[0]
    gallery = client.get("/api/gallery", query_string={**PAIR, **wq, "feature": feature, "limit": 200}).get_json()
    assert gallery["window"] == {"from": window[0], "to": window[1]}
    expected = feature_gallery(after, feature, 0.0, "with", "ctr_desc")
    assert [(g["image"], g["ctr"], g["clicks"], g["impressions"]) for g in gallery["images"]] == [
        (str(i), c, int(k), int(n))
        for i, c, k, n in zip(expected["image"], expected["ctr"], expected["clicks"], expected["impressions"])
    ]


def test_images_without_impressions_in_the_window_have_no_ctr(client, loaded):
    batches, frame = loaded
    day = "2026-03-11"
    shown = set(frame[(frame["day"] == day) & (frame["impressions"] > 0)]["image"])
    body = client.get("/api/summary", query_string={**PAIR, "from": day, "to": day}).get_json()
    assert body["images"] == 40 and body["images_with_ctr"] == len(shown) < 36


def test_a_window_is_refused_on_a_ctr_set_and_when_malformed(client, loaded):
    ctr_pair = {"Business": "Acme", "Image-Source": "rates"}
    doc = {f"img_{i}": {"text": 0.5} for i in range(4)}
    assert client.put("/api/features", data=json.dumps(doc), headers=ctr_pair).status_code == 201
    assert (
        client.put("/api/ctr", data=json.dumps({f"img_{i}": 0.1 for i in range(4)}), headers=ctr_pair).status_code
        == 200
    )
    query = {"business": "Acme", "source": "rates"}
    assert client.get("/api/summary", query_string=query).status_code == 200
    for path in ("/api/summary", "/api/summary.csv", "/api/points.csv"):
        refused = client.get(path, query_string={**query, "from": "2026-03-01"})
        assert refused.status_code == 400
        assert refused.get_json()["error"] == "a time window needs dated metrics"
    bad = client.get("/api/summary", query_string={**PAIR, "from": "2026-03-32", "to": "soon"}).get_json()
    assert bad["error"] == "invalid query parameters" and len(bad["details"]) == 2
    assert bad["details"][0].startswith("from must be a date written YYYY-MM-DD")
    crossed = client.get("/api/summary", query_string={**PAIR, "from": "2026-03-10", "to": "2026-03-09"}).get_json()
    assert crossed["details"] == ["from (2026-03-10) must not be after to (2026-03-09)"]
