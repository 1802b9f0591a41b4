"""GET /api/summary?adjusted=1: the adjusted columns, their absence without it, and bad designs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from data.adjusted import ADJUSTED_COLUMNS, ADJUSTED_UNAVAILABLE, adjusted_summary
from data.batches import FeatureBatch, ctr_frame

PAIR = {"business": "Reference 2018", "source": "vision"}


@pytest.fixture
def reference_store(store, reference_frame):
    """The store holding the reference CSV as one build with its CTRs."""
    store.add_build(PAIR["business"], PAIR["source"], FeatureBatch.from_wide(reference_frame))
    store.replace_ctr(
        PAIR["business"], PAIR["source"], ctr_frame(reference_frame["image_name"], reference_frame["ctr"])
    )
    return store


def _summary(client, **args):
    response = client.get("/api/summary", query_string={**PAIR, **args})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize("confidence", ["0", "0.5"])
def test_summary_adjusted_adds_the_columns_of_the_analysis(client, reference_store, reference_dataset, confidence):
    body = _summary(client, confidence=confidence, adjusted="1")
    expected = adjusted_summary(reference_dataset, confidence=float(confidence)).set_index("feature")
    assert body["adjusted"] is True
    assert "adjusted_unavailable" not in body
    for row in body["features"]:
        assert list(row)[-len(ADJUSTED_COLUMNS) :] == ADJUSTED_COLUMNS
        want = expected.loc[row["feature"]]
        for column in ADJUSTED_COLUMNS:
            if column in ("adjusted_controls", "adjusted_verdict"):
                continue
            value = want[column]
            assert row[column] == (None if math.isnan(value) else value)
        assert row["adjusted_verdict"] == want["adjusted_verdict"]
        kept = [name for name in want["adjusted_controls"]]
        assert row["adjusted_controls"] == kept


def test_summary_without_adjusted_is_unchanged(client, reference_store):
    plain = client.get("/api/summary", query_string=PAIR).get_data(as_text=True)
    explicit = client.get("/api/summary", query_string={**PAIR, "adjusted": "0"}).get_data(as_text=True)
    assert plain == explicit
    body = json.loads(plain)
    assert "adjusted" not in body
    assert not any(key.startswith("adjusted") for row in body["features"] for key in row)


def test_summary_adjusted_rejects_other_values(client, reference_store):
    response = client.get("/api/summary", query_string={**PAIR, "adjusted": "yes"})
    assert response.status_code == 400
    assert response.get_json()["details"] == ["adjusted must be one of 0, 1, got 'yes'"]


def test_summary_adjusted_is_null_with_a_reason_under_impression_weighting(client, store):
    images = [f"img{k}" for k in range(30)]
    rng = np.random.default_rng(2)
    values = [(i, j, 0.9) for i in range(30) for j in range(2) if rng.random() < 0.5]
    store.add_build(PAIR["business"], PAIR["source"], FeatureBatch(images=images, features=["a", "b"], values=values))
    impressions = rng.integers(1000, 3000, 30)
    clicks = rng.binomial(impressions, 0.01)
    store.replace_ctr(
        PAIR["business"],
        PAIR["source"],
        ctr_frame(images, clicks / impressions, clicks=clicks, impressions=impressions),
    )
    body = _summary(client, adjusted="1", weighting="impressions", min_n="2")
    assert body["adjusted_unavailable"] == ADJUSTED_UNAVAILABLE
    assert body["features"]
    for row in body["features"]:
        assert all(row[column] is None for column in ADJUSTED_COLUMNS)
    # Mean weighting on the same data has them.
    assert any(row["adjusted_p_value"] is not None for row in _summary(client, adjusted="1", min_n="2")["features"])


def test_summary_adjusted_with_a_duplicate_feature_names_the_dropped_control(client, store, reference_frame):
    frame = reference_frame.assign(text_copy=reference_frame["text"])
    store.add_build(PAIR["business"], PAIR["source"], FeatureBatch.from_wide(frame))
    store.replace_ctr(PAIR["business"], PAIR["source"], ctr_frame(frame["image_name"], frame["ctr"]))
    response = client.get("/api/summary", query_string={**PAIR, "adjusted": "1", "confidence": "0.5"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "NaN" not in text and "Infinity" not in text
    rows = {row["feature"]: row for row in response.get_json()["features"]}
    assert "text_copy (dropped: same images as the feature)" in rows["text"]["adjusted_controls"]
    assert rows["text"]["adjusted_p_value"] is not None
    assert rows["text"]["adjusted_impact"] == rows["text_copy"]["adjusted_impact"]


def test_summary_adjusted_on_a_build_without_ctr_is_empty(client, store):
    store.add_build(
        PAIR["business"], PAIR["source"], FeatureBatch(images=["a", "b"], features=["x"], values=[(0, 0, 0.5)])
    )
    body = _summary(client, adjusted="1")
    assert body["features"] == []


@pytest.mark.parametrize("confidence", ["0", "0.5"])
def test_summary_adjusted_verdict_lift_and_fcr_interval_agree_with_q(client, reference_store, confidence):
    """The FCR interval holds the per-test one and excludes 0 exactly when adjusted q < 0.05."""
    body = _summary(client, confidence=confidence, adjusted="1")
    rows = [r for r in body["features"] if r["adjusted_q_value"] is not None]
    assert rows
    selected = sum(r["adjusted_q_value"] < 0.05 for r in rows)
    assert body["adjusted_fcr_level"] == 1 - max(selected, 1) * 0.05 / len(rows)
    for row in rows:
        significant = row["adjusted_q_value"] < 0.05
        low, high = row["adjusted_ci_low_fcr"], row["adjusted_ci_high_fcr"]
        assert low <= row["adjusted_ci_low"] and row["adjusted_ci_high"] <= high
        assert (low > 0 or high < 0) == significant
        sign = "helps" if row["adjusted_impact"] > 0 else "hurts"
        assert row["adjusted_verdict"] == (sign if significant else "unclear")
        assert row["adjusted_lift_pct"] == pytest.approx(100 * row["adjusted_impact"] / row["avg_ctr_without"])
    for row in body["features"]:
        if row["low_n"]:
            assert row["adjusted_verdict"] == "too few images"
