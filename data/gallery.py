"""The images behind a feature: those with it (or without it), sorted by CTR, with no I/O.

``feature_gallery`` lists exactly the images that ``feature_summary`` counts in ``n_with`` (or
``n_without``) at the same confidence threshold: images with a CTR in which the feature's
confidence is strictly above the threshold (or not). GET /api/gallery pages through it, and a
notebook calls it directly.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from data import matrix
from data.analysis import Dataset

GALLERY_SIDES = ("with", "without")
GALLERY_SORTS = ("ctr_desc", "ctr_asc")
GALLERY_COLUMNS = ["image", "ctr", "clicks", "impressions", "confidence"]


class UnknownFeature(KeyError):
    """A feature name the dataset does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown feature"


def feature_confidences(dataset: Dataset, feature: str) -> np.ndarray:
    """Every image's confidence of one feature (0 where none was sent); raises UnknownFeature."""
    at = np.flatnonzero(dataset.features == feature)
    if not len(at):
        raise UnknownFeature(f"the build has no feature {feature!r}")
    j = int(at[0])
    conf = dataset.confidences
    if matrix.is_sparse(conf):
        column = np.zeros(conf.shape[0])
        start, end = conf.indptr[j], conf.indptr[j + 1]
        column[conf.indices[start:end]] = conf.data[start:end]
        return column
    return np.asarray(conf[:, j], dtype=np.float64)


def feature_gallery(
    dataset: Dataset,
    feature: str,
    confidence: float = 0.0,
    side: str = "with",
    sort: str = "ctr_desc",
) -> pd.DataFrame:
    """The images with a CTR that have (``side="with"``) or lack (``"without"``) the feature.

    A feature is present when its confidence is strictly above ``confidence``, as in
    ``feature_summary``, so the row count equals that summary's ``n_with`` (or ``n_without``).
    Columns: image, ctr, clicks and impressions (Int64, missing without counts) and the feature's
    confidence. Sorted by CTR (``ctr_desc`` highest first, ``ctr_asc`` lowest first), ties by
    image name. The CTR is the image's own under either weighting; ``weighting="impressions"``
    divides the group's total clicks by its total impressions over these same rows.
    Raises UnknownFeature, or ValueError for an unknown side or sort.
    """
    if side not in GALLERY_SIDES:
        raise ValueError(f"side must be one of {', '.join(GALLERY_SIDES)}, got {side!r}")
    if sort not in GALLERY_SORTS:
        raise ValueError(f"sort must be one of {', '.join(GALLERY_SORTS)}, got {sort!r}")
    column = feature_confidences(dataset, feature)
    present = column > confidence
    rows = np.flatnonzero(dataset.has_ctr & (present if side == "with" else ~present))
    ctr = dataset.ctr[rows]
    order = np.lexsort((dataset.name_ranks[rows], -ctr if sort == "ctr_desc" else ctr))
    rows = rows[order]
    unknown = pd.arrays.IntegerArray(np.zeros(len(rows), dtype=np.int64), np.ones(len(rows), dtype=bool))
    return pd.DataFrame(
        {
            "image": pd.Series(dataset.images[rows], dtype=object),
            "ctr": dataset.ctr[rows],
            "clicks": unknown if dataset.clicks is None else _counts(dataset.clicks[rows]),
            "impressions": unknown if dataset.impressions is None else _counts(dataset.impressions[rows]),
            "confidence": column[rows],
        },
        columns=GALLERY_COLUMNS,
    )


def _counts(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Counts held as float64 (NaN where unknown) as nullable integers, built without a per-value pass."""
    unknown = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(unknown, 0, values).astype(np.int64), unknown)


def gallery_average(gallery: pd.DataFrame, weighting: str = "mean") -> float:
    """The average CTR of a side as ``feature_summary`` states it: ``avg_ctr_with`` or ``avg_ctr_without``.

    ``weighting="mean"``: the mean of the images' CTRs; ``"impressions"``: their total clicks over
    their total impressions. NaN for an empty side (or no impressions).
    """
    if weighting == "impressions":
        impressions = float(gallery["impressions"].sum())
        return float(gallery["clicks"].sum()) / impressions if impressions > 0 else math.nan
    return float(gallery["ctr"].mean()) if len(gallery) else math.nan
