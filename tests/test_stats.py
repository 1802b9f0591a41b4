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


def _welch(x, y, axis=-1):
    return sps.ttest_ind(x, y, equal_var=False, axis=axis).statistic


def test_permutation_p_matches_scipy_exact_enumeration_mean():
    """With C(n, k) <= B splits, every split is enumerated: p is scipy's exact equal-tailed one (2 x the smaller tail)."""
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
            _welch,
            permutation_type="independent",
            alternative="two-sided",
            n_resamples=np.inf,
        )
        assert p[0] == pytest.approx(reference.pvalue, rel=1e-9)


def test_permutation_p_matches_scipy_exact_enumeration_impressions():
    """The same for the ratio's delta-method z, permuting whole images (clicks with their impressions)."""
    rng = np.random.default_rng(8)
    impressions = rng.integers(200, 6000, 13).astype(float)
    clicks = rng.binomial(impressions.astype(int), rng.uniform(0.004, 0.02, 13)).astype(float)
    columns = stats.ratio_columns(clicks, impressions)

    def z(x, y):
        sums = columns[np.asarray(x, dtype=int)].sum(axis=0)
        diff, se = stats.ratio_difference(len(x), sums, columns.sum(axis=0), len(columns))
        return diff / se

    for members in ([0, 3, 5, 9], [1, 2, 4, 6, 8, 10]):
        mask = np.zeros(13, dtype=bool)
        mask[members] = True
        test = permutation.StudentizedTest("impressions", np.column_stack([clicks, impressions]), n_tests=1)
        sums = test.group_sums(mask[:, None])
        impact = clicks[mask].sum() / impressions[mask].sum() - clicks[~mask].sum() / impressions[~mask].sum()
        _, _, p = test.run([mask.sum()], sums, [impact])
        reference = sps.permutation_test(
            (np.flatnonzero(mask), np.flatnonzero(~mask)),
            z,
            permutation_type="independent",
            alternative="two-sided",
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
    for quantile in (0.001, 0.005, 0.025, 0.15, 0.85, 0.975, 0.995, 0.999):
        observed = np.quantile(exact, 1 - quantile)
        p = permutation.p_values(test.table(), n, np.array([k]), np.array([observed]))
        expected = 2 * min((exact >= observed * (1 - 1e-9)).mean(), (exact <= observed).mean())
        tolerance = 4 * np.sqrt(expected * (1 - expected) / 1_000) if expected > 0.1 else 4 * np.sqrt(expected / 5_000)
        assert abs(p[0] - expected) <= tolerance + 2e-4


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


def test_ratio_standard_error_matches_residual_definition_and_bootstrap():
    """The delta-method se of the difference of two ratios: per-image residuals with k / (k - 1), at least the
    no-effect variance, and about the bootstrap's."""
    rng = np.random.default_rng(42)
    impressions = rng.integers(1_000, 50_000, 600).astype(float)
    clicks = rng.binomial(impressions.astype(int), rng.uniform(0.005, 0.02, 600)).astype(float)
    columns = stats.ratio_columns(clicks, impressions)
    group = np.arange(600) < 300
    _, se = stats.ratio_difference(300, columns[group].sum(axis=0), columns.sum(axis=0), 600)

    no_effect = stats.beta_binomial_variance(clicks, impressions)

    def variance(side):
        c, m = clicks[side], impressions[side]
        residual = (c - c.sum() / m.sum() * m) / m.sum()
        return max((residual**2).sum() * len(c) / (len(c) - 1), no_effect[side].sum() / m.sum() ** 2)

    expected = variance(group) + variance(~group)
    assert se**2 == pytest.approx(expected, rel=1e-9)
    draws = rng.integers(0, 300, (4000, 300))
    ratio = [clicks[side][draws].sum(axis=1) / impressions[side][draws].sum(axis=1) for side in (group, ~group)]
    assert se == pytest.approx((ratio[0] - ratio[1]).std(ddof=1), rel=0.1)


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


def test_benjamini_hochberg_is_scipys_and_keeps_nan():
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


def test_feature_summary_two_zero_ctrs_against_38_never_below_two_in_c_40_2():
    """No one-sided tail valid under exchangeable images goes below 1 / C(40, 2), so no equal-tailed p
    below 2 / C(40, 2) = 0.0026 (Welch said 5e-21)."""
    rng = np.random.default_rng(5)
    ctr = np.concatenate([[0.0, 0.0], rng.lognormal(np.log(0.01), 0.3, 38)])
    present = np.arange(40) < 2
    row = feature_summary(_one_feature(ctr, present), confidence=0.5, min_n=2).iloc[0]
    assert row["p_value"] >= 2 / math.comb(40, 2)
    assert row["p_value"] == pytest.approx(2 / math.comb(40, 2), rel=1e-9)  # the lowest of 780 splits
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
    assert row["p_value"] == pytest.approx(2 * chance, abs=8 * math.sqrt(chance / 10_000) + 4e-4)
    assert row["ci_low"] < 0 <= row["ci_high"]  # the tied splits sit on its edge: exactly 0, not a rounding off


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


def test_a_size_between_tabulated_sizes_keeps_the_larger_p_of_its_two_neighbours():
    """Its p is the larger of the tabulated sizes' below and above it, its interval the wider."""
    rng = np.random.default_rng(12)
    ctr = rng.lognormal(0.0, 1.0, 1_000)
    test = permutation.StudentizedTest("mean", ctr[:, None], n_tests=1)
    table = test.table()
    sizes = table.sizes.tolist()
    gap = next(i for i in range(len(sizes) - 1) if sizes[i + 1] - sizes[i] > 1)
    lower, inside, upper = sizes[gap], sizes[gap] + 1, sizes[gap + 1]
    observed = np.array([-3.5, -2.0, 2.0, 3.0])
    p_inside = permutation.p_values(table, 1_000, np.full(4, inside), observed)
    p_lower = permutation.p_values(table, 1_000, np.full(4, lower), observed)
    p_upper = permutation.p_values(table, 1_000, np.full(4, upper), observed)
    np.testing.assert_array_equal(p_inside, np.maximum(p_lower, p_upper))
    low_inside, high_inside = permutation.critical_values(table, np.array([inside]), 0.05)
    low_lower, high_lower = permutation.critical_values(table, np.array([lower]), 0.05)
    low_upper, high_upper = permutation.critical_values(table, np.array([upper]), 0.05)
    assert low_inside[0] == min(low_lower[0], low_upper[0]) and high_inside[0] == max(high_lower[0], high_upper[0])
    # Neighbouring tabulated sizes have nearly the same null: the conservative choice costs little.
    assert abs(table.upper[gap + 1][-250] / table.upper[gap][-250] - 1) < 0.03


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


def test_feature_summary_zero_ctr_groups_between_grid_sizes_are_not_liberal():
    """654 zero-CTR images and 5 clicked ones: a group of 101, 125 or 151 zero-CTR images misses all 5
    clicked images by chance 43 %, so its p is large (the size below's null put it at 1e-4)."""
    rng = np.random.default_rng(20)
    n = 659
    ctr = np.zeros(n)
    ctr[:5] = rng.uniform(0.01, 0.05, 5)
    sizes = (99, 100, 101, 125, 151, 175)
    present = np.zeros((n, len(sizes)))
    for j, size in enumerate(sizes):
        present[5 : 5 + size, j] = 1.0
    names = [f"img_{i}" for i in range(n)]
    dataset = Dataset.from_matrix(names, [f"zeros_{s}" for s in sizes], present, pd.Series(ctr, index=names))
    summary = feature_summary(dataset, confidence=0.5).set_index("feature")
    for size in sizes:
        row = summary.loc[f"zeros_{size}"]
        chance = math.comb(n - size, 5) / math.comb(n, 5)  # no clicked image in the group
        assert 0.2 < chance < 0.6, size
        # The group's lower tail is that chance (all zeros is the lowest any group can be): p = 2 x it.
        assert row["p_value"] == pytest.approx(min(1.0, 2 * chance), abs=0.1), size  # counted over 1,000 resamples
        # The observed split is the null's most extreme atom: the interval reaches exactly 0, not 1e-18 short.
        assert row["ci_low"] <= 0 <= row["ci_high"], size
        assert not row["significant"]


@pytest.mark.parametrize("m", [500, 1_000, 2_500])
def test_feature_summary_flags_a_lone_strong_feature_among_many(m):
    """B + 1 = 20 m: a feature beyond every resample had p = 1 / (B + 1) and so q = 0.05, never below; the
    fitted tail beyond the resamples gives it the small p it has, so it is flagged at any m."""
    rng = np.random.default_rng(m)
    n = 659
    strong = rng.random(n) < 0.2
    ctr = 0.01 * np.exp(rng.normal(0.0, 0.3, n)) * np.where(strong, 2.0, 1.0)
    present = np.column_stack([strong, rng.random((n, m - 1)) < rng.uniform(0.05, 0.3, m - 1)]).astype(float)
    names = [f"img_{i}" for i in range(n)]
    features = ["strong"] + [f"null_{j}" for j in range(m - 1)]
    summary = feature_summary(
        Dataset.from_matrix(names, features, present, pd.Series(ctr, index=names)), confidence=0.5
    )
    row = summary.set_index("feature").loc["strong"]
    resamples = permutation.resamples_for(m)
    assert resamples + 1 == 20 * m or resamples == permutation.MAX_RESAMPLES
    assert row["p_value"] < 1 / (resamples + 1)
    assert row["q_value"] < 0.05 and row["significant"]
    assert row["ci_low"] > 0


def test_fitted_tail_beyond_the_resamples_follows_exact_enumeration():
    """n = 30, k = 8: 5.9 million splits enumerated against 9,999 resamples: beyond the largest resample the
    fitted tail's p stays within a factor 0.5 to 30 of the exact one (never far on the liberal side)."""
    rng = np.random.default_rng(9)
    ctr = rng.lognormal(np.log(0.01), 0.3, 30)
    exact = permutation._enumerate(stats.mean_columns(ctr), stats.mean_difference, 30, 8)
    table = permutation.StudentizedTest("mean", ctr[:, None], n_tests=1).table()
    row = table.rows(np.array([8]))[0]
    checked = 0
    for quantile in (2e-5, 5e-6, 1e-6, 1e-6):
        for x in (np.quantile(exact, 1 - quantile), np.quantile(exact, quantile)):
            true = 2 * min((exact >= x * (1 - 1e-9)).mean(), (exact <= x * (1 + 1e-9)).mean())
            p = permutation.p_values(table, 30, np.array([8]), np.array([x]))[0]
            beyond = x > table.upper[row, -1] or -x > table.lower[row, -1]
            checked += beyond
            assert 0.5 * true <= p <= 30 * true, (x, true, p)
    assert checked >= 4


def test_verdict_fields_read_q_sign_low_n_and_baseline():
    """helps / hurts need q < 0.05 and a sign; low_n wins; lift is null without a positive baseline."""
    fields = stats.verdict_fields(
        impact=[0.002, -0.001, 0.003, 0.001, -0.002, 0.0],
        q_value=[0.01, 0.049, 0.05, np.nan, 0.2, 0.001],
        low_n=[False, False, False, True, False, False],
        avg_ctr_without=[0.01, 0.02, 0.0, np.nan, 0.01, 0.01],
    )
    assert list(fields["verdict"]) == ["helps", "hurts", "unclear", "too few images", "unclear", "unclear"]
    np.testing.assert_allclose(fields["lift_pct"], [20.0, -5.0, np.nan, np.nan, -20.0, 0.0])
    assert fields["fcr_level"] == pytest.approx(1 - 3 * 0.05 / 5)  # R = 3 of m = 5 tested
    assert stats.fcr_level([0.2, 0.3, np.nan]) == pytest.approx(1 - 0.05 / 2)  # R = 0: 1 - 0.05 / m
    assert np.isnan(stats.fcr_level([np.nan]))


def _demo_dataset():
    from data.demo import demo_build

    batch, ctr = demo_build()
    rows, cols, values = zip(*batch.values)
    dense = np.zeros((len(batch.images), len(batch.features)))
    dense[list(rows), list(cols)] = values
    return Dataset.from_matrix(batch.images, batch.features, dense, ctr)


def _check_fcr_interval(summary):
    tested = summary[summary["p_value"].notna()]
    assert len(tested) and summary.loc[summary["p_value"].isna(), "ci_low_fcr"].isna().all()
    significant = tested["q_value"] < 0.05
    excludes = (tested["ci_low_fcr"] > 0) | (tested["ci_high_fcr"] < 0)
    assert (excludes == significant).all()
    assert (tested["ci_low_fcr"] <= tested["ci_low"]).all() and (tested["ci_high"] <= tested["ci_high_fcr"]).all()
    verdict = np.where(significant, np.where(tested["impact"] > 0, "helps", "hurts"), "unclear")
    assert list(tested["verdict"]) == list(verdict)
    assert (summary.loc[summary["low_n"], "verdict"] == "too few images").all()
    np.testing.assert_allclose(tested["lift_pct"], 100 * tested["impact"] / tested["avg_ctr_without"], rtol=1e-12)
    return significant.sum()


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_feature_summary_fcr_interval_agrees_with_q_on_reference(reference_dataset, threshold):
    """The false coverage rate interval excludes 0 exactly when q < 0.05, and holds the per-test interval."""
    _check_fcr_interval(feature_summary(reference_dataset, confidence=threshold))


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_fcr_interval_agrees_with_q_on_demo(weighting):
    """The same on the demo build, where some features are significant and most are not."""
    summary = feature_summary(_demo_dataset(), confidence=0.5, weighting=weighting)
    assert _check_fcr_interval(summary) >= 3
    helps = set(summary.loc[summary["verdict"] == "helps", "feature"])
    hurts = set(summary.loc[summary["verdict"] == "hurts", "feature"])
    assert "smile" in helps and {"text", "poster"} <= hurts


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_low_exposure_zero_clicks_are_not_a_discovery(weighting):
    """5 images with 0 clicks in 50 impressions each against 35 at ~1 % of 5,000: 0 clicks in 250
    impressions at 1 % happens 8 % of the time, so no p below 0.01. With impression weighting the
    residuals alone gave 1e-4; under the mean the shuffle alone gave 2e-4 (its random groups of
    well-exposed images are no null for five barely exposed ones)."""
    rng = np.random.default_rng(0)
    impressions = np.r_[np.full(5, 50.0), np.full(35, 5_000.0)]
    clicks = np.r_[np.zeros(5), rng.binomial(5_000, 0.01, 35)].astype(float)
    dataset = _one_feature(clicks / impressions, np.arange(40) < 5, clicks, impressions)
    row = feature_summary(dataset, confidence=0.5, weighting=weighting).iloc[0]
    assert 0.99**250 == pytest.approx(0.081, abs=0.001)
    assert row["p_value"] >= 0.01
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["ci_low_fcr"] < 0 < row["ci_high_fcr"]
    if weighting == "mean":  # the plain means of per-image CTRs, whatever the test
        assert row["avg_ctr_with"] == 0.0
        assert row["avg_ctr_without"] == pytest.approx((clicks[5:] / 5_000).mean(), rel=1e-12)


def test_mean_floor_reference_applies_only_where_a_floor_binds_on_atypical_exposure():
    """The exposure reference applies to the five barely exposed zero-click images (floored, at 2 %
    of the build's typical precision), not to groups of a build whose images are equally exposed,
    nor without impressions."""
    rng = np.random.default_rng(0)
    impressions = np.r_[np.full(5, 50.0), np.full(35, 5_000.0)]
    clicks = np.r_[np.zeros(5), rng.binomial(5_000, 0.01, 35)].astype(float)
    ctr = clicks / impressions
    groups = np.column_stack([np.arange(40) < 5, np.isin(np.arange(40), [10, 14, 20, 27, 33])]).astype(float)

    def floor_df(ctr, impressions):
        columns = stats.mean_columns(ctr, impressions)
        return stats.mean_floor_df(groups.sum(axis=0), columns.T @ groups, columns.sum(axis=0)[:, None], 40)

    # The zero-click images' floored variance counts as known and dominates: the reference is
    # about the normal (the rest's variance, from its spread, spends its 34 degrees of freedom).
    assert floor_df(ctr, impressions)[0] > 1_000
    equal = np.full(40, 5_000.0)
    assert np.isnan(floor_df(np.rint(ctr * equal) / equal, equal)).all()
    assert np.isnan(floor_df(ctr, None)).all()
    test = permutation.StudentizedTest("mean", np.column_stack([ctr, impressions]), n_tests=1)
    k, group_sums = groups.sum(axis=0), test.group_sums(groups)
    diff, se = test.standard_error(k, group_sums)
    low, high, p = test.run(k, group_sums, diff)
    # The larger of the shuffle's p and the normal's, and an interval at least the normal's.
    assert p[0] >= 2 * sps.norm.sf(abs(diff[0] / se[0])) > 0.1
    assert low[0] <= diff[0] - 1.959 * se[0] and high[0] >= diff[0] + 1.959 * se[0]


def test_feature_summary_mean_test_and_intervals_agree_where_features_travel_with_exposure():
    """A build whose features favour low-exposure images, one of them raising CTR by half: under the
    mean many features take the exposure reference, and the intervals still exclude 0 exactly when p <=
    0.05 (per test) and q < 0.05 (false coverage rate)."""
    from tests import simulation

    rng = np.random.default_rng(11)
    rate = simulation.lognormal_ctr(rng, sigma=0.3)
    impressions = np.rint(np.exp(rng.uniform(np.log(50), np.log(50_000), simulation.N_IMAGES)))
    present = simulation.exposure_presence(rng, impressions, 60, tilt=1.0)
    rate = np.where(present[:, 0], 1.5 * rate, rate)
    clicks = rng.binomial(impressions.astype(np.int64), rate).astype(np.float64)
    dataset = simulation.dataset(present, clicks=clicks, impressions=impressions)
    summary = feature_summary(dataset, confidence=0.5, weighting="mean")
    tested = summary[summary["p_value"].notna()]
    excludes = (tested["ci_low"] > 0) | (tested["ci_high"] < 0)
    assert (excludes == (tested["p_value"] <= 0.05)).all()
    assert _check_fcr_interval(summary) >= 1
    assert summary.set_index("feature").loc["f0", "verdict"] == "helps"
    known = dataset.has_ctr
    test = permutation.StudentizedTest("mean", np.column_stack([dataset.ctr, impressions])[known], n_tests=60)
    k = present[known].sum(axis=0)
    df = stats.mean_floor_df(k, test.group_sums(present[known]), test.totals[:, None], test.n)
    assert np.count_nonzero(~np.isnan(df)) >= 20


def test_ratio_standard_error_is_at_least_the_no_effect_variance():
    """Each side's variance is at least the beta-binomial one (binomial noise plus the spread of rates
    between images, by moments over all images): equal to it for a group of zero-click images."""
    rng = np.random.default_rng(1)
    impressions = np.r_[np.full(5, 50.0), np.full(35, 5_000.0)]
    clicks = np.r_[np.zeros(5), rng.binomial(5_000, 0.01, 35)].astype(float)
    columns = stats.ratio_columns(clicks, impressions)
    rate = clicks.sum() / impressions.sum()
    variance = stats.beta_binomial_variance(clicks, impressions)
    spread = max(((clicks - rate * impressions) ** 2 - impressions * rate * (1 - rate)).sum(), 0.0)
    spread /= (impressions * (impressions - 1)).sum()
    np.testing.assert_allclose(variance, impressions * rate * (1 - rate) + impressions * (impressions - 1) * spread)
    group = np.arange(40) < 5
    _, se = stats.ratio_difference(5, columns[group].sum(axis=0), columns.sum(axis=0), 40)
    rest_clicks, rest_impressions = clicks[~group], impressions[~group]
    residual = (rest_clicks - rest_clicks.sum() / rest_impressions.sum() * rest_impressions) / rest_impressions.sum()
    rest = max((residual**2).sum() * 35 / 34, variance[~group].sum() / rest_impressions.sum() ** 2)
    # No residual spread among the zero-click images: their side's variance is the no-effect one.
    assert se**2 == pytest.approx(variance[group].sum() / 250**2 + rest, rel=1e-9)
