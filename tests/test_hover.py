"""Typed arrays of the hover lookup: encoded as Plotly sends numpy arrays, decoded back exactly."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from dashboard.hover import from_typed_array, typed_array


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
