"""Build-over-build drift: the interaction against statsmodels, edge cases, and its behaviour by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from data.analysis import Dataset, WeightingUnavailable, feature_summary
from data.drift import DRIFT_COLUMNS, feature_drift, image_overlap

FEATURES = [f"f{j}" for j in range(6)]


def _ctr_frame(rng, names):
    impressions = rng.integers(200, 20_000, len(names))
    clicks = rng.binomial(impressions, np.minimum(np.exp(rng.normal(-4.0, 0.6, len(names))), 1.0))
    return pd.DataFrame({"image": names, "ctr": clicks / impressions, "clicks": clicks, "impressions": impressions})


def _names(prefix, n):
    return np.array([f"{prefix}{i:04d}" for i in range(n)], dtype=object)


def _pair(kind: str, seed: int = 7):
    """Two builds of one dataset: the same images re-featurized, new images, or a partial overlap."""
    rng = np.random.default_rng(seed)
    old = _names("img", 240)
    conf = rng.random((len(old), len(FEATURES)))
    if kind == "refeaturized":
        new_names, new_conf = old, np.clip(conf + rng.normal(0, 0.25, conf.shape), 0, 1)
    elif kind == "new_images":
        new_names = _names("new", 200)
        new_conf = rng.random((len(new_names), len(FEATURES)))
    else:  # partial overlap: 60 % of the old images re-featurized, 90 new ones
        kept = rng.random(len(old)) < 0.6
        extra = _names("new", 90)
        new_names = np.concatenate([old[kept], extra])
        new_conf = np.vstack(
            [np.clip(conf[kept] + rng.normal(0, 0.25, (kept.sum(), len(FEATURES))), 0, 1), rng.random((90, 6))]
        )
    ctr = _ctr_frame(rng, np.union1d(old, new_names))
    ctr = ctr[rng.random(len(ctr)) > 0.05]  # a few images without a CTR
    # The later build lists its images in another order: the result must not depend on it.
    order = rng.permutation(len(new_names))
    before = Dataset.from_matrix(old, FEATURES, conf, ctr)
    after = Dataset.from_matrix(new_names[order], FEATURES, new_conf[order], ctr)
    return before, after


def _statsmodels_interaction(before: Dataset, after: Dataset, feature: str, threshold: float, weighting: str):
    rows = []
    for build, ds in enumerate((before, after)):
        j = list(ds.features).index(feature)
        frame = pd.DataFrame(
            {
                "image": ds.images,
                "x": (ds.confidences[:, j] > threshold).astype(float),
                "build": float(build),
                "ctr": ds.ctr,
                "clicks": ds.clicks,
                "impressions": ds.impressions,
            }
        )
        rows.append(frame[ds.has_ctr])
    stacked = pd.concat(rows, ignore_index=True)
    design = np.column_stack([np.ones(len(stacked)), stacked["x"], stacked["build"], stacked["x"] * stacked["build"]])
    if weighting == "mean":
        model = sm.OLS(stacked["ctr"].to_numpy(), design)
    else:
        y = (stacked["clicks"] / stacked["impressions"]).to_numpy(dtype=float)
        model = sm.WLS(y, design, weights=stacked["impressions"].to_numpy(dtype=float))
    groups = pd.factorize(stacked["image"])[0]
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    low, high = fit.conf_int(alpha=0.05)[3]
    return fit.params, fit.bse[3], fit.pvalues[3], low, high


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
@pytest.mark.parametrize("kind", ["refeaturized", "new_images", "partial_overlap"])
@pytest.mark.parametrize("threshold", [0.3, 0.6])
def test_feature_drift_matches_statsmodels_cluster_ols(kind, weighting, threshold):
    before, after = _pair(kind)
    drift = feature_drift(before, after, confidence=threshold, min_n=2, weighting=weighting)
    assert sorted(drift["feature"]) == FEATURES
    for row in drift.itertuples():
        params, se, p, low, high = _statsmodels_interaction(before, after, row.feature, threshold, weighting)
        assert row.change == pytest.approx(params[3], rel=1e-9, abs=1e-15)
        assert row.impact_from == pytest.approx(params[1], rel=1e-9, abs=1e-15)
        assert row.impact_to == pytest.approx(params[1] + params[3], rel=1e-9, abs=1e-15)
        assert row.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert row.ci_low == pytest.approx(low, rel=1e-9, abs=1e-15)
        assert row.ci_high == pytest.approx(high, rel=1e-9, abs=1e-15)
        # The interval is change +- t * se: recover se and check it too.
        assert (row.ci_high - row.ci_low) / (high - low) == pytest.approx(1.0, rel=1e-9)
        assert se > 0


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_drift_impacts_are_each_builds_summary_impact(weighting):
    before, after = _pair("partial_overlap")
    drift = feature_drift(before, after, confidence=0.5, weighting=weighting).set_index("feature")
    for column, ds in (("impact_from", before), ("impact_to", after)):
        summary = feature_summary(ds, confidence=0.5, weighting=weighting).set_index("feature")
        np.testing.assert_allclose(drift[column], summary.loc[drift.index, "impact"], rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(drift[f"n_with_{column[7:]}"], summary.loc[drift.index, "n_with"])


def test_feature_drift_n_flipped_counts_shared_images_whose_presence_differs():
    before, after = _pair("partial_overlap")
    drift = feature_drift(before, after, confidence=0.5).set_index("feature")
    a = pd.DataFrame(before.confidences > 0.5, index=before.images, columns=FEATURES)
    b = pd.DataFrame(after.confidences > 0.5, index=after.images, columns=FEATURES)
    shared = a.index.intersection(b.index)
    expected = (a.loc[shared] != b.loc[shared]).sum()
    assert drift["n_flipped"].to_dict() == expected.to_dict()
    assert image_overlap(before, after)[0] == len(shared)


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_drift_identical_builds_show_no_change(weighting):
    before, _ = _pair("refeaturized")
    # The same build with its images and features listed in another order.
    rng = np.random.default_rng(3)
    rows, cols = rng.permutation(len(before.images)), rng.permutation(len(FEATURES))
    ctr = pd.DataFrame(
        {"image": before.images, "ctr": before.ctr, "clicks": before.clicks, "impressions": before.impressions}
    ).dropna()
    again = Dataset.from_matrix(
        before.images[rows], np.array(FEATURES)[cols], before.confidences[np.ix_(rows, cols)], ctr
    )
    for other in (before, again):
        drift = feature_drift(before, other, confidence=0.5, weighting=weighting)
        assert len(drift) == len(FEATURES)
        assert (drift["change"] == 0).all()
        assert (drift["n_flipped"] == 0).all()
        assert drift["p_value"].isna().all() and drift["q_value"].isna().all()
        assert not drift["low_n"].any()
        assert (drift["ci_low"] == 0).all() and (drift["ci_high"] == 0).all()
        assert not drift["significant"].any()
        np.testing.assert_array_equal(drift["impact_from"], drift["impact_to"])


def test_feature_drift_feature_missing_from_one_build_is_never_present_there():
    before, after = _pair("refeaturized")
    only_new = Dataset.from_matrix(
        after.images,
        [*FEATURES, "brand_new"],
        np.column_stack([after.confidences, np.linspace(0, 1, len(after.images))]),
        pd.DataFrame({"image": after.images, "ctr": after.ctr}).dropna(),
    )
    old_only = Dataset.from_matrix(
        before.images, before.features, before.confidences, pd.DataFrame({"image": before.images, "ctr": before.ctr})
    )
    drift = feature_drift(old_only, only_new, confidence=0.5).set_index("feature")
    row = drift.loc["brand_new"]
    assert row["n_with_from"] == 0 and row["n_with_to"] > 0
    assert np.isnan(row["impact_from"]) and np.isnan(row["change"]) and np.isnan(row["p_value"])
    assert row["low_n"]
    # Every shared image where it is present in the new build counts as flipped.
    assert row["n_flipped"] == int((only_new.confidences[:, -1] > 0.5).sum())
    assert drift.index[-1] == "brand_new"  # undefined change sorts last


def test_feature_drift_filters_features_passing_in_either_build():
    before, after = _pair("refeaturized")
    both = feature_drift(before, after, confidence=0.5, min_pct=40, max_pct=60)
    prevalence = {
        name: ((before.confidences[:, j] > 0.5).mean() * 100, (after.confidences[:, j] > 0.5).mean() * 100)
        for j, name in enumerate(FEATURES)
    }
    expected = {n for n, (a, b) in prevalence.items() if 40 <= a <= 60 or 40 <= b <= 60}
    assert set(both["feature"]) == expected


def test_feature_drift_min_n_withholds_statistics():
    before, after = _pair("new_images")
    drift = feature_drift(before, after, confidence=0.95, min_n=15)
    assert drift["low_n"].any()
    low = drift[drift["low_n"]]
    assert low[["ci_low", "ci_high", "p_value", "q_value"]].isna().all().all()
    assert low["change"].notna().all()


def test_feature_drift_sorted_by_change_and_columns():
    before, after = _pair("partial_overlap")
    drift = feature_drift(before, after, confidence=0.5)
    assert list(drift.columns) == DRIFT_COLUMNS
    assert drift["change"].is_monotonic_decreasing


def test_feature_drift_impressions_need_counts():
    before, after = _pair("refeaturized")
    rates = Dataset.from_matrix(
        after.images, after.features, after.confidences, pd.DataFrame({"image": after.images, "ctr": after.ctr})
    )
    with pytest.raises(WeightingUnavailable):
        feature_drift(before, rates, confidence=0.5, weighting="impressions")
    with pytest.raises(ValueError):
        feature_drift(before, after, weighting="median")


def test_image_overlap_counts_shared_images_with_a_ctr_in_both():
    before, after = _pair("partial_overlap")
    shared, with_ctr = image_overlap(before, after)
    a = pd.Series(before.has_ctr, index=before.images)
    b = pd.Series(after.has_ctr, index=after.images)
    common = a.index.intersection(b.index)
    assert shared == len(common) > 0
    assert with_ctr == int((a[common] & b[common]).sum())
    assert image_overlap(before, Dataset.from_matrix(_names("zz", 3), FEATURES, np.zeros((3, 6)))) == (0, 0)


# -- simulation ----------------------------------------------------------------------------------
# A featurizer's build of 659 images (the demo's size) with 24 labels, each in 30 % of the images.
# CTRs: a lognormal spread of sd 0.3 between images, then binomial clicks on 3k-100k impressions,
# as in data/demo.py. Label f0 lowers CTR by 40 %; the others have no effect.


def _simulated_world(rng, n=659, m=24, prevalence=0.3, factor=0.6):
    truth = rng.random((n, m)) < prevalence
    true_ctr = 0.01 * np.exp(rng.normal(0, 0.3, n)) * np.where(truth[:, 0], factor, 1.0)
    impressions = np.rint(np.exp(rng.uniform(np.log(3_000), np.log(100_000), n))).astype(np.int64)
    clicks = rng.binomial(impressions, true_ctr)
    names = _names("img", n)
    ctr = pd.DataFrame({"image": names, "ctr": clicks / impressions, "clicks": clicks, "impressions": impressions})
    return names, truth, ctr


def _featurized(rng, names, truth, ctr, miss, features=None):
    """A build whose featurizer misses a share ``miss`` of each label (per column)."""
    seen = truth & (rng.random(truth.shape) >= np.asarray(miss))
    conf = np.where(seen, rng.uniform(0.6, 1.0, truth.shape), rng.uniform(0.0, 0.4, truth.shape))
    return Dataset.from_matrix(names, features or [f"f{j}" for j in range(truth.shape[1])], conf, ctr)


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_drift_simulation_detects_a_featurizer_missing_30pct_of_labels(weighting):
    rng = np.random.default_rng(2024)
    runs, detected, null_p = 200, 0, []
    for _ in range(runs):
        names, truth, ctr = _simulated_world(rng)
        before = _featurized(rng, names, truth, ctr, 0.0)
        # The new featurizer misses 30 % of every label: only f0's impact really changes.
        after = _featurized(rng, names, truth, ctr, 0.3)
        drift = feature_drift(before, after, confidence=0.5, weighting=weighting).set_index("feature")
        detected += drift.loc["f0", "p_value"] < 0.05
        null_p += drift.drop(index="f0")["p_value"].tolist()
    assert detected / runs >= 0.60
    # Labels without an effect lose 30 % of their images too, yet their impact does not move.
    assert np.mean(np.array(null_p) < 0.05) <= 0.06


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
@pytest.mark.parametrize("scenario", ["same_featurizer", "new_images", "shuffled"])
def test_drift_simulation_null_rate_is_near_five_percent(scenario, weighting):
    """With no true change (f0's effect is the same in both builds), p < 0.05 about 5 % of the time."""
    rng = np.random.default_rng(99)
    p_values, q_hits, runs = [], 0, 120
    for _ in range(runs):
        names, truth, ctr = _simulated_world(rng)
        if scenario == "same_featurizer":  # re-featurized by a model that errs just as often
            before = _featurized(rng, names, truth, ctr, 0.15)
            after = _featurized(rng, names, truth, ctr, 0.15)
        elif scenario == "new_images":  # this month's images against last month's
            before = _featurized(rng, names, truth, ctr, 0.1)
            new_names, new_truth, new_ctr = _simulated_world(rng)
            new_names = np.array([f"new-{n}" for n in new_names], dtype=object)
            new_ctr["image"] = new_names
            after = _featurized(rng, new_names, new_truth, new_ctr, 0.1)
        else:  # re-featurized with misses, CTRs shuffled: nothing is related to CTR
            shuffled = ctr.assign(image=rng.permutation(ctr["image"].to_numpy()))
            before = _featurized(rng, names, truth, shuffled, 0.0)
            after = _featurized(rng, names, truth, shuffled, 0.3)
        drift = feature_drift(before, after, confidence=0.5, weighting=weighting)
        p_values += drift["p_value"].tolist()
        q_hits += int((drift["q_value"] < 0.05).any())
    rate = np.mean(np.array(p_values) < 0.05)
    assert 0.025 <= rate <= 0.06, rate
    assert q_hits / runs <= 0.08


def test_feature_drift_q_counts_only_features_that_moved():
    """Re-featurized builds where one label changed: untouched labels get no p and do not dilute q."""
    before, _ = _pair("refeaturized")
    conf = before.confidences.copy()
    conf[::3, 0] = 0.0  # the new featurizer misses a third of f0's labels
    ctr = pd.DataFrame({"image": before.images, "ctr": before.ctr}).dropna()
    after = Dataset.from_matrix(before.images, FEATURES, conf, ctr)
    drift = feature_drift(before, after, confidence=0.5).set_index("feature")
    moved = drift.loc["f0"]
    assert moved["n_flipped"] > 0 and np.isfinite(moved["p_value"])
    assert moved["q_value"] == moved["p_value"]  # the only feature tested
    rest = drift.drop(index="f0")
    assert (rest["change"] == 0).all() and (rest["n_flipped"] == 0).all() and rest["p_value"].isna().all()


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_drift_simulation_small_groups_are_withheld_not_miscalibrated(weighting):
    """Rare labels (1-30 % of images), new images, no change: the tests made stay near 5 %.

    Clustered errors on a handful of images (or of impressions) are too small: cells below
    MIN_EFFECTIVE_IMAGES get no statistics instead.
    """
    rng = np.random.default_rng(11)
    p_values, withheld = [], 0
    prevalence = np.linspace(0.01, 0.3, 30)
    for _ in range(60):
        builds = []
        for prefix in ("old", "new"):
            names, _, ctr = _simulated_world(rng, m=1)
            names = np.array([f"{prefix}-{n}" for n in names], dtype=object)
            builds.append((names, rng.random((len(names), len(prevalence))) < prevalence, ctr.assign(image=names)))
        ctr = pd.concat([b[2] for b in builds], ignore_index=True)
        before, after = (_featurized(rng, names, truth, ctr, 0.0) for names, truth, _ in builds)
        drift = feature_drift(before, after, confidence=0.5, weighting=weighting)
        p_values += drift["p_value"].dropna().tolist()
        withheld += int(drift["low_n"].sum())
    assert withheld > 0
    rate = np.mean(np.array(p_values) < 0.05)
    assert 0.03 <= rate <= 0.06, rate


def test_feature_drift_p_never_below_one_over_the_ways_to_choose_the_smallest_cell():
    """Near-constant groups gave p = 1.9e-242 and exactly 0 from the t tail; now 1 / C(images, cell)."""
    from scipy.special import comb

    rng = np.random.default_rng(4)
    names = _names("img", 200)
    present = np.zeros((200, 2))
    present[:100, 0] = present[::2, 1] = 1.0
    moved = present.copy()
    moved[:, 0] = 1.0 - present[:, 0]  # the label flips to the other images: every group stays constant
    ctr = np.where(present[:, 0] > 0, 0.02, 0.01) + rng.normal(0, 1e-15, 200)
    frame = pd.DataFrame({"image": names, "ctr": ctr})
    before = Dataset.from_matrix(names, ["a", "b"], present, frame)
    after = Dataset.from_matrix(names, ["a", "b"], moved, frame)
    row = feature_drift(before, after, confidence=0.5, min_n=5).set_index("feature").loc["a"]
    assert row["low_n"] == False  # noqa: E712 (a numpy bool)
    smallest = min(row["n_with_from"], row["n_with_to"], 200 - row["n_with_from"], 200 - row["n_with_to"])
    assert row["p_value"] >= 1 / comb(200, smallest) > 0
    assert row["p_value"] < 1e-50
