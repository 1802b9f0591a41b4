"""Uncertainty of impact: Welch intervals and tests, impression-weighted ratios, and FDR control.

Pure numpy/scipy, vectorised over features: each function takes one value per feature for
the images *with* the feature (suffix 1) and *without* it (suffix 2) and returns arrays.
Undefined results (too few images, no spread) are NaN; callers turn them into nulls.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE_LEVEL = 0.95


def welch(mean1, var1, n1, mean2, var2, n2, level: float = CONFIDENCE_LEVEL):
    """Welch-Satterthwaite interval and two-sided t-test of ``mean1 - mean2``.

    ``var`` is the sample variance (ddof=1) of each group. Returns ``(ci_low, ci_high, p)``,
    NaN where a group has fewer than two images or both groups have no spread.
    """
    mean1, var1, n1, mean2, var2, n2 = (np.asarray(a, dtype=np.float64) for a in (mean1, var1, n1, mean2, var2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = var1 / n1
        b = var2 / n2
        se = np.sqrt(a + b)
        dof = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        t_stat = (mean1 - mean2) / se
    defined = (n1 >= 2) & (n2 >= 2) & (se > 0) & np.isfinite(dof)
    dof = np.where(defined, dof, 1.0)
    p = np.where(defined, 2.0 * stats.t.sf(np.abs(np.where(defined, t_stat, 0.0)), dof), np.nan)
    half = stats.t.ppf(0.5 + level / 2.0, dof) * np.where(defined, se, np.nan)
    diff = mean1 - mean2
    return diff - half, diff + half, p


def ratio_difference(clicks1, impressions1, var1, clicks2, impressions2, var2, level: float = CONFIDENCE_LEVEL):
    """Normal interval and two-sided z-test of a difference of two click-through ratios.

    Each ratio is total clicks / total impressions of a group; ``var`` is its delta-method
    variance from :func:`ratio_variance`. Returns ``(ci_low, ci_high, p)``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = (
            np.asarray(clicks1, dtype=np.float64) / impressions1 - np.asarray(clicks2, dtype=np.float64) / impressions2
        )
        se = np.sqrt(np.asarray(var1) + np.asarray(var2))
        z = diff / se
    defined = np.isfinite(se) & (se > 0)
    p = np.where(defined, 2.0 * stats.norm.sf(np.abs(np.where(defined, z, 0.0))), np.nan)
    half = stats.norm.ppf(0.5 + level / 2.0) * np.where(defined, se, np.nan)
    return diff - half, diff + half, p


def ratio_variance(k, clicks, impressions, clicks_sq, clicks_impressions, impressions_sq):
    """Delta-method variance of R = sum(clicks) / sum(impressions) from a group's sums.

    Linearising R around its estimate gives per-image residuals ``(c_i - R n_i) / N``; their
    sum of squares with a k / (k - 1) small-sample factor is the variance (the usual
    ratio-estimator, cluster-robust form). The sum of squares is expanded into sums that a
    matrix product gives for every feature at once. NaN below two images.
    """
    k = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = clicks / impressions
        squares = clicks_sq - 2.0 * ratio * clicks_impressions + ratio**2 * impressions_sq
        var = np.maximum(squares, 0.0) / impressions**2 * k / (k - 1)
    return np.where((k >= 2) & (impressions > 0), var, np.nan)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN inputs stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = len(defined)
    if m == 0:
        return q
    order = defined[np.argsort(p[defined], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    # The running minimum from the largest p down keeps q monotone in p.
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q
