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

from data.analysis import Dataset, feature_summary
from data.cache import AnalysisCache

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

    @property
    def found_rate(self) -> float:
        """Share of planted features with q < 0.05."""
        return self.found / self.planted

    @property
    def coverage(self) -> float:
        """Share of planted features whose 95 % interval holds the true difference."""
        return self.covered / self.planted


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
        power.planted += len(effects)
        power.found += int((rows["q_value"] < 0.05).sum())
        power.covered += int(((rows["ci_low"] <= truth) & (truth <= rows["ci_high"])).sum())
    return power


NULL_SCENARIOS = [
    # (scenario, weighting, draws, runs per draw, features)
    ("reference", "mean", 1, 500, 20),
    ("lognormal", "mean", 5, 80, 200),
    ("overdispersed", "mean", 5, 80, 200),
    ("overdispersed", "impressions", 5, 80, 200),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4, help="multiply the test suite's runs by this")
    args = parser.parse_args()
    print("| data | weighting | tests | p < 0.05 | interval holds 0 | runs with any q < 0.05 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scenario, weighting, draws, runs, features in NULL_SCENARIOS:
        rates = null_rates(scenario, weighting, draws * args.scale, runs, features, seed=1)
        print(
            f"| {scenario} | {weighting} | {rates.tests:,} | {rates.false_positive_rate:.2%} | "
            f"{rates.coverage:.2%} | {rates.any_discovery_rate:.2%} of {rates.runs:,} |"
        )
    print()
    print("| planted effects | weighting | planted features | found at q < 0.05 | interval holds the true difference |")
    print("| --- | --- | --- | --- | --- |")
    for weighting in ("mean", "impressions"):
        for sigma in (0.15, 0.3):
            power = planted_power(weighting, builds=30 * args.scale, n_null=100, seed=2, sigma=sigma)
            print(
                f"| +-20-25 % on 15 %, noise {sigma} | {weighting} | {power.planted:,} | "
                f"{power.found_rate:.2%} | {power.coverage:.2%} |"
            )


if __name__ == "__main__":
    main()
