"""GET /api/drift on real SQLite files: two builds of one dataset, the drift analysis, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dashboard.api.drift import DriftQuery
from data.drift import DRIFT_COLUMNS, feature_drift
from data.filters import Filters

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
PAIR = {"business": "Acme", "source": "vision"}


def put(client, path, doc, headers=HEADERS):
    return client.put(path, data=json.dumps(doc), headers=headers)


def _features(rng, images, features=("text", "smile", "sky", "logo")):
    return {image: {f: round(float(rng.random()), 4) for f in features} for image in images}


@pytest.fixture
def two_builds(client):
    """Acme/vision with build 1 (img 0-199) and build 2 (img 50-249 re-featurized or new), counts for all."""
    rng = np.random.default_rng(11)
    first = put(client, "/api/features", _features(rng, [f"img{i}" for i in range(200)])).get_json()["build_id"]
    second = put(client, "/api/features", _features(rng, [f"img{i}" for i in range(50, 250)])).get_json()["build_id"]
    counts = {}
    for i in range(250):
        impressions = int(rng.integers(500, 5000))
        counts[f"img{i}"] = {"clicks": int(rng.binomial(impressions, 0.02)), "impressions": impressions}
    assert put(client, "/api/ctr", counts).status_code == 200
    return first, second


def drift(client, **params):
    return client.get("/api/drift", query_string={**PAIR, **params})


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_drift_answers_the_analysis_of_both_stored_builds(client, store, two_builds, weighting):
    first, second = two_builds
    response = drift(client, from_build=first, to_build=second, confidence=0.5, weighting=weighting)
    assert response.status_code == 200
    body = response.get_json()
    assert list(body)[:5] == ["business", "source", "from_build", "to_build", "shared_images"]
    assert body["from_build"] == first and body["to_build"] == second
    assert body["shared_images"] == 150 and body["shared_images_with_ctr"] == 150
    expected = feature_drift(
        store.dataset("Acme", "vision", first),
        store.dataset("Acme", "vision", second),
        confidence=0.5,
        weighting=weighting,
    )
    assert [f["feature"] for f in body["features"]] == expected["feature"].tolist()
    for row, (_, want) in zip(body["features"], expected.iterrows()):
        assert list(row) == DRIFT_COLUMNS
        assert not want["low_n"]
        for column in ("impact_from", "impact_to", "change", "ci_low", "ci_high", "p_value", "q_value"):
            assert row[column] == want[column]  # exact floats through JSON
        assert row["n_flipped"] == want["n_flipped"]
        assert row["change"] == row["impact_to"] - row["impact_from"]


def test_drift_from_equal_to_is_all_zero(client, two_builds):
    first, _ = two_builds
    body = drift(client, from_build=first, to_build=first, confidence=0.5).get_json()
    assert body["shared_images"] == 200
    assert body["features"]
    for row in body["features"]:
        assert row["change"] == 0 and row["n_flipped"] == 0
        assert row["p_value"] is None and row["q_value"] is None
        assert row["ci_low"] == 0 and row["ci_high"] == 0
        assert not row["significant"]


def test_drift_unknown_build_is_404(client, two_builds):
    first, second = two_builds
    response = drift(client, from_build=first, to_build=second + 50)
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown build"
    unknown_pair = client.get(
        "/api/drift", query_string={"business": "Nobody", "source": "vision", "from_build": 1, "to_build": 1}
    )
    assert unknown_pair.status_code == 404 and unknown_pair.get_json()["error"] == "unknown dataset"


def test_drift_builds_of_different_pairs_are_400(client, two_builds):
    first, _ = two_builds
    other = put(client, "/api/features", {"x": {"text": 0.9}}, headers={"Business": "Other", "Image-Source": "vision"})
    other_id = other.get_json()["build_id"]
    response = drift(client, from_build=first, to_build=other_id)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "builds of different datasets cannot be compared"
    assert body["details"] == [f"to_build: build {other_id} belongs to 'Other' / 'vision', not 'Acme' / 'vision'"]


@pytest.mark.parametrize(
    "params, detail",
    [
        ({"to_build": 1}, "from_build is required"),
        ({"from_build": "x", "to_build": 1}, "from_build must be a whole number >= 1, got 'x'"),
        ({"from_build": 1, "to_build": 2, "confidence": "2"}, "confidence must be a number in [0, 1], got '2'"),
        ({"from_build": 1, "to_build": 2, "weighting": "median"}, "weighting must be one of mean, impressions"),
    ],
)
def test_drift_rejects_malformed_parameters_with_400(client, two_builds, params, detail):
    response = drift(client, **params)
    assert response.status_code == 400
    assert any(d.startswith(detail) for d in response.get_json()["details"])


def test_drift_impressions_without_counts_is_400(client, two_builds):
    first, second = two_builds
    assert put(client, "/api/ctr", {f"img{i}": 0.01 for i in range(250)}).status_code == 200
    response = drift(client, from_build=first, to_build=second, weighting="impressions")
    assert response.status_code == 400
    assert response.get_json()["error"] == "impression weighting is not available for this dataset"


def test_drift_builds_without_shared_images_or_ctr(client):
    a = put(client, "/api/features", {"a1": {"text": 0.9}, "a2": {"text": 0.1}}).get_json()["build_id"]
    b = put(client, "/api/features", {"b1": {"text": 0.9}, "b2": {"text": 0.2}}).get_json()["build_id"]
    body = drift(client, from_build=a, to_build=b, confidence=0.5).get_json()
    assert body["shared_images"] == 0 and body["shared_images_with_ctr"] == 0
    assert body["images_with_ctr_from"] == 0 and body["features"] == []


def test_drift_query_parses_every_parameter():
    query = DriftQuery.from_args(
        {
            **PAIR,
            "from_build": "3",
            "to_build": "7",
            "confidence": "0.4",
            "min_pct": "1",
            "max_pct": "60",
            "min_n": "3",
            "weighting": "impressions",
        }
    )
    filters = Filters(confidence=0.4, min_pct=1.0, max_pct=60.0, min_n=3, weighting="impressions")
    assert query == DriftQuery("Acme", "vision", 3, 7, filters)
