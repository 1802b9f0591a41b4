"""The page's logic without a browser: compute_view, the hover lookup, the pickers and the poll."""

from __future__ import annotations

import json
import random
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import plotly
import pytest
from dash import no_update

from dashboard import figures
from dashboard.api import downloads
from dashboard.factory import create_app
from dashboard.page import ids, views
from dashboard.page.callbacks import VIEW_INPUTS, VIEW_OUTPUTS
from dashboard.page.components import hover_hint, hover_panel, status_component
from dashboard.page.compute import compute_view, download_csv, select_shown, upload_command
from dashboard.page.dates import WINDOW_PROPS
from dashboard.page.hover import HOVER_HINT, from_typed_array, image_urls, unpacked_names
from dashboard.page.selection import (
    build_options,
    choose,
    dataset_has_counts,
    format_time,
    parse_build,
    poll_version,
    source_options,
)
from dashboard.page.table import table_hint
from dashboard.page.views import CURRENT_BUILD, DEFAULT_CONFIDENCE, DEFAULT_FILTERS, DEFAULT_SPARSITY
from data.analysis import feature_summary, scatter_points
from data.batches import FeatureBatch, ctr_frame
from data.window import Window
from tests.helpers import chart_rows, load_frame

BUSINESS, SOURCE = "acme", "vision"
FIGURE_KEYS = ("scatter", "avg_with", "impact")
# A request context has no client address unless given one; the layout reads only for loopback (ACCESS=local).
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


def _load(store, frame, business=BUSINESS, source=SOURCE, *, ctr=True):
    load_frame(store, frame, business, source, ctr=ctr)


@pytest.fixture
def loaded(store, reference_frame):
    """The store holding the reference build with its CTRs as acme / vision."""
    _load(store, reference_frame)
    return store


def _synthetic_frame(n_images=60, n_features=12, seed=42) -> pd.DataFrame:
    rng = random.Random(seed)
    data = {
        "image_name": [f"img_{i}" for i in range(n_images)],
        "ctr": [0.004 + rng.random() * 0.01 for _ in range(n_images)],
    }
    for j in range(n_features):
        data[f"feat_{j}"] = [round(rng.random(), 3) if rng.random() < 0.4 else 0.0 for _ in range(n_images)]
    return pd.DataFrame(data)


def _find(component, component_id):
    """The component with ``component_id`` in a layout tree (None when absent)."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    if children is None:
        return None
    for child in children if isinstance(children, (list, tuple)) else [children]:
        found = _find(child, component_id)
        if found is not None:
            return found
    return None


def page_order(summary):
    """A summary as the page shows it: with its answer columns, ranked by evidence."""
    return views.evidence_order(summary)


# -- compute_view --------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence, sparsity", [(0.0, (0, 100)), (0.3, (0, 100)), (0.5, (2, 100)), (0.2, (10, 40))])
def test_compute_view_numbers_equal_feature_summary(loaded, reference_dataset, confidence, sparsity):
    view = compute_view(
        loaded,
        BUSINESS,
        SOURCE,
        CURRENT_BUILD,
        DEFAULT_FILTERS.replace(confidence=confidence, min_pct=sparsity[0], max_pct=sparsity[1]),
        shown=0,
    )
    summary = page_order(
        feature_summary(reference_dataset, confidence=confidence, min_pct=sparsity[0], max_pct=sparsity[1])
    )
    features = list(summary["feature"])
    assert list(view.avg_with.data[0].y) == features
    assert np.array_equal(view.avg_with.data[0].x, summary["avg_ctr_with"] * 100.0)
    # The CTR without each feature is the chart's baseline mark, row by row.
    assert np.array_equal(view.avg_with.data[2].x, summary["avg_ctr_without"] * 100.0, equal_nan=True)
    assert np.array_equal(view.impact.data[0].x, summary["impact"] * 100.0, equal_nan=True)
    assert list(view.scatter.layout.xaxis.ticktext) == features
    pd.testing.assert_frame_equal(view.summary.reset_index(drop=True), summary)


def test_compute_view_scatter_has_one_point_per_image_and_feature_present(loaded, reference_dataset):
    view = compute_view(
        loaded, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100), shown=0
    )
    summary = page_order(feature_summary(reference_dataset, confidence=0.3))
    points = scatter_points(reference_dataset, confidence=0.3, features=summary["feature"])
    scatter = view.scatter.data[0]
    assert len(scatter.x) == len(points)
    assert np.array_equal(scatter.y, (points["ctr"] * 100.0).astype(np.float32))
    lookup = view.lookup
    images = np.array(unpacked_names(lookup["images"]), dtype=object)[from_typed_array(lookup["point_image"])]
    assert list(images) == list(points["image"])


def test_compute_view_hover_lookup_links_each_point_to_its_image(loaded, reference_dataset):
    """Grouped as the browser groups it (by point_image, reading x and y from the scatter trace):
    every point maps to its image, and every image's points are exactly its charted features."""
    view = compute_view(
        loaded, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100), shown=0
    )
    lookup = json.loads(json.dumps(view.lookup))  # as the browser gets it
    assert not {"ctr", "image_start", "image_codes", "image_conf_pct"} & set(lookup)  # the trace carries these
    point_image, conf = from_typed_array(lookup["point_image"]), from_typed_array(lookup["point_conf_pct"])
    image_names = unpacked_names(lookup["images"])  # sent packed: one zlib stream
    assert isinstance(lookup["images"], dict) and lookup["images"]["count"] == len(image_names)
    assert conf.dtype == np.uint8
    assert point_image.dtype == (np.uint8 if len(image_names) <= 256 else np.uint16)  # the smallest
    scatter = view.scatter.data[0]
    x, y = np.asarray(scatter.x), np.asarray(scatter.y)
    points = scatter_points(reference_dataset, confidence=0.3, features=lookup["features"])
    assert len(point_image) == len(conf) == len(x) == len(points)
    assert lookup["features"] == list(view.scatter.layout.xaxis.ticktext)
    assert list(np.array(image_names, dtype=object)[point_image]) == list(points["image"])
    order = np.argsort(point_image, kind="stable")  # the browser's counting sort
    start = np.searchsorted(point_image[order], np.arange(len(image_names) + 1))
    features, names = list(reference_dataset.features), list(reference_dataset.images)
    for image, name in enumerate(image_names):
        at = order[start[image] : start[image + 1]]
        assert len(at), name  # only images with points are listed
        row = names.index(name)
        assert (y[at] == np.float32(reference_dataset.ctr[row] * 100)).all(), name
        confidence = [reference_dataset.confidences[row, features.index(f)] for f in lookup["features"]]
        expected = [(code, round(v * 100)) for code, v in enumerate(confidence) if v > 0.3]
        assert sorted(zip(x[at].tolist(), conf[at].tolist())) == expected, name


def test_hover_hint_is_written_once_and_only_shown_or_hidden_by_the_browser(loaded):
    view = compute_view(loaded, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100))
    assert "hint" not in view.lookup and HOVER_HINT == hover_hint().children
    hint, card = hover_panel()
    assert (hint.id, hint.children.children, card.id) == (ids.HOVER_HINT, HOVER_HINT, ids.HOVER_CARD)
    script = (Path(__file__).resolve().parent.parent / "dashboard" / "page" / "assets" / "dashboard.js").read_text()
    assert "IDS.HOVER_HINT" in script and "IDS.HOVER_CARD" in script and "Hover a point" not in script
    assert ids.BROWSER["HOVER_HINT"] == ids.HOVER_HINT and ids.BROWSER["HOVER_CARD"] == ids.HOVER_CARD


def test_no_callback_listens_to_the_scatters_hover(settings, store):
    """Hovering the scatter runs no Dash callback: the browser links on Plotly's own hover events."""
    app = create_app(settings, store)
    inputs = [f"{i['id']}.{i['property']}" for c in app.callback_map.values() for i in c["inputs"]]
    assert f"{ids.LOOKUP}.data" in inputs
    assert not [i for i in inputs if i.startswith(ids.SCATTER + ".hover")]


def test_compute_view_lookup_codes_are_bar_rows(loaded):
    view = compute_view(loaded, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100))
    assert view.lookup["features"] == list(view.impact.data[0].y) == list(view.avg_with.data[2].y)


def test_compute_view_shows_top_and_bottom_features_of_a_large_build(store):
    _load(store, _synthetic_frame(n_images=80, n_features=40))
    view = compute_view(
        store, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.1, min_pct=0, max_pct=100), shown=5
    )
    summary = page_order(feature_summary(store.dataset(BUSINESS, SOURCE), confidence=0.1))
    finite = summary[summary["impact"].notna()]
    expected = list(finite["feature"].iloc[:5]) + list(finite["feature"].iloc[-5:])
    assert list(view.impact.data[0].y) == expected
    assert list(view.scatter.layout.xaxis.ticktext) == expected
    assert "top 5 and bottom 5 of 40" in view.shown_text


def test_compute_view_pages_the_scatter_when_features_do_not_fit(store):
    _load(store, _synthetic_frame(n_images=50, n_features=120))
    view = compute_view(
        store, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100), shown=0
    )
    assert view.scatter.layout.width is None
    assert list(view.scatter.layout.xaxis.range) == [-0.6, figures.SCATTER_WINDOW - 0.4]
    assert len(view.scatter.layout.xaxis.ticktext) == len(view.lookup["features"]) > figures.SCATTER_WINDOW
    assert view.scatter.layout.sliders[0].steps[0].label == "1–50"
    assert (
        compute_view(
            store, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100), shown=25
        ).scatter.layout.sliders
        == ()
    )


def test_compute_view_uses_an_earlier_build_when_asked(store, reference_frame):
    _load(store, reference_frame)
    first = store.resolve_build(BUSINESS, SOURCE)
    changed = reference_frame.assign(text=0.0)
    _load(store, changed, ctr=False)
    current = compute_view(
        store, BUSINESS, SOURCE, CURRENT_BUILD, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100)
    )
    earlier = compute_view(
        store, BUSINESS, SOURCE, first, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100)
    )
    assert "text" in earlier.lookup["features"]
    assert "text" not in current.lookup["features"]
    assert (earlier.build_id, current.build_id) == (first, store.resolve_build(BUSINESS, SOURCE))


def test_compute_view_falls_back_to_the_current_build_when_one_is_gone(loaded):
    view = compute_view(loaded, BUSINESS, SOURCE, 999, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100))
    assert view.notice["title"].startswith("Build #999")
    assert not figures.is_empty_figure(view.scatter)
    assert view.build_id == loaded.resolve_build(BUSINESS, SOURCE)


def test_status_component_renders_the_view_without_the_store(loaded):
    builds = loaded.builds(BUSINESS, SOURCE)
    view = compute_view(loaded, BUSINESS, SOURCE, 999, DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100))
    assert view.received_at == builds["received_at"].iloc[0]
    text = json.dumps(status_component(view), cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    assert f"Build #{builds['build_id'].iloc[0]} · {format_time(builds['received_at'].iloc[0])}" in text
    assert "287 images · 287 with CTR" in text and "acme / vision" in text
    assert status_component(compute_view(loaded, None, None)) is None


def test_compute_view_with_no_data_explains_how_to_send_some(store):
    view = compute_view(store, None, None)
    for key in FIGURE_KEYS:
        assert figures.is_empty_figure(getattr(view, key))
    assert "No data yet" in view.scatter.layout.annotations[0].text
    assert view.notice["command"] == (
        'curl -X PUT -H "Business: acme" -H "Image-Source: vision" -H "Authorization: Bearer $INGEST_TOKEN" '
        "--data-binary @features.json http://HOST:PORT/api/features"
    )
    assert view.lookup is None


def test_compute_view_with_no_ctr_says_so(store, reference_frame):
    _load(store, reference_frame, ctr=False)
    view = compute_view(
        store,
        BUSINESS,
        SOURCE,
        None,
        DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100),
        api_base="http://dash.example:8050/",
    )
    for key in FIGURE_KEYS:
        assert figures.is_empty_figure(getattr(view, key))
    assert "No CTR yet for acme / vision" in view.scatter.layout.annotations[0].text
    assert view.notice["command"].endswith("--data-binary @ctr.json http://dash.example:8050/api/ctr")
    assert "287 images" in view.status


def test_compute_view_with_filters_that_leave_no_feature_says_so(loaded):
    view = compute_view(
        loaded, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.99, min_pct=0, max_pct=100)
    )
    for key in FIGURE_KEYS:
        assert figures.is_empty_figure(getattr(view, key))
    assert "No feature is present" in view.scatter.layout.annotations[0].text
    assert view.notice["title"] == "No feature left"


def test_compute_view_for_an_unknown_dataset_explains_it(loaded):
    view = compute_view(loaded, "nobody", SOURCE, None)
    assert figures.is_empty_figure(view.scatter)
    assert "nobody / vision" in view.notice["title"]


def test_compute_view_ships_image_urls_and_counts(store, reference_frame):
    frame = reference_frame.head(60)
    store.add_build(BUSINESS, "web ads", FeatureBatch.from_wide(frame))
    impressions = [1000 + i for i in range(len(frame))]
    clicks = [int(c * n) for c, n in zip(frame["ctr"], impressions)]
    store.replace_ctr(BUSINESS, "web ads", ctr_frame(frame["image_name"], frame["ctr"], clicks, impressions))
    view = compute_view(
        store,
        BUSINESS,
        "web ads",
        None,
        DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100),
        image_url_template="https://img.example/{business}/{source}/{image}.jpg",
    )
    lookup = view.lookup
    first = unpacked_names(lookup["images"])[0]
    assert lookup["urls"][0] == f"https://img.example/acme/web%20ads/{first}.jpg"
    row = list(frame["image_name"]).index(first)
    sent = (from_typed_array(lookup["clicks"])[0], from_typed_array(lookup["impressions"])[0])  # whole numbers: typed
    assert sent == (clicks[row], impressions[row])


# -- helpers -------------------------------------------------------------------------------------


def test_select_shown_keeps_top_and_bottom_by_impact():
    summary = pd.DataFrame({"feature": list("abcdefg"), "impact": [5, 4, 3, 2, 1, 0, np.nan]})
    assert list(select_shown(summary, 2)["feature"]) == ["a", "b", "e", "f"]
    assert list(select_shown(summary, 0)["feature"]) == list("abcdefg")
    assert list(select_shown(summary, 4)["feature"]) == list("abcdefg")


@pytest.mark.parametrize("value, expected", [(None, None), ("current", None), (7, 7), ("7", 7), ("x", None)])
def test_parse_build(value, expected):
    assert parse_build(value) == expected


def test_image_urls_quote_each_part():
    urls = image_urls("https://cdn.example/{business}/{source}/{image}", "A&B", "vision api", ["a b/c.png"])
    assert urls == ["https://cdn.example/A%26B/vision%20api/a%20b%2Fc.png"]
    assert image_urls(None, "a", "b", ["c"]) is None
    assert image_urls("https://x/{unknown}", "a", "b", ["c"]) is None


def test_upload_command_names_the_dataset_and_host():
    assert upload_command("acme", "vision", kind="ctr", api_base="http://10.0.0.5:8050/") == (
        'curl -X PUT -H "Business: acme" -H "Image-Source: vision" -H "Authorization: Bearer $INGEST_TOKEN" '
        "--data-binary @ctr.json http://10.0.0.5:8050/api/ctr"
    )


# -- pickers and the layout ----------------------------------------------------------------------


def test_layout_defaults_to_the_most_recently_updated_dataset_and_current_build(store, settings, reference_frame):
    _load(store, reference_frame, "older", "vision")
    _load(store, reference_frame, "newer", "web")
    _load(store, reference_frame, "newer", "web")
    from dashboard.page.layout import build_layout

    page = build_layout(store, settings)()
    assert _find(page, ids.BUSINESS).value == "newer"
    assert _find(page, ids.SOURCE).value == "web"
    build = _find(page, ids.BUILD)
    assert build.value == CURRENT_BUILD
    assert [o["value"] for o in build.options][1:] == [int(store.builds("newer", "web")["build_id"].iloc[1])]
    assert _find(page, ids.VERSION).data == store.version()
    assert _find(page, ids.POLL).interval == int(settings.poll_seconds * 1000)


def test_layout_sliders_have_explicit_steps_and_defaults(store, settings):
    from dashboard.page.layout import build_layout

    page = build_layout(store, settings)()
    confidence, sparsity = _find(page, ids.CONFIDENCE), _find(page, ids.SPARSITY)
    assert (confidence.min, confidence.max, confidence.step, confidence.value) == (0, 1, 0.01, DEFAULT_CONFIDENCE)
    assert (sparsity.min, sparsity.max, sparsity.step, sparsity.value) == (0, 100, 1, list(DEFAULT_SPARSITY))
    for chart in ids.CHARTS:
        assert _find(page, chart) is not None


def test_layout_charts_are_blank_until_their_first_figure(store, settings):
    """No axes, ticks or traces before a view arrives (Plotly's default empty figure draws axes)."""
    from dashboard.page.components import BLANK_FIGURE
    from dashboard.page.layout import build_layout

    page = build_layout(store, settings)()
    graphs = [_find(page, chart) for chart in (*ids.CHARTS, ids.TREND, ids.DRIFT)]
    assert all(graph is not None for graph in graphs)
    for graph in graphs:
        assert graph.figure == BLANK_FIGURE
    assert BLANK_FIGURE["data"] == [] and all(not BLANK_FIGURE["layout"][a]["visible"] for a in ("xaxis", "yaxis"))


def test_build_options_put_the_current_build_first(store, reference_frame):
    for _ in range(3):
        _load(store, reference_frame, ctr=False)
    options = build_options(store.builds(BUSINESS, SOURCE))
    assert options[0]["value"] == CURRENT_BUILD and "current" in options[0]["label"]
    assert [o["value"] for o in options[1:]] == list(store.builds(BUSINESS, SOURCE)["build_id"].iloc[1:])


def test_source_options_flag_sources_without_ctr(store, reference_frame):
    _load(store, reference_frame, BUSINESS, "vision")
    _load(store, reference_frame, BUSINESS, "colours", ctr=False)
    labels = {o["value"]: o["label"] for o in source_options(store.datasets(), BUSINESS)}
    assert labels == {"vision": "vision", "colours": "colours (no CTR yet)"}


def test_choose_keeps_a_valid_value():
    options = [{"value": "a"}, {"value": "b"}]
    assert choose(options, "b") == "b"
    assert choose(options, "z") == "a"
    assert choose(options, "z", "b") == "b"
    assert choose([], "z") is None


# -- the version poll ----------------------------------------------------------------------------


def test_poll_version_redraws_only_when_the_data_changed(store, reference_frame):
    known = store.version()
    assert poll_version(store, known) is no_update
    _load(store, reference_frame, ctr=False)
    after_build = poll_version(store, known)
    assert after_build not in (no_update, known)
    assert poll_version(store, after_build) is no_update
    store.replace_ctr(BUSINESS, SOURCE, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    after_ctr = poll_version(store, after_build)
    assert after_ctr not in (no_update, after_build)


def _dash_post(client, outputs, inputs, state=(), changed=None):
    """Call a registered callback through Dash's own endpoint, as the browser does.

    ``changed`` is the input that changed (its id), the first one by default.
    """
    multi = len(outputs) > 1
    output = (
        "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs)) if multi else f"{outputs[0][0]}.{outputs[0][1]}"
    )
    body = {
        "output": output,
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if multi
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs if i == (changed or inputs[0][0])],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    return client.post("/_dash-update-component", json=body)


def test_poll_callback_updates_nothing_until_a_build_lands(client, store, reference_frame):
    known = store.version()
    unchanged = _dash_post(
        client, [(ids.VERSION, "data")], [(ids.POLL, "n_intervals", 1)], [(ids.VERSION, "data", known)]
    )
    assert unchanged.status_code == 200
    assert unchanged.get_json()["response"] == {}  # no output changes, so nothing redraws
    _load(store, reference_frame)
    changed = _dash_post(
        client, [(ids.VERSION, "data")], [(ids.POLL, "n_intervals", 2)], [(ids.VERSION, "data", known)]
    )
    assert changed.status_code == 200
    assert changed.get_json()["response"][ids.VERSION]["data"] == store.version()


REDRAW_OUTPUTS = [(o.component_id, o.component_property) for o in VIEW_OUTPUTS.values()]


def _view_inputs(controls, impact_mode="marginal", extra=None):
    """The redraw's (or URL writer's) inputs in its registered order, from ``_controls()``."""
    by_prop = {(c, p): v for c, p, v in controls}
    by_prop[(ids.IMPACT_MODE, "value")] = impact_mode
    inputs = [
        (i.component_id, i.component_property, by_prop[(i.component_id, i.component_property)])
        for i in VIEW_INPUTS.values()
    ]
    return inputs + [(i, p, v) for (i, p), v in (extra or {}).items()]


def _controls(
    business=BUSINESS,
    source=SOURCE,
    build=CURRENT_BUILD,
    confidence=0.3,
    sparsity=(0, 100),
    weighting="mean",
    shown="25",
    compare=None,
    date_from=None,
    date_to=None,
):
    """The controls' values as the browser sends them, in ids.CONTROLS order, then the window's two days."""
    values = dict(zip(ids.CONTROLS, (business, source, build, confidence, list(sparsity), weighting, shown, compare)))
    window = [(c, p, v) for (c, p), v in zip(WINDOW_PROPS, (date_from, date_to), strict=True)]
    return [(c, "value", values[c]) for c in ids.CONTROLS] + window


def test_redraw_callback_returns_the_four_figures_and_the_table(client, loaded):
    inputs = _view_inputs(_controls(), extra={(ids.VERSION, "data"): loaded.version(), (ids.REFINED, "data"): None})
    response = _dash_post(client, REDRAW_OUTPUTS, inputs, [(ids.STALE_BUILD, "data", None)])
    assert response.status_code == 200
    answer = response.get_json()["response"]
    bars = answer[ids.IMPACT]["figure"]["data"][0]
    summary = page_order(feature_summary(loaded.dataset(BUSINESS, SOURCE), confidence=0.3))
    assert bars["y"] == list(summary["feature"])
    rows = views.unpacked_rows(answer[ids.TABLE_ROWS]["data"])  # the table's rows, sent by column
    assert [row["feature"] for row in rows] == list(summary["feature"])
    assert rows == json.loads(json.dumps(views.table_rows(summary)))  # every number exact


# -- weighting, the URL and downloads ------------------------------------------------------------


@pytest.fixture
def demo(store):
    """The demo datasets: Northwind Outfitters / vision with counts, Reference 2018 / vision without."""
    from data.demo import load_demo

    load_demo(store)
    return store


NORTHWIND, REFERENCE = ("Northwind Outfitters", "vision"), ("Reference 2018", "vision")


def test_compute_view_passes_the_weighting_through(demo):
    dataset = demo.dataset(*NORTHWIND)
    view = compute_view(
        demo,
        *NORTHWIND,
        CURRENT_BUILD,
        DEFAULT_FILTERS.replace(confidence=0.5, min_pct=2, max_pct=100, weighting="impressions"),
        shown=0,
    )
    summary = page_order(feature_summary(dataset, confidence=0.5, min_pct=2, max_pct=100, weighting="impressions"))
    assert view.weighting == "impressions"
    assert list(chart_rows(view.impact.data[0], "y")) == list(summary["feature"])
    assert np.array_equal(chart_rows(view.impact.data[0], "x"), summary["impact"].to_numpy() * 100.0)
    mean = page_order(feature_summary(dataset, confidence=0.5, min_pct=2, max_pct=100))
    assert not np.allclose(chart_rows(view.avg_with.data[0], "x"), mean["avg_ctr_with"].to_numpy() * 100.0)
    assert "impression-weighted" in view.shown_text


def test_compute_view_falls_back_to_the_mean_without_counts(demo):
    view = compute_view(
        demo,
        *REFERENCE,
        CURRENT_BUILD,
        DEFAULT_FILTERS.replace(confidence=0.3, min_pct=0, max_pct=100, weighting="impressions"),
    )
    summary = page_order(feature_summary(demo.dataset(*REFERENCE), confidence=0.3))
    assert view.weighting == "mean"
    assert list(view.impact.data[0].x) == list(summary["impact"] * 100.0)
    assert "not available" in view.notice["title"]


def test_compute_view_table_lists_every_feature_passing_the_filters(demo):
    view = compute_view(
        demo, *NORTHWIND, CURRENT_BUILD, DEFAULT_FILTERS.replace(confidence=0.5, min_pct=2, max_pct=100), shown=10
    )
    summary = page_order(feature_summary(demo.dataset(*NORTHWIND), confidence=0.5, min_pct=2, max_pct=100))
    assert len(view.summary) == 20 < len(summary)
    assert view.table == views.table_rows(summary)
    assert table_hint(view).startswith(f"All {len(summary)} features passing the filters (20 of them charted)")


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
@pytest.mark.parametrize("confidence, low, high", [(0.5, 2, 100), (0.3, 5, 60), (0.0, 0, 100)])
def test_download_csv_rows_are_feature_summary_under_the_filters(demo, weighting, confidence, low, high):
    import io

    state = views.ViewState(
        *NORTHWIND,
        CURRENT_BUILD,
        filters=DEFAULT_FILTERS.replace(confidence=confidence, min_pct=low, max_pct=high, weighting=weighting),
        shown=10,
    )
    dataset = demo.dataset(*NORTHWIND)
    expected = feature_summary(dataset, confidence=confidence, min_pct=low, max_pct=high, weighting=weighting)
    sent = download_csv(demo, state, "summary")
    assert sent["type"] == "text/csv"
    build_id = demo.resolve_build(*NORTHWIND)
    assert sent["filename"] == (
        f"northwind-outfitters_vision_build-{build_id}_conf-{confidence:.2f}_prev-{low}-{high}_{weighting}_summary.csv"
    )
    back = pd.read_csv(io.StringIO(sent["content"]), dtype={"feature": object})
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_dtype=False)

    points = download_csv(demo, state, "points")
    assert points["filename"].endswith(f"_{weighting}_points.csv")
    back = pd.read_csv(io.StringIO(points["content"]), dtype={"image": object, "feature": object})
    expected_points = scatter_points(dataset, confidence=confidence, features=expected["feature"])
    assert len(back) == len(expected_points)
    assert list(back["feature"]) == list(expected_points["feature"].astype(str))
    assert np.array_equal(back["ctr"], expected_points["ctr"])


def test_download_csv_falls_back_like_the_page(demo):
    summary = download_csv(
        demo,
        views.ViewState(*REFERENCE, filters=DEFAULT_FILTERS.replace(weighting="impressions"), build=999),
        "summary",
    )
    assert summary["filename"] == "reference-2018_vision_build-1_conf-0.50_prev-2-100_mean_summary.csv"
    assert download_csv(demo, views.ViewState("nobody", "vision"), "summary") is None
    assert download_csv(demo, views.ViewState(), "summary") is None


def test_download_callback_sends_the_csv(demo, settings):
    app = create_app(settings, demo)
    response = _dash_post(
        app.server.test_client(),
        [(ids.DOWNLOAD_SUMMARY, "data")],
        [(ids.DOWNLOAD_SUMMARY_BUTTON, "n_clicks", 1)],
        _controls(*NORTHWIND, confidence=0.5, sparsity=(2, 100), weighting="impressions"),
    )
    sent = response.get_json()["response"][ids.DOWNLOAD_SUMMARY]["data"]
    assert sent["filename"].endswith("_conf-0.50_prev-2-100_impressions_summary.csv")
    assert sent["content"] == downloads.summary_csv(
        feature_summary(demo.dataset(*NORTHWIND), confidence=0.5, min_pct=2, max_pct=100, weighting="impressions")
    )


@pytest.mark.parametrize(
    ("changed", "replace"),
    [(ids.SHOWN, False), (ids.BUSINESS, False), (ids.CONFIDENCE, True), (ids.SPARSITY, True)],
)
def test_url_callback_writes_the_controls_into_the_query(client, loaded, changed, replace):
    controls = _view_inputs(
        _controls(confidence=0.37000000000000005, sparsity=(5, 60), shown="0"),
        extra={(ids.TABLE, "selectedRows"): None},
    )
    response = _dash_post(client, [(ids.URL, "data")], controls, [(ids.URL, "data", None)], changed=changed)
    written = response.get_json()["response"][ids.URL]["data"]
    assert written["search"] == (
        "?business=acme&source=vision&confidence=0.37&min_pct=5&max_pct=60&weighting=mean&shown=all&adjusted=0"
    )
    assert views.parse_view(views.query_from_url(written["search"])) == views.ViewState(
        BUSINESS,
        SOURCE,
        CURRENT_BUILD,
        filters=DEFAULT_FILTERS.replace(confidence=0.37, min_pct=5, max_pct=60, weighting="mean"),
        shown=0,
    )
    assert written["replace"] is replace  # a slider drag replaces the history entry
    again = _dash_post(client, [(ids.URL, "data")], controls, [(ids.URL, "data", written)], changed=changed)
    assert again.get_json()["response"] == {}  # unchanged: no new history entry


def test_url_callback_writes_the_date_range(client, loaded):
    controls = _view_inputs(
        _controls(date_from="2026-10-01T00:00:00", date_to="2026-10-31"), extra={(ids.TABLE, "selectedRows"): None}
    )
    response = _dash_post(client, [(ids.URL, "data")], controls, [(ids.URL, "data", None)], changed=ids.DATE_RANGE)
    written = response.get_json()["response"][ids.URL]["data"]
    assert "&from=2026-10-01&to=2026-10-31" in written["search"]
    assert views.parse_view(views.query_from_url(written["search"])).filters.window == Window(
        "2026-10-01", "2026-10-31"
    )


def test_url_callback_keeps_the_selected_feature_and_a_selection_replaces_the_entry(client, loaded):
    controls = _view_inputs(_controls(), extra={(ids.TABLE, "selectedRows"): [{"feature": "a&b <c>"}]})
    response = _dash_post(client, [(ids.URL, "data")], controls, [(ids.URL, "data", None)], changed=ids.TABLE)
    written = response.get_json()["response"][ids.URL]["data"]
    assert written["search"].endswith("&feature=a%26b%20%3Cc%3E")
    assert views.parse_view(views.query_from_url(written["search"])).feature == "a&b <c>"
    assert written["replace"] is True  # selecting a feature does not add a history entry


@pytest.mark.parametrize("dataset, has_counts", [(NORTHWIND, True), (REFERENCE, False)])
def test_weighting_callback_disables_impressions_without_counts(demo, settings, dataset, has_counts):
    app = create_app(settings, demo)
    response = _dash_post(
        app.server.test_client(),
        [
            (ids.WEIGHTING, "options"),
            (ids.WEIGHTING, "value"),
            (ids.WEIGHTING_HELP, "children"),
            (ids.WEIGHTING_TIP, "children"),
        ],
        [
            (ids.BUSINESS, "value", dataset[0]),
            (ids.SOURCE, "value", dataset[1]),
            (ids.BUILD, "value", CURRENT_BUILD),
            (ids.VERSION, "data", demo.version()),
        ],
        [(ids.WEIGHTING, "value", "impressions")],
    )
    answer = response.get_json()["response"]
    assert answer[ids.WEIGHTING]["options"] == views.weighting_options(has_counts)
    assert answer[ids.WEIGHTING_HELP]["children"] == views.weighting_help(has_counts)
    # The value changes only when impression weighting has to go.
    assert answer[ids.WEIGHTING].get("value", "unchanged") == ("unchanged" if has_counts else "mean")


def test_dataset_has_counts(demo):
    assert dataset_has_counts(demo, *NORTHWIND, CURRENT_BUILD) is True
    assert dataset_has_counts(demo, *REFERENCE, CURRENT_BUILD) is False
    assert dataset_has_counts(demo, *NORTHWIND, 999) is True  # a build that is gone: the current one
    assert dataset_has_counts(demo, "nobody", "vision", None) is None
    assert dataset_has_counts(demo, None, None, None) is None


# -- opening the page at a URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    "state, expected",
    [
        (
            views.ViewState(*REFERENCE, filters=DEFAULT_FILTERS.replace(confidence=0.3)),
            views.ViewState(*REFERENCE, filters=DEFAULT_FILTERS.replace(confidence=0.3)),
        ),
        (views.ViewState("nobody", "vision"), views.ViewState(*NORTHWIND)),
        (views.ViewState("Reference 2018", "nothing"), views.ViewState(*REFERENCE)),
        (views.ViewState(*NORTHWIND, build=999), views.ViewState(*NORTHWIND)),
        (
            views.ViewState(*REFERENCE, filters=DEFAULT_FILTERS.replace(weighting="impressions")),
            views.ViewState(*REFERENCE),
        ),
        (
            views.ViewState(*NORTHWIND, filters=DEFAULT_FILTERS.replace(weighting="impressions")),
            views.ViewState(*NORTHWIND, filters=DEFAULT_FILTERS.replace(weighting="impressions")),
        ),
    ],
)
def test_resolve_view_falls_back_where_the_url_names_nothing_stored(demo, state, expected):
    from dashboard.page.selection import resolve_view

    resolved, datasets, build_opts, has_counts = resolve_view(state, demo)
    assert resolved == expected
    assert has_counts is (resolved.business == NORTHWIND[0])
    assert [o["value"] for o in build_opts][0] == CURRENT_BUILD


def test_resolve_view_keeps_a_pinned_earlier_build(store, reference_frame):
    from dashboard.page.selection import resolve_view

    _load(store, reference_frame)
    first = store.resolve_build(BUSINESS, SOURCE)
    _load(store, reference_frame, ctr=False)
    resolved, *_ = resolve_view(views.ViewState(BUSINESS, SOURCE, build=first), store)
    assert resolved.build == first


def test_resolve_view_of_an_empty_store(store):
    from dashboard.page.selection import resolve_view

    resolved, datasets, build_opts, has_counts = resolve_view(views.ViewState("a", "b", build=3), store)
    assert (resolved.business, resolved.source, resolved.build, build_opts, has_counts) == (
        None,
        None,
        CURRENT_BUILD,
        [],
        None,
    )


def test_a_url_pinning_a_build_no_longer_stored_opens_at_the_current_one_and_says_so(demo, settings):
    from dashboard.page.selection import stale_build_shown

    app = create_app(settings, demo)
    pinned = views.ViewState(*NORTHWIND, filters=DEFAULT_FILTERS.replace(confidence=0.3), build=999)
    with app.server.test_request_context("/" + views.view_query(pinned), environ_base=LOOPBACK):
        page = app.layout()
    assert _layout_values(page)[ids.BUILD] == CURRENT_BUILD
    stale = _find(page, ids.STALE_BUILD).data
    shown = views.ViewState(*NORTHWIND, filters=DEFAULT_FILTERS.replace(confidence=0.3))
    # The address bar is replaced by the view shown: no build_id, the other values kept.
    assert stale == {
        "build": 999,
        "business": NORTHWIND[0],
        "source": NORTHWIND[1],
        "replace": True,
        "search": views.view_query(shown),
    }
    assert "build_id" not in stale["search"] and "confidence=0.30" in stale["search"]
    assert _find(page, ids.URL).data["search"] == stale["search"]

    # The notice stays while the current build of that dataset is shown, and goes once another is picked.
    assert stale_build_shown(stale, shown) == 999
    view = compute_view(
        demo,
        *NORTHWIND,
        CURRENT_BUILD,
        DEFAULT_FILTERS.replace(confidence=0.3),
        stale_build=stale_build_shown(stale, shown),
    )
    assert view.notice == {"title": "Build #999 is no longer stored", "text": "Showing the current build."}
    assert not figures.is_empty_figure(view.scatter)
    earlier = int(demo.builds(*NORTHWIND)["build_id"].iloc[-1])
    assert stale_build_shown(stale, views.ViewState(*NORTHWIND, build=earlier)) is None
    assert stale_build_shown(stale, views.ViewState(*REFERENCE)) is None
    assert stale_build_shown(None, shown) is None
    assert compute_view(demo, *NORTHWIND, CURRENT_BUILD, DEFAULT_FILTERS.replace(confidence=0.3)).notice is None


def test_a_url_whose_build_is_stored_or_current_has_no_stale_build(demo, settings):
    from dashboard.page.selection import stale_build, stale_build_shown

    app = create_app(settings, demo)
    with app.server.test_request_context("/" + views.view_query(views.ViewState(*NORTHWIND)), environ_base=LOOPBACK):
        assert _find(app.layout(), ids.STALE_BUILD).data is None
    # A business that is not there: the page shows the default dataset, and the address bar is
    # replaced by the view shown (a copied link names what it shows), with no stale-build notice.
    with app.server.test_request_context(
        "/" + views.view_query(views.ViewState("nobody", "vision", build=999)), environ_base=LOOPBACK
    ):
        page = app.layout()
    moved = _find(page, ids.STALE_BUILD).data
    shown = views.ViewState(_layout_values(page)[ids.BUSINESS], _layout_values(page)[ids.SOURCE])
    assert shown.business != "nobody" and moved["replace"] is True and moved["build"] is None
    assert moved["search"] == _find(page, ids.URL).data["search"] and "nobody" not in moved["search"]
    assert parse_qs(moved["search"].lstrip("?"))["business"] == [shown.business]
    assert stale_build_shown(moved, shown) is None
    current = views.ViewState(*NORTHWIND)
    assert stale_build(views.ViewState(*NORTHWIND, build=7), current) == 7
    assert stale_build(views.ViewState("nobody", "vision", build=7), current) is None
    assert stale_build(views.ViewState(*NORTHWIND, build=7), views.ViewState(*NORTHWIND, build=7)) is None


def _layout_values(page):
    return {c: _find(page, c).value for c in ids.CONTROLS}


def test_layout_opens_at_the_view_in_the_pages_url(demo, settings):
    """The browser fetches /_dash-layout with the page's URL as the referrer."""
    app = create_app(settings, demo)
    state = views.ViewState(
        *REFERENCE,
        CURRENT_BUILD,
        filters=DEFAULT_FILTERS.replace(confidence=0.3, min_pct=5, max_pct=60, weighting="mean"),
        shown=0,
    )
    client = app.server.test_client()
    response = client.get("/_dash-layout", headers={"Referer": "http://localhost/" + views.view_query(state)})
    assert response.status_code == 200
    layout = json.dumps(response.get_json())
    assert '"value": "Reference 2018"' in layout and '"value": [5, 60]' in layout and '"value": 0.3' in layout

    with app.server.test_request_context(
        "/_dash-layout", headers={"Referer": "http://h/" + views.view_query(state)}, environ_base=LOOPBACK
    ):
        page = app.layout()
    assert _layout_values(page) == {
        ids.BUSINESS: "Reference 2018",
        ids.SOURCE: "vision",
        ids.BUILD: CURRENT_BUILD,
        ids.CONFIDENCE: 0.3,
        ids.SPARSITY: [5, 60],
        ids.WEIGHTING: "mean",
        ids.SHOWN: "0",
        ids.COMPARE: None,
    }
    options = {o["value"]: o for o in _find(page, ids.WEIGHTING).options}
    assert options["impressions"]["disabled"]  # Reference 2018 has no clicks and impressions


def test_layout_reads_its_own_query_and_ignores_junk(demo, settings):
    app = create_app(settings, demo)
    with app.server.test_request_context(
        "/?business=Northwind%20Outfitters&weighting=impressions&shown=10", environ_base=LOOPBACK
    ):
        page = app.layout()
    assert _layout_values(page)[ids.WEIGHTING] == "impressions" and _layout_values(page)[ids.SHOWN] == "10"
    junk = "/?business=%00&source=&confidence=NaN&min_pct=90&max_pct=10&weighting=<script>&shown=-1&build_id=x"
    with app.server.test_request_context(junk, environ_base=LOOPBACK):
        page = app.layout()
    assert _layout_values(page) == {
        ids.BUSINESS: NORTHWIND[0],
        ids.SOURCE: NORTHWIND[1],
        ids.BUILD: CURRENT_BUILD,
        ids.CONFIDENCE: DEFAULT_CONFIDENCE,
        ids.SPARSITY: list(DEFAULT_SPARSITY),
        ids.WEIGHTING: "mean",
        ids.SHOWN: "25",
        ids.COMPARE: None,
    }


def test_refresh_keeps_the_chosen_business_and_adds_new_ones(client, loaded, reference_frame):
    _load(loaded, reference_frame, "globex", "vision")
    response = _dash_post(
        client,
        [(ids.BUSINESS, "options"), (ids.BUSINESS, "value")],
        [(ids.VERSION, "data", loaded.version())],
        [(ids.BUSINESS, "value", BUSINESS)],
    )
    answer = response.get_json()["response"]
    assert [o["value"] for o in answer[ids.BUSINESS]["options"]] == ["globex", BUSINESS]
    assert answer[ids.BUSINESS]["value"] == BUSINESS


def test_every_app_gets_its_own_callbacks(settings, store):
    first, second = create_app(settings, store), create_app(settings, store)
    for app in (first, second):
        assert any(ids.SCATTER in key for key in app.callback_map)
        assert any(ids.VERSION in key for key in app.callback_map)


def test_page_links_only_local_assets(client):
    html = client.get("/").get_data(as_text=True)
    assert "/assets/bootstrap.min.css" in html
    assert "cdn." not in html and "https://" not in html


def test_page_sends_its_url_with_the_layout_request(client):
    # The layout function reads the view from the referrer of /_dash-layout (see layout.request_query).
    assert '<meta name="referrer" content="same-origin">' in client.get("/").get_data(as_text=True)


def test_compute_view_prefers_a_stored_thumbnail_to_the_url_template(store, reference_frame):
    from data.thumbnails import make_thumbnail
    from tests import image_samples as samples

    frame = reference_frame.head(40)
    store.add_build(BUSINESS, SOURCE, FeatureBatch.from_wide(frame))
    store.replace_ctr(BUSINESS, SOURCE, ctr_frame(frame["image_name"], frame["ctr"]))
    template = "https://img.example/{image}.jpg"
    before = compute_view(
        store,
        BUSINESS,
        SOURCE,
        None,
        DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100),
        image_url_template=template,
    ).lookup
    stored = unpacked_names(before["images"])[0]
    thumb = make_thumbnail(samples.png())
    store.put_thumbnails(BUSINESS, SOURCE, [(stored, thumb)])
    after = compute_view(
        store,
        BUSINESS,
        SOURCE,
        None,
        DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100),
        image_url_template=template,
    ).lookup
    assert after["urls"][0] == f"/api/images/{stored}?business=acme&source=vision&v={thumb.etag}"
    assert after["urls"][1:] == before["urls"][1:] and after["urls"][1].startswith("https://img.example/")
    plain = compute_view(
        store, BUSINESS, SOURCE, None, DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100)
    ).lookup
    assert plain["urls"][0] == after["urls"][0] and set(plain["urls"][1:]) == {None}


def test_image_urls_without_template_or_thumbnails_is_none():
    assert image_urls(None, "a", "b", ["c"], stored={}) is None
    assert image_urls(None, "a b", "v", ["c", "d/e"], stored={"d/e": "t1"}) == [
        None,
        "/api/images/d%2Fe?business=a+b&source=v&v=t1",
    ]
