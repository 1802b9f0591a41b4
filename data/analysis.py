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
import scipy.sparse as sp

from data import matrix, permutation, stats

SUMMARY_COLUMNS = [
    "feature",
    "n_with",
    "n_without",
    "prevalence_pct",
    "avg_ctr_with",
    "avg_ctr_without",
    "impact",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "low_n",
    "significant",
    "verdict",
    "lift_pct",
    "ci_low_fcr",
    "ci_high_fcr",
]
WEIGHTINGS = ("mean", "impressions")
DEFAULT_MIN_GROUP_SIZE = 5
SIGNIFICANCE_LEVEL = 0.05
POINT_COLUMNS = ["image", "feature", "confidence", "ctr"]


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


class WeightingUnavailable(ValueError):
    """Impression weighting was asked for a dataset without clicks and impressions."""


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


def check_weighting(weighting: str, *datasets: Dataset) -> None:
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


def feature_summary(
    dataset: Dataset,
    confidence: float = 0.0,
    min_pct: float = 0.0,
    max_pct: float = 100.0,
    *,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    weighting: str = "mean",
) -> pd.DataFrame:
    """Per feature: n with/without, prevalence, CTR with and without, impact and its uncertainty.

    Features outside [min_pct, max_pct] prevalence, or present in no image with a CTR, are
    dropped. ``weighting="mean"`` averages per-image CTRs, ``"impressions"`` divides total
    clicks by total impressions per group; either way impact is tested by a studentized
    permutation test (Welch's t or the delta-method z, see ``data.permutation``). Features
    with fewer than ``min_n`` images on either side keep their averages but get NaN
    statistics and ``low_n``. ``q_value`` is Benjamini-Hochberg over the returned
    features; ``verdict``, ``lift_pct`` and the false coverage rate adjusted interval
    ``ci_low_fcr``/``ci_high_fcr`` (at ``stats.verdict_fields(...)["fcr_level"]``) read them. Rows are ordered by impact, highest first (undefined impact last), then by name.
    """
    check_weighting(weighting, dataset)
    present = presence(dataset.confidences, confidence)
    known = dataset.has_ctr
    prevalence, present_known, n_with, prevalent = prevalence_filter(present, known, min_pct, max_pct)
    n_without = int(known.sum()) - n_with
    idx = np.flatnonzero(prevalent)
    if weighting == "mean":
        groups = _mean_groups(dataset.ctr[known], present_known, idx, _known_impressions(dataset))
    else:
        groups = _impression_groups(
            dataset.clicks[known], dataset.impressions[known], present_known[:, idx], present.shape[1]
        )
    avg_with, avg_without, test, k, sums = groups
    impact = avg_with - avg_without
    ci_low, ci_high, p_value = test.run(k, sums, impact)

    low_n = (n_with[idx] < min_n) | (n_without[idx] < min_n)
    ci_low[low_n] = ci_high[low_n] = p_value[low_n] = np.nan
    q_value = stats.benjamini_hochberg(p_value)
    answer = stats.verdict_fields(impact, q_value, low_n, avg_without, SIGNIFICANCE_LEVEL)
    ci_low_fcr, ci_high_fcr = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    tested = ~np.isnan(p_value)
    if tested.any():
        # The same null and tails at the false coverage rate's level, 0 excluded exactly where q < 0.05.
        at = np.flatnonzero(tested)
        ci_low_fcr[at], ci_high_fcr[at] = test.interval(
            k[at], sums[:, at], impact[at], 1.0 - answer["fcr_level"], q_value[at] < SIGNIFICANCE_LEVEL
        )

    # Highest impact first; NaN impact (feature in every image with a CTR) last; ties by name.
    names = dataset.features[idx].astype(str)
    order = np.lexsort((names, np.where(np.isnan(impact), np.inf, -impact)))
    idx = idx[order]
    return pd.DataFrame(
        {
            "feature": pd.Series(dataset.features[idx], dtype=object),
            "n_with": n_with[idx].astype(np.int64),
            "n_without": n_without[idx].astype(np.int64),
            "prevalence_pct": prevalence[idx],
            "avg_ctr_with": avg_with[order],
            "avg_ctr_without": avg_without[order],
            "impact": impact[order],
            "ci_low": ci_low[order],
            "ci_high": ci_high[order],
            "p_value": p_value[order],
            "q_value": q_value[order],
            "low_n": low_n[order],
            "significant": (q_value[order] < SIGNIFICANCE_LEVEL),
            "verdict": pd.Series(answer["verdict"][order], dtype=object),
            "lift_pct": answer["lift_pct"][order],
            "ci_low_fcr": ci_low_fcr[order],
            "ci_high_fcr": ci_high_fcr[order],
        },
        columns=SUMMARY_COLUMNS,
    )


def permutation_tests(dataset: Dataset) -> list[permutation.StudentizedTest]:
    """The permutation tests summaries of ``dataset`` run, one per weighting it supports (none without CTRs).

    Their null tables depend only on the images' CTRs, so they can be drawn before any summary.
    """
    known = dataset.has_ctr
    if not known.any():
        return []
    n_tests = len(dataset.features)
    tests = [_mean_test(dataset.ctr[known], n_tests, _known_impressions(dataset))]
    if dataset.has_counts:
        tests.append(_impressions_test(dataset.clicks[known], dataset.impressions[known], n_tests))
    return tests


def _known_impressions(dataset: Dataset) -> np.ndarray | None:
    """The impressions of the images with a CTR, where every one has them (they floor the mean's variance)."""
    return dataset.impressions[dataset.has_ctr] if dataset.has_counts else None


def _mean_test(ctr: np.ndarray, n_tests: int, impressions: np.ndarray | None = None) -> permutation.StudentizedTest:
    units = ctr[:, None] if impressions is None else np.column_stack([ctr, impressions])
    return permutation.StudentizedTest("mean", units, n_tests=n_tests)


def _impressions_test(clicks: np.ndarray, impressions: np.ndarray, n_tests: int) -> permutation.StudentizedTest:
    return permutation.StudentizedTest("impressions", np.column_stack([clicks, impressions]), n_tests=n_tests)


def _mean_groups(ctr: np.ndarray, present: np.ndarray, columns: np.ndarray, impressions: np.ndarray | None):
    """Mean CTR with and without each selected feature, its test, group sizes and column sums."""
    avg_with, avg_without = _group_means(ctr, present, columns)
    test = _mean_test(ctr, present.shape[1], impressions)
    selected = present[:, columns]
    return avg_with[columns], avg_without[columns], test, matrix.column_counts(selected), test.group_sums(selected)


def _impression_groups(clicks: np.ndarray, impressions: np.ndarray, selected: np.ndarray, n_tests: int):
    """Clicks / impressions with and without each feature, its test, group sizes and column sums."""
    test = _impressions_test(clicks, impressions, n_tests)
    sums = test.group_sums(selected)
    rest = test.totals[:, None] - sums
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_with = sums[0] / sums[1]
        ratio_without = rest[0] / rest[1]
    return ratio_with, ratio_without, test, matrix.column_counts(selected), sums


def _group_means(ctr: np.ndarray, present: np.ndarray, columns: np.ndarray):
    """Mean CTR of the images with and without each feature in ``columns`` (NaN for an empty group).

    Each group is summed with numpy's own pairwise summation over the selected values, the
    arithmetic of ``frame.loc[mask, "ctr"].mean()``, so the numbers agree with a plain pandas
    computation to the last bit; a matrix product would differ in the last digits.
    """
    present = sp.csc_array(present) if not matrix.is_sparse(present) else present
    m = present.shape[1]
    avg_with = np.full(m, np.nan)
    avg_without = np.full(m, np.nan)
    for j in columns:
        rows = matrix.column_rows(present, j)
        with_ctr = ctr[rows]
        # The images without the feature: all but its rows, in order (np.delete copies them about
        # a fifth faster than a boolean mask does).
        without_ctr = np.delete(ctr, rows)
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
    # Feature-major so that each feature's points are contiguous, in the requested order.
    feat_pos, image_rows, values = matrix.present_values(dataset.confidences, confidence, known, order)
    categories = pd.Index(dataset.features[order], dtype=object)
    return pd.DataFrame(
        {
            "image": pd.Series(dataset.images[image_rows], dtype=object),
            "feature": pd.Categorical.from_codes(feat_pos, categories=categories),
            "confidence": values,
            "ctr": dataset.ctr[image_rows],
        },
        columns=POINT_COLUMNS,
    )


def image_features(dataset: Dataset, image: str, confidence: float = 0.0) -> pd.DataFrame:
    """The features present in one image, highest confidence first."""
    rows = np.flatnonzero(dataset.images == image)
    if not len(rows):
        raise KeyError(f"unknown image: {image!r}")
    conf = matrix.row_values(dataset.confidences, rows[0])
    idx = np.flatnonzero(conf > confidence)
    idx = idx[np.argsort(-conf[idx], kind="stable")]
    return pd.DataFrame({"feature": dataset.features[idx], "confidence": conf[idx]})
