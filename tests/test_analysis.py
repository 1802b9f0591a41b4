"""The analysis core against an independent pandas computation on the reference data."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from data.analysis import Dataset, feature_summary, image_features, scatter_points
from data.batches import FeatureBatch
from tests.helpers import CORE_COLUMNS, pandas_summary

# 0.7106531262397766 is a stored confidence (poster of the first image): presence is strictly above.
THRESHOLDS = [0.0, 0.1, 0.5, 0.7106531262397766, 0.9, 1.0]
# Bounds that fall exactly on a prevalence (62 and 63 of 287 images) test that both ends are inclusive.
PREVALENCE_RANGES = [(0.0, 100.0), (20.0, 30.0), (0.0, 100 * 62 / 287), (100 * 63 / 287, 100.0), (50.0, 60.0)]


@pytest.fixture
def partial_frame(reference_frame) -> pd.DataFrame:
    """The reference frame with 40 CTRs removed and a feature seen only in images without a CTR."""
    frame = reference_frame.copy()
    rows = sorted(random.Random(42).sample(range(len(frame)), 40))
    frame.loc[rows, "ctr"] = np.nan
    frame["only_unmeasured"] = 0.0
    frame.loc[rows[:6], "only_unmeasured"] = 0.8
    return frame


@pytest.mark.parametrize("min_pct, max_pct", PREVALENCE_RANGES)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_reproduces_pandas_on_reference(
    reference_frame, reference_dataset, threshold, min_pct, max_pct
):
    """Every number, and the order, equals the plain pandas computation to the last bit."""
    actual = feature_summary(reference_dataset, confidence=threshold, min_pct=min_pct, max_pct=max_pct)[CORE_COLUMNS]
    expected = pandas_summary(reference_frame, threshold, min_pct, max_pct)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_leaves_images_without_ctr_out_of_ctr_stats(partial_frame, threshold):
    """Images without a CTR count in prevalence only; a feature seen only in them is dropped."""
    dataset = Dataset.from_wide(partial_frame)
    actual = feature_summary(dataset, confidence=threshold)[CORE_COLUMNS]
    expected = pandas_summary(partial_frame, threshold)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert "only_unmeasured" not in set(actual["feature"])
    assert (actual["n_with"] + actual["n_without"] == 247).all()


def test_feature_summary_strict_threshold_at_a_stored_value(reference_dataset):
    """At a threshold equal to a stored confidence, that image no longer has the feature."""
    at = feature_summary(reference_dataset, confidence=0.7106531262397766).set_index("feature")
    below = feature_summary(reference_dataset, confidence=np.nextafter(0.7106531262397766, 0)).set_index("feature")
    assert below.loc["poster", "n_with"] == at.loc["poster", "n_with"] + 1


def test_feature_summary_orders_by_impact_descending(reference_dataset):
    """Rows come highest impact first."""
    impact = feature_summary(reference_dataset, confidence=0.0)["impact"].to_numpy()
    assert len(impact) == 7
    assert (np.diff(impact) <= 0).all()


def test_feature_summary_puts_feature_in_every_image_last():
    """A feature present in every image with a CTR has no impact and is listed last."""
    dataset = Dataset.from_matrix(
        ["a", "b", "c", "d"],
        ["everywhere", "low", "high"],
        np.array([[0.9, 0.0, 0.8], [0.9, 0.7, 0.0], [0.9, 0.0, 0.6], [0.0, 0.0, 0.0]]),
        pd.Series({"a": 0.03, "b": 0.01, "c": 0.02}),
    )
    summary = feature_summary(dataset)
    assert summary["feature"].tolist() == ["high", "low", "everywhere"]
    last = summary.iloc[-1]
    assert (last["n_with"], last["n_without"]) == (3, 0)
    assert np.isnan(last["avg_ctr_without"]) and np.isnan(last["impact"])
    assert last["prevalence_pct"] == 75.0


def _expected_points(frame: pd.DataFrame, threshold: float, features: list[str]) -> pd.DataFrame:
    known = frame[frame["ctr"].notna()]
    parts = []
    for feature in features:
        hit = known[known[feature] > threshold]
        parts.append(
            pd.DataFrame(
                {"image": hit["image_name"], "feature": feature, "confidence": hit[feature], "ctr": hit["ctr"]}
            )
        )
    points = pd.concat(parts, ignore_index=True)
    points["image"] = points["image"].astype(object)
    points["feature"] = pd.Categorical(points["feature"], categories=pd.Index(features, dtype=object))
    return points


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7106531262397766])
@pytest.mark.parametrize("features", [None, ["skyblue", "poster", "text"], ["fun"]])
def test_scatter_points_one_row_per_present_feature_of_measured_image(partial_frame, threshold, features):
    """One row per (image with a CTR, feature present), grouped by feature in the requested order."""
    dataset = Dataset.from_wide(partial_frame)
    order = features or list(dataset.features)
    actual = scatter_points(dataset, confidence=threshold, features=features)
    pd.testing.assert_frame_equal(actual, _expected_points(partial_frame, threshold, order), check_exact=True)
    assert list(actual["feature"].cat.categories) == order


def test_scatter_points_rejects_unknown_feature(reference_dataset):
    """Asking for a feature the build lacks raises KeyError naming it."""
    with pytest.raises(KeyError, match="nosuch"):
        scatter_points(reference_dataset, confidence=0.0, features=["text", "nosuch"])


def test_image_features_lists_present_features_highest_first(reference_frame, reference_dataset):
    """An image's features above the threshold, highest confidence first."""
    image = "imgcontent.aboogiewitdahoodie-pressshot_imgtemp.pressshot"
    row = reference_frame.set_index("image_name").loc[image].drop("ctr")
    for threshold in (0.0, 0.5):
        kept = row[row > threshold].sort_values(ascending=False)
        actual = image_features(reference_dataset, image, threshold)
        assert actual["feature"].tolist() == kept.index.tolist()
        assert actual["confidence"].tolist() == kept.tolist()
    assert image_features(reference_dataset, image, 0.0)["feature"].tolist() == ["headwear", "girl", "black_x"]


def test_image_features_rejects_unknown_image(reference_dataset):
    """An image not in the build raises KeyError."""
    with pytest.raises(KeyError, match="missing.png"):
        image_features(reference_dataset, "missing.png")


def _assert_same_dataset(left: Dataset, right: Dataset) -> None:
    assert left.images.tolist() == right.images.tolist()
    assert left.features.tolist() == right.features.tolist()
    assert np.array_equal(left.dense(), right.dense())
    assert np.array_equal(left.ctr, right.ctr, equal_nan=True)


def test_dataset_constructors_agree(partial_frame):
    """from_wide, from_long (all values) and from_matrix build the same Dataset."""
    wide = Dataset.from_wide(partial_frame)
    features = list(partial_frame.columns.drop(["image_name", "ctr"]))
    ctr = partial_frame.dropna(subset=["ctr"]).set_index("image_name")["ctr"]
    long = partial_frame.melt(id_vars="image_name", value_vars=features, var_name="feature", value_name="confidence")
    from_long = Dataset.from_long(long.rename(columns={"image_name": "image"}), ctr)
    from_matrix = Dataset.from_matrix(partial_frame["image_name"], features, partial_frame[features].to_numpy(), ctr)
    _assert_same_dataset(from_long, wide)
    _assert_same_dataset(from_matrix, wide)
    assert wide.images_with_ctr == from_long.images_with_ctr == 247


def test_dataset_from_long_of_non_zero_values_matches_wide(reference_frame, reference_dataset):
    """From a batch's non-zero values, from_long gives the wide values for the images it names."""
    batch = FeatureBatch.from_wide(reference_frame)
    sparse = Dataset.from_long(batch.to_frame(), reference_frame.set_index("image_name")["ctr"])
    rows = pd.Index(reference_dataset.images).get_indexer(sparse.images)
    cols = pd.Index(reference_dataset.features).get_indexer(sparse.features)
    assert (rows >= 0).all() and (cols >= 0).all()
    assert np.array_equal(sparse.dense(), reference_dataset.confidences[np.ix_(rows, cols)])
    assert np.array_equal(sparse.ctr, reference_dataset.ctr[rows])
    # The images it does not name are those with no non-zero value at all.
    unnamed = np.setdiff1d(np.arange(len(reference_dataset.images)), rows)
    assert (reference_dataset.confidences[unnamed] == 0).all()


def test_dataset_counts_come_with_clicks_and_impressions():
    """A CTR frame with clicks and impressions gives counts; a CTR series does not."""
    ctr = pd.DataFrame({"image": ["a", "b"], "ctr": [0.01, 0.02], "clicks": [10, 40], "impressions": [1000, 2000]})
    with_counts = Dataset.from_matrix(["a", "b", "c"], ["f"], np.ones((3, 1)), ctr)
    assert with_counts.has_counts
    assert with_counts.clicks[:2].tolist() == [10.0, 40.0] and np.isnan(with_counts.clicks[2])
    without = Dataset.from_matrix(["a", "b", "c"], ["f"], np.ones((3, 1)), ctr.set_index("image")["ctr"])
    assert not without.has_counts
    assert np.array_equal(without.ctr, with_counts.ctr, equal_nan=True)


def test_dataset_rejects_mismatched_shapes():
    """A confidence matrix or CTR vector of the wrong size is refused."""
    with pytest.raises(ValueError, match="confidences"):
        Dataset(np.array(["a"], dtype=object), np.array(["f", "g"], dtype=object), np.zeros((1, 3)), np.zeros(1))
    with pytest.raises(ValueError, match="ctr"):
        Dataset(np.array(["a"], dtype=object), np.array(["f"], dtype=object), np.zeros((1, 1)), np.zeros(2))


@pytest.mark.parametrize(
    ("clicks", "impressions", "problem"),
    [
        ([1, 2], [100, 0], "'b': 2 clicks of 0 impressions"),
        ([1, -2], [100, 50], "'b': -2 clicks of 50 impressions"),
        ([1, 60], [100, 50], "'b': 60 clicks of 50 impressions"),
        ([1, 2.5], [100, 50], "'b': 2.5 clicks of 50 impressions"),
        ([1, np.nan], [100, 50], "'b': nan clicks of 50 impressions"),
    ],
)
def test_dataset_refuses_counts_the_http_path_refuses(clicks, impressions, problem):
    """Impressions of 0, negative or fractional counts, more clicks than impressions: refused, as over HTTP."""
    ctr = pd.DataFrame({"image": ["a", "b"], "ctr": [0.01, 0.02], "clicks": clicks, "impressions": impressions})
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
        Dataset.from_matrix(["a", "b"], ["f"], np.ones((2, 1)), ctr)


def test_dataset_refuses_ctr_outside_unit_interval():
    """A CTR above 1 (a percentage, say) is refused, as over HTTP."""
    with pytest.raises(ValueError, match=r"ctr must be in \[0, 1\]"):
        Dataset.from_wide(pd.DataFrame({"image_name": ["a", "b"], "ctr": [0.5, 1.5], "f": [0.1, 0.2]}))
