"""Adjusted impact: statsmodels' HC3 OLS on the reference data, singular designs, null and planted simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from data.adjusted import (
    ADJUSTED_COLUMNS,
    PERMUTATION_GATE,
    PHI_THRESHOLD,
    adjusted_summary,
    cooccurring,
    fit_adjusted,
)
from data.adjusted_cost import QUICK_FIT_SECONDS, fit_seconds, known_fit
from data.analysis import Dataset, feature_summary
from data.analysis import presence as sparse_presence
from data.cache import AnalysisCache
from data.demo import demo_build
from tests import simulation

THRESHOLDS = [0.0, 0.1, 0.3, 0.5]


def presence(confidences, threshold: float) -> np.ndarray:
    """Dense boolean presence, for building designs by hand."""
    return sparse_presence(confidences, threshold).toarray()


def _expected_controls(dataset: Dataset, j: int, confidence: float, min_n: int = 5) -> set[int]:
    """The co-occurrence rule, computed independently with numpy's corrcoef."""
    present = presence(dataset.confidences[dataset.has_ctr], confidence)
    count = present.sum(axis=0)
    ok = (count >= min_n) & (len(present) - count >= min_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.corrcoef(present.T.astype(float))
    return {int(k) for k in np.flatnonzero(ok) if k != j and abs(phi[j, k]) >= PHI_THRESHOLD}


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_fit_adjusted_matches_statsmodels_hc3_on_reference(reference_dataset, threshold):
    fit = fit_adjusted(reference_dataset, threshold)
    present = presence(reference_dataset.confidences, threshold).astype(float)
    fitted = np.flatnonzero(~np.isnan(fit.estimate))
    assert len(fitted) >= 5
    for j in fitted:
        assert set(fit.controls[j].tolist()) == _expected_controls(reference_dataset, j, threshold)
        x = np.column_stack([np.ones(len(present)), present[:, j], present[:, fit.controls[j]]])
        ref = sm.OLS(reference_dataset.ctr, x).fit(cov_type="HC3", use_t=True)
        low, high = ref.conf_int()[1]
        assert fit.estimate[j] == pytest.approx(ref.params[1], rel=1e-9)
        assert fit.se[j] == pytest.approx(ref.bse[1], rel=1e-9)
        assert fit.t_p_value[j] == pytest.approx(ref.pvalues[1], rel=1e-9)
        assert fit.t_ci_low[j] == pytest.approx(low, rel=1e-9)
        assert fit.t_ci_high[j] == pytest.approx(high, rel=1e-9)
        assert fit.df[j] == ref.df_resid


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_fit_adjusted_p_is_the_t_tests_above_the_gate_and_a_permutation_p_below(reference_dataset, threshold):
    fit = fit_adjusted(reference_dataset, threshold)
    tested = ~np.isnan(fit.p_value)
    above = tested & (fit.t_p_value >= PERMUTATION_GATE)
    np.testing.assert_array_equal(fit.p_value[above], fit.t_p_value[above])
    np.testing.assert_array_equal(fit.ci_low[above], fit.t_ci_low[above])
    below = tested & (fit.t_p_value < PERMUTATION_GATE)
    assert below.any()
    # An equal-tailed permutation p is 2 (1 + k) / (B + 1), never 0.
    assert (fit.p_value[below] >= 2 / 20_000).all()
    assert ((fit.ci_low[below] < fit.estimate[below]) & (fit.estimate[below] < fit.ci_high[below])).all()
    # The interval inverts the same test: it excludes 0 exactly when p <= 0.05.
    excludes = (fit.ci_low[tested] > 0) | (fit.ci_high[tested] < 0)
    np.testing.assert_array_equal(excludes, fit.p_value[tested] <= 0.05)


def test_adjusted_impact_separates_text_from_skyblue_on_reference(reference_dataset):
    """skyblue travels with text: its marginal effect mostly goes once text is a control."""
    summary = adjusted_summary(reference_dataset, confidence=0.0).set_index("feature")
    assert "text" in summary.loc["skyblue", "adjusted_controls"]
    assert summary.loc["skyblue", "p_value"] < 0.1  # equal-tailed: 0.09 (the lower tail of skewed CTRs is long)
    assert summary.loc["skyblue", "adjusted_p_value"] > 0.3
    assert abs(summary.loc["skyblue", "adjusted_impact"]) < abs(summary.loc["skyblue", "impact"]) / 2
    # text keeps its effect with skyblue held fixed (the permutation p: 0.0075, q 0.053 over 7 features).
    assert summary.loc["text", "adjusted_p_value"] < 0.01
    assert summary.loc["text", "adjusted_ci_high"] < 0


def test_adjusted_summary_q_is_bh_over_the_returned_rows(reference_dataset):
    every = adjusted_summary(reference_dataset, confidence=0.0).set_index("feature")
    some = adjusted_summary(reference_dataset, confidence=0.0, min_pct=20).set_index("feature")
    assert len(some) < len(every)
    # Same fits (controls may lie outside the filter), fewer tests: q is recomputed over the rows.
    np.testing.assert_array_equal(some["adjusted_p_value"], every.loc[some.index, "adjusted_p_value"])
    p = some["adjusted_p_value"].to_numpy()
    order = np.argsort(p)
    q = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    np.testing.assert_allclose(some["adjusted_q_value"].to_numpy()[order], np.minimum(q, 1), rtol=1e-12)
    assert list(some.columns[-len(ADJUSTED_COLUMNS) :]) == ADJUSTED_COLUMNS


def test_fit_adjusted_is_cached_per_dataset_and_threshold(reference_dataset, reference_frame):
    cache = AnalysisCache()
    first = fit_adjusted(reference_dataset, 0.5, cache=cache)
    assert fit_adjusted(reference_dataset, 0.5, cache=cache) is first
    assert fit_adjusted(reference_dataset, 0.3, cache=cache) is not first
    # A new dataset (a new build or CTR set in the store) is a new entry, with the same numbers.
    again = fit_adjusted(Dataset.from_wide(reference_frame), 0.5, cache=cache)
    assert again is not first
    np.testing.assert_array_equal(again.p_value, first.p_value)
    # Without a cache nothing is kept: each call fits afresh, to the same numbers.
    alone = fit_adjusted(reference_dataset, 0.5)
    assert alone is not first and alone is not fit_adjusted(reference_dataset, 0.5)
    np.testing.assert_array_equal(alone.p_value, first.p_value)


def test_fit_cache_is_bounded_in_bytes_least_recently_used_first(reference_dataset):
    sizes = {c: fit_adjusted(reference_dataset, c).nbytes for c in (0.2, 0.3, 0.4)}
    assert min(sizes.values()) > reference_dataset.confidences.shape[1] * 8 * 9  # counts the arrays
    cache = AnalysisCache()
    cache.adjusted_fits.resize(sizes[0.2] + sizes[0.3] + sizes[0.4] // 2)  # room for two fits, not three
    fits = cache.adjusted_fits
    first = fit_adjusted(reference_dataset, 0.2, cache=cache)
    second = fit_adjusted(reference_dataset, 0.3, cache=cache)
    assert fit_adjusted(reference_dataset, 0.2, cache=cache) is first  # now the most recently used
    assert fits.nbytes == sizes[0.2] + sizes[0.3]
    fit_adjusted(reference_dataset, 0.4, cache=cache)  # evicts 0.3, the least recently used
    assert fits.nbytes <= fits.max_bytes and len(fits) == 2
    assert fit_adjusted(reference_dataset, 0.2, cache=cache) is first
    assert fit_adjusted(reference_dataset, 0.3, cache=cache) is not second  # recomputed


def test_fit_cache_keeps_no_dataset_alive(reference_frame):
    import gc
    import weakref

    cache = AnalysisCache()
    dataset = Dataset.from_wide(reference_frame)
    fit_adjusted(dataset, 0.5, cache=cache)
    gone = weakref.ref(dataset)
    del dataset
    gc.collect()
    assert gone() is None
    live = Dataset.from_wide(reference_frame)
    fit_adjusted(live, 0.5, cache=cache)  # the dead dataset's fit is dropped here
    assert cache.adjusted_fits.find(lambda key: key[0]() is None) is None
    assert len(cache.adjusted_fits) == 1


def test_adjusted_summary_is_empty_under_impression_weighting():
    ds = _dataset_with_counts()
    summary = adjusted_summary(ds, confidence=0.0, min_n=2, weighting="impressions")
    assert len(summary)
    assert summary["adjusted_impact"].isna().all()
    assert summary["adjusted_controls"].isna().all()


def _dataset_with_counts() -> Dataset:
    rng = np.random.default_rng(3)
    conf = (rng.random((40, 3)) < 0.5).astype(float)
    impressions = rng.integers(1000, 5000, 40).astype(float)
    clicks = np.floor(impressions * 0.01)
    ctr = pd.DataFrame({"image": [f"i{k}" for k in range(40)], "ctr": clicks / impressions})
    ctr["clicks"], ctr["impressions"] = clicks, impressions
    return Dataset.from_matrix(ctr["image"], ["a", "b", "c"], conf, ctr)


# -- singular designs ------------------------------------------------------------------------


def _with_columns(reference_frame: pd.DataFrame, **columns) -> Dataset:
    frame = reference_frame.copy()
    for name, values in columns.items():
        frame[name] = values
    return Dataset.from_wide(frame)


def test_a_control_identical_to_the_feature_is_dropped_and_named(reference_frame):
    text = reference_frame["text"]
    ds = _with_columns(reference_frame, text_copy=text, no_text=np.where(text > 0.5, 0.0, 1.0))
    fit = fit_adjusted(ds, 0.5)
    names = list(ds.features)
    j = names.index("text")
    assert np.isfinite([fit.estimate[j], fit.se[j], fit.p_value[j], fit.ci_low[j]]).all()
    reasons = {names[c]: reason for c, reason, _ in fit.dropped[j]}
    assert reasons == {"text_copy": "same images as the feature", "no_text": "exactly the images without the feature"}
    summary = adjusted_summary(ds, confidence=0.5).set_index("feature")
    assert "text_copy (dropped: same images as the feature)" in summary.loc["text", "adjusted_controls"]
    # The duplicate's own model drops text in turn; both get the same, finite estimate.
    assert fit.estimate[names.index("text_copy")] == pytest.approx(fit.estimate[j], rel=1e-12)
    # The remaining model is the one statsmodels fits without the duplicates.
    present = presence(ds.confidences, 0.5).astype(float)
    x = np.column_stack([np.ones(len(present)), present[:, j], present[:, fit.controls[j]]])
    ref = sm.OLS(ds.ctr, x).fit(cov_type="HC3", use_t=True)
    assert fit.se[j] == pytest.approx(ref.bse[1], rel=1e-9)


def test_collinear_controls_drop_the_weaker_one(reference_frame):
    # Three features that partition the images: any two determine the third with the intercept.
    rng = np.random.default_rng(5)
    part = rng.integers(0, 3, len(reference_frame))
    ds = _with_columns(reference_frame, **{f"part{k}": (part == k).astype(float) for k in range(3)})
    fit = fit_adjusted(ds, 0.5)
    names = list(ds.features)
    for k in range(3):
        j = names.index(f"part{k}")
        assert np.isfinite([fit.estimate[j], fit.se[j], fit.p_value[j]]).all()
        assert [reason for _, reason, _ in fit.dropped[j]] == ["collinear with the other controls"]
    table = cooccurring(ds, "part0", confidence=0.5)
    assert table["dropped"].notna().sum() == 1
    assert set(table["feature"]) >= {"part1", "part2"}


def test_cooccurring_lists_controls_with_their_phi(reference_dataset):
    table = cooccurring(reference_dataset, "skyblue", confidence=0.0)
    row = table.set_index("feature").loc["text"]
    phi = np.corrcoef(presence(reference_dataset.confidences, 0.0)[:, [1, 6]].T.astype(float))[0, 1]
    assert row["phi"] == pytest.approx(phi, rel=1e-12)
    assert (table["phi"].abs() >= PHI_THRESHOLD).all()
    with pytest.raises(KeyError):
        cooccurring(reference_dataset, "nope", confidence=0.0)


@pytest.mark.parametrize("confidence", [0.0, 0.5])
def test_cooccurring_lists_each_features_controls_as_its_fit_holds_them(reference_frame, confidence):
    """cooccurring fits no model: its controls, phi (to the bit) and dropped ones must be the fit's."""
    text = reference_frame["text"]
    rng = np.random.default_rng(5)
    part = rng.integers(0, 3, len(reference_frame))
    columns = {f"part{k}": (part == k).astype(float) for k in range(3)}
    ds = _with_columns(reference_frame, text_copy=text, no_text=np.where(text > 0.5, 0.0, 1.0), **columns)
    fit = fit_adjusted(ds, confidence)
    names = list(ds.features)
    assert any(fit.dropped) and any(len(c) for c in fit.controls)
    for j, name in enumerate(names):
        table = cooccurring(ds, name, confidence=confidence)
        kept = table[table["dropped"].isna()]
        assert list(kept["feature"]) == [names[c] for c in fit.controls[j]]
        assert kept["phi"].tolist() == [float(p) for p in fit.phi[j]]
        dropped = table[table["dropped"].notna()]
        assert list(dropped.itertuples(index=False, name=None)) == [(names[c], p, why) for c, why, p in fit.dropped[j]]


def test_known_fit_fits_only_when_cached_or_quick(reference_dataset, fits):
    calls = fits
    cache = AnalysisCache()
    assert 0 < fit_seconds(reference_dataset, 0.0) <= QUICK_FIT_SECONDS
    # Too costly for the caller's limit: nothing fitted, nothing cached.
    assert known_fit(reference_dataset, 0.0, cache=cache, quick=0.0) is None
    assert calls == [] and len(cache.adjusted_fits) == 0
    # Once fitted (the adjusted view drew it), the cached fit whatever its cost.
    fit = fit_adjusted(reference_dataset, 0.0, cache=cache)
    assert known_fit(reference_dataset, 0.0, cache=cache, quick=0.0) is fit
    assert len(calls) == 1
    # Quick enough: fitted on the spot, and kept.
    other = known_fit(reference_dataset, 0.5, cache=cache)
    assert other is not None and len(calls) == 2
    assert known_fit(reference_dataset, 0.5, cache=cache, quick=0.0) is other


def _demo_dataset(n_images: int, n_features: int) -> Dataset:
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    conf = np.zeros((len(batch.images), len(batch.features)))
    rows, cols, values = zip(*batch.values)
    conf[rows, cols] = values
    return Dataset.from_matrix(batch.images, batch.features, conf, ctr)


def test_fit_seconds_grows_with_the_images_and_the_features_tested():
    small, wide, tall = _demo_dataset(300, 60), _demo_dataset(300, 240), _demo_dataset(1200, 60)
    assert 0 < fit_seconds(small, 0.5) < fit_seconds(wide, 0.5)
    assert fit_seconds(small, 0.5) < fit_seconds(tall, 0.5)
    assert fit_seconds(small, 0.5, min_n=10_000) == 0.0  # nothing tested: nothing to fit


# -- simulations -----------------------------------------------------------------------------


def test_adjusted_p_is_calibrated_on_shuffled_reference_ctrs(reference_dataset):
    """Shuffled CTRs have no effect: p < 0.05 about 5 %, including the 9-image headwear at 0.5."""
    rng = np.random.default_rng(11)
    hits, small_hits, total, small_total = 0, 0, 0, 0
    headwear = list(reference_dataset.features).index("headwear")
    for _ in range(150):
        ds = Dataset(
            reference_dataset.images,
            reference_dataset.features,
            reference_dataset.confidences,
            rng.permutation(reference_dataset.ctr),
        )
        for threshold in (0.0, 0.5):
            p = fit_adjusted(ds, threshold).p_value
            hits += int((p[~np.isnan(p)] < 0.05).sum())
            total += int((~np.isnan(p)).sum())
            if threshold == 0.5:
                small_hits += int(p[headwear] < 0.05)
                small_total += 1
    assert 0.03 <= hits / total <= 0.07
    # The t distribution alone gave this feature p < 0.05 on 20 % of shuffles.
    assert small_hits / small_total <= 0.09


def _planted_build(seed: int, effect: float = 1.35):
    """A demo-like build with a planted effect on A (``girl``) and B (``fun``) copying A in 70 % of images."""
    batch, _ = demo_build(seed, n_features=120)
    conf = np.zeros((len(batch.images), len(batch.features)))
    rows, cols, values = zip(*batch.values)
    conf[rows, cols] = values
    rng = np.random.default_rng(seed)
    a, b = batch.features.index("girl"), batch.features.index("fun")
    has_a = conf[:, a] > 0
    copy = rng.random(len(has_a)) < 0.7
    has_b = np.where(copy, has_a, rng.random(len(has_a)) < has_a.mean())
    conf[:, b] = np.where(has_b, 0.9, 0.0)
    ctr = 0.0098 * np.exp(rng.normal(0.0, 0.3, len(has_a))) * np.where(has_a, effect, 1.0)
    planted = 0.0098 * np.exp(0.3**2 / 2) * (effect - 1.0)
    return Dataset.from_matrix(batch.images, batch.features, conf, pd.Series(ctr, index=batch.images)), planted


def test_adjusted_impact_finds_a_and_clears_its_copy_where_marginal_impact_does_not():
    builds = 24
    a_found = b_flagged = marginal_b_flagged = 0
    estimates, planted = [], 0.0
    for seed in range(builds):
        ds, planted = _planted_build(100 + seed)
        summary = adjusted_summary(ds, confidence=0.0).set_index("feature")
        a_found += int(summary.loc["girl", "adjusted_q_value"] < 0.05)
        b_flagged += int(summary.loc["fun", "adjusted_q_value"] < 0.05)
        marginal_b_flagged += int(summary.loc["fun", "q_value"] < 0.05)
        estimates.append(summary.loc["girl", "adjusted_impact"])
        assert "girl" in summary.loc["fun", "adjusted_controls"]
    assert b_flagged <= builds / 8
    assert a_found >= 0.8 * builds
    assert abs(np.mean(estimates) - planted) <= 0.2 * planted
    # The marginal method credits B with A's effect.
    assert marginal_b_flagged > builds / 8
    marginal = feature_summary(ds, confidence=0.0).set_index("feature")
    assert marginal.loc["fun", "impact"] > 0.4 * planted


# -- bounded cost ----------------------------------------------------------------------------


def _random_build(n_images: int, n_features: int, share: float, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    conf = (rng.random((n_images, n_features)) < share) * rng.uniform(0.5, 1.0, (n_images, n_features))
    names = [f"i{k}" for k in range(n_images)]
    ctr = pd.Series(np.minimum(0.01 * np.exp(rng.normal(0, 1, n_images)), 1), index=names)
    return Dataset.from_matrix(names, [f"f{j}" for j in range(n_features)], conf, ctr)


def test_fit_adjusted_bounds_the_controls_of_a_wide_build():
    """300 images x 1,000 features in half the images: |phi| >= 0.05 picks ~350 controls per
    feature, more than the images (every model saturated, each refitted column by column)."""
    from data.adjusted import MAX_CONTROLS, max_controls

    ds = _random_build(300, 1_000, 0.5)
    fit = fit_adjusted(ds, 0.3)
    assert max_controls(300) == MAX_CONTROLS == 30
    sizes = np.array([len(c) + len(d) for c, d in zip(fit.controls, fit.dropped)])
    assert sizes.max() <= 30
    # The strongest co-occurring features are the ones kept, and every model has a usable t.
    j = 17
    phi = np.abs(np.corrcoef(presence(ds.confidences, 0.3).T.astype(float))[j])
    phi[j] = 0
    assert np.abs(fit.phi[j]).min() >= np.sort(phi)[-30] - 1e-12
    assert np.isfinite(fit.p_value).all() and (fit.df >= 300 - 32).all()
    assert max_controls(150) == 15 and max_controls(12) == 1


def test_fit_adjusted_cache_is_keyed_by_the_presence_pattern(reference_dataset):
    """Thresholds with no confidence between them give the same fit, computed once."""
    values = np.unique(reference_dataset.confidences)
    low, high = values[values > 0.5][:2]
    cache = AnalysisCache()
    first = fit_adjusted(reference_dataset, float(low), cache=cache)
    assert fit_adjusted(reference_dataset, float(low) + (high - low) / 3, cache=cache) is first
    assert fit_adjusted(reference_dataset, float(np.nextafter(high, 0)), cache=cache) is first
    assert fit_adjusted(reference_dataset, float(high), cache=cache) is not first


# -- calibration at every group size and tail, order, floors -----------------------------------


@pytest.mark.parametrize(
    ("tails", "builds", "shuffled"),
    simulation.ADJUSTED_NULL_SCENARIOS,
    ids=[f"{t}-{'shuffled' if s else 'drawn'}" for t, _, s in simulation.ADJUSTED_NULL_SCENARIOS],
)
def test_adjusted_p_is_calibrated_on_30_to_60_image_features_with_heavy_tails(tails, builds, shuffled):
    """The HC3 t decided above 29 images: p < 0.05 in 11.1 % of null tests at 30 images (lognormal
    sigma 1), 12.2 % (sigma 1.5), 13.5 % (Pareto 1.5), 17.9 % (Pareto 1.1); a false adjusted
    discovery in 23-46 % of builds."""
    rates = simulation.adjusted_null_rates(tails, builds, seed=3, shuffled=shuffled)
    assert rates.tests == builds * 20
    assert 0.035 <= rates.false_positive_rate <= 0.06
    assert rates.any_discovery_rate <= 0.07
    assert rates.coverage >= 0.94


def test_adjusted_p_is_the_same_in_any_order_of_images_and_features():
    """The same data listed in another order changed adjusted p by up to 0.039 and an interval end by 0.0014."""
    rng = np.random.default_rng(21)
    present = simulation.sized_features(rng, 120, 16, 12, 40)
    ctr = np.minimum(0.01 * np.exp(rng.normal(0.0, 1.0, 120)) * np.where(present[:, 3], 2.0, 1.0), 1.0)
    ctr[present[:, 8]] *= 0.5
    base = simulation.dataset(present, ctr)
    fit = fit_adjusted(base, 0.5)
    assert (fit.t_p_value < PERMUTATION_GATE).sum() >= 2  # some features are permuted
    for seed in range(3):
        order = np.random.default_rng(seed)
        rows, cols = order.permutation(120), order.permutation(16)
        names = base.images[rows]
        shuffled = Dataset.from_matrix(
            names,
            base.features[cols],
            present[rows][:, cols].astype(float),
            pd.DataFrame({"image": names, "ctr": ctr[rows]}),
        )
        other = fit_adjusted(shuffled, 0.5)
        for column in ("estimate", "p_value", "ci_low", "ci_high"):
            np.testing.assert_array_equal(getattr(other, column), getattr(fit, column)[cols])
        assert [sorted(base.features[c]) for c in fit.controls] == [
            sorted(shuffled.features[other.controls[k]]) for k in np.argsort(cols)
        ]


def test_adjusted_p_never_below_two_over_the_ways_to_choose_the_group():
    """Near-constant groups gave adjusted p = 6e-139 and exactly 0, and 1e-4 where 1 / C(12, 6) = 1.1e-3."""
    from scipy.special import comb

    rng = np.random.default_rng(8)
    small = np.zeros((12, 1), dtype=bool)
    small[:6, 0] = True
    ctr = np.where(small[:, 0], 0.02, 0.01) + rng.normal(0, 1e-6, 12)
    p = fit_adjusted(simulation.dataset(small, ctr), 0.5, min_n=5).p_value[0]
    assert p >= 2 / comb(12, 6)
    large = np.zeros((200, 1), dtype=bool)
    large[:100, 0] = True
    ctr = np.where(large[:, 0], 0.02, 0.01) + rng.normal(0, 1e-15, 200)
    p = fit_adjusted(simulation.dataset(large, ctr), 0.5).p_value[0]
    # No resample reaches it, and one test needs no finer resolution than the first 999.
    assert p == 2 / 1_000


def test_a_lone_strong_feature_reaches_q_below_005_among_500():
    """The smallest p must fall strictly below 0.05 / m for BH to flag one feature alone."""
    rng = np.random.default_rng(9)
    present = rng.random((150, 500)) < 0.3
    ctr = np.minimum(0.01 * np.exp(rng.normal(0.0, 0.5, 150)), 1.0)
    ctr[present[:, 0]] *= 3.0
    summary = adjusted_summary(simulation.dataset(present, ctr), confidence=0.5).set_index("feature")
    assert summary.loc["f0", "adjusted_p_value"] < 0.05 / 500
    assert summary.loc["f0", "adjusted_q_value"] < 0.05
    assert (summary["adjusted_q_value"] < 0.05).sum() <= 3


def test_adjusted_fcr_interval_excludes_zero_exactly_for_the_selected_features():
    """Verdict, lift and the Benjamini-Yekutieli interval on a build where some features are found."""
    from data.stats import fcr_level

    ds, _ = _planted_build(100, effect=1.5)
    summary = adjusted_summary(ds, confidence=0.0)
    tested = summary[summary["adjusted_q_value"].notna()]
    selected = tested["adjusted_q_value"] < 0.05
    assert 1 <= selected.sum() < len(tested)
    assert fcr_level(summary["adjusted_q_value"].to_numpy()) == 1 - selected.sum() * 0.05 / len(tested)
    low, high = tested["adjusted_ci_low_fcr"], tested["adjusted_ci_high_fcr"]
    np.testing.assert_array_equal((low > 0) | (high < 0), selected)
    assert (low <= tested["adjusted_ci_low"]).all() and (tested["adjusted_ci_high"] <= high).all()
    # The per-test interval agrees with p at 0.05 in the same way.
    per_test = (tested["adjusted_ci_low"] > 0) | (tested["adjusted_ci_high"] < 0)
    np.testing.assert_array_equal(per_test, tested["adjusted_p_value"] <= 0.05)
    verdict = summary.set_index("feature")["adjusted_verdict"]
    assert verdict["girl"] == "helps"
    assert set(verdict) <= {"helps", "hurts", "unclear", "too few images"}
    lift = summary.set_index("feature").loc["girl"]
    assert lift["adjusted_lift_pct"] == pytest.approx(100 * lift["adjusted_impact"] / lift["avg_ctr_without"])
