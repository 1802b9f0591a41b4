"""The hover lookup: typed arrays encoded as Plotly sends numpy arrays and decoded back exactly, and
each point's image and confidence in the smallest types, the points grouped as the browser groups them."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from dashboard.page.hover import from_typed_array, hover_lookup, typed_array, unpacked_names


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


def _points(n_images, n_features, n_points, seed=42):
    """Points in any order, repeated (image, feature) pairs included, and their features' summary."""
    rng = np.random.default_rng(seed)
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
    return points, shown


def _grouped(lookup, x):
    """Each image's (feature code, confidence in hundredths) pairs, grouped as the browser does."""
    lookup = json.loads(json.dumps(lookup))  # as the browser gets it
    point_image, conf = from_typed_array(lookup["point_image"]), from_typed_array(lookup["point_conf_pct"])
    order = np.argsort(point_image, kind="stable")  # the browser's counting sort
    names = unpacked_names(lookup["images"])
    start = np.searchsorted(point_image[order], np.arange(len(names) + 1))
    return {
        name: sorted(zip(x[order[a:b]].tolist(), conf[order[a:b]].tolist()))
        for name, a, b in zip(names, start[:-1], start[1:])
    }


@pytest.mark.parametrize(
    "n_images, n_features, n_points, dtype",
    [(50, 8, 300, "u1"), (40_000, 30, 60_000, "u2"), (300, 40_000, 50_000, "u2"), (70_000, 5, 300_000, "u4")],
    ids=["small", "images-beyond-uint8", "features-beyond-int16", "images-beyond-uint16"],
)
@pytest.mark.parametrize("given_images", [True, False], ids=["images-given", "images-factorized"])
def test_hover_lookup_maps_every_point_to_its_image(n_images, n_features, n_points, dtype, given_images):
    """Every point decodes to its own image; every image's points are exactly its (feature, confidence) rows."""
    points, shown = _points(n_images, n_features, n_points)
    # The build's names, in another order and with images that have no point.
    build = [f"img_{i}" for i in range(n_images + 10)][::-1] if given_images else None
    lookup = hover_lookup(points, shown, token="t", images=build)
    assert set(lookup) == {"token", "features", "impact", "images", "point_image", "point_conf_pct", "urls"}
    assert (lookup["point_image"]["dtype"], lookup["point_conf_pct"]["dtype"]) == (dtype, "u1")
    image_names = unpacked_names(lookup["images"])
    names = np.array(image_names, dtype=object)
    assert list(names[from_typed_array(lookup["point_image"])]) == list(points["image"])
    with_points = set(points["image"])
    assert sorted(image_names) == sorted(with_points)  # each image with points, once
    if given_images:
        assert image_names == [i for i in build if i in with_points]  # in the build's order
    codes = points["feature"].cat.codes.to_numpy()
    pct = np.round(points["confidence"].to_numpy() * 100).astype(int)
    expected = {}
    for image, code, c in zip(points["image"], codes.tolist(), pct.tolist()):
        expected.setdefault(image, []).append((code, c))
    assert _grouped(lookup, codes) == {image: sorted(pairs) for image, pairs in expected.items()}


def test_hover_lookup_falls_back_when_a_point_names_an_unknown_image():
    """A name missing from ``images`` (or repeated in it) does not break the lookup: it hashes the points' names."""
    points, shown = _points(20, 4, 100)
    for images in ([f"img_{i}" for i in range(5)], ["img_1", "img_1"] + [f"img_{i}" for i in range(20)]):
        lookup = hover_lookup(points, shown, token="t", images=images)
        names = np.array(unpacked_names(lookup["images"]), dtype=object)
        assert list(names[from_typed_array(lookup["point_image"])]) == list(points["image"])


def test_hover_lookup_per_image_facts_follow_its_images():
    """URLs and click counts are listed per image in the lookup's own order."""
    points, shown = _points(30, 4, 200)
    counts = {f"img_{i}": (i, 100 * i) for i in range(30)}
    lookup = hover_lookup(points, shown, token="t", urls_for=lambda imgs: [f"u/{i}" for i in imgs], counts=counts)
    names = unpacked_names(lookup["images"])
    assert lookup["urls"] == [f"u/{i}" for i in names]
    clicks, impressions = (from_typed_array(lookup[k]).tolist() for k in ("clicks", "impressions"))
    assert list(zip(clicks, impressions)) == [counts[i] for i in names]
    # An image without counts: plain lists, null where unknown.
    del counts["img_3"]
    lookup = hover_lookup(points, shown, token="t", counts=counts)
    names = unpacked_names(lookup["images"])
    assert lookup["clicks"] == [counts.get(i, (None, None))[0] for i in names]


@pytest.mark.parametrize(
    "names",
    [
        [],
        ["img_1"],
        ["imgcontent.brand-falltour_imgtemp.splitgrid", "émoji 🙂 name", "tab\tand\nnewline", "img_1"],
        [f"imgcontent.brand{i % 7}-campaign{i % 13}_imgtemp.story{i}" for i in range(5_000)],
    ],
    ids=["none", "one", "unicode", "many"],
)
def test_image_names_are_packed_and_unpack_to_the_same_list(names):
    from dashboard.page.hover import packed_names, unpacked_names

    packed = json.loads(json.dumps(packed_names(names)))  # as the browser gets it
    assert packed["count"] == len(names) and set(packed) == {"count", "deflate"}
    assert unpacked_names(packed) == names
    if len(names) > 100:
        assert len(packed["deflate"]) < len(json.dumps(names)) / 5  # names repeat their parts


def test_a_name_holding_the_separator_is_sent_as_a_plain_list():
    from dashboard.page.hover import packed_names, unpacked_names

    names = ["a\x00b", "c"]
    assert packed_names(names) == names and unpacked_names(names) == names


def test_whole_counts_are_sent_as_the_smallest_typed_array_and_others_as_lists():
    from dashboard.page.hover import _counts_array

    assert _counts_array([3, 200, 0])["dtype"] == "u1"
    assert from_typed_array(_counts_array([3, 70_000])).tolist() == [3, 70_000]
    assert _counts_array([3, 70_000])["dtype"] == "u4"
    assert _counts_array([3, None]) == [3, None]  # an image without counts: a list, with null
    assert _counts_array([2.5, 1]) == [2.5, 1]


def test_a_lookup_for_a_scatter_drawn_in_part_gives_every_points_feature_and_ctr():
    """``feature_start`` and ``image_ctr_pct`` rebuild the full trace's x and y exactly (float32),
    so the page can draw any window's points and link points it has not drawn."""
    from dashboard import figures

    rng = np.random.default_rng(7)
    features = [f"f{j}" for j in range(90)]
    codes = np.sort(rng.integers(0, 90, 4_000))  # feature-major, as scatter_points gives them
    codes = codes[(codes != 17) & (codes != 60)]  # two features without points: not on the x axis
    image = rng.integers(0, 500, len(codes))
    ctr = rng.random(500) * 0.05
    points = pd.DataFrame(
        {
            "image": [f"img_{i}" for i in image],
            "feature": pd.Categorical.from_codes(codes, categories=features),
            "confidence": rng.random(len(codes)),
            "ctr": ctr[image],
        }
    )
    shown = pd.DataFrame({"feature": features, "impact": np.zeros(90)})
    trace = figures.scatter_figure(points, feature_order=features).data[0]
    lookup = json.loads(json.dumps(hover_lookup(points, shown, token="t", drawn_in_part=True)))  # as sent
    starts = from_typed_array(lookup["feature_start"])
    point_image = from_typed_array(lookup["point_image"])
    assert starts[0] == 0 and starts[-1] == len(points) and len(starts) == len(features) - 2 + 1
    assert len(trace.x) == len(points) and len(set(np.asarray(trace.x).tolist())) == len(features) - 2
    assert np.array_equal(np.repeat(np.arange(len(features) - 2), np.diff(starts)), np.asarray(trace.x))
    assert np.array_equal(from_typed_array(lookup["image_ctr_pct"])[point_image], np.asarray(trace.y))
    assert "feature_start" not in hover_lookup(points, shown, token="t")  # only when drawn in part
