"""A scatter of many features in headless Chromium: a window of them at a time, and moving along."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest

from dashboard import figures
from dashboard.factory import create_app
from dashboard.figures.scatter import DRAWN_MARGIN
from dashboard.page import compute, ids, views
from dashboard.page.hover import from_typed_array, unpacked_names
from data.batches import FeatureBatch, ctr_frame
from data.settings import Settings
from data.store import FeatureStore
from tests.browser import decode_png, serve, wait_for, wait_for_charts

N_FEATURES = 130

# The x axis's range, the tick labels Plotly laid out, and the page box of the plot area and
# of the page slider's rail.
AXIS_JS = """
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
const chart = document.getElementById('scatter-chart').getBoundingClientRect();
const rail = gd.querySelector('.slider-rail-touch-rect');
const r = rail ? rail.getBoundingClientRect() : null;
return {range: Array.from(gd._fullLayout.xaxis.range),
        ticks: Array.from(gd.querySelectorAll('.xtick text')).map(t => t.textContent),
        area: [box.left, box.top, box.width, box.height],
        offset: [box.left - chart.left, box.top - chart.top],
        rail: r && [r.left, r.top, r.width, r.height],
        points: gd.layout.meta.points, drawn: gd._fullData[0].x.length, k: gd.layout.xaxis.tickvals.length};
"""


@pytest.fixture(scope="module")
def wide_app(tmp_path_factory):
    """An app whose dataset has 130 features, each in about a third of 400 images: its URL and store."""
    rng = np.random.default_rng(42)
    n_images = 400
    conf = np.where(rng.random((n_images, N_FEATURES)) < 0.35, rng.random((n_images, N_FEATURES)).round(3), 0.0)
    frame = pd.DataFrame(conf, columns=[f"feat_{j:03d}" for j in range(N_FEATURES)])
    frame.insert(0, "ctr", 0.01 * np.exp(rng.normal(0, 0.4, n_images)))
    frame.insert(0, "image_name", [f"creative_{i:04d}.jpg" for i in range(n_images)])
    path = tmp_path_factory.mktemp("wide") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    store.add_build("wide", "vision", FeatureBatch.from_wide(frame))
    store.replace_ctr("wide", "vision", ctr_frame(frame["image_name"], frame["ctr"]))
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


@pytest.fixture(scope="module")
def wide(wide_app):
    return wide_app[0]


def _mouse(driver, kind, x, y, buttons=0):
    event = {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" else "none", "buttons": buttons}
    if kind != "mouseMoved":
        event["clickCount"] = 1
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", event)


def _drag(driver, x0, y0, x1, y1, steps=8):
    _mouse(driver, "mouseMoved", x0, y0)
    _mouse(driver, "mousePressed", x0, y0, 1)
    for k in range(1, steps + 1):
        _mouse(driver, "mouseMoved", x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps, 1)
        time.sleep(0.03)
    _mouse(driver, "mouseReleased", x1, y1)


def _wait_for_range(driver, changed_from, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        axis = driver.execute_script(AXIS_JS)
        if abs(axis["range"][0] - changed_from[0]) > 1:
            time.sleep(0.5)  # let the WebGL points repaint at the new range
            return driver.execute_script(AXIS_JS)
        time.sleep(0.1)
    raise AssertionError(f"the x range stayed at {changed_from}")


def _blue_pixels(driver, axis) -> int:
    """Marker-blue pixels inside the scatter's plot area, counted in a screenshot of the chart."""
    shot = decode_png(driver.find_element("id", ids.SCATTER).screenshot_as_png)[..., :3].astype(np.int16)
    x, y = (int(round(v)) for v in axis["offset"])
    w, h = (int(round(v)) for v in axis["area"][2:])
    area = shot[y : y + h, x : x + w]
    return int(((area[..., 2] - area[..., 0]) > 50).sum())


def _visible_features(axis) -> set[int]:
    return {int(t.split("_")[1]) for t in axis["ticks"] if t.startswith("feat_")}


def _select_table_row(driver, name: str) -> None:
    """Filter the summary table to ``name`` and click its row, as an analyst would."""
    grid = driver.find_element("id", ids.TABLE)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
    driver.find_element("id", ids.TABLE_SEARCH).send_keys(name)
    row = f"#summary-table .ag-row[row-id='{name}'] .ag-cell"
    deadline = time.monotonic() + 20
    while not driver.find_elements("css selector", row) and time.monotonic() < deadline:
        time.sleep(0.2)
    cell = driver.find_element("css selector", row)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", cell)
    time.sleep(0.3)
    cell.click()


def test_wide_scatter_shows_a_window_and_moving_it_shows_other_features_painted(driver, wide):
    """50 of 130 features are labelled; a pan and the page slider bring others, points painted."""
    driver.set_window_size(1600, 1400)
    driver.get(wide + "?" + urlencode({"business": "wide", "source": "vision", "shown": "all"}))
    wait_for_charts(driver, timeout=60)
    _scroll_to(driver, ids.SCATTER)  # below the verdict and the bars
    time.sleep(1.0)
    axis = driver.execute_script(AXIS_JS)
    assert axis["drawn"] == axis["points"] > 5_000  # every point is drawn, not only the window's
    assert axis["range"] == pytest.approx([-0.6, figures.SCATTER_WINDOW - 0.4])
    first = _visible_features(axis)
    assert 40 <= len(axis["ticks"]) <= figures.SCATTER_WINDOW + 2  # labels laid out only in the window
    painted = _blue_pixels(driver, axis)
    assert painted > 5_000

    # Drag the plot to the left: the window moves on to later features.
    left, top, width, height = axis["area"]
    _drag(driver, left + width * 0.8, top + height * 0.5, left + width * 0.2, top + height * 0.5)
    panned = _wait_for_range(driver, axis["range"])
    assert panned["range"][0] > axis["range"][0] + 10
    assert _visible_features(panned) - first, "the pan showed no other feature"
    assert _blue_pixels(driver, panned) > 0.5 * painted

    # The page slider's last step: the last 50 features, which the first window did not show.
    rl, rt, rw, rh = panned["rail"]
    _mouse(driver, "mouseMoved", rl + rw - 2, rt + rh / 2)
    _mouse(driver, "mousePressed", rl + rw - 2, rt + rh / 2, 1)
    _mouse(driver, "mouseReleased", rl + rw - 2, rt + rh / 2)
    last = _wait_for_range(driver, panned["range"])
    shown = _visible_features(last)
    k = last["k"]
    assert last["range"] == pytest.approx([k - figures.SCATTER_WINDOW - 0.6, k - 0.4])
    assert max(shown) >= 100 and not shown & first
    assert _blue_pixels(driver, last) > 0.5 * painted
    # Selecting a table row of a feature outside the window moves the window to it.
    name = driver.execute_script(
        "return document.querySelector('#scatter-chart .js-plotly-plot').layout.xaxis.ticktext[0]"
    )
    _select_table_row(driver, name)
    moved = _wait_for_range(driver, last["range"])
    assert moved["range"][0] < 0 < moved["range"][1] and name in moved["ticks"]
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, [e["message"][:300] for e in severe]


# Per chart: the feature axis's range, the tick labels Plotly laid out on it, how many bars (or
# points) the first trace holds, and the page box of the plot area and of the page slider's rail.
WINDOWS_JS = """
const out = {};
for (const [id, axis] of [['scatter-chart', 'x'], ['avg-with-chart', 'y'], ['impact-chart', 'y']]) {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!gd || !gd._fullLayout) { return null; }
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const rail = gd.querySelector('.slider-rail-touch-rect');
  const r = rail ? rail.getBoundingClientRect() : null;
  const range = Array.from(gd._fullLayout[axis + 'axis'].range);
  out[id] = {range: range, centre: (range[0] + range[1]) / 2,
             ticks: Array.from(gd.querySelectorAll('.' + axis + 'tick text')).map(t => t.textContent),
             bars: gd.querySelectorAll('.barlayer .trace:first-child .point').length,
             area: [box.left, box.top, box.width, box.height], rail: r && [r.left, r.top, r.width, r.height],
             slider: gd._fullLayout.sliders && gd._fullLayout.sliders.length ? gd._fullLayout.sliders[0].active : null,
             height: gd._fullLayout.height, top: box.top};
}
return out;
"""


def _windows(driver):
    return driver.execute_script(WINDOWS_JS)


def _wait_for_windows(driver, centre, timeout=20.0):
    """The four charts' windows once all of them are centred on ``centre`` (and labelled)."""
    deadline = time.monotonic() + timeout
    windows = None
    while time.monotonic() < deadline:
        windows = _windows(driver)
        if windows and all(abs(w["centre"] - centre) < 0.05 for w in windows.values()):
            time.sleep(0.3)  # let the tick labels settle
            return _windows(driver)
        time.sleep(0.1)
    raise AssertionError(
        f"the windows did not all move to {centre}: {windows and {k: w['centre'] for k, w in windows.items()}}"
    )


def _shown(windows, chart) -> set[int]:
    return {int(t.split("_")[1]) for t in windows[chart]["ticks"] if t.startswith("feat_")}


def _scroll_to(driver, element_id):
    """Scroll the element to the top of the window (mouse events reach only what is on screen)."""
    driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'start', behavior: 'instant'})", element_id
    )
    time.sleep(0.3)


def _click_last_step(driver, rail):
    left, top, width, height = rail
    _mouse(driver, "mouseMoved", left + width - 2, top + height / 2)
    _mouse(driver, "mousePressed", left + width - 2, top + height / 2, 1)
    _mouse(driver, "mouseReleased", left + width - 2, top + height / 2)


def test_wide_bar_charts_show_the_scatters_window_and_follow_it(driver, wide):
    """The bars label one window of features, the scatter's; paging or panning any chart moves all four."""
    driver.set_window_size(1600, 1400)
    driver.get(wide + "?" + urlencode({"business": "wide", "source": "vision", "shown": "all"}))
    wait_for_charts(driver, timeout=60)
    time.sleep(1.0)
    w = figures.FEATURE_WINDOW
    first = _windows(driver)
    bars = list(ids.BAR_CHARTS)
    k = first[ids.IMPACT]["bars"]
    assert k > 2 * w
    for chart in bars:
        assert first[chart]["bars"] == k  # every bar is drawn, not only the window's
        assert first[chart]["range"] == pytest.approx([w - 0.5, -0.5])
    # Only the first chart (impact) labels its rows: one window of labels, the scatter's features.
    labelled = first[ids.IMPACT]["ticks"]
    assert w - 2 <= len(labelled) <= w + 1
    assert _shown(first, ids.IMPACT) == _shown(first, ids.SCATTER)
    # Rows stay level across the two charts, and only the first draws a page slider.
    assert len({(first[c]["top"], first[c]["area"][3], first[c]["height"]) for c in bars}) == 1
    assert first[ids.IMPACT]["rail"] and not first[ids.AVG_WITH]["rail"]

    # Paging the scatter to its last page moves the bars to the same features.
    _scroll_to(driver, ids.SCATTER)
    first = _windows(driver)
    _click_last_step(driver, first[ids.SCATTER]["rail"])
    last = _wait_for_windows(driver, k - w / 2 - 0.5)
    assert max(_shown(last, ids.IMPACT)) == k - 1 and _shown(last, ids.IMPACT) == _shown(last, ids.SCATTER)
    assert last[ids.IMPACT]["slider"] == last[ids.SCATTER]["slider"] == len(range(0, k, w)) - 1

    # Dragging the impact bars downwards pans back towards the first features; the others follow.
    _scroll_to(driver, ids.BAR_CARD)
    last = _windows(driver)
    left, top, width, height = last[ids.IMPACT]["area"]
    _drag(driver, left + width / 2, top + height * 0.2, left + width / 2, top + height * 0.8)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _windows(driver)[ids.IMPACT]["centre"] > last[ids.IMPACT]["centre"] - 5:
        time.sleep(0.1)
    panned = _wait_for_windows(driver, _windows(driver)[ids.IMPACT]["centre"])
    assert panned[ids.IMPACT]["centre"] < last[ids.IMPACT]["centre"] - 5
    assert _shown(panned, ids.IMPACT) == _shown(panned, ids.SCATTER)
    assert _shown(panned, ids.IMPACT) - _shown(last, ids.IMPACT), "the pan showed no other feature"

    # The bar chart's own slider pages all four charts: its first step shows the first window.
    _scroll_to(driver, ids.BAR_CARD)
    panned = _windows(driver)
    left, top, width, height = panned[ids.IMPACT]["rail"]
    _mouse(driver, "mouseMoved", left + 2, top + height / 2)
    _mouse(driver, "mousePressed", left + 2, top + height / 2, 1)
    _mouse(driver, "mouseReleased", left + 2, top + height / 2)
    back = _wait_for_windows(driver, w / 2 - 0.5)
    assert _shown(back, ids.IMPACT) == _shown(first, ids.IMPACT) == _shown(back, ids.SCATTER)
    assert back[ids.SCATTER]["range"] == pytest.approx([-0.6, w - 0.4])

    # Selecting a table row of a feature outside the window moves all four windows to it.
    name = driver.execute_script(
        "return document.querySelector('#scatter-chart .js-plotly-plot').layout.xaxis.ticktext[arguments[0]]", k - 3
    )
    _select_table_row(driver, name)
    selected = _wait_for_windows(driver, k - 3)
    assert name in selected[ids.IMPACT]["ticks"] and name in selected[ids.SCATTER]["ticks"]
    assert _shown(selected, ids.IMPACT) == _shown(selected, ids.SCATTER)
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, [e["message"][:300] for e in severe]


# The scatter's trace as drawn: which points of the view it holds, and their x and y.
DRAWN_JS = """
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
const t = gd.data[0];
return {meta: t.meta || null, x: Array.from(gd._fullData[0].x), y: Array.from(gd._fullData[0].y)};
"""
# Page coordinates of the drawn trace's point ``i``.
POINT_JS = """
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
const L = gd._fullLayout, t = gd._fullData[0], box = gd.getBoundingClientRect();
return [box.left + L.xaxis._offset + L.xaxis.l2p(t.x[arguments[0]]), box.top + L.yaxis._offset + L.yaxis.l2p(t.y[arguments[0]])];
"""


def _assert_drawn_part(drawn, full_x, full_y, axis):
    """The trace holds exactly the view's points of a run of features covering the window in view."""
    first, end = drawn["meta"]["points"]
    lo, stop = drawn["meta"]["features"]
    assert np.array_equal(np.asarray(drawn["x"]), full_x[first:end])
    assert np.array_equal(np.asarray(drawn["y"], dtype=np.float32), full_y[first:end])
    assert (first == 0 or full_x[first - 1] < lo) and (end == len(full_x) or full_x[end] >= stop)
    shown = [code for code in range(axis["k"]) if axis["range"][0] < code < axis["range"][1]]
    assert lo <= min(shown) and max(shown) < stop


def test_a_scatter_of_many_points_holds_the_window_in_view_and_draws_the_rest_as_it_moves(
    driver, wide_app, monkeypatch
):
    """Above the draw limit the scatter's trace holds the points of the features in view (and half
    a window either side), not all: paging draws the next part, painted, and hovering a point the
    first draw did not hold links its image's points across the whole axis."""
    url, store = wide_app
    state = views.parse_view({"business": "wide", "source": "vision", "shown": "all"})
    view = compute.compute_view(store, "wide", "vision", filters=state.filters, shown=state.shown)
    full = view.scatter.data[0]
    full_x, full_y = np.asarray(full.x), np.asarray(full.y, dtype=np.float32)
    assert full.meta is None and len(full_x) > 2_000  # below the limit every point is sent
    monkeypatch.setattr(compute, "SCATTER_DRAW_LIMIT", 2_000)
    part = compute.compute_view(store, "wide", "vision", filters=state.filters, shown=state.shown).scatter.data[0]
    assert 0 < part.meta["points"][1] == len(part.x) < len(full_x)  # above it, the server sends a part

    driver.set_window_size(1600, 1400)
    driver.get(url + "?" + urlencode({"business": "wide", "source": "vision", "shown": "all"}))
    wait_for_charts(driver, timeout=60)
    _scroll_to(driver, ids.SCATTER)
    time.sleep(1.0)
    axis = driver.execute_script(AXIS_JS)
    first = driver.execute_script(DRAWN_JS)
    assert first["meta"]["features"] == [0, figures.SCATTER_WINDOW + DRAWN_MARGIN]
    assert axis["drawn"] < axis["points"] == len(full_x)
    _assert_drawn_part(first, full_x, full_y, axis)
    painted = _blue_pixels(driver, axis)
    assert painted > 3_000

    # The page slider's last step: the last window's points, drawn and painted.
    rl, rt, rw, rh = axis["rail"]
    _mouse(driver, "mouseMoved", rl + rw - 2, rt + rh / 2)
    _mouse(driver, "mousePressed", rl + rw - 2, rt + rh / 2, 1)
    _mouse(driver, "mouseReleased", rl + rw - 2, rt + rh / 2)
    last = _wait_for_range(driver, axis["range"])
    drawn = driver.execute_script(DRAWN_JS)
    _assert_drawn_part(drawn, full_x, full_y, last)
    assert drawn["meta"]["features"][1] == last["k"] and drawn["meta"]["points"][0] > 0
    assert _blue_pixels(driver, last) > 0.5 * painted

    # Hover the last drawn point: its image's points are linked on every feature it has, drawn or not.
    point = len(drawn["x"]) - 1
    index = drawn["meta"]["points"][0] + point
    lookup = view.lookup
    image_of = from_typed_array(lookup["point_image"])
    image = unpacked_names(lookup["images"])[image_of[index]]
    expected = int((image_of == image_of[index]).sum())
    assert expected > 1 and (full_x[image_of == image_of[index]] < drawn["meta"]["features"][0]).any()
    x, y = driver.execute_script(POINT_JS, point)
    _mouse(driver, "mouseMoved", 5, 5)
    time.sleep(0.3)
    _mouse(driver, "mouseMoved", x, y)
    panel = wait_for(
        lambda: image in driver.find_element("id", ids.HOVER_PANEL).text, message="the hovered image named"
    )
    assert panel
    circles = wait_for(
        lambda: driver.execute_script("return document.querySelectorAll('#scatter-chart svg.hover-link circle').length")
    )
    assert circles == expected

    # Selecting the row of a feature of the first window (a redraw of the figure the server sent,
    # patched) moves the window back there, and the points in view are drawn again.
    name = driver.execute_script(
        "return document.querySelector('#scatter-chart .js-plotly-plot').layout.xaxis.ticktext[3]"
    )
    _select_table_row(driver, name)
    moved = _wait_for_range(driver, last["range"])
    assert moved["range"][0] < 3 < moved["range"][1] and name in moved["ticks"]
    _assert_drawn_part(
        wait_for(lambda: (lambda d: d if d["meta"]["features"][0] <= 3 else None)(driver.execute_script(DRAWN_JS))),
        full_x,
        full_y,
        moved,
    )
    _scroll_to(driver, ids.SCATTER)  # the table row is below it
    time.sleep(0.5)
    assert _blue_pixels(driver, driver.execute_script(AXIS_JS)) > 0.5 * painted
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, [e["message"][:300] for e in severe]


# Each bar chart's traces as drawn: the rows the first holds, the trace's features and opacities,
# and how many bars the chart's first bar trace drew.
ROWS_JS = """
const out = {};
for (const id of arguments[0]) {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  const traces = gd.data.map((t, i) => ({
    rows: t.meta && t.meta.rows ? Array.from(t.meta.rows) : null,
    full: t.meta && t.meta.full ? Object.keys(t.meta.full).sort() : null,
    y: Array.from(gd._fullData[i].y || []),
    opacity: gd._fullData[i].marker && Array.isArray(gd._fullData[i].marker.opacity) ? gd._fullData[i].marker.opacity : null,
  }));
  out[id] = {traces, bars: gd.querySelector('.barlayer .trace').querySelectorAll('.point').length};
}
return out;
"""
# Where, in a screenshot of the chart, three points along each bar [row, value] lie.
BAR_PIXELS_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const L = gd._fullLayout, chart = document.getElementById(arguments[0]).getBoundingClientRect();
const box = gd.getBoundingClientRect();
const dx = box.left - chart.left + L.xaxis._offset, dy = box.top - chart.top + L.yaxis._offset;
return arguments[1].map(([row, value]) => [0.3, 0.5, 0.7].map(f => [dx + L.xaxis.l2p(value * f), dy + L.yaxis.l2p(row)]));
"""


# The rows of the bars a hover marked (bar-hit), by their place among the drawn bars.
MARKED_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const t = gd.data[0], first = t.meta && t.meta.rows ? t.meta.rows[0] : 0;
const points = Array.from(gd.querySelector('.barlayer .trace').querySelectorAll('.point'));
return points.map((p, i) => p.classList.contains('bar-hit') ? first + i : -1).filter(i => i >= 0);
"""


def _painted_bars(driver, chart, rows, values) -> float:
    """The share of rows ``rows`` whose bar (of ``values``, wider than 8 px) shows colour in a
    screenshot of the chart: a point along it that is not the page's white."""
    shot = decode_png(driver.find_element("id", chart).screenshot_as_png)[..., :3].astype(np.int16)
    wide = [row for row in rows if abs(values[row]) > 0]
    spots = driver.execute_script(BAR_PIXELS_JS, chart, [[row, float(values[row])] for row in wide])
    painted = total = 0
    for points in spots:
        (x0, _), (x2, _) = points[0], points[2]
        if abs(x2 - x0) < 3.2:  # a bar under 8 px wide
            continue
        total += 1
        painted += any(shot[int(round(y)), int(round(x))].sum() < 720 for x, y in points)
    assert total > 10, "too few bars wide enough to look at"
    return painted / total


def test_bar_charts_of_many_rows_hold_the_rows_in_view_and_draw_the_rest_as_they_move(driver, wide_app, monkeypatch):
    """Above the draw limit each bar chart's traces hold the rows of the window in view (and half a
    window either side), with every row's values in their meta: paging draws the next rows,
    painted; a selected row's highlight is kept for the rows drawn later."""
    from dashboard.figures.bars import DRAWN_ROWS_MARGIN

    url, store = wide_app
    state = views.parse_view({"business": "wide", "source": "vision", "shown": "all"})
    view = compute.compute_view(store, "wide", "vision", filters=state.filters, shown=state.shown)
    whole = view.impact.data[0]
    scatter_x, image_of = np.asarray(view.scatter.data[0].x), from_typed_array(view.lookup["point_image"])
    features, values = list(whole.y), np.asarray(whole.x)
    k, w = len(features), figures.FEATURE_WINDOW
    assert whole.meta is None and k > 2 * w  # below the limit every row is sent
    monkeypatch.setattr(compute, "BAR_DRAW_LIMIT", 60)
    charts = list(ids.BAR_CHARTS)

    driver.set_window_size(1600, 1400)
    driver.get(url + "?" + urlencode({"business": "wide", "source": "vision", "shown": "all"}))
    wait_for_charts(driver, timeout=60)
    _scroll_to(driver, ids.BAR_CARD)
    time.sleep(1.0)
    first = driver.execute_script(ROWS_JS, charts)
    stop = w + DRAWN_ROWS_MARGIN
    for chart in charts:
        cut = [t for t in first[chart]["traces"] if t["rows"]]
        assert cut and all(t["rows"] == [0, stop] and t["y"] == features[:stop] for t in cut)
        assert first[chart]["bars"] == stop
    assert len([t for t in first[ids.AVG_WITH]["traces"] if t["rows"]]) == 2  # the bars and the marks without
    assert _painted_bars(driver, ids.IMPACT, range(w), values) > 0.9

    # The impact chart's last page: the last window's rows, drawn and painted, in every chart.
    _click_last_step(driver, _windows(driver)[ids.IMPACT]["rail"])
    last = _wait_for_windows(driver, k - w / 2 - 0.5)
    drawn = wait_for(
        lambda: (lambda d: d if all(d[c]["traces"][0]["rows"][1] == k for c in charts) else None)(
            driver.execute_script(ROWS_JS, charts)
        )
    )
    for chart in charts:
        lo, end = drawn[chart]["traces"][0]["rows"]
        assert lo <= k - w and drawn[chart]["traces"][0]["y"] == features[lo:end] and drawn[chart]["bars"] == end - lo
    assert max(_shown(last, ids.IMPACT)) == k - 1
    assert _painted_bars(driver, ids.IMPACT, range(k - w, k), values) > 0.9

    # Hovering a scatter point marks the bars of its image's features among the rows drawn.
    _scroll_to(driver, ids.SCATTER)
    point = len(scatter_x) - 1
    mine = set(scatter_x[image_of == image_of[point]].tolist())
    x, y = driver.execute_script(POINT_JS, point)
    _mouse(driver, "mouseMoved", 5, 5)
    time.sleep(0.3)
    _mouse(driver, "mouseMoved", x, y)
    marked = wait_for(lambda: driver.execute_script(MARKED_JS, ids.IMPACT))
    lo, end = drawn[ids.IMPACT]["traces"][0]["rows"]
    assert set(marked) == {code for code in mine if lo <= code < end} and max(marked) >= k - w

    # Selecting a row of the last window highlights its bar among the rows drawn, and every row's
    # highlight is kept in the meta: the first page, drawn again, shows its rows dimmed.
    name = features[k - 3]
    _select_table_row(driver, name)
    selected = wait_for(
        lambda: (lambda d: d if d[ids.IMPACT]["traces"][0]["opacity"] else None)(
            driver.execute_script(ROWS_JS, charts)
        ),
        timeout=20,
    )
    trace = selected[ids.IMPACT]["traces"][0]
    assert "marker.opacity" in trace["full"] and trace["rows"][1] == k
    lit = [y for y, o in zip(trace["y"], trace["opacity"]) if o == 1]
    assert lit == [name] and min(trace["opacity"]) < 1
    _scroll_to(driver, ids.BAR_CARD)
    rail = _windows(driver)[ids.IMPACT]["rail"]
    left, top, width, height = rail
    _mouse(driver, "mouseMoved", left + 2, top + height / 2)
    _mouse(driver, "mousePressed", left + 2, top + height / 2, 1)
    _mouse(driver, "mouseReleased", left + 2, top + height / 2)
    _wait_for_windows(driver, w / 2 - 0.5)
    back = wait_for(
        lambda: (lambda d: d if d[ids.IMPACT]["traces"][0]["rows"][0] == 0 else None)(
            driver.execute_script(ROWS_JS, charts)
        )
    )
    trace = back[ids.IMPACT]["traces"][0]
    assert trace["y"] == features[: trace["rows"][1]] and trace["opacity"] and max(trace["opacity"]) < 1
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, [e["message"][:300] for e in severe]


# The scatter's WebGL canvas: its buffer's width, its width on the page, and the screen's pixel ratio.
GL_CANVAS_JS = """
const c = document.querySelector('#scatter-chart canvas.gl-canvas-context');
const gd = document.querySelector('#scatter-chart .js-plotly-plot');
if (!c || !gd || !gd._fullData || !gd._fullData.length) return null;
return [c.width, c.getBoundingClientRect().width, window.devicePixelRatio, gd._context.plotGlPixelRatio];
"""


@pytest.mark.parametrize("scale", [1, 2])
def test_the_scatters_webgl_buffers_follow_the_screens_pixel_ratio(driver, wide, scale):
    """One buffer pixel per screen pixel: a standard screen's scatter is not drawn at twice its size
    (Plotly's default), and a high-density screen's is drawn at its own density."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1600, "height": 1400, "deviceScaleFactor": scale, "mobile": False},
    )
    try:
        driver.get(wide + "?" + urlencode({"business": "wide", "source": "vision", "shown": "all"}))
        wait_for_charts(driver, timeout=60)
        buffer, css, ratio, configured = wait_for(lambda: driver.execute_script(GL_CANVAS_JS))
        assert ratio == scale and configured == scale
        assert buffer == pytest.approx(css * scale, abs=1)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, [e["message"][:300] for e in severe]
