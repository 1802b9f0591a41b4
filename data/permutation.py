"""Studentized permutation tests of impact, for every feature of a build at once.

Under the null that a feature has nothing to do with CTR, the images are exchangeable: which
``k`` of the ``n`` images carry the feature is a random subset. The null distribution of a
studentized statistic for a feature therefore depends only on the images' values and ``k``,
not on the feature or the confidence threshold. One pass over ``B`` random permutations gives
it for every ``k`` at once: cumulative sums along each permutation are the sums of "its first
``k`` images" for every ``k``. The |statistic| of ``k`` and of ``n - k`` images have the same
null (the same splits, sides swapped), so only ``k <= n / 2`` is kept.

The tables are cached by the images' values (in a canonical order, which also seeds the
generator), so a slider move only computes the observed statistics and looks them up, and the
same data always give the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.special import gammaln

from data import stats
from data.cache import ByteLRU

LEVEL = 0.95
SIGNIFICANCE = 0.05
MIN_RESAMPLES = 9_999  # smallest p 1 / 10,000: Bonferroni's 0.05 / 480 is reachable
TAIL_SHARE = 0.06  # p-values up to this (and the 95 % quantile) are counts over all resamples
BODY_RESAMPLES = 1_000  # larger p-values are counted over the first resamples only
TIE_RTOL = 1e-9  # a null statistic this close to the observed one counts as a tie (>=)
CHUNK_CELLS = 1_000_000  # permutations x images drawn at a time
CACHE_BYTES = 256 * 2**20  # until the app sets its share of CACHE_MB (set_cache_budget)

KINDS = {
    "mean": (lambda units: stats.mean_columns(units[:, 0]), stats.mean_difference),
    "impressions": (lambda units: stats.ratio_columns(units[:, 0], units[:, 1]), stats.ratio_difference),
}


def resamples_for(n_tests: int) -> int:
    """Permutations needed for a p-value to reach the smallest Benjamini-Hochberg threshold, 0.05 / n_tests."""
    return max(MIN_RESAMPLES, math.ceil(n_tests / SIGNIFICANCE) - 1)


@dataclass(frozen=True, eq=False)
class NullTable:
    """Sorted |statistic| under permutation for each group size k = 0 .. k_max (k < 2 unused)."""

    n: int
    resamples: int
    k_max: int
    tail: np.ndarray  # (k_max + 1, T): the T largest of the resamples, ascending
    body: np.ndarray  # (k_max + 1, BODY_RESAMPLES): the first resamples, ascending
    exact: dict  # k -> every split's |statistic|, ascending, where C(n, k) <= resamples

    @property
    def nbytes(self) -> int:
        """Memory held by the table."""
        return self.tail.nbytes + self.body.nbytes + sum(v.nbytes for v in self.exact.values())


class StudentizedTest:
    """A weighting's columns for one build's images, with their permutation null, ready to test features.

    ``units`` is one row per image with a CTR: ``(ctr,)`` for ``"mean"``, ``(clicks,
    impressions)`` for ``"impressions"``. ``n_tests`` (the build's feature count) sets how many
    permutations are drawn.
    """

    def __init__(self, kind: str, units: np.ndarray, n_tests: int):
        units = np.asarray(units, dtype=np.float64)
        units = units[:, None] if units.ndim == 1 else units
        self.kind = kind
        self.n = len(units)
        self.resamples = resamples_for(n_tests)
        # Canonical order: the null depends on the values, not on the order of the images.
        order = np.lexsort(units.T[::-1]) if self.n else np.arange(0)
        canonical = np.ascontiguousarray(units[order])
        self._key = (kind, self.resamples, hashlib.sha256(canonical.tobytes()).hexdigest())
        build, self._difference = KINDS[kind]
        self._sorted_columns = build(canonical)
        self.columns = np.empty_like(self._sorted_columns)
        self.columns[order] = self._sorted_columns
        self.totals = self._sorted_columns.sum(axis=0)

    def group_sums(self, membership) -> np.ndarray:
        """Sums of the columns over each feature's images: (columns, features); membership is images x features."""
        # A float product uses BLAS, a boolean one does not; one vector-matrix product per column
        # stays single-threaded, where a small matrix-matrix product spins up threads and was
        # 25x slower at 659 x 480. A sparse membership matrix takes the same products.
        weights = membership.astype(np.float64)
        return np.stack([np.asarray(column @ weights, dtype=np.float64).ravel() for column in self.columns.T])

    def standard_error(self, k, sums) -> tuple[np.ndarray, np.ndarray]:
        """``(diff, se)`` of each feature from its group size and sums."""
        return self._difference(k, sums, self.totals[:, None], self.n)

    def run(self, k, sums, impact, level: float = LEVEL):
        """Interval and p-value of each feature's impact: ``(ci_low, ci_high, p)``.

        The statistic is ``impact / se``; p is the share of permutations at least as extreme
        (counting the observed split), never below 1 / C(n, k); the interval is ``impact +- c
        se`` with ``c`` the permutation quantile of |statistic| at ``level``, so it excludes 0
        exactly when p <= 1 - level.
        """
        k = np.asarray(k, dtype=np.int64)
        impact = np.asarray(impact, dtype=np.float64)
        _, se = self.standard_error(k, sums)
        with np.errstate(divide="ignore", invalid="ignore"):
            observed = np.abs(impact / se)
        folded = np.minimum(k, self.n - k)
        defined = np.isfinite(observed) & (folded >= 2)
        p = np.full(len(k), np.nan)
        crit = np.full(len(k), np.nan)
        if defined.any():
            table = self.table(int(folded[defined].max()))
            p[defined], crit[defined] = lookup(table, folded[defined], observed[defined], 1.0 - level)
            p[defined] = np.maximum(p[defined], min_p_value(self.n, folded[defined]))
        half = crit * se
        return impact - half, impact + half, p

    def table(self, k_max: int) -> NullTable:
        """The null table covering group sizes up to ``k_max``, from the cache or computed."""
        return null_table(self._key, self._sorted_columns, self._difference, k_max)


def min_p_value(n: int, k) -> np.ndarray:
    """1 / C(n, k): the smallest p-value any test valid under exchangeable images can give."""
    k = np.asarray(k, dtype=np.float64)
    return np.exp(-(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))


def lookup(table: NullTable, k: np.ndarray, observed: np.ndarray, alpha: float):
    """Permutation p-value and critical value of each (folded group size, |statistic|)."""
    threshold = observed * (1.0 - TIE_RTOL)
    n_tail = table.tail.shape[1]
    # |t| > c exactly when (1 + #null >= |t|) / (B + 1) <= alpha: c is the (alpha (B + 1))-th largest.
    rank = min(max(math.floor(alpha * (table.resamples + 1)) - 1, 0), n_tail - 1)
    # Counting by comparison over each feature's row is one vectorised pass (F x T values); a
    # binary search per row needs a Python loop over the group sizes, which was slower.
    count = np.count_nonzero(table.tail[k] >= threshold[:, None], axis=1)
    p = (1.0 + count) / (table.resamples + 1.0)
    crit = table.tail[k, n_tail - 1 - rank]
    beyond = np.flatnonzero(count >= n_tail)
    if len(beyond):
        body = table.body[k[beyond]]
        body_p = (1.0 + np.count_nonzero(body >= threshold[beyond, None], axis=1)) / (body.shape[1] + 1.0)
        p[beyond] = np.maximum(body_p, (1.0 + n_tail) / (table.resamples + 1.0))
    for size in table.exact.keys() & set(np.unique(k).tolist()):
        every = table.exact[size]
        at = np.flatnonzero(k == size)
        p[at] = (len(every) - np.searchsorted(every, threshold[at])) / len(every)
        crit[at] = every[len(every) - 1 - min(math.floor(alpha * len(every)), len(every) - 1)]
    return p, crit


_cache = ByteLRU(CACHE_BYTES)


def clear_cache() -> None:
    """Forget every null table (benchmarks and tests measure a first request with it)."""
    _cache.discard(lambda key: True)


def set_cache_budget(nbytes: int) -> None:
    """Bound the null tables kept to ``nbytes`` (process-wide), dropping the least recently used."""
    _cache.resize(int(nbytes))


def null_table(key, columns: np.ndarray, difference, k_max: int) -> NullTable:
    """Cached null table for ``key`` covering at least group sizes up to ``k_max``."""
    n = len(columns)
    table = _cache.get(key)
    if table is not None and table.k_max >= k_max:
        return table
    # Grow geometrically so that a slider sweeping towards larger groups recomputes rarely.
    wanted = min(n // 2, max(k_max, 2 * table.k_max if table is not None else k_max))
    seed = int(key[2][:16], 16)
    table = compute_table(columns, difference, wanted, key[1], seed)
    _cache.put(key, table, table.nbytes)
    return table


def compute_table(columns: np.ndarray, difference, k_max: int, resamples: int, seed: int) -> NullTable:
    """Draw ``resamples`` permutations (in fixed chunks, each seeded from ``seed`` and its index) and tabulate."""
    n, width = columns.shape
    k_max = max(min(k_max, n // 2), 1)
    ks = np.arange(1, k_max + 1)
    totals = columns.sum(axis=0)[:, None, None]
    n_tail = min(math.ceil(TAIL_SHARE * (resamples + 1)), resamples)
    # The chunk size depends on n only, so a table's values for a k never depend on k_max.
    chunk = max(16, min(1_000, CHUNK_CELLS // max(n, 1)))
    base = np.tile(np.arange(n, dtype=np.intp), (chunk, 1))
    kept, kept_rows, body = [], 0, []
    body_rows = 0
    for index, start in enumerate(range(0, resamples, chunk)):
        size = min(chunk, resamples - start)
        rng = np.random.default_rng([seed, index])
        prefix = rng.permuted(base[:size], axis=1)[:, :k_max]
        sums = np.moveaxis(np.cumsum(columns[prefix], axis=1), -1, 0)
        diff, se = difference(ks, sums, totals, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = np.abs(diff / se)
        # A split with no spread on either side separates the values perfectly: the most extreme.
        statistic[np.isnan(statistic)] = np.inf
        if body_rows < BODY_RESAMPLES:
            body.append(statistic[: BODY_RESAMPLES - body_rows])
            body_rows += len(body[-1])
        kept.append(statistic)
        kept_rows += size
        # Merging in batches keeps both the partition work and the memory at about 2 T x k_max.
        if kept_rows >= 2 * n_tail:
            kept = [_largest(np.concatenate(kept), n_tail)]
            kept_rows = n_tail
    top = _largest(np.concatenate(kept), n_tail)
    tail = _with_unused_rows(np.sort(top, axis=0).T)
    body = _with_unused_rows(np.sort(np.concatenate(body), axis=0).T)
    exact = {}
    for k in range(2, k_max + 1):
        if math.comb(n, k) > resamples:
            break
        exact[k] = _enumerate(columns, difference, n, k)
    return NullTable(n=n, resamples=resamples, k_max=k_max, tail=tail, body=body, exact=exact)


def _largest(rows: np.ndarray, count: int) -> np.ndarray:
    if len(rows) <= count:
        return rows
    return np.partition(rows, len(rows) - count, axis=0)[len(rows) - count :]


def _with_unused_rows(by_k: np.ndarray) -> np.ndarray:
    # Row k holds group size k; sizes 0 and 1 have no statistic.
    return np.vstack([np.full((1, by_k.shape[1]), np.inf), by_k])


def _enumerate(columns: np.ndarray, difference, n: int, k: int) -> np.ndarray:
    """|statistic| of every split of ``n`` images into ``k`` and ``n - k``, ascending."""
    splits = np.array(list(combinations(range(n), k)), dtype=np.intp)
    sums = columns[splits].sum(axis=1).T
    diff, se = difference(k, sums, columns.sum(axis=0)[:, None], n)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.abs(diff / se)
    statistic[np.isnan(statistic)] = np.inf
    return np.sort(statistic)
