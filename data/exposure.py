"""The exposure reference: where shuffling whole images cannot stand for a group, a t conditional on exposures.

Where a side's no-effect variance floor binds on exposure atypical of the build (for the mean
weighting, :func:`data.stats.mean_floor_df`), the permutation null compares the group with groups
of typical exposure, as if a 50-impression CTR were as precise as a 5,000-impression one. There
``data.permutation.StudentizedTest`` takes the larger of the permutation p and the p of the
floored statistic against a t with the degrees of freedom ``floor_df`` gives, and the wider of the
two intervals, so that the interval still excludes 0 exactly when p is below its level.
"""

from __future__ import annotations

import numpy as np
from scipy.special import stdtr, stdtrit

from data import stats

# Per weighting, the degrees of freedom of the reference where it applies (NaN elsewhere).
FLOOR_REFERENCES = {"mean": stats.mean_floor_df}


def floor_df(kind: str, k, sums, totals, n: int, defined: np.ndarray) -> np.ndarray:
    """Per feature the reference's degrees of freedom where it applies, NaN elsewhere."""
    reference = FLOOR_REFERENCES.get(kind)
    if reference is None:
        return np.full(len(defined), np.nan)
    return np.where(defined, reference(k, sums, totals, n), np.nan)


def raise_p(p: np.ndarray, df: np.ndarray, statistic: np.ndarray) -> np.ndarray:
    """``p`` raised, where ``df`` is defined, to the two-sided p of ``statistic`` against a t with ``df`` (in place)."""
    binds = ~np.isnan(df)
    if binds.any():
        reference = 2.0 * stdtr(df[binds], -np.abs(statistic[binds]))
        p[binds] = np.minimum(np.maximum(p[binds], reference), 1.0)
    return p


def widen(c_low: np.ndarray, c_high: np.ndarray, df: np.ndarray, alpha: float) -> None:
    """The statistic's critical values widened, where ``df`` is defined, to the t's at ``alpha`` (in place)."""
    binds = ~np.isnan(df)
    if binds.any():
        quantile = -stdtrit(df[binds], alpha / 2.0)
        c_low[binds], c_high[binds] = np.minimum(c_low[binds], -quantile), np.maximum(c_high[binds], quantile)
