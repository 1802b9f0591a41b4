"""Impact uncertainty: Welch intervals, delta-method ratios, minimum group size and BH q-values."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from data import permutation, stats
from data.analysis import Dataset, WeightingUnavailable, feature_summary

THRESHOLDS = [0.0, 0.1, 0.5]


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_studentized_statistic_is_scipy_welch_t_on_reference(reference_frame, reference_dataset, threshold):
    """The mean weighting's statistic is Welch's t, exactly as scipy computes it."""
    known = reference_dataset.has_ctr
    test = permutation.StudentizedTest("mean", reference_dataset.ctr[known][:, None], n_tests=7)
    present = reference_dataset.confidences[known] > threshold
    k = present.sum(axis=0)
    diff, se = test.standard_error(k, test.group_sums(present))
    checked = 0
    for j, feature in enumerate(reference_dataset.features):
        mask = reference_frame[feature] > threshold
        if 2 <= mask.sum() <= len(mask) - 2:
            expected = sps.ttest_ind(
                reference_frame.loc[mask, "ctr"], reference_frame.loc[~mask, "ctr"], equal_var=False
            )
            assert diff[j] / se[j] == pytest.approx(expected.statistic, rel=1e-9)
            checked += 1
    assert checked >= 5


def _abs_welch(x, y, axis=-1):
    return np.abs(sps.ttest_ind(x, y, equal_var=False, axis=axis).statistic)


def test_permutation_p_matches_scipy_exact_enumeration_mean():
    """With C(n, k) <= B splits, every split is enumerated: the p-value is scipy's exact one."""
    rng = np.random.default_rng(7)
    ctr = rng.lognormal(np.log(0.01), 0.8, 14)
    for members in ([0, 3, 5, 9], [1, 2, 4, 6, 8, 10, 12, 13], [2, 11]):
        present = np.zeros((14, 1), dtype=bool)
        present[members] = True
        test = permutation.StudentizedTest("mean", ctr[:, None], n_tests=1)
        impact = ctr[present[:, 0]].mean() - ctr[~present[:, 0]].mean()
        _, _, p = test.run(present.sum(axis=0), test.group_sums(present), [impact])
        reference = sps.permutation_test(
            (ctr[present[:, 0]], ctr[~present[:, 0]]),
            _abs_welch,
            permutation_type="independent",
            alternative="greater",
            n_resamples=np.inf,
        )
        assert p[0] == pytest.approx(reference.pvalue, rel=1e-9)


def test_permutation_p_matches_scipy_exact_enumeration_impressions():
    """The same for the ratio's delta-method z, permuting whole images (clicks with their impressions)."""
    rng = np.random.default_rng(8)
    impressions = rng.integers(200, 6000, 13).astype(float)
    clicks = rng.binomial(impressions.astype(int), rng.uniform(0.004, 0.02, 13)).astype(float)
    columns = stats.ratio_columns(clicks, impressions)

    def abs_z(x, y):
        sums = columns[np.asarray(x, dtype=int)].sum(axis=0)
        diff, se = stats.ratio_difference(len(x), sums, columns.sum(axis=0), len(columns))
        return np.abs(diff / se)

    for members in ([0, 3, 5, 9], [1, 2, 4, 6, 8, 10]):
        mask = np.zeros(13, dtype=bool)
        mask[members] = True
        test = permutation.StudentizedTest("impressions", np.column_stack([clicks, impressions]), n_tests=1)
        sums = test.group_sums(mask[:, None])
        impact = clicks[mask].sum() / impressions[mask].sum() - clicks[~mask].sum() / impressions[~mask].sum()
        _, _, p = test.run([mask.sum()], sums, [impact])
        reference = sps.permutation_test(
            (np.flatnonzero(mask), np.flatnonzero(~mask)),
            abs_z,
            permutation_type="independent",
            alternative="greater",
            n_resamples=np.inf,
            vectorized=False,
        )
        assert p[0] == pytest.approx(reference.pvalue, rel=1e-9)


def test_permutation_p_monte_carlo_agrees_with_exact_enumeration():
    """Beyond B splits, B random permutations estimate the exact p within their sampling error."""
    rng = np.random.default_rng(9)
    ctr = rng.lognormal(np.log(0.01), 1.0, 22)
    columns = stats.mean_columns(ctr)
    n, k = 22, 6  # C(22, 6) = 74,613 splits > 9,999 permutations
    exact = permutation._enumerate(columns, stats.mean_difference, n, k)
    test = permutation.StudentizedTest("mean", ctr[:, None], n_tests=1)
    for quantile in (0.002, 0.01, 0.05, 0.3):
        observed = np.quantile(exact, 1 - quantile)
        p, _ = permutation.lookup(test.table(), np.array([k]), np.array([observed]), 0.05)
        expected = (exact >= observed * (1 - 1e-9)).mean()
        tolerance = 4 * np.sqrt(expected * (1 - expected) / 1_000) if expected > 0.1 else 4 * np.sqrt(expected / 10_000)
        assert abs(p[0] - expected) <= tolerance + 1e-4


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_interval_excludes_zero_exactly_when_p_at_most_005(weighting):
    """Test and interval come from the same statistic and null, so they never disagree."""
    dataset, _ = _planted(n_null=60)
    summary = feature_summary(dataset, confidence=0.0, weighting=weighting, min_n=2)
    tested = summary["p_value"].notna()
    assert tested.sum() > 50
    excludes = (summary["ci_low"] > 0) | (summary["ci_high"] < 0)
    assert (excludes[tested] == (summary.loc[tested, "p_value"] <= 0.05)).all()
    assert ((summary["ci_low"] <= summary["impact"]) & (summary["impact"] <= summary["ci_high"]))[tested].all()


def test_feature_summary_same_numbers_for_same_data_in_any_image_order(reference_frame):
    """Seeded from the data, not the clock: the same data give the same p-values, whatever the row order."""
    first = feature_summary(Dataset.from_wide(reference_frame), confidence=0.5)
    again = feature_summary(Dataset.from_wide(reference_frame), confidence=0.5)  # drawn afresh: no cache
    shuffled = feature_summary(Dataset.from_wide(reference_frame.sample(frac=1.0, random_state=3)), confidence=0.5)
    pd.testing.assert_frame_equal(first, again)
    for column in ("p_value", "q_value", "ci_low", "ci_high"):
        np.testing.assert_allclose(shuffled[column], first[column], rtol=1e-9)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_q_values_match_scipy_bh(reference_dataset, threshold):
    summary = feature_summary(reference_dataset, confidence=threshold)
    tested = summary["p_value"].notna()
    expected = sps.false_discovery_control(summary.loc[tested, "p_value"].to_numpy(), method="bh")
    np.testing.assert_allclose(summary.loc[tested, "q_value"].to_numpy(), expected, rtol=1e-12)
    assert summary.loc[~tested, "q_value"].isna().all()


def test_feature_summary_reference_text_is_significant(reference_dataset):
    """On the original data, text-bearing images have a clearly lower CTR at threshold 0.5."""
    summary = feature_summary(reference_dataset, confidence=0.5).set_index("feature")
    assert summary.loc["text", "impact"] < 0
    assert summary.loc["text", "ci_high"] < 0
    assert summary.loc["text", "significant"]
    assert not summary.loc["headwear", "significant"]


def test_feature_summary_min_n_withholds_statistics_but_keeps_averages(reference_frame, reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.5, min_n=5).set_index("feature")
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
    loose = feature_summary(reference_dataset, confidence=0.5, min_n=2).set_index("feature")
    assert not loose.loc["black_x", "low_n"] and not np.isnan(loose.loc["black_x", "p_value"])


def test_feature_summary_q_values_count_only_tested_features(reference_dataset):
    strict = feature_summary(reference_dataset, confidence=0.5, min_n=5)
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
    summary = feature_summary(dataset, confidence=0.0, weighting=weighting).set_index("feature")
    planted = [f"planted_{k}" for k in range(n_planted)]
    assert summary.loc[planted, "significant"].all()
    assert summary.loc["planted_1", "impact"] < 0 < summary.loc["planted_0", "impact"]
    nulls = summary.drop(index=planted)
    # Under the null about 5 % are below p 0.05 by chance; BH should let (almost) none through.
    assert nulls["significant"].sum() <= 1
    assert (nulls["p_value"] < 0.05).mean() < 0.15


def test_feature_summary_impressions_weighting_is_total_clicks_over_impressions():
    dataset, _ = _planted(n_null=5)
    summary = feature_summary(dataset, confidence=0.0, weighting="impressions", min_n=2)
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
        feature_summary(reference_dataset, confidence=0.5, weighting="impressions")


def test_feature_summary_unknown_weighting_raises(reference_dataset):
    with pytest.raises(ValueError, match="weighting"):
        feature_summary(reference_dataset, confidence=0.5, weighting="median")


def test_mean_difference_undefined_for_tiny_or_flat_groups():
    """One image on a side, or no spread on either side: no statistic; spread on one side is enough."""
    ctr = np.array([0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.3])
    columns = stats.mean_columns(ctr)
    groups = np.array([[1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 1]], dtype=float).T
    ctr6, columns6 = ctr[:6], stats.mean_columns(ctr[:6])
    _, se = stats.mean_difference(groups.sum(axis=0), columns.T @ groups, columns.sum(axis=0)[:, None], 7)
    assert np.isnan(se[0])  # one image with the feature
    assert se[1] > 0 and se[2] > 0  # no spread with it, some without (and vice versa)
    flat = np.array([[1, 1, 1, 0, 0, 0]], dtype=float).T
    _, se = stats.mean_difference([3], columns6.T @ flat, columns6.sum(axis=0)[:, None], len(ctr6))
    assert np.isnan(se[0])  # constant on both sides


def test_benjamini_hochberg_keeps_nan_and_is_monotone():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.2, 0.001])
    q = stats.benjamini_hochberg(p)
    assert np.isnan(q[1])
    defined = ~np.isnan(p)
    np.testing.assert_allclose(q[defined], sps.false_discovery_control(p[defined]), rtol=1e-12)
    order = np.argsort(p[defined])
    assert np.all(np.diff(q[defined][order]) >= 0)


def _one_feature(ctr, present, clicks=None, impressions=None):
    names = [f"img_{i}" for i in range(len(ctr))]
    frame = pd.DataFrame({"image": names, "ctr": ctr})
    if clicks is not None:
        frame["clicks"], frame["impressions"] = clicks, impressions
    conf = np.asarray(present, dtype=float)[:, None]
    return Dataset.from_matrix(names, ["f"], conf, frame)


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_constant_groups_have_no_statistic(weighting):
    """Two groups of constant CTRs: rounding leaves a variance of ~1e-21, which must not become p = 1e-286."""
    n = 40
    present = np.arange(n) < 20
    ctr = np.where(present, 0.0123, 0.0456)
    impressions = np.full(n, 1000.0)
    dataset = _one_feature(ctr, present, np.round(ctr * 1000), impressions)
    row = feature_summary(dataset, confidence=0.5, weighting=weighting).iloc[0]
    assert row["n_with"] == 20 and row["impact"] != 0
    assert np.isnan(row["p_value"]) and np.isnan(row["ci_low"]) and np.isnan(row["q_value"])
    assert not row["significant"]


def test_feature_summary_two_zero_ctrs_against_38_never_below_one_in_c_40_2():
    """No test valid under exchangeable images can go below 1 / C(40, 2) = 0.0013 (Welch said 5e-21)."""
    rng = np.random.default_rng(5)
    ctr = np.concatenate([[0.0, 0.0], rng.lognormal(np.log(0.01), 0.3, 38)])
    present = np.arange(40) < 2
    row = feature_summary(_one_feature(ctr, present), confidence=0.5, min_n=2).iloc[0]
    assert row["p_value"] >= 1 / math.comb(40, 2)
    assert row["p_value"] == pytest.approx(1 / math.comb(40, 2), rel=1e-9)  # the most extreme of 780 splits
    assert row["ci_low"] < row["impact"] < row["ci_high"] < 0


def test_feature_summary_five_zero_click_images_are_not_a_discovery():
    """0 clicks in 5 x 50 impressions, others at 1 %: chance ~8 % (Fisher p 0.19); the delta method said p = 0."""
    rng = np.random.default_rng(11)
    n = 120
    impressions = np.full(n, 50.0)
    clicks = np.concatenate([np.zeros(5), rng.binomial(50, 0.01, n - 5)]).astype(float)
    present = np.arange(n) < 5
    dataset = _one_feature(clicks / impressions, present, clicks, impressions)
    row = feature_summary(dataset, confidence=0.5, weighting="impressions").iloc[0]
    fisher = sps.fisher_exact(
        [[0, 250], [clicks[5:].sum(), impressions[5:].sum() - clicks[5:].sum()]], alternative="two-sided"
    ).pvalue
    assert 0.1 < fisher < 0.5
    # Any 5 of the images without clicks give the same split statistic: p is the chance of that.
    zero = int((clicks == 0).sum())
    chance = math.comb(zero, 5) / math.comb(n, 5)
    assert row["p_value"] > 0.02
    assert row["p_value"] == pytest.approx(chance, abs=4 * math.sqrt(chance / 10_000) + 2e-4)
    assert row["ci_low"] < 0 <= row["ci_high"] + 1e-15  # the tied splits sit on its edge


def test_group_sizes_are_every_size_up_to_dense_then_at_most_two_percent_apart():
    """Every group size a feature can have (folded, 2 .. n / 2) maps to a tabulated size at most 2 % below
    it, up to MAX_SIZE; larger groups use the MAX_SIZE null."""
    for n in (5, 40, 201, 659, 10_000, 25_001):
        sizes = permutation.group_sizes(n)
        top = min(n // 2, permutation.MAX_SIZE)
        assert sizes[0] == 2 and sizes[-1] == top and (np.diff(sizes) > 0).all()
        k = np.arange(2, n // 2 + 1)
        below = sizes[np.searchsorted(sizes, k, side="right") - 1]
        assert (below <= k).all()
        assert (below[k <= permutation.DENSE_SIZES] == k[k <= permutation.DENSE_SIZES]).all()
        assert (k / below <= permutation.GRID_STEP + 1e-12)[k <= top].all()
        assert (below[k > top] == top).all()


def test_a_size_between_tabulated_sizes_is_tested_against_the_size_below():
    """Its p is the tabulated neighbour's (at most slightly larger than its own null would give)."""
    rng = np.random.default_rng(12)
    ctr = rng.lognormal(0.0, 1.0, 1_000)
    test = permutation.StudentizedTest("mean", ctr[:, None], n_tests=1)
    table = test.table()
    sizes = table.sizes.tolist()
    gap = next(i for i in range(len(sizes) - 1) if sizes[i + 1] - sizes[i] > 1)
    lower, inside = sizes[gap], sizes[gap] + 1
    observed = np.array([2.0, 3.0, 3.5])
    p_inside, crit_inside = permutation.lookup(table, np.full(3, inside), observed, 0.05)
    p_lower, crit_lower = permutation.lookup(table, np.full(3, lower), observed, 0.05)
    np.testing.assert_array_equal(p_inside, p_lower)
    np.testing.assert_array_equal(crit_inside, crit_lower)
    # Neighbouring tabulated sizes have nearly the same null: the approximation costs little.
    upper = table.rows(np.array([sizes[gap + 1]]))[0]
    assert abs(table.tail[upper][-500] / table.tail[gap][-500] - 1) < 0.03


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_test_and_interval_agree_on_demo_default_view(weighting):
    """On the demo build at the page's default view, 0 is outside the interval exactly when p <= 0.05."""
    from data.demo import demo_build

    batch, ctr = demo_build()
    rows, cols, values = zip(*batch.values)
    dense = np.zeros((len(batch.images), len(batch.features)))
    dense[list(rows), list(cols)] = values
    dataset = Dataset.from_matrix(batch.images, batch.features, dense, ctr)
    summary = feature_summary(dataset, confidence=0.5, weighting=weighting)
    tested = summary[summary["p_value"].notna()]
    excludes = (tested["ci_low"] > 0) | (tested["ci_high"] < 0)
    assert len(tested) > 200 and excludes.any()
    assert (excludes == (tested["p_value"] <= 0.05)).all()
    planted = tested.set_index("feature").loc[["text", "poster", "smile"]]
    assert planted["significant"].all()


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_test_and_interval_agree_on_reference(reference_dataset, threshold):
    """The same on the reference data: the interval and p never tell different stories."""
    summary = feature_summary(reference_dataset, confidence=threshold)
    tested = summary[summary["p_value"].notna()]
    assert len(tested)
    excludes = (tested["ci_low"] > 0) | (tested["ci_high"] < 0)
    assert (excludes == (tested["p_value"] <= 0.05)).all()
