"""The numbers behind the charts and the API, computed from arrays with no I/O.

A feature is *present* in an image when its confidence is strictly greater than the
confidence threshold. Prevalence is over all images of the build; CTR statistics are over
the images that have a CTR. The dashboard, the JSON API and a notebook all call these
functions, so they can never disagree. The data is a ``Dataset`` (``data/dataset.py``), the
choices a ``Filters`` (``data/filters.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from data import matrix, permutation, refine, stats
from data.cache import AnalysisCache
from data.dataset import Dataset
from data.filters import (
    DEFAULT_MIN_GROUP_SIZE,
    WEIGHTINGS,
    Filters,
    WeightingUnavailable,
    as_filters,
    check_weighting,
    presence,
    prevalence_filter,
    prevalence_pct,
)

# Dataset and the filters' names are part of this module's interface too (notebooks import them here).
__all__ = [
    "DEFAULT_MIN_GROUP_SIZE",
    "POINT_COLUMNS",
    "SIGNIFICANCE_LEVEL",
    "SUMMARY_COLUMNS",
    "WEIGHTINGS",
    "Dataset",
    "Filters",
    "WeightingUnavailable",
    "check_weighting",
    "feature_summary",
    "image_features",
    "permutation_tests",
    "presence",
    "prevalence_filter",
    "prevalence_pct",
    "scatter_points",
]

SUMMARY_COLUMNS = [
    "feature",
    "n_with",
    "n_without",
    "prevalence_pct",
    "avg_ctr_with",
    "avg_ctr_without",
    "impact",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "low_n",
    "significant",
    "verdict",
    "lift_pct",
    "ci_low_fcr",
    "ci_high_fcr",
]
SIGNIFICANCE_LEVEL = 0.05
POINT_COLUMNS = ["image", "feature", "confidence", "ctr"]


def feature_summary(
    dataset: Dataset, filters: Filters | None = None, *, cache: AnalysisCache | None = None, wait=False, **criteria
) -> pd.DataFrame:
    """Per feature: n with/without, prevalence, CTR with and without, impact and its uncertainty.

    ``filters`` (default ``Filters()``), with any of its fields overridden by name in
    ``criteria`` (``confidence=0.5``, ...), selects the features and the test. ``cache`` keeps
    the permutation nulls between calls (without one they are drawn for this call only).

    Features outside [min_pct, max_pct] prevalence, or present in no image with a CTR, are
    dropped. ``weighting="mean"`` averages per-image CTRs, ``"impressions"`` divides total
    clicks by total impressions per group; either way impact is tested by a studentized
    permutation test (Welch's t or the delta-method z, see ``data.permutation``). Features
    with fewer than ``min_n`` images on either side keep their averages but get NaN
    statistics and ``low_n``. ``q_value`` is Benjamini-Hochberg over the returned
    features; ``verdict``, ``lift_pct`` and the false coverage rate adjusted interval
    ``ci_low_fcr``/``ci_high_fcr`` (at ``stats.verdict_fields(...)["fcr_level"]``) read them. Rows are ordered by impact, highest first (undefined impact last), then by name.
    Over a time window, a cache with a refiner may answer from a smaller null first (``data/refine.py``;
    ``refine.pending(frame)`` says so); ``wait`` asks for the full one.
    """
    filters = as_filters(filters, **criteria)
    confidence, min_pct, max_pct = filters.confidence, filters.min_pct, filters.max_pct
    min_n, weighting = filters.min_n, filters.weighting
    check_weighting(weighting, dataset)
    present = presence(dataset.confidences, confidence)
    known = dataset.has_ctr
    prevalence, present_known, n_with, prevalent = prevalence_filter(present, known, min_pct, max_pct)
    n_without = int(known.sum()) - n_with
    idx = np.flatnonzero(prevalent)
    if weighting == "mean":
        groups = _mean_groups(dataset.ctr[known], present_known, idx, _known_impressions(dataset), cache)
    else:
        groups = _impression_groups(
            dataset.clicks[known], dataset.impressions[known], present_known[:, idx], present.shape[1], cache
        )
    avg_with, avg_without, test, k, sums = groups
    impact = avg_with - avg_without
    table, pending = refine.null_table(test, cache, filters, wait)
    ci_low, ci_high, p_value = test.run(k, sums, impact, table=table)

    low_n = (n_with[idx] < min_n) | (n_without[idx] < min_n)
    ci_low[low_n] = ci_high[low_n] = p_value[low_n] = np.nan
    q_value = stats.benjamini_hochberg(p_value)
    answer = stats.verdict_fields(impact, q_value, low_n, avg_without, SIGNIFICANCE_LEVEL)
    ci_low_fcr, ci_high_fcr = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    tested = ~np.isnan(p_value)
    if tested.any():
        # The same null and tails at the false coverage rate's level, 0 excluded exactly where q < 0.05.
        at = np.flatnonzero(tested)
        ci_low_fcr[at], ci_high_fcr[at] = test.interval(
            k[at], sums[:, at], impact[at], 1.0 - answer["fcr_level"], q_value[at] < SIGNIFICANCE_LEVEL, table
        )

    # Highest impact first; NaN impact (feature in every image with a CTR) last; ties by name.
    names = dataset.features[idx].astype(str)
    order = np.lexsort((names, np.where(np.isnan(impact), np.inf, -impact)))
    idx = idx[order]
    return pd.DataFrame(
        {
            "feature": pd.Series(dataset.features[idx], dtype=object),
            "n_with": n_with[idx].astype(np.int64),
            "n_without": n_without[idx].astype(np.int64),
            "prevalence_pct": prevalence[idx],
            "avg_ctr_with": avg_with[order],
            "avg_ctr_without": avg_without[order],
            "impact": impact[order],
            "ci_low": ci_low[order],
            "ci_high": ci_high[order],
            "p_value": p_value[order],
            "q_value": q_value[order],
            "low_n": low_n[order],
            "significant": (q_value[order] < SIGNIFICANCE_LEVEL),
            "verdict": pd.Series(answer["verdict"][order], dtype=object),
            "lift_pct": answer["lift_pct"][order],
            "ci_low_fcr": ci_low_fcr[order],
            "ci_high_fcr": ci_high_fcr[order],
        },
        columns=SUMMARY_COLUMNS,
    ).pipe(refine.marked, pending)


def permutation_tests(dataset: Dataset, cache: AnalysisCache | None = None) -> list[permutation.StudentizedTest]:
    """The permutation tests summaries of ``dataset`` run, one per weighting it supports (none without CTRs).

    Their null tables are kept in ``cache`` (without one, drawn for each use).

    Their null tables depend only on the images' CTRs, so they can be drawn before any summary.
    """
    known = dataset.has_ctr
    if not known.any():
        return []
    n_tests = len(dataset.features)
    tests = [_mean_test(dataset.ctr[known], n_tests, _known_impressions(dataset), cache)]
    if dataset.has_counts:
        tests.append(_impressions_test(dataset.clicks[known], dataset.impressions[known], n_tests, cache))
    return tests


def _known_impressions(dataset: Dataset) -> np.ndarray | None:
    """The impressions of the images with a CTR, where every one has them (they floor the mean's variance)."""
    return dataset.impressions[dataset.has_ctr] if dataset.has_counts else None


def _mean_test(
    ctr: np.ndarray, n_tests: int, impressions: np.ndarray | None, cache: AnalysisCache | None
) -> permutation.StudentizedTest:
    units = ctr[:, None] if impressions is None else np.column_stack([ctr, impressions])
    return permutation.StudentizedTest("mean", units, n_tests=n_tests, cache=cache)


def _impressions_test(
    clicks: np.ndarray, impressions: np.ndarray, n_tests: int, cache: AnalysisCache | None
) -> permutation.StudentizedTest:
    units = np.column_stack([clicks, impressions])
    return permutation.StudentizedTest("impressions", units, n_tests=n_tests, cache=cache)


def _mean_groups(
    ctr: np.ndarray,
    present: np.ndarray,
    columns: np.ndarray,
    impressions: np.ndarray | None,
    cache: AnalysisCache | None,
):
    """Mean CTR with and without each selected feature, its test, group sizes and column sums."""
    avg_with, avg_without = _group_means(ctr, present, columns)
    test = _mean_test(ctr, present.shape[1], impressions, cache)
    selected = present[:, columns]
    return avg_with[columns], avg_without[columns], test, matrix.column_counts(selected), test.group_sums(selected)


def _impression_groups(
    clicks: np.ndarray, impressions: np.ndarray, selected: np.ndarray, n_tests: int, cache: AnalysisCache | None
):
    """Clicks / impressions with and without each feature, its test, group sizes and column sums."""
    test = _impressions_test(clicks, impressions, n_tests, cache)
    sums = test.group_sums(selected)
    rest = test.totals[:, None] - sums
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_with = sums[0] / sums[1]
        ratio_without = rest[0] / rest[1]
    return ratio_with, ratio_without, test, matrix.column_counts(selected), sums


def _group_means(ctr: np.ndarray, present: np.ndarray, columns: np.ndarray):
    """Mean CTR of the images with and without each feature in ``columns`` (NaN for an empty group).

    Each group is summed with numpy's own pairwise summation over the selected values, the
    arithmetic of ``frame.loc[mask, "ctr"].mean()``, so the numbers agree with a plain pandas
    computation to the last bit; a matrix product would differ in the last digits.
    """
    present = sp.csc_array(present) if not matrix.is_sparse(present) else present
    m = present.shape[1]
    avg_with = np.full(m, np.nan)
    avg_without = np.full(m, np.nan)
    for j in columns:
        rows = matrix.column_rows(present, j)
        with_ctr = ctr[rows]
        # The images without the feature: all but its rows, in order (np.delete copies them about
        # a fifth faster than a boolean mask does).
        without_ctr = np.delete(ctr, rows)
        if len(with_ctr):
            avg_with[j] = with_ctr.sum() / len(with_ctr)
        if len(without_ctr):
            avg_without[j] = without_ctr.sum() / len(without_ctr)
    return avg_with, avg_without


def scatter_points(dataset: Dataset, filters: Filters | None = None, features=None, **criteria) -> pd.DataFrame:
    """One row per (image with a CTR, feature present at ``filters.confidence``): image, feature, confidence, ctr.

    ``features`` (e.g. a summary's ``feature`` column) selects and orders the features; the
    ``feature`` column is categorical in that order. By default every feature is used.
    ``filters`` and ``criteria`` as in ``feature_summary``.
    """
    confidence = as_filters(filters, **criteria).confidence
    if features is None:
        order = np.arange(len(dataset.features))
    else:
        lookup = pd.Index(dataset.features, dtype=object)
        order = lookup.get_indexer(pd.Index(list(features), dtype=object))
        if (order < 0).any():
            missing = [f for f, i in zip(features, order) if i < 0]
            raise KeyError(f"unknown features: {missing[:5]}")
    known = np.flatnonzero(dataset.has_ctr)
    # Feature-major so that each feature's points are contiguous, in the requested order.
    feat_pos, image_rows, values = matrix.present_values(dataset.confidences, confidence, known, order)
    categories = pd.Index(dataset.features[order], dtype=object)
    return pd.DataFrame(
        {
            "image": pd.Series(dataset.images[image_rows], dtype=object),
            "feature": pd.Categorical.from_codes(feat_pos, categories=categories),
            "confidence": values,
            "ctr": dataset.ctr[image_rows],
        },
        columns=POINT_COLUMNS,
    )


def image_features(dataset: Dataset, image: str, confidence: float = 0.0) -> pd.DataFrame:
    """The features present in one image, highest confidence first."""
    rows = np.flatnonzero(dataset.images == image)
    if not len(rows):
        raise KeyError(f"unknown image: {image!r}")
    conf = matrix.row_values(dataset.confidences, rows[0])
    idx = np.flatnonzero(conf > confidence)
    idx = idx[np.argsort(-conf[idx], kind="stable")]
    return pd.DataFrame({"feature": dataset.features[idx], "confidence": conf[idx]})
