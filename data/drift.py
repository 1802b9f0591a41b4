"""Did a feature's impact change between two builds? Pure numpy, vectorised over features.

For each feature the images of both builds are stacked, each with its CTR, and
``ctr ~ 1 + x + build + x:build`` is fitted by OLS (``x``: the feature is present, ``build``: 1
for the later build); the interaction is the change of impact. Its standard error is clustered
by image name, so an image in both builds (re-featurized) counts as one cluster of two
correlated rows and an image in one build as a cluster of one: the same formula covers
re-featurized images, new images and partial overlap. It matches statsmodels'
``OLS(...).fit(cov_type="cluster", cov_kwds={"groups": image}, use_t=True)``: the CR1
small-sample factor G/(G-1) (N-1)/(N-K) and a t distribution with G-1 degrees of freedom.

The design has one parameter per (x, build) cell, so the fit is the four cell means and the
sandwich reduces to closed forms: an image's score for the interaction is the sum, over its
rows, of +-w (y - cell mean) / cell weight. With ``weighting="impressions"`` the same
model is fitted by WLS on clicks / impressions weighted by impressions, whose cell means are
the groups' click ratios (statsmodels' ``WLS(..., weights=impressions)`` with the same
covariance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

from data import budget, stats
from data.analysis import (
    SIGNIFICANCE_LEVEL,
    Dataset,
    check_weighting,
    presence,
    prevalence_filter,
)
from data.filters import Filters, as_filters

DRIFT_COLUMNS = [
    "feature",
    "n_with_from",
    "n_with_to",
    "impact_from",
    "impact_to",
    "change",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "n_flipped",
    "low_n",
    "significant",
]
_K_PARAMS = 4
# Each (presence, build) cell needs this effective size ((sum w)^2 / sum w^2: its image count
# when images weigh the same) for a test. The clustered standard error of a cell of a few images
# (or of a few images holding most impressions) is too small: in null simulations of rare labels
# p < 0.05 came up in 5.8 % (mean) and 6.9 % (impressions) of tests without this floor, 7-14 %
# on cells under 10, and in 5.2 % and 5.7 % with it (tests/test_drift.py).
MIN_EFFECTIVE_IMAGES = 30
# Features per block: bounds the (images x block) temporaries for wide builds.
_BLOCK_ELEMENTS = 4_000_000


def image_overlap(before: Dataset, after: Dataset) -> tuple[int, int]:
    """Images in both builds, and how many of those have a CTR in both."""
    a = pd.Index(before.images, dtype=object)
    b = pd.Index(after.images, dtype=object)
    pos = b.get_indexer(a)
    shared = pos >= 0
    with_ctr = shared.copy()
    with_ctr[shared] = before.has_ctr[shared] & after.has_ctr[pos[shared]]
    return int(shared.sum()), int(with_ctr.sum())


def feature_drift(before: Dataset, after: Dataset, filters: Filters | None = None, **criteria) -> pd.DataFrame:
    """Per feature: impact in each build, the change with its 95 % interval, p, q and flipped images.

    ``filters`` (default ``Filters()``), with fields overridden by name in ``criteria``, as in
    ``feature_summary``.

    Features are those passing the prevalence filters (as in ``feature_summary``) in either
    build; a feature missing from a build is never present there. ``n_flipped`` counts images in
    both builds whose presence differs. Statistics are NaN (``low_n``) when a (presence, build)
    cell has fewer than ``min_n`` images with a CTR or an effective size below
    ``MIN_EFFECTIVE_IMAGES``. A feature that did not move at all (the same images with the same
    labels in both builds) gets change 0, interval [0, 0] and no p or q rather than 0 / 0.
    ``q_value`` is Benjamini-Hochberg over the returned features with a p. Rows are ordered by
    change, highest first (undefined last), then by name.
    """
    filters = as_filters(filters, **criteria)
    confidence, min_pct, max_pct = filters.confidence, filters.min_pct, filters.max_pct
    min_n, weighting = filters.min_n, filters.weighting
    check_weighting(weighting, before, after)

    names = _selected_features(before, after, confidence, min_pct, max_pct)
    # Both builds on one image axis sorted by name, so identical builds go through identical
    # arithmetic whatever order their images came in, and their scores cancel exactly.
    union = pd.Index(np.union1d(before.images.astype(str), after.images.astype(str)), dtype=object)
    sides = [_Side(ds, union, names, confidence, weighting) for ds in (before, after)]
    n_obs = int(sides[0].known.sum() + sides[1].known.sum())
    n_groups = int((sides[0].known | sides[1].known).sum())

    m = len(names)
    out = {key: np.full(m, np.nan) for key in ("impact_from", "impact_to", "change", "se")}
    counts = {key: np.zeros(m, dtype=np.int64) for key in ("n_from", "n_to", "n_flipped", "n_min")}
    counts["effective_min"] = np.zeros(m)
    step = max(1, _BLOCK_ELEMENTS // max(1, len(union)))
    limit = budget.current()
    for start in range(0, m, step):
        limit.check(start, m, "the build-over-build comparison")
        cols = slice(start, min(start + step, m))
        _fit_block(sides, cols, out, counts)

    change = out["change"]
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = n_groups / (n_groups - 1.0) * (n_obs - 1.0) / (n_obs - _K_PARAMS)
        se = np.sqrt(out["se"] * factor)
    low_n = (counts["n_min"] < min_n) | (counts["effective_min"] < MIN_EFFECTIVE_IMAGES)
    ci_low, ci_high, p_value = _t_test(change, se, n_groups - 1)
    p_value = np.maximum(p_value, p_floor(n_groups, counts["n_min"]))
    ci_low[low_n] = ci_high[low_n] = p_value[low_n] = np.nan
    q_value = stats.benjamini_hochberg(p_value)

    order = np.lexsort((names.astype(str), np.where(np.isnan(change), np.inf, -change)))
    return pd.DataFrame(
        {
            "feature": pd.Series(names[order], dtype=object),
            "n_with_from": counts["n_from"][order],
            "n_with_to": counts["n_to"][order],
            "impact_from": out["impact_from"][order],
            "impact_to": out["impact_to"][order],
            "change": change[order],
            "ci_low": ci_low[order],
            "ci_high": ci_high[order],
            "p_value": p_value[order],
            "q_value": q_value[order],
            "n_flipped": counts["n_flipped"][order],
            "low_n": low_n[order],
            "significant": q_value[order] < SIGNIFICANCE_LEVEL,
        },
        columns=DRIFT_COLUMNS,
    )


def _selected_features(before, after, confidence, min_pct, max_pct) -> np.ndarray:
    """Names passing the prevalence filters in either build, in first-seen order."""
    chosen: dict[str, None] = {}
    for ds in (before, after):
        keep = prevalence_filter(presence(ds.confidences, confidence), ds.has_ctr, min_pct, max_pct)[3]
        chosen.update(dict.fromkeys(ds.features[keep].tolist()))
    return np.array(list(chosen), dtype=object)


class _Side:
    """One build on the shared image axis: row weights, weighted outcomes and its feature columns."""

    def __init__(self, ds: Dataset, union: pd.Index, names: np.ndarray, confidence: float, weighting: str):
        rows = union.get_indexer(pd.Index(ds.images.astype(str), dtype=object))
        cols = pd.Index(ds.features, dtype=object).get_indexer(pd.Index(names, dtype=object))
        self.rows, self.cols, self.confidence = rows, cols, confidence
        self.ds = ds
        n = len(union)
        self.in_build = np.zeros(n, dtype=bool)
        self.in_build[rows] = True
        self.known = np.zeros(n, dtype=bool)
        self.known[rows] = ds.has_ctr
        self.weight = np.zeros(n)  # w: 1 per image, or its impressions
        self.weighted = np.zeros(n)  # w * y: the CTR, or the clicks
        k = ds.has_ctr
        if weighting == "mean":
            self.weight[rows[k]] = 1.0
            self.weighted[rows[k]] = ds.ctr[k]
        else:
            self.weight[rows[k]] = ds.impressions[k]
            self.weighted[rows[k]] = ds.clicks[k]

    def present(self, block: slice) -> np.ndarray:
        """Presence of the block's features on the shared image axis (False where absent)."""
        cols = self.cols[block]
        out = np.zeros((len(self.in_build), len(cols)), dtype=bool)
        found = cols >= 0
        out[np.ix_(self.rows, np.flatnonzero(found))] = presence(
            self.ds.confidences[:, cols[found]], self.confidence
        ).toarray()  # presence is sparse; a block of features is small enough to hold dense
        return out


def _fit_block(sides, block: slice, out: dict, counts: dict) -> None:
    """Cell means, impacts, change and the clustered sum of squared scores for a block of features."""
    scores = None
    impacts = []
    cell_n = []
    effective = []
    present_by_side = []
    for sign, side in zip((-1.0, 1.0), sides):
        present = side.present(block)
        present_by_side.append(present)
        x1 = present.astype(np.float64)
        x0 = (~present & side.known[:, None]).astype(np.float64)
        # Column sums down the image axis, never BLAS: the summation order then depends on the
        # rows alone, which keeps identical builds bitwise identical.
        w1 = (x1 * side.weight[:, None]).sum(axis=0)
        w0 = (x0 * side.weight[:, None]).sum(axis=0)
        squares = side.weight[:, None] ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            effective += [w1**2 / (x1 * squares).sum(axis=0), w0**2 / (x0 * squares).sum(axis=0)]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean1 = (x1 * side.weighted[:, None]).sum(axis=0) / w1
            mean0 = (x0 * side.weighted[:, None]).sum(axis=0) / w0
            # w (y - mean) as (w y - w mean): for impressions that is clicks - ratio * impressions.
            resid1 = (side.weighted[:, None] - side.weight[:, None] * mean1) / w1
            resid0 = (side.weighted[:, None] - side.weight[:, None] * mean0) / w0
        side_score = sign * (np.where(present, resid1, 0.0) - np.where(x0 > 0, resid0, 0.0))
        scores = side_score if scores is None else scores + side_score
        impacts.append(mean1 - mean0)
        known = side.known[:, None]
        cell_n += [(present & known).sum(axis=0), (~present & known).sum(axis=0)]
    with np.errstate(invalid="ignore"):
        out["impact_from"][block] = impacts[0]
        out["impact_to"][block] = impacts[1]
        out["change"][block] = impacts[1] - impacts[0]
        out["se"][block] = (scores**2).sum(axis=0)
    both = sides[0].in_build & sides[1].in_build
    counts["n_flipped"][block] = (present_by_side[0][both] != present_by_side[1][both]).sum(axis=0)
    counts["n_from"][block] = cell_n[0]
    counts["n_to"][block] = cell_n[2]
    counts["n_min"][block] = np.min(cell_n, axis=0)
    counts["effective_min"][block] = np.nan_to_num(np.min(effective, axis=0))


def p_floor(n_images: int, smallest_cell: np.ndarray) -> np.ndarray:
    """The smallest p a change may get: 1 / C(images, images in its smallest cell).

    No test that treats images as exchangeable can tell apart more arrangements than there
    are ways to choose the smallest (presence, build) cell, so the t distribution's tail far
    beyond it (p = 1e-242, or 0 for a near-constant group) is not evidence but rounding.
    """
    k = np.clip(smallest_cell.astype(np.float64), 0, n_images)
    log_ways = special.gammaln(n_images + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n_images - k + 1.0)
    return np.exp(-log_ways)


def _t_test(change: np.ndarray, se: np.ndarray, dof: int):
    """Interval and two-sided p of ``change`` on ``dof`` degrees of freedom; [0, 0] and no p for an exact, spreadless 0."""
    defined = np.isfinite(se) & (se > 0) & np.isfinite(change) & (dof >= 1)
    dof = max(dof, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_stat = np.where(defined, change / np.where(defined, se, 1.0), 0.0)
    p = np.where(defined, 2.0 * sps.t.sf(np.abs(t_stat), dof), np.nan)
    half = sps.t.ppf(0.975, dof) * np.where(defined, se, np.nan)
    ci_low, ci_high = change - half, change + half
    # Nothing moved at all (every image's rows cancel): the interval is the point 0 and there is
    # nothing to test. p stays NaN so that BH does not count such features; excluding them is
    # valid because whether they moved depends on the labels alone, never on the CTRs.
    unchanged = (change == 0) & (se == 0)
    ci_low[unchanged] = ci_high[unchanged] = 0.0
    return ci_low, ci_high, p
