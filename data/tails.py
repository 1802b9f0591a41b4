"""One side of a permutation null table read: the share of resamples at least a value, the critical
value, and beyond the largest resample a generalised Pareto tail fitted to the largest ones.

A side holds its ``T`` largest resamples (``NullTable.upper``, or ``lower`` for the mirrored lower
tail) of ``B`` drawn; a value beyond all of them would get a p of ``1 / (B + 1)`` at best, so the
fitted tail (never lighter than exponential) extrapolates, and a feature far beyond every resample
can pass Benjamini-Hochberg among thousands of features. ``table`` is a ``permutation.NullTable``.
"""

from __future__ import annotations

import math

import numpy as np

TIE_RTOL = 1e-9  # a null statistic this close to the observed one counts as a tie (>=)


def one_sided_p(table, side: int, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of resamples on ``side`` at least ``x`` (upper tail of the side's values), counting the observed."""
    tail = table.upper if side == 0 else table.lower
    size = tail.shape[1]
    threshold = x - TIE_RTOL * np.abs(x)
    # Counting by comparison over each feature's row is one vectorised pass (F x T values); a
    # binary search per row needs a Python loop over the group sizes, which was slower.
    count = np.count_nonzero(tail[rows] >= threshold[:, None], axis=1)
    p = (1.0 + count) / (table.resamples + 1.0)
    beyond = np.flatnonzero(count >= size)
    if len(beyond):
        body = table.body[rows[beyond]] if side == 0 else -table.body[rows[beyond]]
        body_p = (1.0 + np.count_nonzero(body >= threshold[beyond, None], axis=1)) / (body.shape[1] + 1.0)
        p[beyond] = np.maximum(body_p, (1.0 + size) / (table.resamples + 1.0))
    past = np.flatnonzero(count == 0)
    if len(past):
        p[past] = np.fmin(p[past], tail_probability(table.tails[rows[past], side], x[past]))
    return p


def critical_ends(table, rows: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Each side's critical value for one-sided p <= alpha / 2, mirrored back for the lower side."""
    ends = []
    for side, tail in enumerate((table.upper, table.lower)):
        size = tail.shape[1]
        # (1 + count) / (B + 1) <= alpha / 2 exactly when count <= r: beyond the (r + 1)-th largest.
        r = math.floor(alpha / 2.0 * (table.resamples + 1.0) * (1 + 1e-12)) - 1
        if r >= 0:
            value = tail[rows, size - 1 - min(r, size - 1)]
        else:  # beyond every resample: the fitted tail's quantile, or the largest resample without one
            value = tail_quantile(table.tails[rows, side], alpha / 2.0)
            value = np.where(np.isnan(value), tail[rows, size - 1], value)
        ends.append(value if side == 0 else -value)
    return ends[1], ends[0]


def tail_probability(fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(statistic >= x) from a fitted tail ``(threshold, scale, shape, rate)`` rows; NaN without a fit."""
    threshold, scale, shape, rate = fit.T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        excess = np.maximum(x - threshold, 0.0) / scale
        heavy = rate * np.power(1.0 + shape * excess, -1.0 / np.where(shape > 0, shape, 1.0))
        return np.where(shape > 0, heavy, rate * np.exp(-excess))


def tail_quantile(fit: np.ndarray, probability: float) -> np.ndarray:
    """The value the fitted tail exceeds with ``probability`` (below its rate); NaN without a fit."""
    threshold, scale, shape, rate = fit.T
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(rate / probability)
        heavy = threshold + scale / np.where(shape > 0, shape, 1.0) * np.expm1(shape * log_ratio)
        return np.where(shape > 0, heavy, threshold + scale * log_ratio)


def fit_tails(tail: np.ndarray, resamples: int, count: int) -> np.ndarray:
    """Generalised Pareto tails ``(threshold, scale, shape, rate)`` of each row's ``count`` largest values.

    ``tail`` rows are a side's largest resamples, ascending. Probability-weighted moments
    (Hosking & Wallis 1987) give scale and shape in closed form for every row at once; a shape
    below 0 (a bounded tail) is replaced by an exponential tail of the same mean excess, which
    lies above it far out, so extrapolated p-values err on the large side. Rows whose largest
    values are not finite or are mostly tied (an atom-ridden discrete null) get no fit (NaN).
    """
    rows, size = tail.shape
    fit = np.full((rows, 4), np.nan)
    count = min(count, size - 1)
    if count < 20:
        return fit
    threshold = tail[:, size - 1 - count]
    excess = tail[:, size - count :] - threshold[:, None]  # ascending
    with np.errstate(invalid="ignore", divide="ignore"):
        a0 = excess.mean(axis=1)
        weights = (count - np.arange(1, count + 1)) / (count - 1.0)
        a1 = (excess * weights).mean(axis=1)
        shape = 2.0 - a0 / (a0 - 2.0 * a1)
        scale = 2.0 * a0 * a1 / (a0 - 2.0 * a1)
    distinct = np.count_nonzero(np.diff(tail[:, size - 1 - count :], axis=1) > 0, axis=1)
    usable = np.isfinite(excess).all(axis=1) & np.isfinite(threshold) & (a0 > 0) & (distinct >= 0.9 * count)
    bounded = ~(shape > 0)
    shape = np.where(bounded, 0.0, shape)
    scale = np.where(bounded, a0, scale)
    usable &= np.isfinite(scale) & (scale > 0)
    fit[usable] = np.column_stack([threshold, scale, shape, np.full(rows, count / (resamples + 1.0))])[usable]
    return fit


def largest(rows: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` largest values of each row (unordered): the tail a null table keeps of its draws."""
    width = rows.shape[1]
    if width <= count:
        return rows.copy()
    return np.partition(rows, width - count, axis=1)[:, width - count :]
