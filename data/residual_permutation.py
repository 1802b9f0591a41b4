"""Permutation p-values for one coefficient of a linear model, studentized with HC3.

Freedman and Lane's scheme: under the null that the feature has no effect beyond its
controls, the residuals of the model *without* the feature are close to exchangeable. Each
resample permutes them, fits the full model to them and recomputes the feature's HC3 t
statistic; p is the share of resamples at least as extreme as the observed t, counting the
observed one. This keeps p calibrated where the t distribution does not hold: a few images on
one side of a feature with CTRs as skewed as real ones (the reference data's 9-image
``headwear`` at threshold 0.5 gave p < 0.05 on 19 % of shuffled CTRs with the t distribution).

By Frisch-Waugh-Lovell a resample needs only per-image vectors of the fitted model: with
``w`` the feature's row of (X'X)^-1 X', ``r = w / w.w`` is the feature's presence with the
controls regressed out and ``e_Z = e + r b`` the residuals without the feature; for permuted
residuals ``v`` the coefficient is ``v.w`` and its HC3 variance ``sum c (M v)^2`` with
``c = w^2 / (1 - h)^2`` and ``M v = v - Q Q'v`` the residuals of the full model.

Resampling stops once 10 resamples reach the observed |t| (Besag and Clifford's sequential
p-value), so a feature far from significance costs a few hundred resamples and only small
p-values are resolved to 1 / ``total``.
"""

from __future__ import annotations

import math

import numpy as np

FIRST_RESAMPLES = 999  # shared permutations, and the most one pass uses
MIN_RESAMPLES = 199  # enough for the interval's 95 % quantile
STOP_AFTER = 10  # resamples at least as extreme as the observed |t|
SIGNIFICANCE = 0.05
CHUNK_CELLS = 1_000_000  # resamples x images gathered at a time
TIE_RTOL = 1e-9  # a resample this close to the observed |t| counts as at least as extreme


def resamples_for(n_tests: int) -> int:
    """Resamples needed for p to reach Benjamini-Hochberg's smallest threshold, 0.05 / n_tests."""
    return max(9_999, math.ceil(n_tests / SIGNIFICANCE) - 1)


def permutations(rng: np.random.Generator, count: int, n: int) -> np.ndarray:
    """``count`` random permutations of ``range(n)``, one per row."""
    return np.argsort(rng.random((count, n)), axis=1).astype(np.int32 if n < 2**31 else np.int64)


def statistics(values: np.ndarray, weights: np.ndarray, basis: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """|HC3 t| of the coefficient for each row of residuals ``values`` (resamples x images)."""
    coef = values @ weights
    resid = values - (values @ basis.T) @ basis
    variance = (resid * resid) @ scale
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(coef / np.sqrt(variance))


def permutation_test(fitted, first: np.ndarray, rng: np.random.Generator, total: int, level: float = 0.95):
    """``(p, critical |t| at level)`` of a fitted coefficient (data.regression.Fitted).

    ``first`` holds permutations every feature shares (drawing them costs more than using
    them); past them, each pass applies them to the residuals shuffled by a fresh permutation,
    which keeps every resample uniform and any two independent.
    """
    w = fitted.weights
    base = fitted.resid + w / (w @ w) * fitted.coef
    scale = w**2 / (1.0 - fitted.leverage) ** 2
    observed = abs(fitted.coef / fitted.se) * (1.0 - TIE_RTOL)
    step = max(MIN_RESAMPLES, CHUNK_CELLS // len(base))
    null: list[np.ndarray] = []
    count = drawn = 0
    values = base
    while drawn < total and (count < STOP_AFTER or drawn < MIN_RESAMPLES):
        offset = drawn % len(first)
        if drawn and not offset:
            values = base[rng.permutation(len(base))]
        rows = first[offset : offset + min(step, total - drawn, len(first) - offset)]
        stats_ = statistics(values[rows], w, fitted.basis, scale)
        count += int((stats_ >= observed).sum())
        drawn += len(rows)
        if drawn <= len(first):
            null.append(stats_)
    critical = float(np.quantile(np.concatenate([*null, [observed]]), level, method="higher"))
    return (1.0 + count) / (drawn + 1.0), critical
