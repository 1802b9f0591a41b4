"""Studentized permutation tests of impact, for every feature of a build at once.

Under the null that a feature has nothing to do with CTR, the images are exchangeable: which
``k`` of the ``n`` images carry the feature is a random subset. The null distribution of a
studentized statistic for a feature therefore depends only on the images' values and ``k``,
not on the feature or the confidence threshold. One pass over ``B`` random permutations gives
it for every ``k`` at once: cumulative sums along each permutation are the sums of "its first
``k`` images" for every ``k``. The |statistic| of ``k`` and of ``n - k`` images have the same
null (the same splits, sides swapped), so only ``k <= n / 2`` is kept.

A table holds the null of every group size up to ``DENSE_SIZES`` and, above it, of sizes at
most ``GRID_STEP`` apart up to ``n / 2``; a feature is tested against the tabulated size at or
below its own, whose null is at most slightly wider (the permutation quantiles of |statistic|
shrink towards the normal ones as groups grow). So one table serves every threshold and
sparsity setting, and is small enough to be kept in the database (``data/nulls.py``).

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
from data.cache import AnalysisCache

LEVEL = 0.95
SIGNIFICANCE = 0.05
MIN_RESAMPLES = 9_999  # smallest p 1 / 10,000: Bonferroni's 0.05 / 480 is reachable
MAX_RESAMPLES = 49_999  # 0.05 / m is reachable up to m = 2,500 features; wider builds stop here
TAIL_SHARE = 0.06  # p-values up to this (and the 95 % quantile) are counts over all resamples
BODY_RESAMPLES = 1_000  # larger p-values are counted over the first resamples only
TIE_RTOL = 1e-9  # a null statistic this close to the observed one counts as a tie (>=)
CHUNK_CELLS = 1_000_000  # permutations x images drawn at a time
DENSE_SIZES = 100  # every group size up to this has a null of its own
GRID_STEP = 1.02  # above it, tabulated sizes are at most 2 % apart
MAX_SIZE = 5_000  # the largest tabulated size: larger groups use its (slightly wider) null

KINDS = {
    "mean": (lambda units: stats.mean_columns(units[:, 0]), stats.mean_difference),
    "impressions": (lambda units: stats.ratio_columns(units[:, 0], units[:, 1]), stats.ratio_difference),
}


def resamples_for(n_tests: int) -> int:
    """Permutations needed for a p-value to reach the smallest Benjamini-Hochberg threshold, 0.05 / n_tests.

    At most MAX_RESAMPLES: a table's memory and drawing time grow with it.
    """
    return min(MAX_RESAMPLES, max(MIN_RESAMPLES, math.ceil(n_tests / SIGNIFICANCE) - 1))


@dataclass(frozen=True, eq=False)
class NullTable:
    """Sorted |statistic| under permutation for each tabulated (folded) group size, ``sizes``."""

    n: int
    resamples: int
    sizes: np.ndarray  # ascending: 2 .. DENSE_SIZES, then steps of at most GRID_STEP up to n // 2
    tail: np.ndarray  # (len(sizes), T): the T largest of the resamples, ascending
    body: np.ndarray  # (len(sizes), BODY_RESAMPLES): the first resamples, ascending
    exact: dict  # k -> every split's |statistic|, ascending, where C(n, k) <= resamples

    @property
    def nbytes(self) -> int:
        """Memory held by the table."""
        return self.tail.nbytes + self.body.nbytes + sum(v.nbytes for v in self.exact.values())

    def rows(self, k: np.ndarray) -> np.ndarray:
        """The row of each folded group size: the tabulated size at or below it (a null at most slightly wider)."""
        return np.searchsorted(self.sizes, k, side="right") - 1


class StudentizedTest:
    """A weighting's columns for one build's images, with their permutation null, ready to test features.

    ``units`` is one row per image with a CTR: ``(ctr,)`` for ``"mean"``, ``(clicks,
    impressions)`` for ``"impressions"``. ``n_tests`` (the build's feature count) sets how many
    permutations are drawn. ``cache`` keeps the null table (without one it is drawn for each use).
    """

    def __init__(self, kind: str, units: np.ndarray, n_tests: int, cache: AnalysisCache | None = None):
        units = np.asarray(units, dtype=np.float64)
        units = units[:, None] if units.ndim == 1 else units
        self.kind = kind
        self.cache = cache
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
            table = self.table()
            p[defined], crit[defined] = lookup(table, folded[defined], observed[defined], 1.0 - level)
            p[defined] = np.maximum(p[defined], min_p_value(self.n, folded[defined]))
        half = crit * se
        return impact - half, impact + half, p

    @property
    def draw_cells(self) -> int:
        """The size of the table's draw (resamples x the largest tabulated group): its time follows it."""
        return self.resamples * min(self.n // 2, MAX_SIZE)

    @property
    def key(self) -> tuple:
        """What the null table depends on: ``(kind, resamples, digest of the sorted values)``."""
        return self._key

    def table(self) -> NullTable:
        """The null table of these images' values, from the cache or drawn."""
        return null_table(self._key, self._sorted_columns, self._difference, self.cache)


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
    rows = table.rows(k)
    count = np.count_nonzero(table.tail[rows] >= threshold[:, None], axis=1)
    p = (1.0 + count) / (table.resamples + 1.0)
    crit = table.tail[rows, n_tail - 1 - rank]
    beyond = np.flatnonzero(count >= n_tail)
    if len(beyond):
        body = table.body[rows[beyond]]
        body_p = (1.0 + np.count_nonzero(body >= threshold[beyond, None], axis=1)) / (body.shape[1] + 1.0)
        p[beyond] = np.maximum(body_p, (1.0 + n_tail) / (table.resamples + 1.0))
    for size in table.exact.keys() & set(np.unique(k).tolist()):
        every = table.exact[size]
        at = np.flatnonzero(k == size)
        p[at] = (len(every) - np.searchsorted(every, threshold[at])) / len(every)
        crit[at] = every[len(every) - 1 - min(math.floor(alpha * len(every)), len(every) - 1)]
    return p, crit


def is_cached(cache: AnalysisCache | None, key) -> bool:
    """Whether the null table of ``key`` is at hand in ``cache`` (no draw needed)."""
    return cache is not None and key in cache.null_tables


def adopt(cache: AnalysisCache | None, key, table: NullTable) -> None:
    """Keep ``table`` (read back from storage) in ``cache`` as the null table of ``key``."""
    if cache is not None:
        cache.null_tables.put(key, table, table.nbytes)


def null_table(key, columns: np.ndarray, difference, cache: AnalysisCache | None = None) -> NullTable:
    """The null table for ``key`` from ``cache``, drawn on first use (without a cache: drawn now)."""
    if cache is None:
        return compute_table(columns, difference, key[1], int(key[2][:16], 16))
    table = cache.null_tables.get(key)
    if table is not None:
        return table
    # One draw per key: a request arriving while another thread draws the same table waits for it.
    with cache.drawing(key):
        table = cache.null_tables.get(key)
        if table is None:
            table = compute_table(columns, difference, key[1], int(key[2][:16], 16))
            cache.null_tables.put(key, table, table.nbytes)
    return table


def group_sizes(n: int) -> np.ndarray:
    """The folded group sizes a table holds a null for: every size up to DENSE_SIZES, then steps of GRID_STEP.

    The last is ``min(n // 2, MAX_SIZE)``.
    """
    top = min(n // 2, MAX_SIZE)
    sizes = list(range(2, min(DENSE_SIZES, top) + 1))
    k = DENSE_SIZES
    while (k := max(k + 1, math.floor(k * GRID_STEP))) <= top:
        sizes.append(k)
    if top > DENSE_SIZES and sizes[-1] != top:
        sizes.append(top)
    return np.asarray(sizes, dtype=np.int64)


def compute_table(columns: np.ndarray, difference, resamples: int, seed: int) -> NullTable:
    """Draw ``resamples`` permutations (in fixed chunks, each seeded from ``seed`` and its index) and tabulate.

    The first ``k`` images of a permutation are a uniformly random group of ``k``: cumulative sums
    along the first half of each permutation give one draw for every tabulated size at once.
    """
    n, width = columns.shape
    sizes = group_sizes(n)
    n_tail = min(math.ceil(TAIL_SHARE * (resamples + 1)), resamples)
    exact = {}
    for k in sizes.tolist():
        if math.comb(n, k) > resamples:
            break
        exact[k] = _enumerate(columns, difference, n, k)
    drawn = np.empty((len(sizes), resamples))
    if len(sizes):
        totals = columns.sum(axis=0)[:, None, None]
        top = int(sizes[-1])
        chunk = max(16, min(1_000, CHUNK_CELLS // max(top, 1)))
        sums = np.empty((chunk, top, width))
        for index, start in enumerate(range(0, resamples, chunk)):
            count = min(chunk, resamples - start)
            prefix = _draw_prefixes(np.random.default_rng([seed, index]), n, top, count)
            np.cumsum(columns[prefix], axis=1, out=sums[:count])
            diff, se = difference(sizes, np.moveaxis(sums[:count, sizes - 1], -1, 0), totals, n)
            with np.errstate(divide="ignore", invalid="ignore"):
                statistic = np.abs(diff / se)
            # A split with no spread on either side separates the values perfectly: the most extreme.
            statistic[np.isnan(statistic)] = np.inf
            drawn[:, start : start + count] = statistic.T
    tail = np.sort(_largest(drawn, n_tail), axis=1)
    body = np.sort(drawn[:, :BODY_RESAMPLES], axis=1)
    return NullTable(n=n, resamples=resamples, sizes=sizes, tail=tail, body=body, exact=exact)


def _draw_prefixes(rng: np.random.Generator, n: int, top: int, count: int) -> np.ndarray:
    """``count`` rows, each the first ``top`` images of a uniformly random permutation of ``n``.

    Picking ``top`` distinct images in random order costs about 23 ns each, against about 15 ns
    an image for shuffling all ``n`` of a row; with ``top <= n / 2`` picking is always cheaper.
    """
    return np.stack([rng.choice(n, top, replace=False, shuffle=True) for _ in range(count)])


def _largest(rows: np.ndarray, count: int) -> np.ndarray:
    width = rows.shape[1]
    if width <= count:
        return rows
    return np.partition(rows, width - count, axis=1)[:, width - count :]


def _enumerate(columns: np.ndarray, difference, n: int, k: int) -> np.ndarray:
    """|statistic| of every split of ``n`` images into ``k`` and ``n - k``, ascending."""
    splits = np.array(list(combinations(range(n), k)), dtype=np.intp)
    sums = columns[splits].sum(axis=1).T
    diff, se = difference(k, sums, columns.sum(axis=0)[:, None], n)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.abs(diff / se)
    statistic[np.isnan(statistic)] = np.inf
    return np.sort(statistic)
