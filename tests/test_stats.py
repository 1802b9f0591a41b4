"""Impact uncertainty: Welch intervals, delta-method ratios, minimum group size and BH q-values."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from data import stats
from data.analysis import Dataset, WeightingUnavailable, feature_summary

THRESHOLDS = [0.0, 0.1, 0.5]


def _welch_reference(frame: pd.DataFrame, feature: str, threshold: float):
    mask = frame[feature] > threshold
    result = sps.ttest_ind(frame.loc[mask, "ctr"], frame.loc[~mask, "ctr"], equal_var=False)
    interval = result.confidence_interval(0.95)
    return interval.low, interval.high, result.pvalue


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_welch_matches_scipy_on_reference(reference_frame, reference_dataset, threshold):
    summary = feature_summary(reference_dataset, threshold, min_n=2)
    assert len(summary)
    for row in summary.itertuples():
        low, high, p = _welch_reference(reference_frame, row.feature, threshold)
        assert row.ci_low == pytest.approx(low, rel=1e-9, abs=1e-15)
        assert row.ci_high == pytest.approx(high, rel=1e-9, abs=1e-15)
        assert row.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert row.ci_low < row.impact < row.ci_high


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_q_values_match_scipy_bh(reference_dataset, threshold):
    summary = feature_summary(reference_dataset, threshold)
    tested = summary["p_value"].notna()
    expected = sps.false_discovery_control(summary.loc[tested, "p_value"].to_numpy(), method="bh")
    np.testing.assert_allclose(summary.loc[tested, "q_value"].to_numpy(), expected, rtol=1e-12)
    assert summary.loc[~tested, "q_value"].isna().all()


def test_feature_summary_reference_text_is_significant(reference_dataset):
    """On the original data, text-bearing images have a clearly lower CTR at threshold 0.5."""
    summary = feature_summary(reference_dataset, 0.5).set_index("feature")
    assert summary.loc["text", "impact"] < 0
    assert summary.loc["text", "ci_high"] < 0
    assert summary.loc["text", "significant"]
    assert not summary.loc["headwear", "significant"]


def test_feature_summary_min_n_withholds_statistics_but_keeps_averages(reference_frame, reference_dataset):
    summary = feature_summary(reference_dataset, 0.5, min_n=5).set_index("feature")
    # black_x is above 0.5 in only 2 images: averages stay, statistics go.
    row = summary.loc["black_x"]
    mask = reference_frame["black_x"] > 0.5
    assert row["n_with"] == 2
    assert row["avg_ctr_with"] == reference_frame.loc[mask, "ctr"].mean()
    assert row["low_n"]
    assert (
        np.isnan(row["ci_low"]) and np.isnan(row["ci_high"]) and np.isnan(row["p_value"]) and np.isnan(row["q_value"])
    )
    assert not row["significant"]
    loose = feature_summary(reference_dataset, 0.5, min_n=2).set_index("feature")
    assert not loose.loc["black_x", "low_n"] and not np.isnan(loose.loc["black_x", "p_value"])


def test_feature_summary_q_values_count_only_tested_features(reference_dataset):
    strict = feature_summary(reference_dataset, 0.5, min_n=5)
    tested = strict["p_value"].notna()
    assert (~tested).any()
    expected = sps.false_discovery_control(strict.loc[tested, "p_value"].to_numpy())
    np.testing.assert_allclose(strict.loc[tested, "q_value"], expected, rtol=1e-12)


def _planted(seed=42, n_images=600, n_null=60, effects=(0.004, -0.003, 0.0025)):
    rng = random.Random(seed)
    names = [f"img_{i}" for i in range(n_images)]
    features = [f"planted_{k}" for k in range(len(effects))] + [f"null_{k}" for k in range(n_null)]
    conf = np.zeros((n_images, len(features)))
    ctr, clicks, impressions = [], [], []
    for i in range(n_images):
        rate = 0.01
        for j in range(len(features)):
            if rng.random() < 0.3:
                conf[i, j] = rng.uniform(0.5, 0.99)
                if j < len(effects):
                    rate += effects[j]
        rate = max(rate + rng.gauss(0, 0.002), 0.0005)
        shown = rng.randint(20_000, 80_000)
        clicked = int(round(rate * shown + rng.gauss(0, (rate * shown) ** 0.5)))
        clicked = min(max(clicked, 0), shown)
        impressions.append(shown)
        clicks.append(clicked)
        ctr.append(clicked / shown)
    frame = pd.DataFrame({"image": names, "ctr": ctr, "clicks": clicks, "impressions": impressions})
    return Dataset.from_matrix(names, features, conf, frame), len(effects)


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_finds_planted_effects(weighting):
    dataset, n_planted = _planted()
    summary = feature_summary(dataset, 0.0, weighting=weighting).set_index("feature")
    planted = [f"planted_{k}" for k in range(n_planted)]
    assert summary.loc[planted, "significant"].all()
    assert summary.loc["planted_1", "impact"] < 0 < summary.loc["planted_0", "impact"]
    nulls = summary.drop(index=planted)
    # Under the null about 5 % are below p 0.05 by chance; BH should let (almost) none through.
    assert nulls["significant"].sum() <= 1
    assert (nulls["p_value"] < 0.05).mean() < 0.15


def test_feature_summary_impressions_weighting_is_total_clicks_over_impressions():
    dataset, _ = _planted(n_null=5)
    summary = feature_summary(dataset, 0.0, weighting="impressions", min_n=2)
    for row in summary.itertuples():
        mask = dataset.confidences[:, list(dataset.features).index(row.feature)] > 0
        assert row.avg_ctr_with == pytest.approx(
            dataset.clicks[mask].sum() / dataset.impressions[mask].sum(), rel=1e-12
        )
        assert row.avg_ctr_without == pytest.approx(
            dataset.clicks[~mask].sum() / dataset.impressions[~mask].sum(), rel=1e-12
        )


def test_ratio_variance_matches_residual_definition_and_bootstrap():
    rng = np.random.default_rng(42)
    impressions = rng.integers(1_000, 50_000, 300).astype(float)
    clicks = rng.binomial(impressions.astype(int), rng.uniform(0.005, 0.02, 300)).astype(float)
    var = stats.ratio_variance(
        len(clicks),
        clicks.sum(),
        impressions.sum(),
        (clicks**2).sum(),
        (clicks * impressions).sum(),
        (impressions**2).sum(),
    )
    ratio = clicks.sum() / impressions.sum()
    residual = (clicks - ratio * impressions) / impressions.sum()
    assert var == pytest.approx((residual**2).sum() * 300 / 299, rel=1e-9)
    draws = rng.integers(0, 300, (4000, 300))
    boot = clicks[draws].sum(axis=1) / impressions[draws].sum(axis=1)
    assert np.sqrt(var) == pytest.approx(boot.std(ddof=1), rel=0.1)


def test_feature_summary_impressions_without_counts_raises(reference_dataset):
    with pytest.raises(WeightingUnavailable, match="clicks and impressions"):
        feature_summary(reference_dataset, 0.5, weighting="impressions")


def test_feature_summary_unknown_weighting_raises(reference_dataset):
    with pytest.raises(ValueError, match="weighting"):
        feature_summary(reference_dataset, 0.5, weighting="median")


def test_welch_undefined_for_tiny_or_flat_groups():
    low, high, p = stats.welch(
        [0.1, 0.1, 0.1], [0.01, 0.0, 0.01], [1, 5, 5], [0.2, 0.2, 0.2], [0.01, 0.0, 0.0], [5, 5, 5]
    )
    assert np.isnan([low[0], high[0], p[0]]).all()  # one image on a side
    assert np.isnan([low[1], high[1], p[1]]).all()  # no spread on either side
    assert not np.isnan([low[2], high[2], p[2]]).any()  # spread on one side is enough


def test_benjamini_hochberg_keeps_nan_and_is_monotone():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.2, 0.001])
    q = stats.benjamini_hochberg(p)
    assert np.isnan(q[1])
    defined = ~np.isnan(p)
    np.testing.assert_allclose(q[defined], sps.false_discovery_control(p[defined]), rtol=1e-12)
    order = np.argsort(p[defined])
    assert np.all(np.diff(q[defined][order]) >= 0)
