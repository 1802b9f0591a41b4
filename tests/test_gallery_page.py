"""The page's gallery without a browser: pages and offsets, the records per side, the outputs, the callback."""

from __future__ import annotations

import pytest

from dashboard.factory import create_app
from dashboard.page import ids, views
from dashboard.page.gallery import (
    HINT,
    PAGE_SIZE,
    gallery_outputs,
    gallery_view,
    page_offset,
    range_text,
    side_heading,
    stepped_offsets,
)
from data.analysis import feature_summary
from data.batches import FeatureBatch, ctr_frame
from data.demo_images import demo_thumbnails
from data.gallery import feature_gallery
from data.settings import Settings

PAIR = ("Reference 2018", "vision")
CONFIDENCE = 0.5


@pytest.fixture
def loaded(store, reference_frame):
    """The reference data, with a drawn thumbnail for the first 100 images only."""
    batch = FeatureBatch.from_wide(reference_frame)
    store.add_build(*PAIR, batch)
    store.replace_ctr(*PAIR, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    store.put_thumbnails(*PAIR, demo_thumbnails(batch, list(reference_frame["image_name"][:100])))
    return store


def _state(confidence=CONFIDENCE, build=views.CURRENT_BUILD):
    return views.ViewState(*PAIR, build=build, filters=views.DEFAULT_FILTERS.replace(confidence=confidence))


@pytest.mark.parametrize(
    ("offset", "total", "expected"),
    [
        (0, 100, 0),
        (48, 100, 48),
        (50, 100, 48),  # inside a page: its start
        (96, 100, 96),
        (144, 100, 96),  # past the end: the last page
        (-48, 100, 0),
        (48, 48, 0),  # exactly one page
        (0, 0, 0),
        (None, 100, 0),
        ("x", 100, 0),
    ],
)
def test_page_offset_is_a_page_start_within_the_images(offset, total, expected):
    assert page_offset(offset, total) == expected


def test_stepped_offsets_move_one_side_and_never_below_zero():
    assert stepped_offsets({"with": 48, "without": 96}, "without", 1) == {"with": 48, "without": 144}
    assert stepped_offsets({"with": 0}, "with", -1) == {"with": 0, "without": 0}
    assert stepped_offsets(None, "with", 1) == {"with": PAGE_SIZE, "without": 0}


@pytest.mark.parametrize("confidence", [0.0, 0.5, 0.9])
def test_gallery_view_lists_exactly_the_summarys_images_in_ctr_order(loaded, reference_frame, confidence):
    view = gallery_view(loaded, _state(confidence), "text", "both", None)
    dataset = loaded.dataset(*PAIR)
    row = feature_summary(dataset, confidence=confidence, min_pct=0, max_pct=100).set_index("feature").loc["text"]
    assert (view.sides["with"].total, view.sides["without"].total) == (row["n_with"], row["n_without"])
    for side in ("with", "without"):
        expected = feature_gallery(dataset, "text", confidence, side).head(PAGE_SIZE)
        images = view.sides[side].images
        assert [r["image"] for r in images] == list(expected["image"])
        assert [r["ctr"] for r in images] == list(expected["ctr"])
        assert [r["confidence"] for r in images] == list(expected["confidence"])
        assert all(r["clicks"] is None and r["impressions"] is None for r in images)  # CTRs came without counts
    # A stored thumbnail gives its long-cached URL; an image without one gets none (the tile shows its name).
    stored = set(reference_frame["image_name"][:100])
    for record in view.sides["with"].images + view.sides["without"].images:
        if record["image"] in stored:
            assert record["url"].startswith("/api/images/") and "&v=" in record["url"]
        else:
            assert record["url"] is None


def test_gallery_view_pages_each_side_on_its_own_and_clamps_past_the_end(loaded):
    view = gallery_view(loaded, _state(), "text", "both", {"with": 10_000, "without": PAGE_SIZE})
    with_side, without = view.sides["with"], view.sides["without"]
    assert with_side.offset == (with_side.total - 1) // PAGE_SIZE * PAGE_SIZE
    assert without.offset == PAGE_SIZE
    expected = feature_gallery(loaded.dataset(*PAIR), "text", CONFIDENCE, "without")
    assert [r["image"] for r in without.images] == list(expected["image"][PAGE_SIZE : 2 * PAGE_SIZE])


def test_gallery_view_uses_the_template_for_images_without_a_thumbnail(loaded, reference_frame):
    view = gallery_view(loaded, _state(), "text", "with", None, template="https://cdn.example/{source}/{image}.png")
    stored = set(reference_frame["image_name"][:100])
    for record in view.sides["with"].images:
        if record["image"] not in stored:
            assert record["url"] == f"https://cdn.example/vision/{record['image']}.png"
        else:
            assert record["url"].startswith("/api/images/")


@pytest.mark.parametrize(
    ("feature", "business", "message"),
    [
        (None, PAIR[0], HINT),
        ("no such feature", PAIR[0], "The build shown has no feature “no such feature”."),
        ("text", "Nobody", "No build of this dataset is stored."),
    ],
)
def test_gallery_view_explains_when_there_is_nothing_to_show(loaded, feature, business, message):
    view = gallery_view(
        loaded,
        views.ViewState(business, PAIR[1], filters=views.DEFAULT_FILTERS.replace(confidence=CONFIDENCE)),
        feature,
        "both",
        None,
    )
    assert view.sides == {} and view.message == message
    out = gallery_outputs(view)
    assert out["hint"] == message and out["with_hidden"] and out["without_hidden"]
    assert out["tiles"]["sides"]["with"]["images"] == [] and out["tiles"]["sides"]["without"]["images"] == []


def test_gallery_outputs_show_the_chosen_sides_with_headings_ranges_and_pagers(loaded):
    view = gallery_view(loaded, _state(), "text", "without", {"without": PAGE_SIZE})
    side = view.sides["without"]
    out = gallery_outputs(view)
    assert out["title"] == "Images of text" and out["hint"] == ""
    assert out["with_hidden"] and not out["without_hidden"] and out["both"] == "gallery-columns"
    average = feature_summary(loaded.dataset(*PAIR), confidence=CONFIDENCE).set_index("feature").loc["text"]
    assert side.average == pytest.approx(average["avg_ctr_without"], rel=1e-12)
    heading = f"Without text: {side.total:,} images, average CTR {average['avg_ctr_without'] * 100:.2f}%, highest first"
    assert out["without_heading"] == heading
    assert out["without_range"] == f"{PAGE_SIZE + 1}–{min(2 * PAGE_SIZE, side.total)} of {side.total}"
    assert out["without_prev"] is False and out["without_next"] is (2 * PAGE_SIZE >= side.total)
    assert out["offsets"] == {"with": 0, "without": PAGE_SIZE}
    tiles = out["tiles"]["sides"]["without"]
    assert tiles["list"] == ids.gallery_id("without", "tiles") and tiles["images"] == side.images
    both = gallery_outputs(gallery_view(loaded, _state(), "text", "both", None))
    assert both["both"] == "gallery-columns both" and not both["with_hidden"] and not both["without_hidden"]
    assert both["with_prev"] is True  # the first page has no previous one


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_gallery_view_states_each_sides_average_ctr_as_the_summary_does(store, weighting):
    """Under either weighting each side's average is the summary's avg_ctr_with / avg_ctr_without."""
    from data.demo import demo_build

    batch, ctr = demo_build(n_images=300, n_features=60)
    store.add_build(*PAIR, batch)
    store.replace_ctr(*PAIR, ctr)
    filters = views.DEFAULT_FILTERS.replace(confidence=CONFIDENCE, weighting=weighting)
    view = gallery_view(store, views.ViewState(*PAIR, filters=filters), "smile", "both", None)
    summary = feature_summary(store.dataset(*PAIR), confidence=CONFIDENCE, weighting=weighting)
    row = summary.set_index("feature").loc["smile"]
    assert view.sides["with"].average == pytest.approx(row["avg_ctr_with"], rel=1e-12)
    assert view.sides["without"].average == pytest.approx(row["avg_ctr_without"], rel=1e-12)
    if weighting == "impressions":  # the two weightings differ here, so the test tells them apart
        mean = feature_summary(store.dataset(*PAIR), confidence=CONFIDENCE).set_index("feature").loc["smile"]
        assert mean["avg_ctr_with"] != pytest.approx(row["avg_ctr_with"], rel=1e-6)
    assert f"average CTR {row['avg_ctr_with'] * 100:.2f}%" in gallery_outputs(view)["with_heading"]


def test_side_heading_and_range_speak_of_one_image_and_of_none():
    from dashboard.page.gallery import GallerySide

    assert side_heading("a<b>", GallerySide("with", 0, 1)) == "With a<b>: 1 image, highest CTR first"
    one = GallerySide("with", 0, 1, average=0.01234)
    assert side_heading("a", one) == "With a: 1 image, average CTR 1.23%, highest first"
    assert side_heading("a", GallerySide("without", 0, 0)) == "Without a: 0 images, highest CTR first"
    assert range_text(GallerySide("without", 0, 0)) == "none"
    assert range_text(GallerySide("with", 0, 1234)) == "1–48 of 1,234"


@pytest.mark.parametrize(
    ("query", "feature"),
    [({"feature": "text"}, "text"), ({"feature": ""}, None), ({}, None), ({"feature": ["a&b", "c"]}, "a&b")],
)
def test_the_url_feature_is_read_and_written_back(query, feature):
    state = views.parse_view(query)
    assert state.feature == feature
    assert views.parse_view(views.query_from_url(views.view_query(state))) == state


def _post(client, outputs, inputs, state=(), changed=None):
    body = {
        "output": "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs)),
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs if i == (changed or inputs[0][0])],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    return client.post("/_dash-update-component", json=body)


GALLERY_OUTPUTS = [
    (ids.GALLERY_TITLE, "children"),
    (ids.GALLERY_HINT, "children"),
    (ids.GALLERY_COLUMNS, "className"),
    (ids.GALLERY_OFFSETS, "data"),
    (ids.GALLERY_TILES, "data"),
    *(
        (ids.gallery_id(s, part), prop)
        for s in ("with", "without")
        for part, prop in (
            ("column", "hidden"),
            ("heading", "children"),
            ("range", "children"),
            ("prev", "disabled"),
            ("next", "disabled"),
        )
    ),
]


def _gallery_inputs(selected, mode="with", pages=(None, None, None, None)):
    buttons = [ids.gallery_id(s, b) for s in ("with", "without") for b in ("prev", "next")]
    return [
        (ids.TABLE, "selectedRows", selected),
        (ids.GALLERY_SIDE, "value", mode),
        (ids.BUSINESS, "value", PAIR[0]),
        (ids.SOURCE, "value", PAIR[1]),
        (ids.BUILD, "value", views.CURRENT_BUILD),
        (ids.CONFIDENCE, "value", CONFIDENCE),
        (ids.WEIGHTING, "value", "mean"),
        (ids.DATE_RANGE, "start_date", None),
        (ids.DATE_RANGE, "end_date", None),
        (ids.VERSION, "data", "v"),
        *((b, "n_clicks", n) for b, n in zip(buttons, pages)),
    ]


def test_gallery_callback_follows_the_selection_and_its_pager(loaded, db_url):
    settings = Settings.from_env({}, database_url=db_url, demo_data=False)
    client = create_app(settings, loaded).server.test_client()
    dataset = loaded.dataset(*PAIR)
    expected = list(feature_gallery(dataset, "poster", CONFIDENCE, "without")["image"])
    # A selection set by a script ({"ids": [...]}, as the URL's feature and a bar click set it).
    state = [(ids.GALLERY_OFFSETS, "data", {"with": 0, "without": 0})]
    answer = _post(client, GALLERY_OUTPUTS, _gallery_inputs({"ids": ["poster"]}, "without"), state)
    assert answer.status_code == 200
    out = answer.get_json()["response"]
    assert out[ids.GALLERY_TITLE]["children"] == "Images of poster"
    assert [r["image"] for r in out[ids.GALLERY_TILES]["data"]["sides"]["without"]["images"]] == expected[:PAGE_SIZE]
    # Its pager's Next: the next page of that side.
    inputs = _gallery_inputs([{"feature": "poster"}], "without", (None, None, None, 1))
    paged = _post(client, GALLERY_OUTPUTS, inputs, state, changed=ids.gallery_id("without", "next")).get_json()
    images = paged["response"][ids.GALLERY_TILES]["data"]["sides"]["without"]["images"]
    assert [r["image"] for r in images] == expected[PAGE_SIZE : 2 * PAGE_SIZE]
    assert paged["response"][ids.GALLERY_OFFSETS]["data"] == {"with": 0, "without": PAGE_SIZE}
    # Any other change starts again at the first page; the threshold decides which images are listed.
    inputs = [(i, p, 0.9 if i == ids.CONFIDENCE else v) for i, p, v in inputs]
    again = _post(client, GALLERY_OUTPUTS, inputs, state, changed=ids.CONFIDENCE).get_json()["response"]
    assert again[ids.GALLERY_OFFSETS]["data"] == {"with": 0, "without": 0}
    at_09 = feature_gallery(dataset, "poster", 0.9, "without")
    assert len(at_09) != len(expected)
    shown = again[ids.GALLERY_TILES]["data"]["sides"]["without"]["images"]
    assert [r["image"] for r in shown] == list(at_09["image"][:PAGE_SIZE])
    heading = again[ids.gallery_id("without", "heading")]["children"]
    average = at_09["ctr"].mean() * 100
    assert heading == f"Without poster: {len(at_09)} images, average CTR {average:.2f}%, highest first"
