"""The hover lookup: typed arrays encoded as Plotly sends numpy arrays and decoded back exactly, and
each image's points grouped as before the lexsort was replaced."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from dashboard.hover import from_typed_array, hover_lookup, typed_array


@pytest.mark.parametrize(
    "values, dtype, code",
    [
        ([0, 1, -5, 32767], np.int16, "i2"),
        ([0, 70_000, -1], np.int32, "i4"),
        ([0.25, 1e-7, 3.5], np.float32, "f4"),
        ([0.1, np.nan, 1e300], np.float64, "f8"),
    ],
)
def test_hover_typed_array_round_trips_through_json(values, dtype, code):
    """The encoding is little-endian base64 under Plotly's dtype names and decodes to the same values."""
    encoded = json.loads(json.dumps(typed_array(values, dtype)))
    assert encoded["dtype"] == code
    raw = base64.b64decode(encoded["bdata"])
    assert len(raw) == len(values) * np.dtype(dtype).itemsize
    assert np.array_equal(from_typed_array(encoded), np.asarray(values, dtype=dtype), equal_nan=True)


def test_hover_typed_array_matches_plotly_encoding():
    """The same bytes and dtype name as plotly.py produces for a numpy array in a figure."""
    import plotly.graph_objects as go

    values = np.array([3, 1, 4, 1, 5], dtype=np.int16)
    trace = json.loads(go.Figure(go.Scatter(x=values)).to_json())["data"][0]["x"]
    assert typed_array(values, np.int16) == trace


def test_hover_from_typed_array_accepts_plain_lists():
    """A list (as older lookups sent) reads as an array too."""
    assert from_typed_array([1, 2, 3]).tolist() == [1, 2, 3]


def _lookup_by_lexsort(points, shown):
    """hover_lookup's grouping as first written (np.lexsort), the reference for the faster one."""
    codes = points["feature"].cat.codes.to_numpy(dtype=np.int64)
    image_of_point, images = pd.factorize(points["image"], sort=False)
    order = np.lexsort((codes, image_of_point))
    start = np.zeros(len(images) + 1, dtype=np.int64)
    np.cumsum(np.bincount(image_of_point, minlength=len(images)), out=start[1:])
    conf = np.round(points["confidence"].to_numpy(dtype=np.float64)[order] * 100)
    return {
        "image_start": typed_array(start, np.int32),
        "image_codes": typed_array(codes[order], np.int16 if len(shown) <= 32767 else np.int32),
        "image_conf_pct": typed_array(conf, np.uint8),
    }


@pytest.mark.parametrize(
    "n_images, n_features, n_points",
    [(50, 8, 300), (40_000, 30, 60_000), (300, 40_000, 50_000)],
    ids=["small", "images-beyond-int16", "features-beyond-int16"],
)
def test_hover_lookup_groups_points_as_lexsort_did(n_images, n_features, n_points):
    """Rows in any order, repeated (image, feature) pairs included: the same bytes as np.lexsort's grouping."""
    rng = np.random.default_rng(42)
    features = [f"f{j}" for j in range(n_features)]
    points = pd.DataFrame(
        {
            "image": pd.Series([f"img_{i}" for i in rng.integers(0, n_images, n_points)], dtype=object),
            "feature": pd.Categorical.from_codes(rng.integers(0, n_features, n_points), categories=features),
            "confidence": rng.random(n_points),
            "ctr": rng.random(n_points) * 0.05,
        }
    )
    shown = pd.DataFrame({"feature": features, "impact": rng.normal(0, 0.01, n_features)})
    lookup = hover_lookup(points, shown, token="t")
    expected = _lookup_by_lexsort(points, shown)
    for name, value in expected.items():
        assert lookup[name] == value, name
