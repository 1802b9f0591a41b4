"""Adjusted impact: a feature's effect on CTR with the features it travels with held fixed.

For each feature j, an ordinary least squares regression of per-image CTR on an intercept,
j's presence and the presence of its co-occurring features S_j; the adjusted impact is j's
coefficient, with HC3 (heteroskedasticity-consistent) standard errors on n - rank degrees of
freedom, as statsmodels' ``OLS(...).fit(cov_type="HC3", use_t=True)``. What decides
significance: for every feature whose t p is below PERMUTATION_GATE, an equal-tailed
permutation test of the same HC3 t statistic (data/residual_permutation.py), because the t
distribution is liberal with skewed or heavy-tailed CTRs at small and moderate group sizes;
its interval inverts the same test. Each feature also gets a verdict in words, its lift and a
false-coverage-rate interval that agrees with its q (``adjusted_columns``).

S_j is chosen from the presence matrix alone, never from CTR, so the p-values stay valid after
the selection: the other features with at least ``min_n`` images on each side whose phi
(Pearson correlation of the two presence columns over the images with a CTR) with j is at
least ``PHI_THRESHOLD`` in absolute value, the strongest first, at most ``max_controls``.
Features outside a summary's prevalence filters can be controls: the fit depends only on
(dataset, presence pattern, min_n), and is cached on that key (bounded in bytes, least
recently used dropped first). Long fits check the current request budget (data/budget.py).
Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from data import matrix
from data import stats as marginal
from data.adjusted_models import PERMUTATION_GATE as PERMUTATION_GATE
from data.adjusted_models import SIGNIFICANCE, FeatureFits, feature_model, fit_models
from data.adjusted_models import phi_matrix as phi_matrix
from data.analysis import DEFAULT_MIN_GROUP_SIZE, Dataset, feature_summary, presence
from data.cache import AnalysisCache
from data.filters import Filters, as_filters
from data.residual_permutation import critical_values

PHI_THRESHOLD = 0.05
# At most this many controls per feature, the strongest |phi| first, and at most one per
# CONTROLS_PER_IMAGES images with a CTR: the cost of a fit then grows linearly in features, and
# every model keeps most of its degrees of freedom (350 controls on 300 images, which |phi| >= 0.05
# selects among 1,000 random features, leave none).
MAX_CONTROLS = 30
CONTROLS_PER_IMAGES = 10
CONFIDENCE_LEVEL = 0.95
ADJUSTED_COLUMNS = [
    "adjusted_impact",
    "adjusted_ci_low",
    "adjusted_ci_high",
    "adjusted_p_value",
    "adjusted_q_value",
    "adjusted_controls",
    "adjusted_verdict",
    "adjusted_lift_pct",
    "adjusted_ci_low_fcr",
    "adjusted_ci_high_fcr",
]
ADJUSTED_UNAVAILABLE = (
    "adjusted impact is computed for weighting=mean only: an impression-weighted model with the same "
    "controls is not offered until its p-values pass the null calibration the marginal ones pass"
)


@dataclass(frozen=True, eq=False)
class AdjustedFit:
    """Per feature of a dataset at one presence pattern: the adjusted estimate, its interval and p.

    ``p_value`` is an equal-tailed Freedman-Lane permutation p of the HC3 t for every feature
    whose t-distribution p is below PERMUTATION_GATE, and the t test's above it (far from any
    decision); never below ``floor`` (2 / C(images, images on the smaller side)). ``interval``
    inverts the same test at any level; ``ci_low``/``ci_high`` are its 95 % interval. ``t_*``
    keep the HC3 t test's for every feature.

    Arrays are aligned with ``dataset.features``; NaN where a feature was not fitted (fewer
    than ``min_n`` images with a CTR on a side) or its statistics are undefined. ``controls``
    holds the column indices of the controls in each model and ``phi`` their phi with the
    feature; ``dropped`` the (index, reason, phi) of controls left out because they were
    collinear with the feature or with stronger controls. ``nulls`` maps a permuted feature's
    index to its null's tails (see data.residual_permutation.FreedmanLane.tails).
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    controls: list[np.ndarray]
    phi: list[np.ndarray]
    dropped: list[list[tuple[int, str, float]]]
    t_p_value: np.ndarray  # HC3 t test alone, as statsmodels gives it
    t_ci_low: np.ndarray
    t_ci_high: np.ndarray
    floor: np.ndarray
    nulls: dict[int, tuple[np.ndarray, np.ndarray, int]]

    @property
    def nbytes(self) -> int:
        """Memory held by the fit, estimated from its arrays (a dropped control counted as 100 bytes)."""
        arrays = (self.estimate, self.se, self.df, self.ci_low, self.ci_high, self.p_value)
        arrays += (self.t_p_value, self.t_ci_low, self.t_ci_high, self.floor)
        return (
            sum(a.nbytes for a in arrays)
            + sum(c.nbytes + 100 for c in self.controls)  # plus each array's own overhead
            + sum(f.nbytes + 100 for f in self.phi)
            + sum(100 * (len(d) + 1) for d in self.dropped)
            + sum(low.nbytes + high.nbytes + 200 for low, high, _ in self.nulls.values())
        )

    def interval(self, alpha: float, index=None) -> tuple[np.ndarray, np.ndarray]:
        """The interval at level 1 - alpha of the features at ``index`` (default all), from the test that gives p.

        It holds 0 exactly when p > alpha: for a permuted feature it is the set of effects the
        permutation test would not reject at alpha (the null's quantiles around the estimate);
        for the others the t interval, which holds 0 as their p is above PERMUTATION_GATE. Where
        the resamples cannot resolve that level (or p is held up by its floor) the side toward 0
        reaches it.
        """
        index = np.arange(len(self.estimate)) if index is None else np.asarray(index, dtype=np.int64)
        est, se, df = self.estimate[index], self.se[index], self.df[index]
        with np.errstate(invalid="ignore"):
            t_alpha = stats.t.ppf(1.0 - alpha / 2.0, np.where(df >= 1, df, np.nan))
        low, high = est - t_alpha * se, est + t_alpha * se
        for pos, j in enumerate(index.tolist()):
            null = self.nulls.get(j)
            if null is None:
                continue
            lo, hi = critical_values(*null, alpha)
            # Beyond the resamples drawn, the t quantile (at least as wide as it is liberal).
            lo = lo if np.isfinite(lo) else -t_alpha[pos]
            hi = hi if np.isfinite(hi) else t_alpha[pos]
            low[pos], high[pos] = est[pos] - hi * se[pos], est[pos] - lo * se[pos]
        holds = self.p_value[index] > alpha
        low = np.where(holds, np.minimum(low, 0.0), low)
        high = np.where(holds, np.maximum(high, 0.0), high)
        return low, high


def max_controls(n_images: int) -> int:
    """How many controls a feature's model may hold with ``n_images`` images with a CTR."""
    return int(min(MAX_CONTROLS, max(0, n_images // CONTROLS_PER_IMAGES)))


def fit_adjusted(
    dataset: Dataset,
    confidence: float = 0.0,
    *,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    phi_threshold=PHI_THRESHOLD,
    cache: AnalysisCache | None = None,
) -> AdjustedFit:
    """Adjusted impact of every feature at one threshold (kept in ``cache`` per dataset, presence pattern and min_n).

    Checks the current request budget (data/budget.py) between chunks of features.
    """
    present = presence(dataset.confidences, confidence)
    key = fit_key(dataset, present, min_n, phi_threshold)
    # Fits of every dataset and threshold, least recently used dropped first beyond the cache's share.
    fits = (cache or AnalysisCache(0)).adjusted_fits  # no cache: a fit for this call only
    cached = fits.get(key)
    if cached is not None:
        return cached
    with (cache or AnalysisCache(0)).computing(running_key(key)):
        fit = _fit(dataset, present, min_n, phi_threshold)
    fits.discard(lambda k: k[0]() is None)  # fits of datasets no longer used anywhere
    fits.put(key, fit, fit.nbytes)
    return fit


def fit_key(dataset: Dataset, present, min_n: int, phi_threshold: float) -> tuple:
    """The key of a fit in the cache's ``adjusted_fits``."""
    # Keyed by the presence pattern, not the float: how many values lie above the threshold
    # can only stay the same between two thresholds if no value lies between them, and then
    # every feature is present on the same images. A weak reference: the cache keeps no
    # dataset alive (the store caches those per build and CTR set).
    return (weakref.ref(dataset), int(present.nnz), int(min_n), float(phi_threshold))


def running_key(key: tuple) -> tuple:
    """The key under which the cache marks the fit of ``key`` as running (``AnalysisCache.computing``)."""
    return ("adjusted_fit", *key)


def _canonical(dataset: Dataset, present) -> tuple[np.ndarray, np.ndarray, object]:
    """Images with a CTR and features, each in name order, and the presence matrix in that order (CSC)."""
    # The same data listed in another order go through the same arithmetic and the same
    # resamples, so they give the same numbers.
    rows = np.flatnonzero(dataset.has_ctr)
    rows = rows[np.argsort(dataset.images[rows].astype(str), kind="stable")]
    columns = np.argsort(dataset.features.astype(str), kind="stable")
    return rows, columns, matrix.to_csc(present)[rows][:, columns]


def _fit(dataset: Dataset, present, min_n: int, phi_threshold: float) -> AdjustedFit:
    rows, columns, present = _canonical(dataset, present)
    y = dataset.ctr[rows]
    n, m = present.shape
    count = matrix.column_counts(present)
    testable = np.flatnonzero((count >= min_n) & (n - count >= min_n))
    fits = FeatureFits.empty(m)
    if len(testable) and n > 2:
        # The regression needs the tested columns dense: n x tested floats, not the whole build.
        tested = present[:, testable].toarray()
        names = dataset.features[columns].astype(str)
        fit_models(fits, tested, testable, y, names, phi_threshold, max_controls(n))
    return _in_dataset_order(fits, columns, n, count)


def _in_dataset_order(fits: FeatureFits, columns: np.ndarray, n: int, count: np.ndarray) -> AdjustedFit:
    """The AdjustedFit of features fitted in name order ``columns``, with the floor of p and the t test's."""
    estimate, se, df = fits.estimate, fits.se, fits.df
    floor = np.minimum(1.0, 2.0 / _ways(n, np.minimum(count, n - count)))
    p = np.maximum(fits.p, floor)  # NaN stays NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        t_p = np.where(np.isnan(p), np.nan, 2.0 * stats.t.sf(np.abs(estimate / se), df))
        t_half = np.where(np.isnan(p), np.nan, stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2.0, df) * se)
    # Back to the dataset's order of features: canonical position back[k] holds feature k.
    m = len(columns)
    back = np.empty(m, dtype=np.int64)
    back[columns] = np.arange(m)
    fit = AdjustedFit(
        estimate[back],
        se[back],
        df[back],
        np.full(m, np.nan),
        np.full(m, np.nan),
        p[back],
        [columns[fits.controls[k]] for k in back],
        [fits.phis[k] for k in back],
        [[(int(columns[c]), why, value) for c, why, value in fits.dropped[k]] for k in back],
        t_p[back],
        (estimate - t_half)[back],
        (estimate + t_half)[back],
        floor[back],
        {int(columns[j]): test.tails() for j, test in fits.tests.items()},
    )
    low, high = fit.interval(1.0 - CONFIDENCE_LEVEL)
    fit.ci_low[:], fit.ci_high[:] = low, high
    return fit


def _ways(n: int, k: np.ndarray) -> np.ndarray:
    """C(n, k), as a float (inf past the float range)."""
    with np.errstate(over="ignore"):
        return np.exp(special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0))


def adjusted_columns(
    summary: pd.DataFrame,
    dataset: Dataset,
    filters: Filters | None = None,
    *,
    cache: AnalysisCache | None = None,
    fit: AdjustedFit | None = None,
    **criteria,
) -> pd.DataFrame:
    """``summary`` (from feature_summary under the same filters) with the adjusted columns; q is BH over its rows.

    From ``fit`` when given (the dataset's at the filters' confidence and min_n), else fitted or
    read from ``cache``. Under impression weighting the columns are added empty: see
    ADJUSTED_UNAVAILABLE.
    """
    filters = as_filters(filters, **criteria)
    out = summary.copy()
    if filters.weighting != "mean":
        for column in ADJUSTED_COLUMNS:
            textual = column in ("adjusted_controls", "adjusted_verdict")
            out[column] = pd.Series([None] * len(out), dtype=object) if textual else np.nan
        return out
    if fit is None:
        fit = fit_adjusted(dataset, filters.confidence, min_n=filters.min_n, cache=cache)
    index = pd.Index(dataset.features, dtype=object).get_indexer(summary["feature"].to_numpy(dtype=object))
    names = dataset.features
    out["adjusted_impact"] = fit.estimate[index]
    out["adjusted_ci_low"] = fit.ci_low[index]
    out["adjusted_ci_high"] = fit.ci_high[index]
    out["adjusted_p_value"] = fit.p_value[index]
    p = fit.p_value[index]
    q = marginal.benjamini_hochberg(p)
    out["adjusted_q_value"] = q
    out["adjusted_controls"] = pd.Series(
        [
            [str(names[c]) for c in fit.controls[j]]
            + [f"{names[c]} (dropped: {reason})" for c, reason, _ in fit.dropped[j]]
            for j in index
        ],
        index=out.index,
        dtype=object,
    )
    reading = marginal.verdict_fields(fit.estimate[index], q, out["low_n"], out["avg_ctr_without"], SIGNIFICANCE)
    out["adjusted_verdict"] = reading["verdict"]
    out["adjusted_lift_pct"] = reading["lift_pct"]
    level = reading["fcr_level"]
    if math.isnan(level):
        low = high = np.full(len(out), np.nan)
    else:
        low, high = fit.interval(1.0 - level, index)
    # The interval excludes 0 exactly when q < 0.05 (see fcr_level); NaN where there is no p.
    low = np.where(q >= SIGNIFICANCE, np.minimum(low, 0.0), low)
    high = np.where(q >= SIGNIFICANCE, np.maximum(high, 0.0), high)
    out["adjusted_ci_low_fcr"] = np.where(np.isnan(q), np.nan, low)
    out["adjusted_ci_high_fcr"] = np.where(np.isnan(q), np.nan, high)
    return out


def adjusted_summary(
    dataset: Dataset, filters: Filters | None = None, *, cache: AnalysisCache | None = None, **criteria
) -> pd.DataFrame:
    """feature_summary with the adjusted columns (empty under impression weighting); arguments as feature_summary's."""
    filters = as_filters(filters, **criteria)
    summary = feature_summary(dataset, filters, cache=cache)
    return adjusted_columns(summary, dataset, filters, cache=cache)


def cooccurring(
    dataset: Dataset, feature: str, filters: Filters | None = None, *, cache: AnalysisCache | None = None, **criteria
):
    """The controls of one feature's adjusted model (at ``filters``' confidence and min_n): feature, phi, dropped reason (None if kept).

    Chosen from the presence matrix as ``fit_adjusted`` chooses them, without fitting any model:
    cheap at any size. ``cache`` is accepted for symmetry with the other functions and not used.
    """
    filters = as_filters(filters, **criteria)
    found = np.flatnonzero(dataset.features == feature)
    if not len(found):
        raise KeyError(f"unknown feature: {feature!r}")
    _, columns, present = _canonical(dataset, presence(dataset.confidences, filters.confidence))
    n = present.shape[0]
    count = matrix.column_counts(present)
    testable = np.flatnonzero((count >= filters.min_n) & (n - count >= filters.min_n))
    pos = np.flatnonzero(columns[testable] == found[0])
    names = dataset.features
    if not len(pos) or n <= 2:
        return pd.DataFrame({"feature": [], "phi": [], "dropped": []}).astype({"feature": object, "dropped": object})
    kept, phi, dropped = feature_model(present, int(pos[0]), testable, PHI_THRESHOLD, max_controls(n))
    rows = [(names[columns[c]], float(p), None) for c, p in zip(kept, phi)]
    rows += [(names[columns[c]], value, reason) for c, reason, value in dropped]
    return pd.DataFrame(rows, columns=["feature", "phi", "dropped"])
