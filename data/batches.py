"""Validated write payloads, as the store takes them: plain names, positions and numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class FeatureBatch:
    """One build of features: image and feature names plus its non-zero values in long form.

    ``values`` holds (image position, feature position, confidence) tuples; a pair that is not
    listed has confidence 0. Every image and feature is kept, even one with no non-zero value.
    """

    images: list[str]
    features: list[str]
    values: list[tuple[int, int, float]]

    @classmethod
    def from_wide(cls, frame: pd.DataFrame, *, image_col: str = "image_name", exclude=("ctr",)) -> FeatureBatch:
        """From one row per image: a name column and one numeric column per feature."""
        feature_cols = [c for c in frame.columns if c != image_col and c not in exclude]
        matrix = frame[feature_cols].to_numpy(dtype=np.float64, na_value=0.0)
        rows, cols = np.nonzero(matrix)
        values = list(zip(rows.tolist(), cols.tolist(), matrix[rows, cols].tolist()))
        return cls([str(i) for i in frame[image_col]], [str(c) for c in feature_cols], values)

    def to_frame(self) -> pd.DataFrame:
        """The non-zero values as a long DataFrame (image, feature, confidence)."""
        if not self.values:
            return pd.DataFrame({"image": [], "feature": [], "confidence": []})
        img, feat, conf = zip(*self.values)
        return pd.DataFrame(
            {
                "image": np.asarray(self.images, dtype=object)[list(img)],
                "feature": np.asarray(self.features, dtype=object)[list(feat)],
                "confidence": np.asarray(conf, dtype=np.float64),
            }
        )


CTR_COLUMNS = ["image", "ctr", "clicks", "impressions"]


def ctr_frame(images, ctr, clicks=None, impressions=None) -> pd.DataFrame:
    """A CTR set as the store takes it: image, ctr, and nullable integer clicks/impressions."""
    n = len(images)
    return pd.DataFrame(
        {
            "image": pd.Series(list(images), dtype=object),
            "ctr": pd.Series(ctr, dtype="float64"),
            "clicks": pd.Series(clicks if clicks is not None else [None] * n, dtype="Int64"),
            "impressions": pd.Series(impressions if impressions is not None else [None] * n, dtype="Int64"),
        },
        columns=CTR_COLUMNS,
    )
