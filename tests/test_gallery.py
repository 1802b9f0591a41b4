"""data/gallery.py and GET /api/gallery: the images behind a feature, against the reference data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.analysis import Dataset, feature_summary
from data.batches import FeatureBatch, ctr_frame
from data.demo import demo_build
from data.gallery import GALLERY_COLUMNS, UnknownFeature, feature_gallery, gallery_average
from tests import image_samples as samples

REFERENCE = ("Reference 2018", "vision")
FEATURES = ["black_x", "text", "girl", "headwear", "poster", "fun", "skyblue"]


def pandas_gallery(frame: pd.DataFrame, feature: str, threshold: float, side: str) -> pd.DataFrame:
    """The same list computed the plain pandas way, from the CSV's own columns."""
    known = frame[frame["ctr"].notna()]
    present = known[feature].fillna(0) > threshold
    rows = known[present if side == "with" else ~present]
    return rows.sort_values(["ctr", "image_name"], ascending=[False, True])


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.8])
@pytest.mark.parametrize("side", ["with", "without"])
def test_feature_gallery_lists_the_images_the_summary_counts(reference_frame, reference_dataset, threshold, side):
    summary = feature_summary(reference_dataset, confidence=threshold).set_index("feature")
    for feature in FEATURES:
        gallery = feature_gallery(reference_dataset, feature, threshold, side)
        expected = pandas_gallery(reference_frame, feature, threshold, side)
        assert list(gallery.columns) == GALLERY_COLUMNS
        assert list(gallery["image"]) == list(expected["image_name"])
        np.testing.assert_array_equal(gallery["ctr"], expected["ctr"])
        np.testing.assert_array_equal(gallery["confidence"], expected[feature].fillna(0))
        if feature in summary.index:
            n = summary.loc[feature, "n_with" if side == "with" else "n_without"]
            assert len(gallery) == n
            mean = summary.loc[feature, "avg_ctr_with" if side == "with" else "avg_ctr_without"]
            assert gallery["ctr"].mean() == pytest.approx(mean, rel=1e-12)
        assert gallery["clicks"].isna().all()  # the reference CTRs came without counts


def test_feature_gallery_sorts_by_ctr_either_way_with_ties_by_name():
    frame = pd.DataFrame(
        {"image_name": ["d", "c", "b", "a", "e"], "ctr": [0.2, 0.1, 0.2, 0.3, np.nan], "x": [0.9, 0.9, 0.9, 0.9, 0.9]}
    )
    ds = Dataset.from_wide(frame)
    assert list(feature_gallery(ds, "x", 0.5)["image"]) == ["a", "b", "d", "c"]
    assert list(feature_gallery(ds, "x", 0.5, sort="ctr_asc")["image"]) == ["c", "b", "d", "a"]
    assert feature_gallery(ds, "x", 0.5, side="without").empty
    assert len(feature_gallery(ds, "x", 0.9, side="without")) == 4  # strictly above: 0.9 is absent at 0.9


def test_feature_gallery_counts_reproduce_both_weightings():
    batch, ctr = demo_build(n_images=300, n_features=60)
    ds = Dataset.from_matrix(batch.images, batch.features, _dense(batch), ctr)
    for weighting in ("mean", "impressions"):
        summary = feature_summary(ds, confidence=0.5, weighting=weighting).set_index("feature")
        for feature in ("text", "smile"):
            for side, column in (("with", "avg_ctr_with"), ("without", "avg_ctr_without")):
                gallery = feature_gallery(ds, feature, 0.5, side)
                rows = gallery["clicks"].sum() / gallery["impressions"].sum()
                value = gallery["ctr"].mean() if weighting == "mean" else rows
                assert value == pytest.approx(summary.loc[feature, column], rel=1e-12)
                assert gallery_average(gallery, weighting) == pytest.approx(summary.loc[feature, column], rel=1e-12)
                assert (gallery["clicks"] / gallery["impressions"]).to_numpy() == pytest.approx(gallery["ctr"])


def _dense(batch: FeatureBatch) -> np.ndarray:
    out = np.zeros((len(batch.images), len(batch.features)))
    for i, j, v in batch.values:
        out[i, j] = v
    return out


def test_feature_gallery_refuses_unknown_features_sides_and_sorts(reference_dataset):
    with pytest.raises(UnknownFeature, match="no feature 'nope'"):
        feature_gallery(reference_dataset, "nope")
    with pytest.raises(ValueError, match="side"):
        feature_gallery(reference_dataset, "text", side="both")
    with pytest.raises(ValueError, match="sort"):
        feature_gallery(reference_dataset, "text", sort="name")


# -- GET /api/gallery ----------------------------------------------------------------------------


@pytest.fixture
def reference_client(client, store, reference_frame):
    store.add_build(*REFERENCE, FeatureBatch.from_wide(reference_frame))
    store.replace_ctr(*REFERENCE, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    return client


def gallery(client, **query):
    return client.get("/api/gallery", query_string={"business": REFERENCE[0], "source": REFERENCE[1], **query})


@pytest.mark.both_engines
@pytest.mark.parametrize("side", ["with", "without"])
def test_api_gallery_pages_through_the_reference_images(reference_client, reference_frame, side):
    expected = pandas_gallery(reference_frame, "text", 0.5, side)
    pages = []
    for offset in range(0, len(expected) + 40, 40):
        answer = gallery(reference_client, feature="text", confidence="0.5", side=side, limit="40", offset=str(offset))
        assert answer.status_code == 200
        body = answer.get_json()
        assert (body["feature"], body["side"], body["total"]) == ("text", side, len(expected))
        pages += body["images"]
    assert [i["image"] for i in pages] == list(expected["image_name"])
    assert [i["ctr"] for i in pages] == list(expected["ctr"])
    assert {k for i in pages for k in i} == {
        "image",
        "ctr",
        "clicks",
        "impressions",
        "confidence",
        "has_thumbnail",
        "thumbnail_url",
    }
    ascending = gallery(reference_client, feature="text", confidence="0.5", side=side, sort="ctr_asc", limit="200")
    assert [i["image"] for i in ascending.get_json()["images"]][:5] == list(expected["image_name"])[::-1][:5]


@pytest.mark.both_engines
def test_api_gallery_says_which_images_have_a_thumbnail(reference_client, reference_frame):
    top = pandas_gallery(reference_frame, "text", 0.5, "with")["image_name"].iloc[1]
    headers = {"Business": REFERENCE[0], "Image-Source": REFERENCE[1]}
    assert reference_client.put(f"/api/images/{top}", data=samples.png(), headers=headers).status_code == 201
    images = gallery(reference_client, feature="text", confidence="0.5", limit="3").get_json()["images"]
    assert [i["has_thumbnail"] for i in images] == [False, True, False]
    url = images[1]["thumbnail_url"]
    assert url.startswith(f"/api/images/{top}?") and "v=" in url
    served = reference_client.get(url)
    assert served.status_code == 200 and "immutable" in served.headers["Cache-Control"]


@pytest.mark.parametrize(
    "query, status, detail",
    [
        ({"feature": "text", "limit": "201"}, 400, "limit must be a whole number in [1, 200]"),
        ({"feature": "text", "limit": "0"}, 400, "limit must be a whole number >= 1"),
        ({"feature": "text", "offset": "-1"}, 400, "offset must be a whole number >= 0"),
        ({"feature": "text", "side": "both"}, 400, "side must be one of with, without"),
        ({"feature": "text", "sort": "name"}, 400, "sort must be one of ctr_desc, ctr_asc"),
        ({"feature": "text", "confidence": "2"}, 400, "confidence must be a number in [0, 1]"),
        ({}, 400, "feature is required"),
        ({"feature": "nope"}, 404, "the build has no feature 'nope'"),
        ({"feature": "text", "build_id": "99"}, 404, "build 99 is not a stored build"),
    ],
)
def test_api_gallery_refuses_bad_parameters(reference_client, query, status, detail):
    response = gallery(reference_client, **query)
    assert response.status_code == status
    assert any(d.startswith(detail) for d in response.get_json()["details"]), response.get_json()


def test_api_gallery_offset_past_the_end_is_an_empty_page(reference_client):
    body = gallery(reference_client, feature="text", offset="100000").get_json()
    assert body["images"] == [] and body["total"] > 0
