"""The filters every summary takes, in one value, and the selection they make.

``Filters`` holds what the analyst chooses (the confidence threshold, the prevalence range,
the images needed on a side for a test, the CTR weighting, the window of days whose clicks and
impressions make each image's CTR). The read API and the page parse
one from their query (``dashboard/api/params.py``); a notebook builds one, or names its fields
as keywords of the analysis functions. A new filter (a time window, say) is one more field
here and one more parameter there: the functions that take a ``Filters`` keep their signature.

A feature is *present* in an image when its confidence is strictly greater than the
threshold; prevalence is over all images of the build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from data import matrix
from data.window import Window, WindowError

WEIGHTINGS = ("mean", "impressions")
DEFAULT_MIN_GROUP_SIZE = 5
CONFIDENCE_RANGE = (0.0, 1.0)
PREVALENCE_RANGE = (0.0, 100.0)
SMALLEST_GROUP_SIZE = 2  # a spread needs two images on a side


class FilterError(ValueError):
    """Filter values that cannot be used; ``problems`` names each one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class WeightingUnavailable(ValueError):
    """Impression weighting was asked for a dataset without clicks and impressions."""


def _number(name: str, value, low: float, high: float, problems: list[str]) -> float:
    # bool is an int to Python, but True is no threshold anyone meant.
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        problems.append(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
        return math.nan
    value = float(value)
    # NaN fails the comparison, so it is refused along with out-of-range values.
    if not low <= value <= high:
        problems.append(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return value


@dataclass(frozen=True)
class Filters:
    """Which features a summary keeps and how it tests them; every field checked and normalised.

    ``confidence``: a feature is present in an image when its confidence is strictly above it.
    ``min_pct``/``max_pct``: keep features present in that range of the build's images (%).
    ``min_n``: images with a CTR needed on each side of a feature for its statistics.
    ``weighting``: ``"mean"`` of per-image CTRs or ``"impressions"`` (clicks / impressions).
    ``date_from``/``date_to``: the first and last day (``YYYY-MM-DD`` or a date; None: open) whose
    dated metrics make each image's CTR; the query parameters ``from`` and ``to``. The store
    applies them when it loads the dataset (``store.dataset(..., window=filters.window)``).
    Raises FilterError naming every value it cannot use.
    """

    confidence: float = 0.0
    min_pct: float = 0.0
    max_pct: float = 100.0
    min_n: int = DEFAULT_MIN_GROUP_SIZE
    weighting: str = "mean"
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self):
        problems: list[str] = []
        set_ = object.__setattr__  # frozen: normalise the types once, here
        set_(self, "confidence", _number("confidence", self.confidence, *CONFIDENCE_RANGE, problems))
        set_(self, "min_pct", _number("min_pct", self.min_pct, *PREVALENCE_RANGE, problems))
        set_(self, "max_pct", _number("max_pct", self.max_pct, *PREVALENCE_RANGE, problems))
        min_n = self.min_n
        whole = isinstance(min_n, (int, np.integer)) or (isinstance(min_n, float) and min_n.is_integer())
        if isinstance(min_n, bool) or not whole or min_n < SMALLEST_GROUP_SIZE:
            problems.append(f"min_n must be a whole number >= {SMALLEST_GROUP_SIZE}, got {min_n!r}")
        else:
            set_(self, "min_n", int(min_n))
        if self.weighting not in WEIGHTINGS:
            problems.append(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if self.min_pct > self.max_pct:
            problems.append(f"min_pct ({self.min_pct:g}) must not exceed max_pct ({self.max_pct:g})")
        try:
            window = Window(self.date_from, self.date_to)
            set_(self, "date_from", window.start)
            set_(self, "date_to", window.end)
        except WindowError as exc:
            problems.extend(exc.problems)
        if problems:
            raise FilterError(problems)

    def replace(self, **changes) -> Filters:
        """A copy with some fields changed (checked like a new one)."""
        return replace(self, **changes)

    def available_for(self, has_counts: bool | None) -> Filters:
        """These filters, with impression weighting dropped to the mean when the data has no counts."""
        if self.weighting == "impressions" and not has_counts:
            return replace(self, weighting="mean")
        return self

    @property
    def window(self) -> Window | None:
        """The window of days these filters choose, or None for every day (no ``from`` or ``to``)."""
        if self.date_from is None and self.date_to is None:
            return None
        return Window(self.date_from, self.date_to)

    def window_fields(self) -> dict:
        """``{"from": ..., "to": ...}``: the window as answers state it (None: open)."""
        return {"from": self.date_from, "to": self.date_to}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The fields, in order: the query parameters that name them share these names."""
        return tuple(f.name for f in fields(cls))


def as_filters(filters: Filters | None = None, **criteria) -> Filters:
    """``filters`` (default ``Filters()``) with the fields named in ``criteria`` replaced.

    The public analysis functions take ``filters`` and keyword ``criteria`` through this, so a
    notebook may write ``feature_summary(ds, confidence=0.5)`` or ``feature_summary(ds, filters)``.
    """
    if filters is None:
        filters = Filters()
    elif not isinstance(filters, Filters):
        raise TypeError(
            f"filters must be a Filters, got {type(filters).__name__} {filters!r}; "
            "pass confidence=..., min_pct=..., max_pct=..., min_n=... and weighting=... by name"
        )
    return replace(filters, **criteria) if criteria else filters


def presence(confidences, confidence: float):
    """Boolean image x feature matrix (scipy.sparse CSC): True where the confidence is strictly above the threshold."""
    return matrix.presence(confidences, confidence)


def prevalence_pct(present: np.ndarray) -> np.ndarray:
    """Per feature, the percentage of images in which it is present."""
    n = present.shape[0]
    if n == 0:
        return np.zeros(present.shape[1])
    # 100 * count / n, in that order: multiplying by a rounded 100 / n is off in the last bit
    # for many counts, so a bound set at a feature's exact prevalence could exclude it.
    counts = matrix.column_counts(present) if matrix.is_sparse(present) else present.sum(axis=0)
    return counts * 100.0 / n


def check_weighting(weighting: str, *datasets) -> None:
    """Raise unless the weighting is known and every dataset holds the counts it needs."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    if weighting == "impressions" and not all(ds.has_counts for ds in datasets):
        raise WeightingUnavailable("impression weighting needs clicks and impressions for every image with a CTR")


def prevalence_filter(present, known: np.ndarray, min_pct: float, max_pct: float):
    """Prevalence %, presence over images with a CTR, its per-feature counts, and which features pass the filters.

    A feature passes when its prevalence is within [min_pct, max_pct] and it is present in at
    least one image with a CTR.
    """
    prevalence = prevalence_pct(present)
    present_known = matrix.keep_rows(present, known)
    n_with = matrix.column_counts(present_known)
    keep = (prevalence >= min_pct) & (prevalence <= max_pct) & (n_with > 0)
    return prevalence, present_known, n_with, keep
