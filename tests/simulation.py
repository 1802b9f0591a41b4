"""Null and planted-effect simulations that check p-values, q-values and intervals by their error rates.

Shared by the calibration tests; ``python -m tests.simulation [--scale 4]`` prints the table of
the README's *Statistics* section with more runs. Every draw comes from a seeded generator.

Scenarios, as met in practice: (a) the 287 reference CTRs (skewness 5.9) shuffled across images,
(b) lognormal CTRs with the same skew, (c) overdispersed clicks: impressions varying 30-fold and
a lognormal click rate per image (a beta-binomial-like spread). Under the null no feature has
any effect: since the features are drawn independently of the CTRs, drawing new features for
the same CTRs is the same as shuffling the CTRs across images.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data import refine
from data.analysis import Dataset, feature_summary
from data.cache import AnalysisCache
from data.permutation import resamples_for

REFERENCE_CSV = Path(__file__).resolve().parent.parent / "data" / "samples" / "seed_images_287.csv"
N_IMAGES = 659
PLANTED = (1.25, 1.20, 0.80, 0.75) * 3  # relative CTR effects, each on ~15 % of the images
PLANTED_SHARE = 0.15


def presence(rng: np.random.Generator, n_images: int, n_features: int, low=0.02, high=0.5) -> np.ndarray:
    """Features independent of everything, each in a share of images drawn log-uniformly in [low, high]."""
    share = np.exp(rng.uniform(np.log(low), np.log(high), n_features))
    return rng.random((n_images, n_features)) < share


def reference_ctr() -> np.ndarray:
    """The 287 reference images' CTRs."""
    return pd.read_csv(REFERENCE_CSV)["ctr"].to_numpy(dtype=np.float64)


def lognormal_ctr(rng: np.random.Generator, n_images: int = N_IMAGES, sigma: float = 1.0) -> np.ndarray:
    """CTRs around 1 % with a lognormal spread (sigma 1 gives the reference data's skewness of about 6)."""
    return np.minimum(0.01 * np.exp(rng.normal(0.0, sigma, n_images)), 1.0)


def sparse_ctr(rng: np.random.Generator, n_images: int = N_IMAGES, clicked: float = 0.025) -> np.ndarray:
    """Heavy ties: 97.5 % of images without a click (CTR 0), the rest lognormal around 1 %."""
    return np.where(rng.random(n_images) < clicked, lognormal_ctr(rng, n_images), 0.0)


def overdispersed_counts(rng: np.random.Generator, rate: np.ndarray, low: float = 500, high: float = 15_000):
    """Impressions log-uniform over a 30-fold range, clicks binomial at each image's own rate."""
    impressions = np.rint(np.exp(rng.uniform(np.log(low), np.log(high), len(rate))))
    clicks = rng.binomial(impressions.astype(np.int64), rate).astype(np.float64)
    return clicks, impressions


def dataset(present: np.ndarray, ctr=None, clicks=None, impressions=None) -> Dataset:
    """An analysis Dataset of one build: presence as confidence 1, CTRs or counts per image."""
    names = [f"img_{i}" for i in range(present.shape[0])]
    frame = pd.DataFrame({"image": names, "ctr": ctr if clicks is None else clicks / impressions})
    if clicks is not None:
        frame["clicks"], frame["impressions"] = clicks, impressions
    features = [f"f{j}" for j in range(present.shape[1])]
    return Dataset.from_matrix(names, features, present.astype(np.float64), frame)


@dataclass
class Rates:
    """Error rates over simulated builds."""

    tests: int = 0
    below_005: int = 0
    holds_zero: int = 0
    runs: int = 0
    runs_with_discovery: int = 0

    def add(self, summary: pd.DataFrame) -> None:
        """Count one null build's summary."""
        tested = summary[summary["p_value"].notna()]
        self.tests += len(tested)
        self.below_005 += int((tested["p_value"] < 0.05).sum())
        self.holds_zero += int(((tested["ci_low"] <= 0) & (tested["ci_high"] >= 0)).sum())
        self.runs += 1
        self.runs_with_discovery += int((tested["q_value"] < 0.05).any())

    @property
    def false_positive_rate(self) -> float:
        """Share of tests with p < 0.05."""
        return self.below_005 / self.tests

    @property
    def coverage(self) -> float:
        """Share of 95 % intervals that hold 0."""
        return self.holds_zero / self.tests

    @property
    def any_discovery_rate(self) -> float:
        """Share of builds with any q < 0.05."""
        return self.runs_with_discovery / self.runs


def null_rates(
    scenario: str, weighting: str, draws: int, runs_per_draw: int, n_features: int, seed: int, summarise=feature_summary
) -> Rates:
    """Error rates on null builds of one scenario of ``summarise(dataset, confidence=, weighting=)`` (a summary frame)."""
    rng = np.random.default_rng(seed)
    rates = Rates()
    cache = AnalysisCache()  # the runs of one draw share its CTRs, so their null table is drawn once
    for _ in range(draws):
        if scenario == "reference":
            ctr, counts = reference_ctr(), None
        elif scenario == "lognormal":
            ctr, counts = lognormal_ctr(rng), None
        elif scenario == "sparse":
            ctr, counts = sparse_ctr(rng), None
        else:
            ctr = None
            counts = overdispersed_counts(rng, lognormal_ctr(rng, sigma=0.6))
        n = len(ctr) if ctr is not None else len(counts[0])
        for _ in range(runs_per_draw):
            present = presence(rng, n, n_features)
            data = (
                dataset(present, ctr) if counts is None else dataset(present, clicks=counts[0], impressions=counts[1])
            )
            rates.add(summarise(data, confidence=0.5, weighting=weighting, cache=cache))
    return rates


@dataclass
class Power:
    """Planted effects found, and intervals holding the true difference."""

    planted: int = 0
    found: int = 0
    covered: int = 0
    selected: int = 0  # features (planted or not) called helps or hurts
    selected_missed: int = 0  # ... whose false-coverage-rate interval misses the true difference
    false_found: int = 0  # features without effect called helps or hurts (each such interval misses 0)
    builds: int = 0
    miss_share_sum: float = 0.0  # the sum over builds of (misses / called), 0 for a build without calls

    @property
    def found_rate(self) -> float:
        """Share of planted features with q < 0.05."""
        return self.found / self.planted

    @property
    def coverage(self) -> float:
        """Share of planted features whose 95 % interval holds the true difference."""
        return self.covered / self.planted

    @property
    def fcr(self) -> float:
        """The false coverage rate as Benjamini and Yekutieli bound it: the mean over builds of misses / called."""
        return self.miss_share_sum / max(self.builds, 1)

    @property
    def fcr_miss_rate(self) -> float:
        """Share of features called helps or hurts whose FCR interval misses the true difference (0 for the rest)."""
        return self.selected_missed / max(self.selected, 1)


def planted_power(
    weighting: str, builds: int, n_null: int, seed: int, sigma: float = 0.15, summarise=feature_summary
) -> Power:
    """Builds of 659 images with the effects of ``PLANTED`` and ``n_null`` features without effect.

    Each image's click rate is 1 % times its planted effects times lognormal noise (``sigma``);
    with impression weighting, clicks are binomial on 3,000 to 100,000 impressions on top.
    """
    rng = np.random.default_rng(seed)
    effects = np.array(PLANTED)
    base_mean = 0.01 * np.exp(sigma**2 / 2)
    # Features are independent, so E[CTR | f] - E[CTR | no f] = E[base] (m_f - 1) prod_{g != f} E[m_g].
    factor = 1 - PLANTED_SHARE + PLANTED_SHARE * effects
    truth = base_mean * (effects - 1) * np.prod(factor) / factor
    power = Power()
    for _ in range(builds):
        planted = rng.random((N_IMAGES, len(effects))) < PLANTED_SHARE
        rate = np.minimum(
            0.01 * np.exp(rng.normal(0.0, sigma, N_IMAGES)) * np.prod(np.where(planted, effects, 1.0), axis=1), 1
        )
        present = np.hstack([planted, presence(rng, N_IMAGES, n_null, high=0.3)])
        if weighting == "mean":
            data = dataset(present, rate)
        else:
            clicks, impressions = overdispersed_counts(rng, rate, 3_000, 100_000)
            data = dataset(present, clicks=clicks, impressions=impressions)
        summary = summarise(data, confidence=0.5, weighting=weighting).set_index("feature")
        rows = summary.loc[[f"f{j}" for j in range(len(effects))]]
        true = pd.Series(0.0, index=summary.index)  # features without effect: independent of CTR
        true[rows.index] = truth
        called = summary["verdict"].isin(["helps", "hurts"])
        power.selected += int(called.sum())
        holds = (summary["ci_low_fcr"] <= true) & (true <= summary["ci_high_fcr"])
        power.selected_missed += int((called & ~holds).sum())
        power.false_found += int((called & (true == 0)).sum())
        power.builds += 1
        power.miss_share_sum += int((called & ~holds).sum()) / max(int(called.sum()), 1)
        power.planted += len(effects)
        power.found += int((rows["q_value"] < 0.05).sum())
        power.covered += int(((rows["ci_low"] <= truth) & (truth <= rows["ci_high"])).sum())
    return power


def small_group_power(
    multiplier: float, sizes=(8, 25), builds: int = 60, seed: int = 3, weighting: str = "mean", n_null: int = 20
) -> dict:
    """Share of builds in which a feature multiplying CTR by ``multiplier`` on exactly k images gets p < 0.05.

    659 images with lognormal (sigma 1) click rates; one planted feature per size in ``sizes``, on
    disjoint images, and ``n_null`` features without effect. With impression weighting, clicks are
    binomial on 500 to 15,000 impressions.
    """
    rng = np.random.default_rng(seed)
    found = dict.fromkeys(sizes, 0)
    for _ in range(builds):
        rate = lognormal_ctr(rng)
        order = rng.permutation(N_IMAGES)
        planted = np.zeros((N_IMAGES, len(sizes)), dtype=bool)
        start = 0
        for j, size in enumerate(sizes):
            planted[order[start : start + size], j] = True
            start += size
        rate = np.minimum(rate * np.where(planted.any(axis=1), multiplier, 1.0), 1.0)
        present = np.hstack([planted, presence(rng, N_IMAGES, n_null)])
        if weighting == "mean":
            data = dataset(present, rate)
        else:
            clicks, impressions = overdispersed_counts(rng, rate)
            data = dataset(present, clicks=clicks, impressions=impressions)
        summary = feature_summary(data, confidence=0.5, weighting=weighting, min_n=5).set_index("feature")
        for j, size in enumerate(sizes):
            found[size] += int(summary.loc[f"f{j}", "p_value"] < 0.05)
    return {size: count / builds for size, count in found.items()}


def exposure_presence(rng: np.random.Generator, impressions: np.ndarray, n_features: int, tilt: float) -> np.ndarray:
    """Features favouring low-exposure images (new creatives): presence odds fall as impressions ** -tilt."""
    share = np.exp(rng.uniform(np.log(0.02), np.log(0.5), n_features))
    lean = (impressions / impressions.mean()) ** -tilt
    chance = np.minimum(share[None, :] * lean[:, None] / lean.mean(), 0.95)
    return rng.random((len(impressions), n_features)) < chance


def exposure_null_rates(
    weighting: str, builds: int, n_features: int, seed: int, low: float = 50, high: float = 50_000, tilt: float = 0.5
) -> Rates:
    """Null builds where features travel with exposure: impressions log-uniform over ``low``..``high``,
    per-image click rates lognormal (sigma 0.3) around 1 % whatever the features, binomial clicks."""
    rng = np.random.default_rng(seed)
    rates = Rates()
    for _ in range(builds):
        rate = lognormal_ctr(rng, sigma=0.3)
        clicks, impressions = overdispersed_counts(rng, rate, low, high)
        present = exposure_presence(rng, impressions, n_features, tilt)
        rates.add(
            feature_summary(
                dataset(present, clicks=clicks, impressions=impressions), confidence=0.5, weighting=weighting
            )
        )
    return rates


def windowed_null_rates(
    weighting: str,
    builds: int,
    n_features: int,
    seed: int,
    window_days: int | None = 30,
    tilt: float = 1.0,
    summarise=feature_summary,
) -> Rates:
    """Null builds of dated metrics: 400 images launched on days spread over 90, each shown from its
    launch day (daily impressions Poisson, means log-uniform over 5..500) at its own click rate
    (lognormal sigma 0.3 around 1 %, whatever its features); features favour newer images (odds
    rising as exp(tilt x launch day / 90)), which have fewer days, so fewer impressions, in a window.
    Each image's clicks and impressions are summed over the last ``window_days`` days (None: all
    90), as the store sums them; an image without impressions there has no CTR."""
    rng = np.random.default_rng(seed)
    rates = Rates()
    n_images, days = 400, 90
    for _ in range(builds):
        launch = rng.integers(0, days, n_images)
        daily = np.exp(rng.uniform(np.log(5), np.log(500), n_images))
        rate = lognormal_ctr(rng, n_images, sigma=0.3)
        first = 0 if window_days is None else days - window_days
        shown_days = days - np.maximum(launch, first)  # days in the window since launch
        impressions = rng.poisson(daily * shown_days).astype(np.float64)
        clicks = rng.binomial(impressions.astype(np.int64), rate).astype(np.float64)
        share = np.exp(rng.uniform(np.log(0.02), np.log(0.5), n_features))
        lean = np.exp(tilt * launch / days)
        chance = np.minimum(share[None, :] * lean[:, None] / lean.mean(), 0.95)
        present = rng.random((n_images, n_features)) < chance
        seen = impressions > 0
        names = [f"img_{i}" for i in range(n_images)]
        frame = pd.DataFrame(
            {
                "image": names,
                "ctr": clicks / np.where(seen, impressions, 1),
                "clicks": clicks,
                "impressions": impressions,
            }
        )[seen]
        data = Dataset.from_matrix(names, [f"f{j}" for j in range(n_features)], present.astype(np.float64), frame)
        rates.add(summarise(data, confidence=0.5, weighting=weighting))
    return rates


class _SmallerNull:
    """A refiner that answers every summary from the smaller null of a new window's first answer."""

    def table(self, test):
        return test.smaller_table(refine.QUICK_RESAMPLES, **refine.QUICK_DRAW), "pending"


def provisional_summary(data: Dataset, filters=None, *, cache: AnalysisCache | None = None, **criteria):
    """``feature_summary`` as a new window's first, provisional answer computes it (``data/refine.py``)."""
    cache = cache or AnalysisCache()
    cache.refiner = _SmallerNull()
    if filters is None or filters.window is None:
        criteria.setdefault("date_from", "2000-01-01")  # any window: only a window's answer may be provisional
    return feature_summary(data, filters, cache=cache, **criteria)


TIED_SCENARIOS = [
    # (scenario, weighting, draws, runs per draw, features): conservative by design (a discrete null)
    ("sparse", "mean", 5, 40, 200),
]

NULL_SCENARIOS = [
    # (scenario, weighting, draws, runs per draw, features)
    ("reference", "mean", 1, 500, 20),
    ("lognormal", "mean", 5, 80, 200),
    ("overdispersed", "mean", 5, 80, 200),
    ("overdispersed", "impressions", 5, 80, 200),
]


def lone_strong_feature(m: int, seed: int = 4) -> pd.Series:
    """One feature doubling CTR on 20 % of 659 images among ``m - 1`` without effect: its summary row."""
    rng = np.random.default_rng(seed)
    strong = rng.random(N_IMAGES) < 0.2
    ctr = 0.01 * np.exp(rng.normal(0.0, 0.3, N_IMAGES)) * np.where(strong, 2.0, 1.0)
    present = np.column_stack([strong, presence(rng, N_IMAGES, m - 1, low=0.05, high=0.3)])
    return feature_summary(dataset(present, ctr), confidence=0.5).set_index("feature").loc["f0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4, help="multiply the test suite's runs by this")
    parser.add_argument("--only", default="null,tied,exposure,small,lone,planted", help="comma-separated tables")
    parser.add_argument("--adjusted", action="store_true", help="only the adjusted impact's null table")
    parser.add_argument(
        "--weighting", default="mean,impressions", help="comma-separated weightings of the planted table's rows"
    )
    args = parser.parse_args()
    if args.adjusted:
        adjusted_main(args.scale)
        return
    only = set(args.only.split(","))
    if "null" in only or "tied" in only:
        print("| data | weighting | tests | p < 0.05 | interval holds 0 | runs with any q < 0.05 |")
        print("| --- | --- | --- | --- | --- | --- |")
        scenarios = (NULL_SCENARIOS if "null" in only else []) + (TIED_SCENARIOS if "tied" in only else [])
        for scenario, weighting, draws, runs, features in scenarios:
            rates = null_rates(scenario, weighting, draws * args.scale, runs, features, seed=1)
            print(
                f"| {scenario} | {weighting} | {rates.tests:,} | {rates.false_positive_rate:.2%} | "
                f"{rates.coverage:.2%} | {rates.any_discovery_rate:.2%} of {rates.runs:,} |",
                flush=True,
            )
    if "exposure" in only:
        print("\n| features travel with exposure | weighting | tests | p < 0.05 | interval holds 0 | any q < 0.05 |")
        print("| --- | --- | --- | --- | --- | --- |")
        for weighting in ("mean", "impressions"):
            for tilt in (0.5, 1.0):
                rates = exposure_null_rates(weighting, builds=20 * args.scale, n_features=100, seed=7, tilt=tilt)
                print(
                    f"| tilt {tilt} | {weighting} | {rates.tests:,} | {rates.false_positive_rate:.2%} | "
                    f"{rates.coverage:.2%} | {rates.any_discovery_rate:.2%} of {rates.runs:,} |",
                    flush=True,
                )
    if "small" in only:
        print("\n| effect | weighting | builds | p < 0.05 on 8 images | on 25 images |")
        print("| --- | --- | --- | --- | --- |")
        for weighting in ("mean", "impressions"):
            for multiplier in (1.5, 0.7):
                found = small_group_power(multiplier, builds=60 * args.scale, seed=3, weighting=weighting)
                print(
                    f"| x{multiplier} | {weighting} | {60 * args.scale} | {found[8]:.1%} | {found[25]:.1%} |",
                    flush=True,
                )
    if "lone" in only:
        print("\n| features | resamples | strong feature's p | q | flagged |")
        print("| --- | --- | --- | --- | --- |")
        for m in (500, 1_000, 2_500):
            row = lone_strong_feature(m)
            print(
                f"| {m:,} | {resamples_for(m):,} | {row['p_value']:.1e} | {row['q_value']:.1e} | {row['significant']} |",
                flush=True,
            )
    if "planted" in only:
        print(
            "\n| planted effects | weighting | planted features | found at q < 0.05 | interval holds the true difference "
            "| called helps/hurts | FCR interval misses the truth | of them false discoveries | FCR (mean per build) |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for weighting in args.weighting.split(","):
            for sigma in (0.15, 0.3):
                power = planted_power(weighting, builds=30 * args.scale, n_null=100, seed=2, sigma=sigma)
                print(
                    f"| +-20-25 % on 15 %, noise {sigma} | {weighting} | {power.planted:,} | "
                    f"{power.found_rate:.2%} | {power.coverage:.2%} | {power.selected:,} | "
                    f"{power.fcr_miss_rate:.2%} ({power.selected_missed:,}) | {power.false_found:,} | {power.fcr:.2%} |",
                    flush=True,
                )


# -- adjusted impact at the edges --------------------------------------------------------------
#
# Features on 30 to 60 images of 240, half of them sharing most of their images with another
# feature (so that models have controls), CTRs that no feature affects with skewed or heavy
# tails. ``shuffled`` lists the same builds with images and features in a random order.

ADJUSTED_TAILS = {
    "lognormal 1": lambda rng, n: 0.01 * np.exp(rng.normal(0.0, 1.0, n)),
    "lognormal 1.5": lambda rng, n: 0.01 * np.exp(rng.normal(0.0, 1.5, n)),
    "Pareto 1.5": lambda rng, n: 0.004 * (1.0 + rng.pareto(1.5, n)),
    "Pareto 1.1": lambda rng, n: 0.004 * (1.0 + rng.pareto(1.1, n)),
}
ADJUSTED_NULL_SCENARIOS = [
    # (CTR tails, builds, shuffled order)
    ("lognormal 1", 60, False),
    ("lognormal 1.5", 60, False),
    ("Pareto 1.5", 60, False),
    ("Pareto 1.1", 60, True),
]


def sized_features(rng: np.random.Generator, n_images: int, n_features: int, low: int, high: int) -> np.ndarray:
    """Features on exactly ``low`` to ``high`` images; every second one takes 70 % of its images from the one before."""
    present = np.zeros((n_images, n_features), dtype=bool)
    for j in range(n_features):
        k = int(rng.integers(low, high + 1))
        if j % 2 and present[:, j - 1].sum() >= k:
            inside = rng.choice(np.flatnonzero(present[:, j - 1]), int(0.7 * k), replace=False)
            outside = rng.choice(np.flatnonzero(~present[:, j - 1]), k - len(inside), replace=False)
            present[np.concatenate([inside, outside]), j] = True
        else:
            present[rng.choice(n_images, k, replace=False), j] = True
    return present


def adjusted_frame(data: Dataset, confidence: float = 0.5) -> pd.DataFrame:
    """The adjusted p, interval and q of every feature, under the names ``Rates.add`` reads.

    From ``fit_adjusted`` directly, as ``adjusted_summary`` without filters gives them: the marginal
    columns' permutation nulls would cost more than the adjusted fit here.
    """
    from data.adjusted import fit_adjusted
    from data.stats import benjamini_hochberg

    fit = fit_adjusted(data, confidence)
    return pd.DataFrame(
        {
            "p_value": fit.p_value,
            "ci_low": fit.ci_low,
            "ci_high": fit.ci_high,
            "q_value": benjamini_hochberg(fit.p_value),
        }
    )


def adjusted_null_rates(
    tails: str, builds: int, seed: int, shuffled: bool = False, n_images: int = 240, n_features: int = 20
) -> Rates:
    """Error rates of the adjusted p, interval and q on null builds with features on 30-60 images."""
    rng = np.random.default_rng(seed)
    rates = Rates()
    for _ in range(builds):
        ctr = np.minimum(ADJUSTED_TAILS[tails](rng, n_images), 1.0)
        present = sized_features(rng, n_images, n_features, 30, 60)
        if shuffled:
            rows, cols = rng.permutation(n_images), rng.permutation(n_features)
            names = [f"img_{i}" for i in rows]
            frame = pd.DataFrame({"image": names, "ctr": ctr[rows]})
            data = Dataset.from_matrix(names, [f"f{j}" for j in cols], present[rows][:, cols].astype(float), frame)
        else:
            data = dataset(present, ctr)
        rates.add(adjusted_frame(data))
    return rates


def adjusted_main(scale: int) -> None:
    """Print the adjusted impact's null table."""
    print("| CTR tails | order | tests | p < 0.05 | interval holds 0 | builds with any q < 0.05 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for tails, builds, shuffled in ADJUSTED_NULL_SCENARIOS:
        rates = adjusted_null_rates(tails, builds * scale, seed=3, shuffled=shuffled)
        print(
            f"| {tails} | {'shuffled' if shuffled else 'as drawn'} | {rates.tests:,} | "
            f"{rates.false_positive_rate:.2%} | {rates.coverage:.2%} | {rates.any_discovery_rate:.2%} of {rates.runs:,} |"
        )


if __name__ == "__main__":
    main()
