"""The numbers behind the charts and the API, computed from arrays with no I/O.

A feature is *present* in an image when its confidence is strictly greater than the
confidence threshold. Prevalence is over all images of the build; CTR statistics are over
the images that have a CTR. The dashboard, the JSON API and a notebook all call these
functions, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = [
    "feature",
    "n_with",
    "n_without",
    "prevalence_pct",
    "avg_ctr_with",
    "avg_ctr_without",
    "impact",
]
POINT_COLUMNS = ["image", "feature", "confidence", "ctr"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """One build's image x feature confidences with each image's CTR (NaN where unknown)."""

    images: np.ndarray  # (n,) image names
    features: np.ndarray  # (m,) feature names
    confidences: np.ndarray  # (n, m) float64, 0 where the featurizer gave nothing
    ctr: np.ndarray  # (n,) float64, NaN where the image has no CTR
    clicks: np.ndarray | None = None  # (n,) float64, NaN where unknown; None without counts
    impressions: np.ndarray | None = None

    def __post_init__(self):
        n, m = len(self.images), len(self.features)
        if self.confidences.shape != (n, m):
            raise ValueError(f"confidences must be {n} x {m}, got {self.confidences.shape}")
        if self.ctr.shape != (n,):
            raise ValueError(f"ctr must have {n} values, got {self.ctr.shape}")

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
    ) -> "Dataset":
        """Build from one row per image: a name column, a CTR column and one column per feature."""
        special = {c for c in (image_col, ctr_col, clicks_col, impressions_col) if c}
        feature_cols = [c for c in frame.columns if c not in special]
        conf = frame[feature_cols].to_numpy(dtype=np.float64, na_value=0.0)
        ctr = (
            frame[ctr_col].to_numpy(dtype=np.float64, na_value=np.nan)
            if ctr_col
            else np.full(len(frame), np.nan)
        )
        return cls(
            images=frame[image_col].astype(str).to_numpy(dtype=object),
            features=np.array(feature_cols, dtype=object),
            confidences=conf,
            ctr=ctr,
            clicks=_optional_column(frame, clicks_col),
            impressions=_optional_column(frame, impressions_col),
        )

    @classmethod
    def from_long(cls, values: pd.DataFrame, ctr: pd.DataFrame | pd.Series | None = None) -> "Dataset":
        """Build from long rows (image, feature, confidence) and CTRs indexed or keyed by image.

        ``ctr`` is a Series of CTRs indexed by image, or a DataFrame with an ``image`` column, a
        ``ctr`` column and optionally ``clicks`` and ``impressions``.
        """
        images = pd.Index(pd.unique(values["image"]), dtype=object)
        features = pd.Index(pd.unique(values["feature"]), dtype=object)
        conf = np.zeros((len(images), len(features)))
        conf[images.get_indexer(values["image"]), features.get_indexer(values["feature"])] = (
            values["confidence"].to_numpy(dtype=np.float64)
        )
        return cls.from_matrix(images, features, conf, ctr)

    @classmethod
    def from_matrix(cls, images, features, confidences, ctr=None) -> "Dataset":
        """Build from names, a dense matrix and CTRs (Series by image or DataFrame as in from_long)."""
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
            confidences=np.asarray(confidences, dtype=np.float64),
            ctr=rate,
            clicks=clicks,
            impressions=impressions,
        )


def _optional_column(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if not column:
        return None
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def presence(confidences: np.ndarray, confidence: float) -> np.ndarray:
    """Boolean matrix: True where a feature's confidence is strictly above the threshold."""
    return confidences > confidence


def prevalence_pct(present: np.ndarray) -> np.ndarray:
    """Per feature, the percentage of images in which it is present."""
    n = present.shape[0]
    if n == 0:
        return np.zeros(present.shape[1])
    return present.sum(axis=0) * (100.0 / n)


def feature_summary(
    dataset: Dataset,
    confidence: float = 0.0,
    min_pct: float = 0.0,
    max_pct: float = 100.0,
) -> pd.DataFrame:
    """Per feature: n with/without, prevalence, average CTR with and without, and impact.

    Features outside [min_pct, max_pct] prevalence, or present in no image with a CTR, are
    dropped. Rows are ordered by impact, highest first (undefined impact last), then by name.
    """
    present = presence(dataset.confidences, confidence)
    prevalence = prevalence_pct(present)
    known = dataset.has_ctr
    ctr = dataset.ctr[known]
    present_known = present[known]
    n_known = len(ctr)

    n_with = present_known.sum(axis=0)
    n_without = n_known - n_with
    prevalent = (prevalence >= min_pct) & (prevalence <= max_pct) & (n_with > 0)
    avg_with, avg_without = _group_means(ctr, present_known, prevalent)
    impact = avg_with - avg_without

    idx = np.flatnonzero(prevalent)
    # Highest impact first; NaN impact (feature in every image with a CTR) last; ties by name.
    names = dataset.features[idx].astype(str)
    key_impact = np.where(np.isnan(impact[idx]), np.inf, -impact[idx])
    idx = idx[np.lexsort((names, key_impact))]

    return pd.DataFrame(
        {
            "feature": pd.Series(dataset.features[idx], dtype=object),
            "n_with": n_with[idx].astype(np.int64),
            "n_without": n_without[idx].astype(np.int64),
            "prevalence_pct": prevalence[idx],
            "avg_ctr_with": avg_with[idx],
            "avg_ctr_without": avg_without[idx],
            "impact": impact[idx],
        },
        columns=SUMMARY_COLUMNS,
    )


def _group_means(ctr: np.ndarray, present: np.ndarray, columns: np.ndarray):
    """Mean CTR of the images with and without each selected feature (NaN for an empty group).

    Each group is summed with numpy's own pairwise summation over the selected values, the
    arithmetic of ``frame.loc[mask, "ctr"].mean()``, so the numbers agree with a plain pandas
    computation to the last bit; a matrix product would differ in the last digits.
    """
    m = present.shape[1]
    avg_with = np.full(m, np.nan)
    avg_without = np.full(m, np.nan)
    by_feature = np.asfortranarray(present)
    for j in np.flatnonzero(columns):
        mask = by_feature[:, j]
        with_ctr = ctr[mask]
        without_ctr = ctr[~mask]
        if len(with_ctr):
            avg_with[j] = with_ctr.sum() / len(with_ctr)
        if len(without_ctr):
            avg_without[j] = without_ctr.sum() / len(without_ctr)
    return avg_with, avg_without


def scatter_points(dataset: Dataset, confidence: float = 0.0, features=None) -> pd.DataFrame:
    """One row per (image with a CTR, feature present): image, feature, confidence, ctr.

    ``features`` (e.g. a summary's ``feature`` column) selects and orders the features; the
    ``feature`` column is categorical in that order. By default every feature is used.
    """
    if features is None:
        order = np.arange(len(dataset.features))
    else:
        lookup = pd.Index(dataset.features, dtype=object)
        order = lookup.get_indexer(pd.Index(list(features), dtype=object))
        if (order < 0).any():
            missing = [f for f, i in zip(features, order) if i < 0]
            raise KeyError(f"unknown features: {missing[:5]}")
    known = np.flatnonzero(dataset.has_ctr)
    sub = dataset.confidences[np.ix_(known, order)]
    # Feature-major so that each feature's points are contiguous, in the requested order.
    feat_pos, img_pos = np.nonzero(presence(sub, confidence).T)
    image_rows = known[img_pos]
    categories = pd.Index(dataset.features[order], dtype=object)
    return pd.DataFrame(
        {
            "image": pd.Series(dataset.images[image_rows], dtype=object),
            "feature": pd.Categorical.from_codes(feat_pos, categories=categories),
            "confidence": sub[img_pos, feat_pos],
            "ctr": dataset.ctr[image_rows],
        },
        columns=POINT_COLUMNS,
    )


def image_features(dataset: Dataset, image: str, confidence: float = 0.0) -> pd.DataFrame:
    """The features present in one image, highest confidence first."""
    rows = np.flatnonzero(dataset.images == image)
    if not len(rows):
        raise KeyError(f"unknown image: {image!r}")
    conf = dataset.confidences[rows[0]]
    idx = np.flatnonzero(presence(conf, confidence))
    idx = idx[np.argsort(-conf[idx], kind="stable")]
    return pd.DataFrame({"feature": dataset.features[idx], "confidence": conf[idx]})
