"""What the adjusted fit of every feature costs, and whether an answer that merely shows its numbers may start it.

``fit_adjusted`` takes seconds to minutes on a large build (its permutation nulls are drawn
over every image). An answer that shows the adjusted numbers beside cheaper ones (the page's
"Travels with" panel) calls ``known_fit``: the fit when it is cached or quick by ``fit_seconds``'
estimate, else None, having started nothing; ``fit_running`` says whether another request is
fitting it now. Pure numpy, no I/O.
"""

from __future__ import annotations

import numpy as np

from data import matrix
from data.adjusted import PHI_THRESHOLD, AdjustedFit, fit_adjusted, fit_key, running_key
from data.analysis import DEFAULT_MIN_GROUP_SIZE, Dataset, presence
from data.cache import AnalysisCache

# fit_seconds' cost model, from cold fits of demo builds on one core of the shared machine
# (659 x 480: 350 features tested, 1.07 s; 1,960 x 400: 1.35 s; 9,800 x 1,000: 985 tested, 16.5 s).
FIT_SECONDS_PER_FEATURE = 2e-3
FIT_SECONDS_PER_FEATURE_IMAGE = 1.5e-6
# An answer that shows the adjusted numbers beside others fits them itself only below this:
# once, then cached, and far inside a request's budget.
QUICK_FIT_SECONDS = 2.0


def fit_seconds(dataset: Dataset, confidence: float = 0.0, *, min_n: int = DEFAULT_MIN_GROUP_SIZE) -> float:
    """The CPU seconds ``fit_adjusted`` is expected to take on one core (a cost model, not a measurement).

    Each tested feature costs a model fit and, for about a fifth of them, a permutation null
    drawn over every image: FIT_SECONDS_PER_FEATURE plus FIT_SECONDS_PER_FEATURE_IMAGE per image.
    """
    return _fit_seconds(dataset, presence(dataset.confidences, confidence), min_n)


def _fit_seconds(dataset: Dataset, present, min_n: int) -> float:
    present = matrix.to_csc(present)[np.flatnonzero(dataset.has_ctr)]
    n = present.shape[0]
    count = matrix.column_counts(present)
    tested = int(np.count_nonzero((count >= min_n) & (n - count >= min_n))) if n > 2 else 0
    return tested * (FIT_SECONDS_PER_FEATURE + FIT_SECONDS_PER_FEATURE_IMAGE * n)


def known_fit(
    dataset: Dataset,
    confidence: float = 0.0,
    *,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    cache: AnalysisCache | None = None,
    quick: float | None = None,
) -> AdjustedFit | None:
    """The adjusted fit if ``cache`` holds it or ``fit_seconds`` is at most ``quick`` (default
    QUICK_FIT_SECONDS; then fitted); else None, having fitted nothing.

    For answers that show the adjusted numbers beside cheaper ones: they never start a long fit.
    """
    present = presence(dataset.confidences, confidence)
    if cache is not None:
        cached = cache.adjusted_fits.get(fit_key(dataset, present, min_n, PHI_THRESHOLD))
        if cached is not None:
            return cached
    if _fit_seconds(dataset, present, min_n) > (QUICK_FIT_SECONDS if quick is None else quick):
        return None
    return fit_adjusted(dataset, confidence, min_n=min_n, cache=cache)


def fit_running(
    dataset: Dataset,
    confidence: float = 0.0,
    *,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    cache: AnalysisCache | None = None,
) -> bool:
    """Whether another request is fitting this dataset's adjusted model now (with ``cache``; False without one)."""
    if cache is None:
        return False
    key = fit_key(dataset, presence(dataset.confidences, confidence), min_n, PHI_THRESHOLD)
    return cache.is_computing(running_key(key))
