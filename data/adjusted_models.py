"""Each feature's adjusted model, fitted: its controls, its HC3 fit and the test that gives its p.

A feature's controls are the features whose phi with it is at least the threshold, strongest
first, chosen from the presence matrix alone (never from CTR); a control collinear with the
feature or with stronger controls is dropped, with the reason. A feature whose HC3 t test p is
below PERMUTATION_GATE gets a Freedman-Lane permutation p (data/residual_permutation.py), its
null drawn in stages (``resolve_staged``). Everything here is in the canonical (name) order that
``data.adjusted`` puts images and features in. Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

from data import budget
from data import stats as marginal
from data.regression import batched_hc3, hc3, independent_columns
from data.residual_permutation import FIRST_RESAMPLES, MIN_RESAMPLES, FreedmanLane, permutations, resamples_for

SIGNIFICANCE = 0.05
# A feature whose HC3 t-distribution p is below PERMUTATION_GATE gets a permutation p (see
# data/residual_permutation.py), whatever its group size: on shuffled CTRs the t distribution
# was liberal for small groups (20 % p < 0.05 at 9 images) and still at 30-100 images with
# skewed or heavy-tailed CTRs (11-18 % at 30 images for lognormal sigma 1-1.5 and Pareto).
# Above the gate the t p is kept: far from any decision, and resampling there costs most.
PERMUTATION_GATE = 0.2
# A feature's null is drawn further only while its p could, at this confidence, still fall
# below the Benjamini-Hochberg threshold.
REFINE_CONFIDENCE = 0.999


@dataclass(frozen=True, eq=False)
class FeatureFits:
    """Per feature, in canonical order: the HC3 estimate, se, df and p, controls, their phi, the
    dropped controls and, for a permuted feature, its Freedman-Lane test (filled by ``fit_models``)."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p: np.ndarray
    controls: list[np.ndarray]
    phis: list[np.ndarray]
    dropped: list[list[tuple[int, str, float]]]
    tests: dict[int, FreedmanLane]

    @classmethod
    def empty(cls, m: int) -> FeatureFits:
        """No feature of ``m`` fitted yet: NaN statistics, no controls."""
        estimate, se, df, p = (np.full(m, np.nan) for _ in range(4))
        controls = [np.empty(0, dtype=np.int64)] * m
        return cls(estimate, se, df, p, controls, [np.empty(0)] * m, [[] for _ in range(m)], {})


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


def control_models(phi: np.ndarray, phi_threshold: float, cap: int) -> list[np.ndarray]:
    """Each tested feature's model as design columns: the intercept (0), the feature, its controls."""
    models = []
    for pos in range(len(phi)):
        # Strongest co-occurrence first (ties by name), so that of two collinear controls the weaker goes.
        near = np.flatnonzero(np.abs(phi[pos]) >= phi_threshold)
        near = near[np.argsort(-np.abs(phi[pos, near]), kind="stable")][:cap]
        models.append(np.concatenate(([0, pos + 1], near + 1)))
    return models


def feature_model(
    present, pos: int, testable: np.ndarray, phi_threshold: float, cap: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str, float]]]:
    """One tested feature's controls as ``fit_models`` chooses them, without fitting any model.

    ``present`` is the (images, features) CSC presence matrix in canonical order, ``testable`` the
    canonical columns tested and ``pos`` the feature's position among them. Returns the kept
    controls (canonical columns), their phi with the feature, and the dropped ones as (column,
    reason, phi). Costs one sparse product and one model's collinearity pass, not every pair's phi.
    """
    n = present.shape[0]
    tested = present[:, testable]
    count = np.asarray(tested.sum(axis=0), dtype=np.float64).ravel()
    column = tested[:, [pos]]
    both = np.asarray((tested.T @ column).todense(), dtype=np.float64).ravel()
    # The same float64 arithmetic as phi_matrix's row ``pos``, so the same phi to the last bit.
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sqrt(count * (n - count))
        phi = (n * both - count[pos] * count) / (spread[pos] * spread)
    phi[pos] = 0.0
    cols = control_models(phi[None, :], phi_threshold, cap)[0]
    cols = np.concatenate(([0, pos + 1], cols[2:]))  # control_models numbers its one row as feature 0
    design = np.hstack([np.ones((n, 1)), tested[:, cols[1:] - 1].toarray().astype(np.float64)])
    kept, why = independent_columns(design)
    dropped = [
        (int(testable[cols[k] - 1]), drop_reason(on_j, phi[cols[k] - 1]), float(phi[cols[k] - 1]))
        for k, on_j in why.items()
    ]
    controls = cols[kept][2:] - 1
    return testable[controls], phi[controls], dropped


def data_seed(y: np.ndarray, n_tested: int) -> int:
    """The resamples' seed, from the data in canonical order: the same data give the same resamples, so
    the page and the API never disagree, whatever order the images and features came in."""
    digest = hashlib.sha256(np.ascontiguousarray(y).tobytes() + np.int64([len(y), n_tested]).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def fit_models(
    fits: FeatureFits, tested: np.ndarray, testable: np.ndarray, y: np.ndarray, names, phi_threshold: float, cap: int
) -> None:
    """Fit the model of each ``testable`` feature (presence columns ``tested``) into ``fits``, and its p."""
    n = len(y)
    phi = phi_matrix(tested)
    np.fill_diagonal(phi, 0.0)
    # Column 0 is the intercept, column t + 1 the t-th testable feature.
    design = np.hstack([np.ones((n, 1)), tested.astype(np.float64)])
    models = control_models(phi, phi_threshold, cap)
    seed = data_seed(y, len(testable))
    # Drawn when a feature first needs them: most builds need few or none.
    first = functools.cache(lambda: permutations(np.random.default_rng(seed), FIRST_RESAMPLES, n))
    limit = budget.current()
    for done, (pos, fitted) in enumerate(batched_hc3(design, y, models)):
        limit.check(done, 2 * len(testable), "the adjusted impact")
        j = testable[pos]
        cols = models[pos]
        if fitted is None:
            kept, why = independent_columns(design[:, cols])
            fits.dropped[j] = [
                (int(testable[cols[k] - 1]), drop_reason(on_j, phi[pos, cols[k] - 1]), float(phi[pos, cols[k] - 1]))
                for k, on_j in why.items()
            ]
            cols = cols[kept]
            fitted = hc3(design[:, cols], y)
        fits.controls[j] = testable[cols[2:] - 1]
        fits.phis[j] = phi[pos, cols[2:] - 1]
        fits.estimate[j], fits.se[j], fits.df[j] = fitted.coef, fitted.se, fitted.df
        if np.isfinite(fitted.se) and fitted.se > 0:
            t_p = float(2.0 * stats.t.sf(abs(fitted.coef / fitted.se), fitted.df))
            if t_p >= PERMUTATION_GATE:
                fits.p[j] = t_p
            else:
                feature_seed = [seed, zlib.crc32(names[j].encode("utf-8"))]
                fits.tests[j] = FreedmanLane(fitted, lambda s=feature_seed: np.random.default_rng(s))
    resolve_staged(fits.tests, first, fits.p, resamples_for(len(testable)), limit, len(testable))


def resolve_staged(tests: dict, first, p: np.ndarray, total: int, limit, n_features: int) -> None:
    """Draw each permuted feature's null until its p is resolved or cannot change a decision.

    In stages: every feature up to FIRST_RESAMPLES, then only those still unresolved whose
    Benjamini-Hochberg q (over every tested feature, with the p drawn so far) is not yet below
    0.05 go on, their resamples doubled at each stage up to ``total``, where an equal-tailed p
    can fall below 0.05 / features. A lone strong feature thus reaches q < 0.05, and a strong
    feature among many stops as soon as its q is below 0.05.
    """
    pending = sorted(tests)
    until = FIRST_RESAMPLES
    while pending:
        for j in pending:
            limit.check(n_features, 2 * n_features, "the adjusted impact")
            tests[j].extend(first(), max(until, MIN_RESAMPLES))
            p[j] = tests[j].p_value
        if until >= total:
            break
        q = marginal.benjamini_hochberg(p)
        pending = [j for j in pending if not tests[j].resolved and q[j] >= SIGNIFICANCE]
        # Only those that could still be selected: their p's 0.1 % lower confidence bound (from
        # the resamples in the smaller tail) below BH's threshold if every candidate were selected.
        tested = np.count_nonzero(~np.isnan(p))
        threshold = SIGNIFICANCE * (np.count_nonzero(q < SIGNIFICANCE) + len(pending)) / tested
        pending = [j for j in pending if tests[j].p_lower_bound(REFINE_CONFIDENCE) < threshold]
        until = min(total, 2 * until + 1)


def drop_reason(dependent_on_j: bool, phi: float) -> str:
    """Why a control was left out as collinear: with the feature (on ``phi``'s side of it) or the other controls."""
    if dependent_on_j and phi > 0:
        return "same images as the feature"
    if dependent_on_j:
        return "exactly the images without the feature"
    return "collinear with the other controls"
