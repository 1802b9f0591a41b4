"""Equal-tailed permutation p-values and intervals for one coefficient of a linear model, studentized with HC3.

Freedman and Lane's scheme: under the null that the feature has no effect beyond its
controls, the residuals of the model *without* the feature are close to exchangeable. Each
resample permutes them, fits the full model to them and recomputes the feature's signed HC3 t
statistic. p is equal-tailed: twice the smaller of the shares of resamples at or above and at
or below the observed t, counting the observed one. With skewed CTRs the null of t is skewed
(for a small group of a right-skewed pool, strongly to the left), so comparing |t| with the
null's |t| would make positive effects nearly unreachable; the t distribution is liberal there
(shuffled CTRs, lognormal sigma 1: p < 0.05 in 11 % of tests for 30-image features).

By Frisch-Waugh-Lovell a resample needs only per-image vectors of the fitted model: with
``w`` the feature's row of (X'X)^-1 X', ``r = w / w.w`` is the feature's presence with the
controls regressed out and ``e_Z = e + r b`` the residuals without the feature; for permuted
residuals ``v`` the coefficient is ``v.w`` and its HC3 variance ``sum c (M v)^2`` with
``c = w^2 / (1 - h)^2`` and ``M v = v - Q Q'v`` the residuals of the full model.

Resampling can stop and resume (``FreedmanLane.extend``): once 10 resamples reach the
observed t in the smaller tail the p-value is resolved (Besag and Clifford's sequential
p-value), so a feature far from significance costs a few hundred resamples and only small
p-values are resolved further, as far as the caller asks.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta

FIRST_RESAMPLES = 999  # shared permutations, and the most one pass uses
MIN_RESAMPLES = 199  # enough for the interval's 95 % quantiles
STOP_AFTER = 10  # resamples in the smaller tail at or beyond the observed t
SIGNIFICANCE = 0.05
CHUNK_CELLS = 1_000_000  # resamples x images gathered at a time
TIE_RTOL = 1e-9  # a resample this close to the observed t counts as at or beyond it
# Each feature keeps the most extreme resamples on each side: enough for an interval at any
# level down to 1 - TAIL_SHARE * 2.
TAIL_SHARE = 0.025


def resamples_for(n_tests: int) -> int:
    """Resamples for an equal-tailed p to fall strictly below Benjamini-Hochberg's smallest threshold, 0.05 / n_tests."""
    return max(19_999, math.ceil(2 * n_tests / SIGNIFICANCE))


def permutations(rng: np.random.Generator, count: int, n: int) -> np.ndarray:
    """``count`` random permutations of ``range(n)``, one per row."""
    return np.argsort(rng.random((count, n)), axis=1).astype(np.int32 if n < 2**31 else np.int64)


def statistics(values: np.ndarray, weights: np.ndarray, basis: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Signed HC3 t of the coefficient for each row of residuals ``values`` (resamples x images)."""
    return _Projector(weights, basis, scale)(values)


class _Projector:
    """``statistics`` for one fitted model, with what every resample shares computed once.

    The HC3 variance ``sum c (v - Q'Q v)^2`` expands to ``(v*v).c - 2 u.s + u G u`` with
    ``u = Q v``, ``s = Q (c v)`` and ``G = Q diag(c) Q'``: one product of the resamples with an
    images x (2 columns + 1) matrix instead of two, and no resamples x images temporaries but one.
    """

    def __init__(self, weights: np.ndarray, basis: np.ndarray, scale: np.ndarray):
        self.k = len(basis)
        self.scale = scale
        self.combined = np.ascontiguousarray(np.vstack([weights[None, :], basis, basis * scale]).T)
        self.gram = (basis * scale) @ basis.T

    def __call__(self, values: np.ndarray) -> np.ndarray:
        k = self.k
        products = values @ self.combined
        coef, u, s = products[:, 0], products[:, 1 : k + 1], products[:, k + 1 :]
        variance = (values * values) @ self.scale - 2.0 * np.einsum("bk,bk->b", u, s)
        variance += np.einsum("bk,bk->b", u @ self.gram, u)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(variance > 0, coef / np.sqrt(variance), np.nan)


class FreedmanLane:
    """The permutation null of one fitted coefficient (data.regression.Fitted), drawn as far as asked."""

    def __init__(self, fitted, rng_factory):
        w = fitted.weights
        self.base = fitted.resid + w / (w @ w) * fitted.coef
        self._statistics = _Projector(w, fitted.basis, w**2 / (1.0 - fitted.leverage) ** 2)
        self.observed = fitted.coef / fitted.se
        slack = abs(self.observed) * TIE_RTOL
        self._at_or_above, self._at_or_below = self.observed - slack, self.observed + slack
        self.upper = self.lower = self.drawn = 0
        self._rng_factory = rng_factory  # called once, if the shared permutations run out
        self._rng = None
        self._values = self.base
        self._null: list[np.ndarray] = []

    @property
    def resolved(self) -> bool:
        """Whether p is resolved (enough resamples in its smaller tail)."""
        return min(self.upper, self.lower) >= STOP_AFTER and self.drawn >= MIN_RESAMPLES

    @property
    def p_value(self) -> float:
        """Equal-tailed p: twice the smaller one-sided share, counting the observed resample."""
        return min(1.0, 2.0 * (1.0 + min(self.upper, self.lower)) / (self.drawn + 1.0))

    def p_lower_bound(self, confidence: float) -> float:
        """A lower confidence bound on the p that unlimited resamples would give (Clopper-Pearson on the smaller tail)."""
        hits = min(self.upper, self.lower)
        if hits == 0:
            return 0.0
        return min(1.0, 2.0 * float(beta.ppf(1.0 - confidence, hits, self.drawn - hits + 1)))

    def extend(self, first: np.ndarray, until: int) -> None:
        """Draw resamples until p is resolved or ``until`` have been drawn.

        ``first`` holds permutations every feature shares (drawing them costs more than using
        them); past them, each pass applies them to the residuals shuffled by a fresh
        permutation, which keeps every resample uniform and any two independent.
        """
        most = max(MIN_RESAMPLES, CHUNK_CELLS // len(self.base))
        while self.drawn < until and not self.resolved:
            offset = self.drawn % len(first)
            if self.drawn and not offset:
                if self._rng is None:
                    self._rng = self._rng_factory()
                self._values = self.base[self._rng.permutation(len(self.base))]
            # MIN_RESAMPLES first, then doubling: most features are resolved after the first chunk.
            step = min(most, max(MIN_RESAMPLES, self.drawn))
            rows = first[offset : offset + min(step, until - self.drawn, len(first) - offset)]
            stats_ = self._statistics(self._values[rows])
            # A resample without a statistic (no spread left) counts as extreme on both sides.
            undefined = np.isnan(stats_)
            self.upper += int(((stats_ >= self._at_or_above) | undefined).sum())
            self.lower += int(((stats_ <= self._at_or_below) | undefined).sum())
            self.drawn += len(rows)
            self._null.append(stats_[~undefined])

    def tails(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The smallest and largest resampled t (ascending, descending) and the count of draws plus one."""
        null = np.sort(np.concatenate(self._null)) if self._null else np.empty(0)
        keep = math.ceil(TAIL_SHARE * (self.drawn + 1)) + 1
        return null[:keep].copy(), null[::-1][:keep].copy(), self.drawn + 1


def critical_values(low: np.ndarray, high: np.ndarray, count: int, alpha: float) -> tuple[float, float]:
    """The t values bounding ``{t : equal-tailed p(t) > alpha}`` given a null's tails (see FreedmanLane.tails).

    p(t) > alpha exactly when at least k - 1 resamples lie at or beyond t on each side, with k the
    smallest count such that 2 k / count > alpha; beyond the resamples drawn (k - 1 = 0, or the
    tails kept) a side is unbounded.
    """
    k = math.floor(alpha * count / 2.0) + 1
    if k - 1 < 1:
        return -math.inf, math.inf
    lo = low[k - 2] if k - 2 < len(low) else -math.inf
    hi = high[k - 2] if k - 2 < len(high) else math.inf
    return float(lo), float(hi)
