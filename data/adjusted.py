"""Adjusted impact: a feature's effect on CTR with the features it travels with held fixed.

For each feature j, an ordinary least squares regression of per-image CTR on an intercept,
j's presence and the presence of its co-occurring features S_j; the adjusted impact is j's
coefficient, with HC3 (heteroskedasticity-consistent) standard errors, t intervals and p on
n - rank degrees of freedom, as statsmodels' ``OLS(...).fit(cov_type="HC3", use_t=True)``.
What decides significance: for a feature with few images on a side whose t p is below
PERMUTATION_GATE, p and the interval come from a permutation test of the same HC3 t statistic
(data/residual_permutation.py), because the t distribution is liberal there with skewed CTRs.

S_j is chosen from the presence matrix alone, never from CTR, so the p-values stay valid after
the selection: every other feature with at least ``min_n`` images on each side whose phi
(Pearson correlation of the two presence columns over the images with a CTR) with j is at
least ``PHI_THRESHOLD`` in absolute value. Features outside a summary's prevalence filters can
be controls: the fit depends only on (dataset, threshold, min_n), and is cached on that key
(bounded in bytes, least recently used dropped first).
Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from data import matrix
from data import stats as marginal
from data.analysis import DEFAULT_MIN_GROUP_SIZE, Dataset, feature_summary, presence
from data.cache import AnalysisCache
from data.filters import Filters, as_filters
from data.regression import batched_hc3, hc3, independent_columns
from data.residual_permutation import FIRST_RESAMPLES, permutation_test, permutations, resamples_for

PHI_THRESHOLD = 0.05
CONFIDENCE_LEVEL = 0.95
ADJUSTED_COLUMNS = [
    "adjusted_impact",
    "adjusted_ci_low",
    "adjusted_ci_high",
    "adjusted_p_value",
    "adjusted_q_value",
    "adjusted_controls",
]
ADJUSTED_UNAVAILABLE = (
    "adjusted impact is computed for weighting=mean only: an impression-weighted model with the same "
    "controls is not offered until its p-values pass the null calibration the marginal ones pass"
)
# For a feature with fewer than PERMUTATION_MAX_SIDE images on a side and a t-distribution p
# below PERMUTATION_GATE, a permutation test decides p (see data/residual_permutation.py):
# shuffled CTRs showed the t distribution liberal there (20 % p < 0.05 at 9 images) and
# calibrated or conservative elsewhere (3.5 % at 659 x 480 with ~80 controls).
PERMUTATION_GATE = 0.2
PERMUTATION_MAX_SIDE = 30


@dataclass(frozen=True, eq=False)
class AdjustedFit:
    """Per feature of a dataset at one threshold: the adjusted estimate, its interval and p.

    ``p_value`` and the interval are the HC3 t test's, except for features with fewer than
    PERMUTATION_MAX_SIDE images on a side and a t p below PERMUTATION_GATE: there a permutation
    test's (p, and the interval from the permutation quantile of |t|). ``t_*`` keep the t
    test's for every feature.

    Arrays are aligned with ``dataset.features``; NaN where a feature was not fitted (fewer
    than ``min_n`` images with a CTR on a side) or its statistics are undefined. ``controls``
    holds the column indices of the controls in each model and ``phi`` their phi with the
    feature; ``dropped`` the (index, reason, phi) of controls left out because they were
    collinear with the feature or with stronger controls.
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

    @property
    def nbytes(self) -> int:
        """Memory held by the fit, estimated from its arrays (a dropped control counted as 100 bytes)."""
        arrays = (self.estimate, self.se, self.df, self.ci_low, self.ci_high, self.p_value)
        arrays += (self.t_p_value, self.t_ci_low, self.t_ci_high)
        return (
            sum(a.nbytes for a in arrays)
            + sum(c.nbytes + 100 for c in self.controls)  # plus each array's own overhead
            + sum(f.nbytes + 100 for f in self.phi)
            + sum(100 * (len(d) + 1) for d in self.dropped)
        )


def phi_matrix(present: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of columns of a dense boolean matrix; NaN for a constant column."""
    n = present.shape[0]
    # float32 products of 0/1 are exact integers below 2**24 images and twice as fast.
    exact = n < 2**24
    x = present.astype(np.float32 if exact else np.float64)
    both = (x.T @ x).astype(np.float64)
    count = np.diag(both).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sqrt(count * (n - count))
        return (n * both - np.outer(count, count)) / np.outer(spread, spread)


def fit_adjusted(
    dataset: Dataset,
    confidence: float = 0.0,
    *,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    phi_threshold=PHI_THRESHOLD,
    cache: AnalysisCache | None = None,
) -> AdjustedFit:
    """Adjusted impact of every feature at one threshold (kept in ``cache`` per dataset, threshold and min_n)."""
    # A weak reference: the cache keeps no dataset alive (the store caches those per build and CTR set).
    key = (weakref.ref(dataset), float(confidence), int(min_n), float(phi_threshold))
    # Fits of every dataset and threshold, least recently used dropped first beyond the cache's share.
    fits = (cache or AnalysisCache(0)).adjusted_fits  # no cache: a fit for this call only
    cached = fits.get(key)
    if cached is not None:
        return cached
    fit = _fit(dataset, confidence, min_n, phi_threshold)
    fits.discard(lambda k: k[0]() is None)  # fits of datasets no longer used anywhere
    fits.put(key, fit, fit.nbytes)
    return fit


def _fit(dataset: Dataset, confidence: float, min_n: int, phi_threshold: float) -> AdjustedFit:
    known = dataset.has_ctr
    y = dataset.ctr[known]
    present = matrix.keep_rows(presence(dataset.confidences, confidence), known)
    n, m = present.shape
    count = matrix.column_counts(present)
    testable = np.flatnonzero((count >= min_n) & (n - count >= min_n))

    estimate, se, df, p, critical = (np.full(m, np.nan) for _ in range(5))
    controls: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * m
    phis: list[np.ndarray] = [np.empty(0)] * m
    dropped: list[list[tuple[int, str, float]]] = [[] for _ in range(m)]
    if len(testable) and n > 2:
        # The regression needs the tested columns dense: n x tested floats, not the whole build.
        tested = present[:, testable].toarray()
        phi = phi_matrix(tested)
        np.fill_diagonal(phi, 0.0)
        # Column 0 is the intercept, column t + 1 the t-th testable feature.
        design = np.hstack([np.ones((n, 1)), tested.astype(np.float64)])
        models = []
        for pos in range(len(testable)):
            # Strongest co-occurrence first, so that of two collinear controls the weaker goes.
            near = np.flatnonzero(np.abs(phi[pos]) >= phi_threshold)
            near = near[np.argsort(-np.abs(phi[pos, near]), kind="stable")]
            models.append(np.concatenate(([0, pos + 1], near + 1)))
        # The same data give the same resamples, so the page and the API never disagree.
        rng = np.random.default_rng([n, len(testable), int(np.round(y.sum() * 1e12)) % 2**63])
        # Drawn when a feature first needs them: most builds need few or none.
        first = functools.cache(lambda: permutations(rng, FIRST_RESAMPLES, n))
        total = resamples_for(len(testable))
        for pos, fitted in batched_hc3(design, y, models):
            j = testable[pos]
            cols = models[pos]
            if fitted is None:
                kept, why = independent_columns(design[:, cols])
                dropped[j] = [
                    (int(testable[cols[k] - 1]), _reason(on_j, phi[pos, cols[k] - 1]), float(phi[pos, cols[k] - 1]))
                    for k, on_j in why.items()
                ]
                cols = cols[kept]
                fitted = hc3(design[:, cols], y)
            controls[j] = testable[cols[2:] - 1]
            phis[j] = phi[pos, cols[2:] - 1]
            estimate[j], se[j], df[j] = fitted.coef, fitted.se, fitted.df
            if np.isfinite(fitted.se) and fitted.se > 0:
                side = min(count[j], n - count[j])
                p[j], critical[j] = _p_value(fitted, side, first, rng, total)

    half = critical * se
    with np.errstate(invalid="ignore", divide="ignore"):
        t_p = np.where(np.isnan(p), np.nan, 2.0 * stats.t.sf(np.abs(estimate / se), df))
        t_half = np.where(np.isnan(p), np.nan, stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2.0, df) * se)
    return AdjustedFit(
        estimate,
        se,
        df,
        estimate - half,
        estimate + half,
        p,
        controls,
        phis,
        dropped,
        t_p,
        estimate - t_half,
        estimate + t_half,
    )


def _p_value(fitted, side: int, first, rng, total) -> tuple[float, float]:
    """p and critical |t| of one coefficient: the t distribution's, or a permutation test's for a
    feature with few images on a side whose t p is below the gate."""
    t_p = float(2.0 * stats.t.sf(abs(fitted.coef / fitted.se), fitted.df))
    if t_p >= PERMUTATION_GATE or side >= PERMUTATION_MAX_SIDE:
        return t_p, float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2.0, fitted.df))
    return permutation_test(fitted, first(), rng, total, CONFIDENCE_LEVEL)


def _reason(dependent_on_j: bool, phi: float) -> str:
    if dependent_on_j and phi > 0:
        return "same images as the feature"
    if dependent_on_j:
        return "exactly the images without the feature"
    return "collinear with the other controls"


def adjusted_columns(
    summary: pd.DataFrame,
    dataset: Dataset,
    filters: Filters | None = None,
    *,
    cache: AnalysisCache | None = None,
    **criteria,
) -> pd.DataFrame:
    """``summary`` (from feature_summary under the same filters) with the adjusted columns; q is BH over its rows.

    Under impression weighting the columns are added empty: see ADJUSTED_UNAVAILABLE.
    """
    filters = as_filters(filters, **criteria)
    out = summary.copy()
    if filters.weighting != "mean":
        for column in ADJUSTED_COLUMNS:
            out[column] = pd.Series([None] * len(out), dtype=object) if column == "adjusted_controls" else np.nan
        return out
    fit = fit_adjusted(dataset, filters.confidence, min_n=filters.min_n, cache=cache)
    index = pd.Index(dataset.features, dtype=object).get_indexer(summary["feature"].to_numpy(dtype=object))
    names = dataset.features
    out["adjusted_impact"] = fit.estimate[index]
    out["adjusted_ci_low"] = fit.ci_low[index]
    out["adjusted_ci_high"] = fit.ci_high[index]
    out["adjusted_p_value"] = fit.p_value[index]
    out["adjusted_q_value"] = marginal.benjamini_hochberg(fit.p_value[index])
    out["adjusted_controls"] = pd.Series(
        [
            [str(names[c]) for c in fit.controls[j]]
            + [f"{names[c]} (dropped: {reason})" for c, reason, _ in fit.dropped[j]]
            for j in index
        ],
        index=out.index,
        dtype=object,
    )
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
    """The controls of one feature's adjusted model (at ``filters``' confidence and min_n): feature, phi, dropped reason (None if kept)."""
    filters = as_filters(filters, **criteria)
    fit = fit_adjusted(dataset, filters.confidence, min_n=filters.min_n, cache=cache)
    found = np.flatnonzero(dataset.features == feature)
    if not len(found):
        raise KeyError(f"unknown feature: {feature!r}")
    j = found[0]
    names = dataset.features
    rows = [(names[c], float(p), None) for c, p in zip(fit.controls[j], fit.phi[j])]
    rows += [(names[c], phi, reason) for c, reason, phi in fit.dropped[j]]
    return pd.DataFrame(rows, columns=["feature", "phi", "dropped"])
