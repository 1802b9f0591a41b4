"""The page in headless Chromium: charts drawn from data, sliders, hover linking, live updates.

Skipped when Chromium or chromedriver is missing, unless CI is set: then they fail instead.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest

from dashboard import ids
from dashboard.factory import create_app
from dashboard.settings import Settings
from data.analysis import feature_summary, scatter_points
from data.batches import FeatureBatch, ctr_frame
from data.store import FeatureStore
from tests.browser import chrome_driver, missing_browser, serve, wait_for_charts

REFERENCE = ("acme", "vision")
LARGE = ("globex", "vision")

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
const m = t.marker || {};
return {type: t.type, x: list(t.x), y: list(t.y), text: list(t.text),
        opacity: Array.isArray(m.opacity) || ArrayBuffer.isView(m.opacity) ? list(m.opacity) : m.opacity,
        dash: t.line && t.line.dash, color: t.line && t.line.color,
        annotations: annotations};
"""

POINT_PIXEL_JS = """
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
const fl = gd._fullLayout, t = gd._fullData[0], i = arguments[0];
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
return {x: box.left + fl.xaxis.l2p(t.x[i]), y: box.top + fl.yaxis.l2p(t.y[i]), type: t.type};
"""


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium for the module (skipped, or failed under CI, without a browser)."""
    reason = missing_browser()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run under CI, but {reason}")
        pytest.skip(reason)
    browser = chrome_driver()
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": REQUEST_COUNTER_JS})
    yield browser
    browser.quit()


def _large_frame(n_images=700, n_features=30, seed=42) -> pd.DataFrame:
    """Enough points for WebGL: about half the features present per image, confidences uniform."""
    rng = np.random.default_rng(seed)
    present = rng.random((n_images, n_features)) < 0.5
    conf = np.where(present, rng.random((n_images, n_features)).round(3), 0.0)
    frame = pd.DataFrame(conf, columns=[f"label_{j:02d}" for j in range(n_features)])
    frame.insert(0, "ctr", 0.01 * np.exp(rng.normal(0, 0.4, n_images) + conf[:, :3].sum(axis=1) * 0.2))
    frame.insert(0, "image_name", [f"creative_{i:04d}.jpg" for i in range(n_images)])
    return frame


def _load(store, frame, business, source):
    store.add_build(business, source, FeatureBatch.from_wide(frame))
    store.replace_ctr(business, source, ctr_frame(frame["image_name"], frame["ctr"]))


@pytest.fixture(scope="module")
def live(tmp_path_factory, reference_frame):
    """The app from the factory on a loopback port; the reference data is the default dataset."""
    path = tmp_path_factory.mktemp("live") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    _load(store, _large_frame(), *LARGE)
    _load(store, reference_frame, *REFERENCE)  # most recently updated: shown first
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


@pytest.fixture(scope="module")
def live_large(tmp_path_factory):
    """An app whose only dataset has a few thousand scatter points (WebGL)."""
    path = tmp_path_factory.mktemp("large") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    _load(store, _large_frame(), *LARGE)
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
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def _api_summary(url, business, source, confidence, low, high):
    """/api/summary's features for these settings, or None while that route is not there."""
    query = urlencode({"business": business, "source": source, "confidence": confidence, "min_pct": low, "max_pct": high})
    try:
        with urllib.request.urlopen(f"{url}api/summary?{query}", timeout=10) as response:
            return json.load(response)["features"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and "unknown" not in exc.read().decode(errors="replace"):
            return None
        raise


def _charts_match(driver, store, dataset_key, confidence, low, high):
    """Whether all four charts show feature_summary's numbers for these settings."""
    dataset = store.dataset(*dataset_key)
    summary = feature_summary(dataset, confidence, low, high)
    features = list(summary["feature"])
    with_bar, impact, without = (_chart(driver, c) for c in ids.BAR_CHARTS)
    scatter = _chart(driver, ids.SCATTER)
    if not all((with_bar, impact, without, scatter)) or impact["y"] != features or scatter["x"] is None:
        return False
    points = scatter_points(dataset, confidence, features=features)
    return (
        np.allclose(with_bar["x"], summary["avg_ctr_with"] * 100, rtol=1e-12)
        and np.allclose(impact["x"], summary["impact"] * 100, rtol=1e-12, equal_nan=True)
        and np.allclose(without["x"], summary["avg_ctr_without"] * 100, rtol=1e-12, equal_nan=True)
        and with_bar["y"] == features == without["y"]
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


def _isolated_point(dataset, confidence, low, high, shown=25):
    """A scatter point whose image has 2+ charted features and no other point within reach."""
    from dashboard.callbacks import select_shown

    summary = select_shown(feature_summary(dataset, confidence, low, high), shown)
    points = scatter_points(dataset, confidence, features=summary["feature"])
    codes = points["feature"].cat.codes.to_numpy()
    y = points["ctr"].to_numpy()
    per_image = points.groupby("image", sort=False)["feature"].transform("size").to_numpy()
    spread = np.ptp(y)
    for i in np.argsort(-y):
        same_column = (codes == codes[i]) & (np.arange(len(y)) != i)
        if per_image[i] >= 2 and not (np.abs(y[same_column] - y[i]) < spread * 0.02).any():
            image = points["image"].iloc[i]
            expected = sorted(codes[(points["image"] == image).to_numpy()].tolist())
            return int(i), image, expected, float(y[i] * 100)
    raise AssertionError("no isolated point with a multi-feature image")


# -- tests ---------------------------------------------------------------------------------------


def test_page_draws_four_charts_from_the_data(driver, live):
    url, store = live
    _open(driver, url)
    from dashboard.layout import DEFAULT_CONFIDENCE, DEFAULT_SPARSITY

    assert _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY)
    assert _chart(driver, ids.SCATTER)["type"] == "scatter"  # few points: SVG
    assert "acme / vision" in driver.find_element("id", ids.STATUS).text
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
    if api is not None:
        impact = _chart(driver, ids.IMPACT)
        assert impact["y"] == [row["feature"] for row in api]
        assert np.allclose(impact["x"], [row["impact"] * 100 for row in api], rtol=1e-12)
    assert _severe(driver) == []


def test_filters_that_leave_no_feature_explain_themselves(driver, live):
    url, _store = live
    _open(driver, url)
    _drag_thumb(driver, ids.CONFIDENCE, 400)  # to the far right: confidence 1
    _wait_for(lambda: "No feature is present" in " ".join(_chart(driver, ids.SCATTER)["annotations"] or [""]),
              message="empty scatter")
    assert "No feature left" in driver.find_element("id", ids.NOTICE).text
    assert _severe(driver) == []


def _hover_links_one_image(driver, store, dataset_key, expect_type):
    from dashboard.layout import DEFAULT_CONFIDENCE, DEFAULT_SPARSITY

    index, image, expected_codes, ctr_pct = _isolated_point(store.dataset(*dataset_key), DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY)
    header = driver.find_element("css selector", "header")
    _move_mouse(driver, header.rect["x"] + 20, header.rect["y"] + 10)
    time.sleep(0.3)
    before = driver.execute_script("return window.__dashRequests.length")
    driver.get_log("performance")

    pixel = driver.execute_script(POINT_PIXEL_JS, index)
    assert pixel["type"] == expect_type
    _move_mouse(driver, pixel["x"] - 12, pixel["y"] - 12)
    _move_mouse(driver, pixel["x"], pixel["y"])
    link = _wait_for(lambda: (lambda t: t if t and t["x"] and len(t["x"]) >= 2 else None)(_chart(driver, ids.SCATTER, 1)),
                     timeout=10, message="link trace")
    assert link["dash"] == "dot" and link["color"].lower() in ("#e0162b", "red")
    assert sorted(int(v) for v in link["x"]) == expected_codes
    assert np.allclose(link["y"], ctr_pct)
    assert image in driver.find_element("id", ids.HOVER_PANEL).text
    impact = _chart(driver, ids.IMPACT)
    assert [i for i, o in enumerate(impact["opacity"]) if o == 1] == expected_codes

    _move_mouse(driver, header.rect["x"] + 20, header.rect["y"] + 10)  # leave the point
    _wait_for(lambda: not _chart(driver, ids.SCATTER, 1)["x"], timeout=10, message="link trace removed")
    time.sleep(0.5)

    assert driver.execute_script("return window.__dashRequests.length") == before
    requests = [
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in driver.get_log("performance")
        if '"Network.requestWillBeSent"' in e["message"]
    ]
    assert not [u for u in requests if "_dash-update-component" in u]


def test_hover_links_an_images_points_in_the_browser(driver, live):
    url, store = live
    _open(driver, url)
    _hover_links_one_image(driver, store, REFERENCE, "scatter")
    assert _severe(driver) == []


def test_hover_links_an_images_points_on_webgl(driver, live_large):
    url, store = live_large
    _open(driver, url)
    _hover_links_one_image(driver, store, LARGE, "scattergl")
    assert _severe(driver) == []


def test_new_data_shows_up_without_a_reload(driver, tmp_path, reference_frame):
    store = FeatureStore(f"sqlite:///{tmp_path / 'features.db'}")
    _load(store, reference_frame, *REFERENCE)
    settings = Settings.from_env({}, database_url=store.url, demo_data=False, poll_seconds=0.5)
    with serve(create_app(settings, store)) as url:
        _open(driver, url)
        from dashboard.layout import DEFAULT_CONFIDENCE, DEFAULT_SPARSITY

        assert _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY)
        doubled = reference_frame.assign(ctr=reference_frame["ctr"] * np.linspace(0.5, 2.0, len(reference_frame)))
        store.replace_ctr(*REFERENCE, ctr_frame(doubled["image_name"], doubled["ctr"]))
        _wait_for(lambda: _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY),
                  message="redraw after a CTR upload")
        changed = reference_frame.assign(text=0.0)
        store.add_build(*REFERENCE, FeatureBatch.from_wide(changed))
        build_id = store.resolve_build(*REFERENCE)
        _wait_for(lambda: f"Build #{build_id}" in driver.find_element("id", ids.STATUS).text,
                  message="the new build as the current one")
        _wait_for(lambda: _charts_match(driver, store, REFERENCE, DEFAULT_CONFIDENCE, *DEFAULT_SPARSITY),
                  message="redraw after a new build")

        _load(store, reference_frame.head(100), "initech", "vision")
        time.sleep(1.5)  # a few polls
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
