"""The demo generator: deterministic, realistic in shape and range, with its planted effects visible."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from data.analysis import Dataset, feature_summary
from data.demo import (
    CSS_COLOURS,
    DAILY_DAYS,
    DEMO_BUSINESS,
    DEMO_SOURCE,
    FADING_FEATURE,
    PLANTED_EFFECTS,
    REFERENCE_BUSINESS,
    REFERENCE_CSV,
    REFERENCE_SOURCE,
    demo_build,
    demo_daily,
    feature_names,
    load_demo,
)
from data.trend import feature_trend
from tests.helpers import dense_batch

NAME_PATTERN = re.compile(r"imgcontent\.[a-z]+-[a-z]+_imgtemp\.[a-z0-9-]+")


@pytest.fixture(scope="module")
def demo():
    """The default demo build and its CTR set."""
    return demo_build()


@pytest.fixture(scope="module")
def demo_dataset(demo) -> Dataset:
    """The default demo build as a Dataset."""
    batch, ctr = demo
    return Dataset.from_matrix(batch.images, batch.features, dense_batch(batch), ctr)


def _colour_columns(features) -> np.ndarray:
    colours, _ = feature_names(len(features))
    return np.isin(np.array(features, dtype=object), colours)


def test_demo_build_same_seed_gives_same_build():
    """Two builds from the same seed agree bit for bit; another seed differs."""
    first, first_ctr = demo_build(seed=7)
    second, second_ctr = demo_build(seed=7)
    assert first.images == second.images
    assert first.features == second.features
    assert first.values == second.values
    pd.testing.assert_frame_equal(first_ctr, second_ctr)
    other, other_ctr = demo_build(seed=8)
    assert other.values != first.values
    assert not other_ctr["ctr"].equals(first_ctr["ctr"])


def test_demo_build_default_shape(demo):
    """659 images with unique, realistic names; 147 colours and 333 labels, all unique."""
    batch, _ = demo
    assert len(batch.images) == 659
    assert len(set(batch.images)) == 659
    assert all(NAME_PATTERN.fullmatch(name) for name in batch.images)
    assert len(batch.features) == 480
    assert len(set(batch.features)) == 480
    colours, labels = feature_names(480)
    assert sorted(c.removesuffix("_x") for c in colours) == sorted(CSS_COLOURS)
    assert len(CSS_COLOURS) == 147 and len(labels) == 333
    assert set(batch.features) == set(colours) | set(labels)
    assert {"poster", "text", "girl", "headwear", "fun", "smile", "product", "font", "sky"} <= set(batch.features)


def test_demo_build_suffixes_colours_that_clash_with_labels(demo):
    """A colour named like a label gets ``_x``, so both ``orange`` and ``orange_x`` exist."""
    batch, _ = demo
    features = set(batch.features)
    assert {"orange", "orange_x", "black", "black_x"} <= features
    colours, labels = feature_names(480)
    assert not set(colours) & set(labels)
    for colour in colours:
        if colour.endswith("_x"):
            assert colour.removesuffix("_x") in labels
        else:
            assert colour not in labels


@pytest.mark.parametrize("n_images, n_features", [(40, 30), (200, 147), (300, 1000)])
def test_demo_build_other_sizes_keep_planted_labels(n_images, n_features):
    """Smaller and larger builds have the asked shape, unique names and every planted label."""
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    assert len(batch.images) == len(set(batch.images)) == n_images
    assert len(batch.features) == len(set(batch.features)) == n_features
    assert set(PLANTED_EFFECTS) <= set(batch.features)
    assert set(ctr["image"]) <= set(batch.images)


def test_feature_names_rejects_too_few_features():
    """A build too small to hold the planted labels is refused."""
    with pytest.raises(ValueError, match="n_features"):
        feature_names(3)


def test_demo_build_colour_fractions_are_pixel_shares(demo):
    """Per image, colour fractions sum to at most 1, with a few dominant colours and most near 0."""
    batch, _ = demo
    matrix = dense_batch(batch)
    colours = matrix[:, _colour_columns(batch.features)]
    assert (colours >= 0).all() and (colours.sum(axis=1) <= 1.0).all()
    assert colours.sum(axis=1).min() > 0.5
    dominant = (colours > 0.1).sum(axis=1)
    assert dominant.min() >= 1 and np.median(dominant) <= 4
    assert np.median((colours > 0).sum(axis=1)) <= 10


def test_demo_build_label_confidences_are_sparse_detections(demo):
    """Labels are 0 or a confidence in [0.5, 0.99], each present in roughly 1-30 % of images."""
    batch, _ = demo
    matrix = dense_batch(batch)
    labels = matrix[:, ~_colour_columns(batch.features)]
    detected = labels[labels > 0]
    assert detected.min() >= 0.5 and detected.max() <= 0.99
    share = (labels > 0).mean(axis=0)
    assert share.min() > 0 and share.max() <= 0.35
    assert 0.01 <= np.median(share) <= 0.15
    assert (labels == 0).mean() > 0.85


def test_demo_build_values_list_only_non_zero_positions(demo):
    """The batch's values are non-zero, in range, and point at real images and features."""
    batch, _ = demo
    img, feat, conf = (np.array(col) for col in zip(*batch.values))
    assert (conf > 0).all() and (conf <= 1).all()
    assert img.max() < len(batch.images) and feat.max() < len(batch.features)
    assert len(set(zip(img.tolist(), feat.tolist()))) == len(batch.values)


def test_demo_build_ctr_is_clicks_over_impressions(demo):
    """CTR = clicks / impressions, around 1 %, impressions from thousands to 100k."""
    _, ctr = demo
    assert list(ctr.columns) == ["image", "ctr", "clicks", "impressions"]
    impressions = ctr["impressions"].to_numpy(dtype=np.int64)
    clicks = ctr["clicks"].to_numpy(dtype=np.int64)
    assert np.array_equal(ctr["ctr"].to_numpy(), clicks / impressions)
    assert impressions.min() >= 2_000 and impressions.max() <= 100_000
    assert (clicks >= 0).all() and (clicks <= impressions).all()
    assert 0.008 <= ctr["ctr"].mean() <= 0.012
    assert ctr["ctr"].between(0, 1).all()


def test_demo_build_leaves_some_images_without_ctr(demo):
    """About 2 % of the images have no CTR; every CTR row names a build image once."""
    batch, ctr = demo
    missing = set(batch.images) - set(ctr["image"])
    assert 5 <= len(missing) <= 25
    assert ctr["image"].is_unique
    assert set(ctr["image"]) <= set(batch.images)


def test_demo_build_planted_effects_show_in_feature_summary(demo_dataset):
    """Each planted effect has its sign and stands well clear of the features with none."""
    summary = feature_summary(demo_dataset).set_index("feature")
    null = summary.drop(index=list(PLANTED_EFFECTS))
    typical = null["impact"].abs().median()
    # Well-populated null features, whose noise is closest to the planted ones' group sizes.
    populated = null.loc[null["n_with"] >= 30, "impact"].abs().quantile(0.9)
    for feature, factor in PLANTED_EFFECTS.items():
        impact = summary.loc[feature, "impact"]
        assert np.sign(impact) == np.sign(factor - 1), feature
        assert abs(impact) > 4 * typical, feature
        assert abs(impact) > 2 * populated, feature


def test_load_demo_populates_an_empty_store(store):
    """Both datasets are stored, the demo listed first, with the values the generator made."""
    assert store.is_empty()
    summary = load_demo(store)
    listed = store.datasets()
    assert list(zip(listed["business"], listed["source"])) == [
        (DEMO_BUSINESS, DEMO_SOURCE),
        (REFERENCE_BUSINESS, REFERENCE_SOURCE),
    ]
    assert summary["demo"]["images"] == 659 and summary["demo"]["features"] == 480
    assert listed["images_with_ctr"].tolist() == [summary["demo"]["images_with_ctr"], 287]

    batch, ctr = demo_build()
    stored = store.dataset(DEMO_BUSINESS, DEMO_SOURCE)
    assert stored.images.tolist() == batch.images
    assert stored.features.tolist() == batch.features
    assert np.array_equal(stored.dense(), dense_batch(batch))
    assert stored.has_counts
    expected_ctr = ctr.set_index("image")["ctr"].reindex(batch.images).to_numpy()
    assert np.array_equal(stored.ctr, expected_ctr, equal_nan=True)


def test_load_demo_stores_the_reference_csv_ctr_only(store):
    """The reference dataset matches the CSV, with CTRs but no click counts."""
    load_demo(store)
    frame = pd.read_csv(REFERENCE_CSV)
    stored = store.dataset(REFERENCE_BUSINESS, REFERENCE_SOURCE)
    assert stored.images.tolist() == frame["image_name"].tolist()
    assert stored.features.tolist() == list(frame.columns[2:])
    assert np.array_equal(stored.dense(), frame.iloc[:, 2:].to_numpy())
    assert np.array_equal(stored.ctr, frame["ctr"].to_numpy())
    assert not stored.has_counts


def test_demo_daily_counts_sum_to_the_ctr_set_and_fit_each_day():
    """Per image the days' clicks and impressions add up to the demo's counts exactly, clicks <= impressions each day."""
    batch, ctr = demo_build()
    daily = demo_daily(batch, ctr)
    assert daily["day"].nunique() == DAILY_DAYS and daily["image"].nunique() == len(ctr)
    sums = daily.groupby("image")[["clicks", "impressions"]].sum()
    expected = ctr.set_index("image")
    assert (sums["clicks"] == expected["clicks"].astype("int64")).all()
    assert (sums["impressions"] == expected["impressions"].astype("int64")).all()
    assert (daily["clicks"] <= daily["impressions"]).all()
    assert daily.equals(demo_daily(batch, ctr))  # deterministic


def test_demo_trend_shows_the_planted_effect_fading(store):
    """The demo's FADING_FEATURE lifts CTR clearly in its first month and no longer in its last."""
    load_demo(store)
    assert store.metric_set(DEMO_BUSINESS, DEMO_SOURCE).n_rows == DAILY_DAYS * 646
    base = store.dataset(DEMO_BUSINESS, DEMO_SOURCE)

    def dataset_for(window):
        return Dataset.from_matrix(
            base.images, base.features, base.confidences, store.metric_ctr(DEMO_BUSINESS, DEMO_SOURCE, window)
        )

    trend = feature_trend(
        dataset_for, FADING_FEATURE, "2026-09-01", "2026-11-29", "month", confidence=0.5, cache=store.cache
    )
    assert trend["from"].tolist() == ["2026-09-01", "2026-10-01", "2026-11-01"]
    first, last = trend.iloc[0], trend.iloc[-1]
    assert first["ci_low"] > 0 and first["p_value"] < 0.001
    assert last["impact"] < first["impact"] / 3 and last["ci_low"] < 0 < last["ci_high"]
