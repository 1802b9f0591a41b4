"""Dataset: one build's image x feature confidences with each image's CTR, checked as it is built.

Built from a wide frame (one row per image, as the original dashboard's CSV), long rows
(image, feature, confidence) or a dense or scipy.sparse matrix; the store returns one per
build and CTR set. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from data import matrix


@dataclass(frozen=True, eq=False)
class Dataset:
    """One build's image x feature confidences with each image's CTR (NaN where unknown)."""

    images: np.ndarray  # (n,) image names
    features: np.ndarray  # (m,) feature names
    confidences: object  # (n, m) float64 ndarray or scipy.sparse CSC array; 0 where nothing was given
    ctr: np.ndarray  # (n,) float64, NaN where the image has no CTR
    clicks: np.ndarray | None = None  # (n,) float64, NaN where unknown; None without counts
    impressions: np.ndarray | None = None

    def __post_init__(self):
        n, m = len(self.images), len(self.features)
        if self.confidences.shape != (n, m):
            raise ValueError(f"confidences must be {n} x {m}, got {self.confidences.shape}")
        if self.ctr.shape != (n,):
            raise ValueError(f"ctr must have {n} values, got {self.ctr.shape}")
        known = ~np.isnan(self.ctr)
        if ((self.ctr[known] < 0) | (self.ctr[known] > 1)).any():
            raise ValueError("ctr must be in [0, 1] (NaN where unknown)")
        if self.clicks is not None and self.impressions is not None:
            _check_counts(self.images, self.clicks, self.impressions)

    def dense(self) -> np.ndarray:
        """The confidences as a dense ndarray (materialises a sparse matrix: small builds only)."""
        return matrix.dense(self.confidences)

    @property
    def nbytes(self) -> int:
        """Approximate bytes held: the confidences, the per-image arrays and the names."""
        arrays = [a for a in (self.ctr, self.clicks, self.impressions) if a is not None]
        names = matrix.names_nbytes(self.images) + matrix.names_nbytes(self.features)
        return matrix.nbytes(self.confidences) + sum(a.nbytes for a in arrays) + names

    @cached_property
    def name_ranks(self) -> np.ndarray:
        """Each image's position among the images sorted by name (ties in CTR sort by it), computed once."""
        order = np.argsort(self.images.astype(str), kind="stable")
        ranks = np.empty(len(order), dtype=np.int64)
        ranks[order] = np.arange(len(order))
        return ranks

    @property
    def has_ctr(self) -> np.ndarray:
        """Boolean mask of the images that have a CTR."""
        return ~np.isnan(self.ctr)

    @property
    def images_with_ctr(self) -> int:
        """How many images have a CTR."""
        return int(self.has_ctr.sum())

    @property
    def has_counts(self) -> bool:
        """Whether clicks and impressions are known for every image that has a CTR."""
        if self.impressions is None or self.clicks is None:
            return False
        known = self.has_ctr
        return bool(known.any()) and not np.isnan(self.impressions[known]).any()

    @classmethod
    def from_wide(
        cls,
        frame: pd.DataFrame,
        *,
        image_col: str = "image_name",
        ctr_col: str | None = "ctr",
        clicks_col: str | None = None,
        impressions_col: str | None = None,
    ) -> Dataset:
        """Build from one row per image: a name column, a CTR column and one column per feature."""
        special = {c for c in (image_col, ctr_col, clicks_col, impressions_col) if c}
        feature_cols = [c for c in frame.columns if c not in special]
        conf = frame[feature_cols].to_numpy(dtype=np.float64, na_value=0.0)
        ctr = frame[ctr_col].to_numpy(dtype=np.float64, na_value=np.nan) if ctr_col else np.full(len(frame), np.nan)
        return cls(
            images=frame[image_col].astype(str).to_numpy(dtype=object),
            features=np.array(feature_cols, dtype=object),
            confidences=conf,
            ctr=ctr,
            clicks=_optional_column(frame, clicks_col),
            impressions=_optional_column(frame, impressions_col),
        )

    @classmethod
    def from_long(cls, values: pd.DataFrame, ctr: pd.DataFrame | pd.Series | None = None) -> Dataset:
        """Build from long rows (image, feature, confidence) and CTRs indexed or keyed by image.

        ``ctr`` is a Series of CTRs indexed by image, or a DataFrame with an ``image`` column, a
        ``ctr`` column and optionally ``clicks`` and ``impressions``.
        """
        images = pd.Index(pd.unique(values["image"]), dtype=object)
        features = pd.Index(pd.unique(values["feature"]), dtype=object)
        conf = matrix.from_triples(
            images.get_indexer(values["image"]),
            features.get_indexer(values["feature"]),
            values["confidence"].to_numpy(dtype=np.float64),
            (len(images), len(features)),
        )
        return cls.from_matrix(images, features, conf, ctr)

    @classmethod
    def from_matrix(cls, images, features, confidences, ctr=None) -> Dataset:
        """Build from names, a dense or scipy.sparse matrix and CTRs (Series by image or DataFrame as in from_long)."""
        images = np.asarray(images, dtype=object)
        n = len(images)
        rate = np.full(n, np.nan)
        clicks = impressions = None
        if ctr is not None:
            frame = ctr.rename("ctr").rename_axis("image").reset_index() if isinstance(ctr, pd.Series) else ctr
            frame = frame.drop_duplicates("image", keep="last").set_index("image")
            aligned = frame.reindex(pd.Index(images, dtype=object))
            rate = aligned["ctr"].to_numpy(dtype=np.float64, na_value=np.nan)
            if "impressions" in aligned and "clicks" in aligned:
                clicks = aligned["clicks"].to_numpy(dtype=np.float64, na_value=np.nan)
                impressions = aligned["impressions"].to_numpy(dtype=np.float64, na_value=np.nan)
        return cls(
            images=images,
            features=np.asarray(features, dtype=object),
            confidences=matrix.to_csc(confidences)
            if matrix.is_sparse(confidences)
            else np.asarray(confidences, dtype=np.float64),
            ctr=rate,
            clicks=clicks,
            impressions=impressions,
        )


def _check_counts(images: np.ndarray, clicks: np.ndarray, impressions: np.ndarray) -> None:
    """Refuse counts the HTTP and CLI paths refuse: each image needs whole clicks >= 0, impressions > 0, clicks <= impressions."""
    n = len(images)
    if clicks.shape != (n,) or impressions.shape != (n,):
        raise ValueError(f"clicks and impressions must have {n} values, got {clicks.shape} and {impressions.shape}")
    known = ~np.isnan(impressions)
    with np.errstate(invalid="ignore"):
        bad = (
            (np.isnan(clicks) != ~known)
            | (known & ~(impressions > 0))
            | (known & ~(clicks >= 0))
            | (known & ~(clicks <= impressions))
            | (known & ((np.mod(clicks, 1) != 0) | (np.mod(impressions, 1) != 0)))
            | np.isinf(impressions)
        )
    if bad.any():
        shown = ", ".join(
            f"image {images[i]!r}: {_show_count(clicks[i])} clicks of {_show_count(impressions[i])} impressions"
            for i in np.flatnonzero(bad)[:5]
        )
        raise ValueError(
            "counts must be whole numbers with clicks >= 0, impressions > 0 and clicks <= impressions "
            f"(both unknown, NaN, for an image without counts); {int(bad.sum())} invalid: {shown}"
        )


def _show_count(value: float) -> str:
    return str(int(value)) if np.isfinite(value) and value == int(value) else str(value)


def _optional_column(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if not column:
        return None
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
