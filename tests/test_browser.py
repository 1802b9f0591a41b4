"""The page in headless Chromium: charts drawn from data, sliders, hover linking, live updates.

Skipped when Chromium or chromedriver is missing, unless CI is set: then they fail instead.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pandas as pd
import pytest

from dashboard.factory import create_app
from dashboard.page import ids, views
from dashboard.page.hover import HOVER_HINT
from data.analysis import feature_summary, scatter_points
from data.batches import FeatureBatch, ctr_frame
from data.settings import Settings
from data.store import FeatureStore
from tests.browser import browser_or_skip, serve, wait_for, wait_for_charts, wait_for_download
from tests.helpers import load_frame

REFERENCE = ("acme", "vision")
LARGE = ("globex", "vision")
NORTHWIND = ("Northwind Outfitters", "vision")
REFERENCE_2018 = ("Reference 2018", "vision")

# Counts every request the page makes to Dash's callback endpoint, installed before the page loads.
REQUEST_COUNTER_JS = """
window.__dashRequests = [];
const originalFetch = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : input.url;
  if (url.includes('_dash-update-component')) {
    window.__dashRequests.push((init && init.body) || '');
  }
  return originalFetch.apply(this, arguments);
};
const originalOpen = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url) {
  if (String(url).includes('_dash-update-component')) { window.__dashRequests.push('xhr'); }
  return originalOpen.apply(this, arguments);
};
"""

CHART_DATA_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullLayout) { return null; }
const annotations = (gd._fullLayout.annotations || []).map(a => a.text);
const t = (gd._fullData || [])[arguments[1] || 0];
if (!t) { return {type: null, x: null, y: null, annotations: annotations}; }
const list = v => (v === undefined || v === null) ? null : Array.from(v);
// A bar chart drawn in part (dashboard/figures/bars.py draw_limit) keeps every row's values in
// its trace's meta, some as base64 typed arrays: those are the chart's values.
const TYPED = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
               u2: Uint16Array, i1: Int8Array, u1: Uint8Array};
const decode = v => v && typeof v.bdata === 'string'
  ? new TYPED[v.dtype.replace(/^[<>|=]/, '')](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer) : v;
const meta = (gd.data[arguments[1] || 0] || {}).meta;
const full = meta && meta.rows && meta.full ? meta.full : {};
const m = t.marker || {};
const opacity = 'marker.opacity' in full ? decode(full['marker.opacity']) : m.opacity;
return {type: t.type, x: list('x' in full ? decode(full.x) : t.x), y: list('y' in full ? full.y : t.y),
        text: list(t.text),
        opacity: Array.isArray(opacity) || ArrayBuffer.isView(opacity) ? list(opacity) : opacity,
        dash: t.line && t.line.dash, color: t.line && t.line.color,
        annotations: annotations};
"""

POINT_PIXEL_JS = """
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
const fl = gd._fullLayout, t = gd._fullData[0], i = arguments[0];
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
return {x: box.left + fl.xaxis.l2p(t.x[i]), y: box.top + fl.yaxis.l2p(t.y[i]), type: t.type};
"""

# Where things are in a screenshot of the scatter element: the plot area, and the pixel of
# (feature code, CTR %) for every code on the x axis at the given CTR.
# The opacity each bar of a bar chart is drawn with (computed style: hover marks bars by class).
BAR_OPACITY_JS = """
const trace = document.querySelector('#' + arguments[0] + ' .js-plotly-plot .barlayer .trace');
return trace ? Array.from(trace.querySelectorAll('.point path')).map(p => Number(getComputedStyle(p).opacity)) : null;
"""

SCATTER_GEOMETRY_JS = """
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
const fl = gd._fullLayout;
const chart = document.getElementById('scatter-chart').getBoundingClientRect();
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
const ctr = arguments[0];
const codes = Array.from(fl.xaxis.tickvals || []);
return {area: [box.left - chart.left, box.top - chart.top, box.width, box.height],
        size: [chart.width, chart.height],
        rings: ctr === null ? [] : codes.map(c => [c, box.left - chart.left + fl.xaxis.l2p(c),
                                                  box.top - chart.top + fl.yaxis.l2p(ctr)])};
"""
# The hover label covers points by design; hidden while counting so that it cannot mask or fake a loss.
# What the side panel shows of the hovered image: its name, and the features listed in its table.
HOVER_CARD_JS = """
const panel = document.getElementById('hover-panel');
const name = panel.querySelector('.hover-name');
return {name: name ? name.textContent : null,
        features: Array.from(panel.querySelectorAll('.hover-table td.hover-feature')).map(td => td.textContent),
        rows: Array.from(panel.querySelectorAll('.hover-table tbody tr')).map(
            tr => Array.from(tr.children).slice(0, 2).map(td => td.textContent)),
        ctr: panel.querySelector('.hover-ctr') ? panel.querySelector('.hover-ctr').textContent : null,
        markup: panel.querySelectorAll('.hover-table b, .hover-table a, .hover-name b').length,
        hint: panel.innerText.includes(arguments[0])};
"""
HIDE_HOVER_LABEL_JS = """
if (!document.getElementById('test-hide-hover-label')) {
  const style = document.createElement('style');
  style.id = 'test-hide-hover-label';
  style.textContent = '#scatter-chart .hoverlayer { visibility: hidden; }';
  document.head.appendChild(style);
}
"""


@pytest.fixture(scope="module")
def driver(driver):
    """The module's Chromium, counting the requests each page makes."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": REQUEST_COUNTER_JS})
    return driver


def _large_frame(n_images=700, n_features=30, seed=42) -> pd.DataFrame:
    """Enough points for WebGL: about half the features present per image, confidences uniform."""
    rng = np.random.default_rng(seed)
    present = rng.random((n_images, n_features)) < 0.5
    conf = np.where(present, rng.random((n_images, n_features)).round(3), 0.0)
    frame = pd.DataFrame(conf, columns=[f"label_{j:02d}" for j in range(n_features)])
    frame.insert(0, "ctr", 0.01 * np.exp(rng.normal(0, 0.4, n_images) + conf[:, :3].sum(axis=1) * 0.2))
    frame.insert(0, "image_name", [f"creative_{i:04d}.jpg" for i in range(n_images)])
    return frame


@pytest.fixture(scope="module")
def live(tmp_path_factory, reference_frame):
    """The app from the factory on a loopback port; the reference data is the default dataset."""
    path = tmp_path_factory.mktemp("live") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    load_frame(store, _large_frame(), *LARGE)
    load_frame(store, reference_frame, *REFERENCE)  # most recently updated: shown first
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


@pytest.fixture(scope="module")
def live_large(tmp_path_factory):
    """An app whose only dataset has a few thousand scatter points (WebGL)."""
    path = tmp_path_factory.mktemp("large") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    load_frame(store, _large_frame(), *LARGE)
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


def _open(driver, url):
    driver.get(url)
    wait_for_charts(driver)
    driver.get_log("browser")  # start each test with an empty console record
    driver.get_log("performance")


def _chart(driver, chart_id, trace=0):
    return driver.execute_script(CHART_DATA_JS, chart_id, trace)


def _severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _wait_for(predicate, timeout=20.0, message="condition"):
    return wait_for(predicate, timeout=timeout, message=message)


def _api_summary(url, business, source, confidence, low, high):
    """/api/summary's features for these settings (any error answer fails the test)."""
    query = urlencode(
        {"business": business, "source": source, "confidence": confidence, "min_pct": low, "max_pct": high}
    )
    with urllib.request.urlopen(f"{url}api/summary?{query}", timeout=10) as response:
        return json.load(response)["features"]


def _close(shown, expected, **tolerance) -> bool:
    """Whether a chart's numbers equal the expected ones; False (not an error) while lengths differ mid-redraw."""
    shown, expected = np.asarray(shown, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return shown.shape == expected.shape and bool(np.allclose(shown, expected, **tolerance))


def _charts_match(driver, store, dataset_key, confidence, low, high):
    """Whether the charts show feature_summary's numbers for these settings, ranked by evidence."""
    dataset = store.dataset(*dataset_key)
    summary = views.evidence_order(feature_summary(dataset, confidence=confidence, min_pct=low, max_pct=high))
    features = list(summary["feature"])
    impact, with_bar = (_chart(driver, c) for c in ids.BAR_CHARTS)
    without = _chart(driver, ids.AVG_WITH, 2)  # the CTR without each feature: a mark on the CTR chart
    scatter = _chart(driver, ids.SCATTER)
    if not all((with_bar, impact, without, scatter)) or scatter["x"] is None:
        return False
    # The charts are read one by one: mid-redraw they can come from two different views.
    if not with_bar["y"] == impact["y"] == without["y"] == features:
        return False
    points = scatter_points(dataset, confidence=confidence, features=features)
    return (
        _close(with_bar["x"], summary["avg_ctr_with"] * 100, rtol=1e-12)
        and _close(impact["x"], summary["impact"] * 100, rtol=1e-12, equal_nan=True)
        and _close(without["x"], summary["avg_ctr_without"] * 100, rtol=1e-12, equal_nan=True)
        and len(scatter["x"]) == len(points)
    )


def _slider_value(driver, slider_id, thumb=1):
    thumb_el = driver.find_element("css selector", f"#{slider_id} .dash-slider-thumb-{thumb}")
    return float(thumb_el.get_attribute("aria-valuenow"))


def _drag_thumb(driver, slider_id, dx, thumb=1):
    from selenium.webdriver.common.action_chains import ActionChains

    thumb_el = driver.find_element("css selector", f"#{slider_id} .dash-slider-thumb-{thumb}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", thumb_el)
    ActionChains(driver).click_and_hold(thumb_el).pause(0.1).move_by_offset(dx // 2, 0).pause(0.1).move_by_offset(
        dx - dx // 2, 0
    ).pause(0.1).release().perform()


def _move_mouse(driver, x, y):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.perform()


def _isolated_points(dataset, confidence, low, high, shown=25, count=1):
    """Scatter points of ``count`` distinct images with 2+ charted features and no other point within reach.

    Each is ``(point index, image, its feature codes, its CTR in %)``; the highest CTRs first,
    then spread over the range so that the images differ.
    """
    from dashboard.page.compute import select_shown

    ranked = views.evidence_order(feature_summary(dataset, confidence=confidence, min_pct=low, max_pct=high))
    summary = select_shown(ranked, shown)  # the features charted, in the page's order
    points = scatter_points(dataset, confidence=confidence, features=summary["feature"])
    codes = points["feature"].cat.codes.to_numpy()
    y = points["ctr"].to_numpy()
    per_image = points.groupby("image", sort=False)["feature"].transform("size").to_numpy()
    spread = np.ptp(y)
    found, images = [], set()
    for i in np.argsort(-y):
        image = points["image"].iloc[i]
        same_column = (codes == codes[i]) & (np.arange(len(y)) != i)
        if image in images or per_image[i] < 2 or (np.abs(y[same_column] - y[i]) < spread * 0.02).any():
            continue
        if found and abs(y[i] - found[-1][3] / 100) < spread * 0.1:
            continue  # keep the links of successive images apart
        expected = sorted(codes[(points["image"] == image).to_numpy()].tolist())
        found.append((int(i), image, expected, float(y[i] * 100)))
        images.add(image)
        if len(found) == count:
            return found
    raise AssertionError(f"fewer than {count} isolated points with multi-feature images")


def _isolated_point(dataset, confidence, low, high, shown=25):
    """A scatter point whose image has 2+ charted features and no other point within reach."""
    return _isolated_points(dataset, confidence, low, high, shown)[0]


def _scatter_pixels(driver, ctr=None):
    """What the scatter's plot area shows, counted in a screenshot of the chart element.

    ``points``: blue marker pixels; ``dashes``: near-black pixels (the average dashes); ``red``:
    pixels of the hover link; ``rings``: the feature codes with a red ring at ``ctr`` (%).
    """
    from tests.browser import decode_png

    shot = decode_png(driver.find_element("id", ids.SCATTER).screenshot_as_png)[..., :3].astype(np.int16)
    geometry = driver.execute_script(SCATTER_GEOMETRY_JS, ctr)
    assert shot.shape[1] == round(geometry["size"][0]), "screenshot and chart differ in scale"
    x, y, w, h = (int(round(v)) for v in geometry["area"])
    area = shot[y : y + h, x : x + w]
    r, g, b = area[..., 0], area[..., 1], area[..., 2]
    red = (r - b > 80) & (r > 150)
    rings = set()
    for code, cx, cy in geometry["rings"]:
        cx, cy = int(round(cx)) - x, int(round(cy)) - y
        # The ring's top and bottom: 5 px above and below its centre, clear of the dotted line.
        if all(red[max(yy - 1, 0) : yy + 2, max(cx - 1, 0) : cx + 2].any() for yy in (cy - 5, cy + 5)):
            rings.add(int(code))
    return {
        "points": int(((b - r) > 50).sum()),
        "dashes": int(((r < 100) & (g < 100) & (b < 110) & ((b - r) < 50)).sum()),
        "red": int(red.sum()),
        "rings": rings,
    }


def _still_painted(now, before, share=0.8):
    return now["points"] >= share * before["points"] and now["dashes"] >= share * before["dashes"]


def _png(pixels: np.ndarray, filters) -> bytes:
    """An RGB PNG of ``pixels`` with the given filter type on each row (for the decoder's test)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width, _ = pixels.shape
    flat = pixels.reshape(height, width * 3).astype(np.int64)
    rows = []
    for r, kind in enumerate(filters):
        line, up = flat[r], flat[r - 1] if r else np.zeros_like(flat[r])
        left = np.concatenate([np.zeros(3, dtype=np.int64), line[:-3]])
        upleft = np.concatenate([np.zeros(3, dtype=np.int64), up[:-3]])
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        predictor = [0, left, up, (left + up) // 2, paeth][kind]
        rows.append(bytes([kind]) + ((line - predictor) % 256).astype(np.uint8).tobytes())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def test_decode_png_undoes_every_row_filter():
    from tests.browser import decode_png

    pixels = np.random.default_rng(42).integers(0, 256, size=(10, 7, 3), dtype=np.uint8)
    filters = [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]
    assert np.array_equal(decode_png(_png(pixels, filters)), pixels)


# -- tests ---------------------------------------------------------------------------------------


def test_page_draws_four_charts_from_the_data(driver, live):
    url, store = live
    _open(driver, url)
    from dashboard.page.views import DEFAULT_CONFIDENCE, DEFAULT_SPARSITY

    assert _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY)
    assert _chart(driver, ids.SCATTER)["type"] == "scatter"  # few points: SVG
    assert "acme / vision" in driver.find_element("id", ids.STATUS).text
    # With no feature selected, the view's draw asks nothing more of the server (the Travels-with
    # panel has nothing to follow): the page is complete after one round trip.
    time.sleep(1.0)
    outputs = [json.loads(body).get("output", "") for body in _dash_request_bodies(driver)]
    assert outputs and not [o for o in outputs if ids.COOCCURRENCE in o], outputs
    assert _severe(driver) == []


def test_sliders_redraw_the_charts_with_matching_numbers(driver, live):
    url, store = live
    _open(driver, url)

    _drag_thumb(driver, ids.CONFIDENCE, -90)
    confidence = _slider_value(driver, ids.CONFIDENCE)
    assert confidence < 0.5
    low, high = 2.0, 100.0
    _wait_for(lambda: _charts_match(driver, store, REFERENCE, confidence, low, high), message="confidence redraw")

    _drag_thumb(driver, ids.SPARSITY, 45, thumb=1)
    _drag_thumb(driver, ids.SPARSITY, -70, thumb=2)
    low, high = _slider_value(driver, ids.SPARSITY, 1), _slider_value(driver, ids.SPARSITY, 2)
    assert 2 < low < high < 100
    _wait_for(lambda: _charts_match(driver, store, REFERENCE, confidence, low, high), message="sparsity redraw")

    api = _api_summary(url, *REFERENCE, confidence, low, high)
    impact = _chart(driver, ids.IMPACT)
    assert impact["y"] == [row["feature"] for row in api]
    assert _close(impact["x"], [row["impact"] * 100 for row in api], rtol=1e-12)
    assert _severe(driver) == []


def test_filters_that_leave_no_feature_explain_themselves(driver, live):
    url, _store = live
    _open(driver, url)
    _drag_thumb(driver, ids.CONFIDENCE, 400)  # to the far right: confidence 1
    _wait_for(
        lambda: "No feature is present" in " ".join(_chart(driver, ids.SCATTER)["annotations"] or [""]),
        message="empty scatter",
    )
    assert "No feature left" in driver.find_element("id", ids.NOTICE).text
    assert _severe(driver) == []


def _dash_request_bodies(driver) -> list[str]:
    """The bodies of every request the page made to Dash's callback endpoint so far."""
    return driver.execute_script("return window.__dashRequests.filter(b => typeof b === 'string')")


def _redraw_requested(driver, version: str) -> bool:
    """Whether the page asked for a redraw of the charts and status with this data version."""
    for body in _dash_request_bodies(driver):
        try:
            request = json.loads(body)
        except ValueError:
            continue
        inputs = [i for i in request.get("inputs", []) if isinstance(i, dict)]
        seen = any(i.get("id") == ids.VERSION and i.get("value") == version for i in inputs)
        if seen and ids.STATUS in request.get("output", ""):
            return True
    return False


def _dash_requests(driver):
    """Requests to Dash's callback endpoint since the last call (window counter and network log)."""
    network = [
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in driver.get_log("performance")
        if '"Network.requestWillBeSent"' in e["message"]
    ]
    return driver.execute_script("return window.__dashRequests.length"), [
        u for u in network if "_dash-update-component" in u
    ]


def _hover_keeps_the_scatter_painted(driver, store, dataset_key, state, expect_type):
    """Hover points of three images in turn, then leave: the link shows each image, nothing else goes.

    Returns the pixel counts before, during each hover and after leaving.
    """
    dataset = store.dataset(*dataset_key)
    targets = _isolated_points(
        dataset, state.filters.confidence, state.filters.min_pct, state.filters.max_pct, state.shown, count=3
    )
    from dashboard.page.compute import select_shown

    summary = views.evidence_order(
        feature_summary(
            dataset,
            confidence=state.filters.confidence,
            min_pct=state.filters.min_pct,
            max_pct=state.filters.max_pct,
        )
    )
    names = list(select_shown(summary, state.shown)["feature"])  # by feature code, as the x axis
    points = scatter_points(dataset, confidence=state.filters.confidence, features=names)
    shown_pct = np.round(points["confidence"].to_numpy() * 100)  # the panel's two decimals
    # The scatter sits below the verdict and the bars: bring it on screen, where the mouse can reach it.
    driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'center', behavior: 'instant'})", ids.SCATTER
    )
    time.sleep(0.3)
    _move_mouse(driver, 5, 5)
    driver.execute_script(HIDE_HOVER_LABEL_JS)
    time.sleep(0.5)
    requests_before, _ = _dash_requests(driver)
    before = _scatter_pixels(driver)
    assert before["points"] > 1000 and before["dashes"] > 100 and before["red"] == 0, before
    counts = {"before": before}

    for n, (index, image, expected_codes, ctr_pct) in enumerate(targets):
        pixel = driver.execute_script(POINT_PIXEL_JS, index)
        assert pixel["type"] == expect_type
        _move_mouse(driver, pixel["x"] - 12, pixel["y"] - 12)
        _move_mouse(driver, pixel["x"], pixel["y"])
        _wait_for(
            lambda image=image: image in driver.find_element("id", ids.HOVER_PANEL).text,
            timeout=10,
            message="the panel",
        )
        # The link's rings are exactly at the hovered image's features, at its CTR.
        key = f"hover {n + 1}"

        def linked(key=key, ctr_pct=ctr_pct, expected_codes=expected_codes):
            counts[key] = _scatter_pixels(driver, ctr_pct)
            return counts[key] if counts[key]["rings"] == set(expected_codes) else None

        during = _wait_for(linked, timeout=10, message=f"the link of {image} at {expected_codes}: {counts}")
        assert _still_painted(during, before), f"points or dashes lost while hovering: {counts}"
        # The panel names the image and lists exactly its charted features, and no hint.
        card = driver.execute_script(HOVER_CARD_JS, HOVER_HINT)
        assert card["name"] == image and not card["hint"], card
        assert sorted(card["features"]) == sorted(names[c] for c in expected_codes)
        # Each with its confidence, highest first, and the image's CTR.
        mine = (points["image"] == image).to_numpy()
        expected_rows = sorted(zip(points["feature"][mine].astype(str), shown_pct[mine]), key=lambda r: -r[1])
        assert [(f, float(c)) for f, c in card["rows"]] == [(f, c / 100) for f, c in expected_rows], card
        assert card["ctr"].startswith("CTR ") and abs(float(card["ctr"][4:-1]) - ctr_pct) < 0.0051, card
        # The bars follow once the browser is idle: only the image's features stay solid.
        _wait_for(
            lambda codes=expected_codes: (
                [i for i, o in enumerate(driver.execute_script(BAR_OPACITY_JS, ids.IMPACT)) if o == 1] == codes
            ),
            timeout=10,
            message=f"the bars of {image}",
        )

    _move_mouse(driver, 5, 5)  # leave the chart

    def cleared():
        counts["after"] = _scatter_pixels(driver)
        return counts["after"] if counts["after"]["red"] == 0 else None

    after = _wait_for(cleared, timeout=10, message=f"the link cleared: {counts}")
    assert _still_painted(after, before), f"points or dashes lost after leaving: {counts}"
    _wait_for(lambda: set(driver.execute_script(BAR_OPACITY_JS, ids.IMPACT)) == {1}, timeout=10, message="bars")
    _wait_for(lambda: driver.find_element("id", ids.HOVER_PANEL).text == HOVER_HINT, timeout=10, message="hover hint")
    time.sleep(0.5)
    requests_after, network = _dash_requests(driver)
    assert requests_after == requests_before and network == []  # hovering stays in the browser
    return counts


@pytest.mark.parametrize(
    ("fixture", "dataset_key", "expect_type"),
    [("live_demo", NORTHWIND, "scatter"), ("live_large", LARGE, "scattergl")],
    ids=["svg", "webgl"],
)
def test_hover_links_an_image_and_never_blanks_the_scatter(driver, request, fixture, dataset_key, expect_type):
    # Tried as a user would: the points and the average dashes are counted in screenshots, since
    # the figure's data can hold every point while nothing is painted.
    from selenium.webdriver.support.ui import Select

    from dashboard.page.views import ViewState

    url, store = request.getfixturevalue(fixture)[:2]
    _open(driver, url)
    state = ViewState(*dataset_key)
    _hover_keeps_the_scatter_painted(driver, store, dataset_key, state, expect_type)

    # Again once a control has redrawn the chart with other data.
    fewer = ViewState(*dataset_key, shown=10)
    Select(driver.find_element("id", ids.SHOWN)).select_by_value("10")
    _wait_for(lambda: _chart(driver, ids.IMPACT)["y"] and len(_chart(driver, ids.IMPACT)["y"]) <= 20, message="redraw")
    wait_for_charts(driver)
    driver.get_log("performance")
    _hover_keeps_the_scatter_painted(driver, store, dataset_key, fewer, _chart(driver, ids.SCATTER)["type"])
    assert _severe(driver) == []


def test_new_data_shows_up_without_a_reload(driver, tmp_path, reference_frame):
    store = FeatureStore(f"sqlite:///{tmp_path / 'features.db'}")
    load_frame(store, reference_frame, *REFERENCE)
    settings = Settings.from_env({}, database_url=store.url, demo_data=False, poll_seconds=0.5)
    with serve(create_app(settings, store)) as url:
        _open(driver, url)
        from dashboard.page.views import DEFAULT_CONFIDENCE, DEFAULT_SPARSITY

        assert _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY)
        doubled = reference_frame.assign(ctr=reference_frame["ctr"] * np.linspace(0.5, 2.0, len(reference_frame)))
        store.replace_ctr(*REFERENCE, ctr_frame(doubled["image_name"], doubled["ctr"]))
        _wait_for(
            lambda: _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY),
            message="redraw after a CTR upload",
        )
        changed = reference_frame.assign(text=0.0)
        store.add_build(*REFERENCE, FeatureBatch.from_wide(changed))
        build_id = store.resolve_build(*REFERENCE)
        _wait_for(
            lambda: f"Build #{build_id}" in driver.find_element("id", ids.STATUS).text,
            message="the new build as the current one",
        )
        _wait_for(
            lambda: _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY),
            message="redraw after a new build",
        )

        load_frame(store, reference_frame.head(100), "initech", "vision")
        version = store.version()
        # The poll has seen the new data once the redraw asked for it with the new version.
        _wait_for(
            lambda: _redraw_requested(driver, version),
            message="a redraw for the new data version",
        )
        wait_for_charts(driver)
        assert "acme / vision" in driver.find_element("id", ids.STATUS).text  # the choice stays
        driver.find_element("id", ids.BUSINESS).click()
        _wait_for(lambda: "initech" in driver.find_element("tag name", "body").text, message="the new business offered")
        driver.find_element("tag name", "body").send_keys("\ue00c")  # Escape closes the menu
        assert _severe(driver) == []
    store.close()


def test_empty_store_shows_how_to_send_data(driver, tmp_path):
    store = FeatureStore(f"sqlite:///{tmp_path / 'features.db'}")
    settings = Settings.from_env({}, database_url=store.url, demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        _open(driver, url)
        notice = driver.find_element("id", ids.NOTICE).text
        assert "No data yet" in notice
        assert 'curl -X PUT -H "Business: acme" -H "Image-Source: vision"' in notice
        assert f"--data-binary @features.json {url}api/features" in notice
        assert "No data yet" in " ".join(_chart(driver, ids.SCATTER)["annotations"])
        assert _severe(driver) == []
    store.close()


# -- trustworthy impact, weighting, the table, downloads and shareable views ----------------------

PLANTED = ("text", "poster", "smile", "headwear")

CONTROLS_JS = """
if (!document.querySelector('#business .dash-dropdown-value') || !document.querySelector('#sparsity .dash-slider-thumb-2')) {
  return null;  // the page is (re)loading
}
const thumb = (id, n) => Number(document.querySelector('#' + id + ' .dash-slider-thumb-' + n).getAttribute('aria-valuenow'));
const checked = document.querySelector('#weighting input:checked');
const impressions = document.querySelector('#weighting input[value="impressions"]');
return {
  business: document.querySelector('#business .dash-dropdown-value').textContent,
  source: document.querySelector('#image-source .dash-dropdown-value').textContent,
  confidence: thumb('confidence', 1),
  sparsity: [thumb('sparsity', 1), thumb('sparsity', 2)],
  weighting: checked ? checked.value : null,
  impressions_disabled: impressions ? impressions.disabled : null,
  shown: document.querySelector('#features-shown').value,
  search: window.location.search,
};
"""

GRID_ROWS_JS = """
const api = window.dash_ag_grid && window.dash_ag_grid.getApi('summary-table');
if (!api) { return null; }
const rows = [];
api.forEachNodeAfterFilterAndSort(node => rows.push(node.data));
return rows;
"""

EXTERNAL_REQUESTS_JS = """
return performance.getEntriesByType('resource').map(e => e.name)
  .filter(u => !u.startsWith(location.origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
"""


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory):
    """The app on the demo data: Northwind Outfitters / vision (counts) and Reference 2018 / vision (none)."""
    from data.demo import load_demo

    path = tmp_path_factory.mktemp("demo") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    load_demo(store)
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store, settings
    store.close()


def _view_url(url, state):
    from dashboard.page.views import view_query

    return url + view_query(state)


def _view_matches(driver, store, state, min_n):
    """Whether the charts and the table show feature_summary's numbers for ``state``."""
    from dashboard.page.compute import select_shown

    dataset = store.dataset(state.business, state.source)
    summary = feature_summary(
        dataset,
        confidence=state.filters.confidence,
        min_pct=state.filters.min_pct,
        max_pct=state.filters.max_pct,
        min_n=min_n,
        weighting=state.filters.weighting,
    )
    summary = views.evidence_order(summary)  # as the page ranks it
    charted = select_shown(summary, state.shown)
    impact, with_bar = (_chart(driver, c) for c in ids.BAR_CHARTS)
    without = _chart(driver, ids.AVG_WITH, 2)  # the CTR without each feature: a mark on the CTR chart
    if not all((with_bar, impact, without)) or impact["y"] != list(charted["feature"]):
        return False
    if not len(with_bar["x"]) == len(without["x"]) == len(charted):  # the charts redraw one by one
        return False
    rows = driver.execute_script(GRID_ROWS_JS)
    return (
        _close(with_bar["x"], charted["avg_ctr_with"] * 100, rtol=1e-12)
        and _close(impact["x"], charted["impact"] * 100, rtol=1e-12, equal_nan=True)
        and _close(without["x"], charted["avg_ctr_without"] * 100, rtol=1e-12, equal_nan=True)
        and rows is not None
        and [r["feature"] for r in rows] == list(summary["feature"])
        and _close(
            [np.nan if r["impact"] is None else r["impact"] for r in rows],
            summary["impact"],
            rtol=0,
            atol=0,
            equal_nan=True,
        )
    )


def _controls_show(driver, state):
    controls = driver.execute_script(CONTROLS_JS)
    return controls is not None and (
        controls["business"] == state.business
        and controls["source"] == state.source
        and controls["confidence"] == pytest.approx(state.filters.confidence)
        and controls["sparsity"] == [state.filters.min_pct, state.filters.max_pct]
        and controls["weighting"] == state.filters.weighting
        and controls["shown"] == str(state.shown)
    )


def _click(driver, element):
    # 'instant': Bootstrap makes page scrolling smooth, and a click mid-scroll lands elsewhere.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def _pick(driver, dropdown_id, label):
    driver.find_element("id", dropdown_id).click()
    option = _wait_for(
        lambda: next(
            (o for o in driver.find_elements("css selector", "[role=option]") if o.text.strip() == label), None
        ),
        timeout=10,
        message=f"option {label!r}",
    )
    option.click()


def test_impact_chart_draws_intervals_and_marks_significant_features(driver, live_demo):
    from dashboard.page.views import ViewState

    url, store, settings = live_demo
    _open(driver, url)
    state = ViewState(*NORTHWIND)
    _wait_for(lambda: _view_matches(driver, store, state, settings.min_group_size), message="the demo view")
    summary = feature_summary(
        store.dataset(*NORTHWIND),
        confidence=state.filters.confidence,
        min_pct=state.filters.min_pct,
        max_pct=state.filters.max_pct,
    )
    from dashboard.page.compute import select_shown

    summary = views.evidence_order(summary)
    charted = select_shown(summary, state.shown).reset_index(drop=True)
    low, high = views.interval_columns(charted)  # the interval the verdict reads: FCR-adjusted where known
    bars = driver.execute_script(
        """const t = document.querySelector('#impact-chart .js-plotly-plot')._fullData[0];
           return {y: Array.from(t.y), plus: Array.from(t.error_x.array), minus: Array.from(t.error_x.arrayminus),
                   visible: t.error_x.visible, colors: Array.from(t.marker.color),
                   hover: Array.from(t.hovertext)};"""
    )
    assert bars["visible"] and len(driver.find_elements("css selector", "#impact-chart .errorbar")) == len(charted)
    assert np.allclose(np.array(bars["plus"]), (charted[high] - charted["impact"]) * 100, rtol=1e-9)
    assert np.allclose(np.array(bars["minus"]), (charted["impact"] - charted[low]) * 100, rtol=1e-9)
    significant = dict(zip(charted["feature"], charted["significant"]))
    for feature in PLANTED:
        i = bars["y"].index(feature)
        assert significant[feature] and bars["colors"][i].endswith(",1)"), feature
        assert ("helps" in bars["hover"][i] or "hurts" in bars["hover"][i]) and "q = " in bars["hover"][i]
    faded = [c for f, c in zip(bars["y"], bars["colors"]) if not significant[f]]
    assert faded and all(not c.endswith(",1)") for c in faded)
    key = driver.find_element("id", ids.IMPACT_KEY).text
    assert "helps" in key and "hurts" in key and "unclear" in key and "interval" in key
    assert f"too few images (n < {settings.min_group_size}" in key
    assert _severe(driver) == []


def test_weighting_toggle_switches_to_impression_weighted_numbers(driver, live_demo):
    from dashboard.page.views import DEFAULT_FILTERS, ViewState

    url, store, settings = live_demo
    _open(driver, url)
    state = ViewState(*NORTHWIND)
    _wait_for(lambda: _view_matches(driver, store, state, settings.min_group_size), message="mean weighting")
    driver.find_element("id", ids.WEIGHTING_IMPRESSIONS_LABEL).click()
    weighted = ViewState(*NORTHWIND, filters=DEFAULT_FILTERS.replace(weighting="impressions"))
    _wait_for(lambda: _view_matches(driver, store, weighted, settings.min_group_size), message="impression weighting")
    assert "weighting=impressions" in driver.current_url

    _pick(driver, ids.BUSINESS, REFERENCE_2018[0])
    fallback = ViewState(*REFERENCE_2018)
    _wait_for(lambda: _view_matches(driver, store, fallback, settings.min_group_size), message="the reference data")
    controls = driver.execute_script(CONTROLS_JS)
    assert controls["weighting"] == "mean" and controls["impressions_disabled"] is True
    assert "without clicks and impressions" in driver.find_element("id", ids.WEIGHTING_HELP).text
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).move_to_element(driver.find_element("id", ids.WEIGHTING_IMPRESSIONS_LABEL)).perform()
    tip = _wait_for(lambda: driver.find_elements("css selector", ".tooltip.show"), timeout=5, message="the tooltip")
    assert "came without clicks and impressions" in tip[0].text
    _wait_for(
        lambda: "business=Reference%202018" in driver.current_url and "weighting=mean" in driver.current_url,
        message="the URL to follow",
    )
    assert _severe(driver) == []


def test_selecting_a_table_row_highlights_the_feature_in_the_charts(driver, live_demo):
    url, store, settings = live_demo
    _open(driver, url)
    rows = _wait_for(lambda: driver.execute_script(GRID_ROWS_JS), message="the table")
    summary = views.evidence_order(feature_summary(store.dataset(*NORTHWIND), confidence=0.5, min_pct=2, max_pct=100))
    assert [r["feature"] for r in rows] == list(summary["feature"])  # every feature, not only those charted

    grid = driver.find_element("id", ids.TABLE)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
    driver.find_element("id", ids.TABLE_SEARCH).send_keys("smile")
    matching = list(summary.loc[summary["feature"].str.contains("smile"), "feature"])
    _wait_for(lambda: [r["feature"] for r in driver.execute_script(GRID_ROWS_JS)] == matching, message="the filter")
    _click(driver, driver.find_element("css selector", "#summary-table .ag-row[row-id='smile'] .ag-cell"))
    code = _chart(driver, ids.IMPACT)["y"].index("smile")
    _wait_for(
        # A single opacity (not a list) means no bar is highlighted yet.
        lambda: (lambda o: isinstance(o, list) and [i for i, v in enumerate(o) if v == 1] == [code])(
            _chart(driver, ids.IMPACT)["opacity"]
        ),
        message="the highlighted bar",
    )
    shapes = driver.execute_script("return document.querySelector('#scatter-chart .js-plotly-plot').layout.shapes")
    assert len(shapes) == 1 and shapes[0]["x0"] < code < shapes[0]["x1"]
    assert "smile is highlighted in the charts" in " ".join(driver.find_element("id", ids.TABLE_SELECTION).text.split())
    _click(driver, driver.find_element("id", ids.TABLE_CLEAR))
    _wait_for(lambda: _chart(driver, ids.IMPACT)["opacity"] == 1, message="the highlight cleared")
    assert driver.find_element("id", ids.TABLE_SELECTION).text == ""
    assert driver.execute_script(EXTERNAL_REQUESTS_JS) == []  # AG Grid's code and theme are served locally
    assert _severe(driver) == []


def test_summary_and_points_download_as_the_page_filters_them(live_demo, tmp_path):
    import io

    from dashboard.page.views import DEFAULT_FILTERS, ViewState

    url, store, settings = live_demo
    state = ViewState(
        *NORTHWIND,
        "current",
        filters=DEFAULT_FILTERS.replace(confidence=0.3, min_pct=5, max_pct=60, weighting="impressions"),
        shown=10,
    )
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser = browser_or_skip(download_dir=folder)
    try:
        _open(browser, _view_url(url, state))
        _wait_for(lambda: _view_matches(browser, store, state, settings.min_group_size), message="the view")
        dataset = store.dataset(*NORTHWIND)
        expected = feature_summary(
            dataset, confidence=0.3, min_pct=5, max_pct=60, weighting="impressions", min_n=settings.min_group_size
        )
        build = store.resolve_build(*NORTHWIND)

        _click(browser, browser.find_element("id", ids.DOWNLOAD_SUMMARY_BUTTON))
        saved = wait_for_download(folder)
        assert saved.name == f"northwind-outfitters_vision_build-{build}_conf-0.30_prev-5-60_impressions_summary.csv"
        back = pd.read_csv(io.StringIO(saved.read_text(encoding="utf-8")), dtype={"feature": object})
        pd.testing.assert_frame_equal(back, expected, check_exact=True, check_dtype=False)
        assert len(back) > 2 * state.shown  # every feature passing the filters, not only those charted

        saved.unlink()
        _click(browser, browser.find_element("id", ids.DOWNLOAD_POINTS_BUTTON))
        points_file = wait_for_download(folder)
        assert points_file.name.endswith("_conf-0.30_prev-5-60_impressions_points.csv")
        points = pd.read_csv(points_file, dtype={"image": object, "feature": object})
        expected_points = scatter_points(dataset, confidence=0.3, features=expected["feature"])
        assert list(points.columns) == ["image", "feature", "confidence", "ctr"]
        assert list(points["image"]) == list(expected_points["image"])
        assert list(points["feature"]) == list(expected_points["feature"].astype(str))
        assert np.array_equal(points["ctr"], expected_points["ctr"])
        assert _severe(browser) == []
    finally:
        browser.quit()


def test_a_shared_url_reopens_the_same_view_in_a_fresh_browser(driver, live_demo):
    from selenium.webdriver.support.ui import Select

    from dashboard.page.views import DEFAULT_FILTERS, ViewState, parse_view, query_from_url

    url, store, settings = live_demo
    _open(driver, url)
    driver.execute_script("window.__sameDocument = true;")
    _drag_thumb(driver, ids.CONFIDENCE, -60)
    _drag_thumb(driver, ids.SPARSITY, 30, thumb=1)
    Select(driver.find_element("id", ids.SHOWN)).select_by_value("10")
    driver.find_element("id", ids.WEIGHTING_IMPRESSIONS_LABEL).click()
    controls = driver.execute_script(CONTROLS_JS)
    state = ViewState(
        *NORTHWIND,
        "current",
        filters=DEFAULT_FILTERS.replace(
            confidence=controls["confidence"],
            min_pct=int(controls["sparsity"][0]),
            max_pct=100,
            weighting="impressions",
        ),
        shown=10,
    )
    assert state.filters.confidence < 0.5 and state.filters.min_pct > 2
    _wait_for(lambda: _view_matches(driver, store, state, settings.min_group_size), message="the changed view")
    _wait_for(lambda: parse_view(query_from_url(driver.current_url)) == state, message="the URL to hold the view")
    assert driver.execute_script("return window.__sameDocument === true")  # written without a reload
    shared = driver.current_url

    other = browser_or_skip()
    try:
        _open(other, shared)
        _wait_for(lambda: _controls_show(other, state), message="the controls at the shared view")
        _wait_for(lambda: _view_matches(other, store, state, settings.min_group_size), message="the shared view")
        assert other.current_url == shared  # opening a link does not rewrite it
        assert _severe(other) == []
    finally:
        other.quit()

    # Back goes to the previous view and shows it (the page reloads at that URL).
    driver.back()
    _wait_for(lambda: parse_view(query_from_url(driver.current_url)) != state, message="the previous URL")
    previous = parse_view(query_from_url(driver.current_url))
    _wait_for(lambda: _controls_show(driver, previous), message="the controls at the previous view")
    _wait_for(lambda: _view_matches(driver, store, previous, settings.min_group_size), message="the previous view")
    assert _severe(driver) == []


# Per chart: whether Plotly has drawn it, and how many axis ticks and traces it shows.
CHART_MARKS_JS = """
const out = {};
for (const id of arguments[0]) {
  const root = document.getElementById(id);
  out[id] = {svg: Boolean(root && root.querySelector('.main-svg')),
             ticks: root ? root.querySelectorAll('.xtick text, .ytick text').length : 0,
             traces: root ? root.querySelectorAll('.trace, canvas.gl-canvas').length : 0};
}
return out;
"""


def test_charts_are_blank_until_the_first_view_arrives(driver, live_demo):
    """While the view's answer is on its way the charts show nothing: no axes ticked -1 to 6."""
    _, store, settings = live_demo
    app = create_app(settings, store)
    release, inner = threading.Event(), app.server.wsgi_app

    def held(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and "_dash-update-component" in environ["PATH_INFO"]:
            release.wait(30)
        return inner(environ, start_response)

    app.server.wsgi_app = held
    charts = [*ids.CHARTS, ids.TREND]
    with serve(app) as url:
        try:
            driver.get(url)
            waiting = _wait_for(
                lambda: (lambda c: c if all(m["svg"] for m in c.values()) else None)(
                    driver.execute_script(CHART_MARKS_JS, charts)
                ),
                message="the charts drawn blank",
            )
            time.sleep(0.5)
            waiting = driver.execute_script(CHART_MARKS_JS, charts)
            assert all(m["ticks"] == 0 and m["traces"] == 0 for m in waiting.values()), waiting
        finally:
            release.set()
        wait_for_charts(driver)
        shown = driver.execute_script(CHART_MARKS_JS, list(ids.CHARTS))
        assert all(m["ticks"] > 0 for m in shown.values()), shown
    assert _severe(driver) == []


@pytest.mark.parametrize(
    "query",
    [
        "?business=Nobody&source=vision&confidence=abc&min_pct=80&max_pct=10&weighting=zzz&shown=7&build_id=-1",
        "?business=Reference%202018&source=nope&confidence=5&weighting=impressions&build_id=999",
        "?business=%3Cscript%3Ealert(1)%3C%2Fscript%3E&confidence=NaN&shown=all&min_pct=&max_pct=%",
    ],
)
def test_a_url_with_invalid_values_falls_back_to_defaults(driver, live_demo, query):
    from dashboard.page.selection import resolve_view
    from dashboard.page.views import parse_view, query_from_url

    url, store, settings = live_demo
    _open(driver, url + query)
    expected, *_ = resolve_view(parse_view(query_from_url(url + query)), store)
    assert expected.business in (NORTHWIND[0], REFERENCE_2018[0]) and expected.filters.weighting == "mean"
    _wait_for(lambda: _controls_show(driver, expected), message="the controls at their fallbacks")
    _wait_for(lambda: _view_matches(driver, store, expected, settings.min_group_size), message="the fallback view")
    # The address bar names the dataset shown, not the one asked for (a copied link shows the same).
    _wait_for(
        lambda: parse_qs(urlsplit(driver.current_url).query).get("business") == [expected.business],
        message="the address bar naming the business shown",
    )
    assert parse_qs(urlsplit(driver.current_url).query).get("source") == [expected.source]
    assert _severe(driver) == []


# -- names are shown as text -------------------------------------------------------------------

LINK_NAME = '<a href="https://evil.example/">x</a>'
MARKUP = ("<b>markup</b> & co", "vision")

SVG_LINKS_JS = """
const found = {};
for (const id of arguments[0]) {
  const root = document.getElementById(id);
  found[id] = {
    anchors: root.querySelectorAll('svg a').length,
    ticks: Array.from(root.querySelectorAll('.xtick text, .ytick text')).map(t => t.textContent),
  };
}
found.evil = document.querySelectorAll('[href*="evil.example"], [*|href*="evil.example"]').length;
return found;
"""


@pytest.fixture(scope="module")
def live_markup(tmp_path_factory):
    """An app whose dataset names its features and images like HTML."""
    path = tmp_path_factory.mktemp("markup") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    rng = np.random.default_rng(42)
    names = [LINK_NAME, "<b>bold</b>", "a&amp;b", "plain"]
    frame = pd.DataFrame(np.where(rng.random((40, 4)) < 0.5, 0.9, 0.0), columns=names)
    frame.insert(0, "ctr", 0.01 + rng.random(40) * 0.01)
    frame.insert(0, "image_name", [f"<b>img</b>_{i}" for i in range(40)])
    load_frame(store, frame, *MARKUP)
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url
    store.close()


def test_feature_named_like_a_link_shows_its_text_and_no_link(driver, live_markup):
    _open(driver, live_markup + "?" + urlencode({"business": MARKUP[0], "source": MARKUP[1], "min_pct": 0}))
    found = driver.execute_script(SVG_LINKS_JS, list(ids.CHARTS))
    assert found["evil"] == 0
    for chart in ids.CHARTS:
        assert found[chart]["anchors"] == 0, chart
    for chart in (ids.SCATTER, ids.IMPACT):
        assert LINK_NAME in found[chart]["ticks"], (chart, found[chart]["ticks"])
        assert {"<b>bold</b>", "a&amp;b"} <= set(found[chart]["ticks"])
    # The hovered image's panel shows its name and its features' names as text too.
    driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'center', behavior: 'instant'})", ids.SCATTER
    )
    time.sleep(0.3)
    cards = []
    for index in range(0, 40, 4):
        pixel = driver.execute_script(POINT_PIXEL_JS, index)
        _move_mouse(driver, pixel["x"], pixel["y"])
        card = _wait_for(lambda: (lambda c: c if c["name"] else None)(driver.execute_script(HOVER_CARD_JS, HOVER_HINT)))
        cards.append(card)
        if LINK_NAME in card["features"]:
            break
    assert LINK_NAME in cards[-1]["features"], cards
    for card in cards:
        assert card["name"].startswith("<b>img</b>_") and card["markup"] == 0, card
        assert set(card["features"]) <= {LINK_NAME, "<b>bold</b>", "a&amp;b", "plain"}, card
    assert driver.execute_script(SVG_LINKS_JS, list(ids.CHARTS))["evil"] == 0
    assert _severe(driver) == []


def test_a_slider_drag_replaces_the_history_entry_and_back_leaves_the_view(driver, live_demo):
    from selenium.webdriver.support.ui import Select

    from dashboard.page.views import parse_view, query_from_url

    url, store, settings = live_demo
    driver.get("data:text/html,<title>before</title><p>the page the user came from</p>")
    _open(driver, url + "?shown=10")
    time.sleep(1)  # the page writes no URL, and adds no entry, until a control changes
    assert driver.current_url == url + "?shown=10"
    length = driver.execute_script("return window.history.length")

    _drag_thumb(driver, ids.CONFIDENCE, -60)
    first = _wait_for(
        lambda: (lambda u: u if "confidence=" in u and "confidence=0.50" not in u else None)(driver.current_url),
        message="the URL after a drag",
    )
    _drag_thumb(driver, ids.SPARSITY, 30, thumb=1)
    dragged = _wait_for(
        lambda: (lambda u: u if "min_pct=2&" not in u and u != first else None)(driver.current_url),
        message="the URL after a second drag",
    )
    assert driver.execute_script("return window.history.length") == length  # replaced, not added

    Select(driver.find_element("id", ids.SHOWN)).select_by_value("25")  # not a slider: a new entry
    _wait_for(lambda: "shown=25" in driver.current_url, message="the URL after a select")
    assert driver.execute_script("return window.history.length") == length + 1

    driver.back()  # to the dragged view, shown again at its URL
    _wait_for(lambda: driver.current_url == dragged, message="the dragged view's URL")
    wait_for_charts(driver)
    _wait_for(lambda: _controls_show(driver, parse_view(query_from_url(dragged))), message="the dragged view")
    driver.back()  # out of the page, not through each drag
    _wait_for(lambda: driver.current_url.startswith("data:"), message="Back to leave the page")
    assert driver.title == "before"


def test_the_header_names_the_build_shown_when_the_linked_one_is_gone(driver, tmp_path, reference_frame):
    from dashboard.page.views import DEFAULT_CONFIDENCE, DEFAULT_SPARSITY

    store = FeatureStore(f"sqlite:///{tmp_path / 'features.db'}", keep_builds=2)
    for k in range(3):  # build 1 is pruned when build 3 lands
        store.add_build(
            *REFERENCE, FeatureBatch.from_wide(reference_frame.assign(text=reference_frame["text"] * k / 2))
        )
    store.replace_ctr(*REFERENCE, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    builds = list(store.builds(*REFERENCE)["build_id"])
    gone = min(builds) - 1
    settings = Settings.from_env({}, database_url=store.url, demo_data=False, poll_seconds=0.5)
    with serve(create_app(settings, store)) as url:
        _open(driver, f"{url}?business=acme&source=vision&build_id={gone}")
        _wait_for(lambda: f"Build #{builds[0]} ·" in driver.find_element("id", ids.STATUS).text, message="the header")
        assert _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY)
        _wait_for(
            lambda: f"Build #{gone} is no longer stored" in driver.find_element("id", ids.NOTICE).text,
            message="the notice",
        )
        assert "Showing the current build." in driver.find_element("id", ids.NOTICE).text
        # The address bar no longer pins the gone build.
        _wait_for(lambda: "build_id" not in driver.current_url, message="the URL without build_id")
        assert "business=acme" in driver.current_url and "source=vision" in driver.current_url

        # The older kept build, pinned, then pruned by a new build while the page is open.
        _open(driver, f"{url}?business=acme&source=vision&build_id={builds[1]}")
        _wait_for(lambda: f"Build #{builds[1]} ·" in driver.find_element("id", ids.STATUS).text, message="pinned")
        store.add_build(*REFERENCE, FeatureBatch.from_wide(reference_frame))
        newest = store.resolve_build(*REFERENCE)
        _wait_for(lambda: f"Build #{newest} ·" in driver.find_element("id", ids.STATUS).text, message="the new build")
        _wait_for(
            lambda: _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY),
            message="the current build's charts",
        )
        assert _severe(driver) == []
    store.close()
