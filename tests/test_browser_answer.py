"""The answer first, read off the screen: the verdict above the fold, one scroll, axe-core clean.

Headless Chromium at a laptop's 1280 x 800 and a desktop's 1600 x 1400, on the demo data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from dashboard.factory import create_app
from dashboard.page import ids
from dashboard.page.compute import compute_view
from dashboard.page.views import CURRENT_BUILD
from data.demo import DEMO_BUSINESS, DEMO_SOURCE, demo_build
from data.filters import Filters
from data.settings import Settings
from data.store import FeatureStore
from tests.axe import severe_violations
from tests.browser import serve, wait_for, wait_for_charts

SIZES = [(1280, 800), (1600, 1400)]
ASSETS = Path(__file__).resolve().parent.parent / "dashboard" / "page" / "assets"

# The text of every element inside the first viewport, with the helps / hurts heading it sits under.
FIRST_SCREEN_JS = """
const out = {helps: [], hurts: [], pageWidth: document.documentElement.scrollWidth,
             viewWidth: document.documentElement.clientWidth};
for (const side of ['helps', 'hurts']) {
  const box = document.querySelector('#' + arguments[0] + ' .vd-side.' + side);
  if (!box) continue;
  for (const node of box.querySelectorAll('[data-feature]')) {
    const r = node.getBoundingClientRect();
    if (r.bottom <= window.innerHeight && r.top >= 0 && r.width > 0) out[side].push(node.getAttribute('data-feature'));
  }
}
return out;
"""
# Elements holding a chart that scroll on their own (content taller or wider than the box, and not hidden).
SCROLLERS_JS = """
const found = [];
for (const chart of document.querySelectorAll('.js-plotly-plot')) {
  for (let node = chart.parentElement; node && node !== document.body; node = node.parentElement) {
    const style = getComputedStyle(node);
    const scrolls = (v) => v === 'auto' || v === 'scroll';
    if ((scrolls(style.overflowY) && node.scrollHeight > node.clientHeight + 1) ||
        (scrolls(style.overflowX) && node.scrollWidth > node.clientWidth + 1)) {
      found.push(node.id || node.className);
    }
  }
}
return found;
"""


@pytest.fixture(scope="module")
def live_answer(tmp_path_factory):
    """The app on the demo data, and one with an empty store (DEMO_DATA=0)."""
    from data.demo import load_demo

    path = tmp_path_factory.mktemp("answer") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    earlier, _ = demo_build(seed=7)
    store.add_build(DEMO_BUSINESS, DEMO_SOURCE, earlier, tag="nightly-41")  # a build to compare with
    load_demo(store)
    empty_path = tmp_path_factory.mktemp("empty") / "features.db"
    empty = FeatureStore(f"sqlite:///{empty_path}")
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    empty_settings = Settings.from_env({}, database_url=f"sqlite:///{empty_path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url, serve(create_app(empty_settings, empty)) as empty_url:
        yield url, empty_url, store, settings
    store.close()
    empty.close()


def _significant(store, settings, weighting="mean", **kwargs):
    filters = Filters(confidence=0.5, min_pct=2, min_n=settings.min_group_size, weighting=weighting)
    view = compute_view(store, DEMO_BUSINESS, DEMO_SOURCE, CURRENT_BUILD, filters, **kwargs)
    summary = view.table_summary
    return (
        set(summary.loc[summary["verdict"] == "helps", "feature"]),
        set(summary.loc[summary["verdict"] == "hurts", "feature"]),
    )


def _open(driver, url, size):
    driver.set_window_size(*size)
    driver.get(url)
    wait_for_charts(driver, timeout=60)
    wait_for(lambda: driver.find_elements("css selector", f"#{ids.VERDICT} [data-feature]"), message="the verdict")
    # The table's rows arrive by column and are unpacked in the browser, after the charts.
    wait_for(lambda: driver.find_elements("css selector", f"#{ids.TABLE} .ag-row"), message="the table's rows")


# Whether the grid is drawn: the column asked for is among its columns, every header row holds
# header cells and the body holds rows.
GRID_DRAWN_JS = """
const grid = document.getElementById(arguments[0]);
let api = null;
try { api = dash_ag_grid.getApi(arguments[0]); } catch (e) { return false; }
if (!grid || !api || !api.getColumn(arguments[1])) return false;
const rows = [...grid.querySelectorAll('.ag-header-row')].filter(r => r.offsetParent !== null);
return rows.length > 0 && rows.every(r => r.querySelector('[role=columnheader]')) &&
  grid.querySelectorAll('.ag-center-cols-container .ag-row').length > 0;
"""


def _wait_for_grid_drawn(driver, column: str) -> None:
    """Wait until the summary grid shows ``column`` with its header and rows drawn, twice in a row."""
    seen = []

    def settled():
        seen.append(bool(driver.execute_script(GRID_DRAWN_JS, ids.TABLE, column)))
        return seen[-2:] == [True, True]

    wait_for(settled, message=f"the grid drawn with {column}")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("query", ["", "?weighting=impressions", "?adjusted=1"])
def test_every_significant_feature_is_named_in_the_first_viewport_by_sign(driver, live_answer, size, query):
    url, _, store, settings = live_answer
    _open(driver, url + query, size)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    helps, hurts = _significant(
        store, settings, weighting="impressions" if "impressions" in query else "mean", adjusted="adjusted" in query
    )
    assert helps and hurts  # the demo plants both
    shown = driver.execute_script(FIRST_SCREEN_JS, ids.VERDICT)
    assert set(shown["helps"]) == helps, (inner, shown)
    assert set(shown["hurts"]) == hurts, (inner, shown)
    assert shown["pageWidth"] <= shown["viewWidth"]  # no sideways scroll of the page
    assert driver.execute_script(SCROLLERS_JS) == []


def test_a_phone_wide_page_does_not_scroll_sideways(driver, live_answer):
    """At 420 px the verdict stacks helps above hurts and fits; the page scrolls only down."""
    url, _, _, _ = live_answer
    driver.set_window_size(420, 900)
    driver.get(url)
    wait_for_charts(driver, timeout=60)
    wait_for(lambda: driver.find_elements("css selector", f"#{ids.VERDICT} [data-feature]"), message="the verdict")
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


@pytest.mark.parametrize("query", ["", "?adjusted=1", "compare"])
def test_axe_core_finds_no_serious_violation(driver, live_answer, query):
    url, _, store, _ = live_answer
    if query == "compare":
        builds = store.builds(DEMO_BUSINESS, DEMO_SOURCE)["build_id"].tolist()
        query = f"?compare_build={builds[-1]}"
    _open(driver, url + query, SIZES[0])
    if "compare" in query:
        wait_for(lambda: driver.find_element("id", ids.DRIFT_CARD).is_displayed(), message="the comparison")
        # The comparison's columns replace the grid's, and AG Grid redraws its header and rows: in
        # between, a header row holds no cell and the viewport no row, which axe-core rightly
        # reports. The check is of the grid as drawn with the comparison.
        _wait_for_grid_drawn(driver, column="drift_change")
    assert severe_violations(driver) == []


def test_axe_core_finds_no_serious_violation_on_the_empty_page(driver, live_answer):
    _, empty_url, _, _ = live_answer
    driver.set_window_size(*SIZES[0])
    driver.get(empty_url)
    wait_for(lambda: "No data yet" in driver.find_element("tag name", "body").text, message="the empty notice")
    body = driver.find_element("tag name", "body").text
    assert "No feature passes the filters" not in body
    # No chart, toolbar or table while there is nothing to show: only the notice.
    assert not driver.execute_script(
        "return [...document.querySelectorAll('.modebar, .ag-root')].some(n => n.offsetParent !== null)"
    )
    assert severe_violations(driver) == []


def test_selecting_a_verdict_feature_by_keyboard_selects_it_everywhere(driver, live_answer):
    url, _, store, settings = live_answer
    _open(driver, url, SIZES[1])
    helps, _ = _significant(store, settings)
    button = driver.find_element("css selector", f"#{ids.VERDICT} .vd-row")
    feature = button.get_attribute("data-feature")
    assert feature in helps
    driver.execute_script("arguments[0].focus()", button)
    button.send_keys("\n")
    wait_for(lambda: f"feature={quote(feature, safe='')}" in driver.current_url, message="the URL to name the feature")
    note = wait_for(lambda: driver.find_element("id", ids.TABLE_SELECTION).text, message="the selection note")
    assert feature in note
    wait_for(lambda: button.get_attribute("aria-pressed") == "true", message="the button to show it is selected")
    # The panel's hint is text too: wait for the feature's own panel, not for any text.
    wait_for(lambda: feature in driver.find_element("id", ids.COOCCURRENCE).text, message="Travels with")
    # The gallery opens on the feature's images.
    tiles = f"#{ids.gallery_id('with', 'tiles')} > .gallery-tile"
    wait_for(lambda: driver.find_elements("css selector", tiles), message="the gallery's tiles")
    assert driver.find_element("id", ids.GALLERY_TITLE).text == f"Images of {feature}"
    # The URL reopens the view with the feature selected.
    driver.get(driver.current_url)
    wait_for_charts(driver, timeout=60)
    wait_for(lambda: feature in driver.find_element("id", ids.TABLE_SELECTION).text, message="the selection at load")


def test_scripts_use_only_the_ids_the_page_hands_them():
    """assets/*.js spell no component id: each reads window.CREATIVE_IDS, whose keys ids.BROWSER defines."""
    known = set(ids.BROWSER)
    every_id = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
    for script in ASSETS.glob("*.js"):
        text = script.read_text()
        used = set(re.findall(r"IDS\.([A-Z_]+)", text))
        assert used <= known, (script.name, used - known)
        literals = set(re.findall(r"[\"']([a-z0-9]+(?:-[a-z0-9]+)+)[\"']", text))
        assert not literals & every_id, (script.name, literals & every_id)
    assert json.loads(json.dumps(ids.BROWSER)) == ids.BROWSER


@pytest.mark.parametrize("size", SIZES)
def test_the_tables_answer_columns_show_without_scrolling_sideways(driver, live_answer, size):
    url, _, _, _ = live_answer
    _open(driver, url, size)
    seen = driver.execute_script(
        """
        const grid = document.getElementById(arguments[0]).getBoundingClientRect();
        const out = {};
        for (const cell of document.querySelectorAll('#' + arguments[0] + ' .ag-header-cell')) {
          const r = cell.getBoundingClientRect();
          out[cell.getAttribute('col-id')] = r.width > 0 && r.left >= grid.left - 1 && r.right <= grid.right + 1;
        }
        return out;
        """,
        ids.TABLE,
    )
    for column in ("feature", "verdict", "lift_pct", "impact", "interval", "q_value"):
        assert seen.get(column), (column, seen)


# Per key column of the summary table: its rendered cells' text, and those whose text is wider than the cell.
CLIPPED_CELLS_JS = """
const out = {};
for (const column of arguments[1]) {
  const cells = document.querySelectorAll('#' + arguments[0] + ' .ag-center-cols-container .ag-cell[col-id="' + column + '"], '
                                           + '#' + arguments[0] + ' .ag-pinned-left-cols-container .ag-cell[col-id="' + column + '"]');
  out[column] = {texts: [], clipped: []};
  for (const cell of cells) {
    const text = cell.textContent.trim();
    out[column].texts.push(text);
    for (const node of [cell, ...cell.querySelectorAll('*')]) {
      if (node.scrollWidth > node.clientWidth) { out[column].clipped.push([text, node.scrollWidth, node.clientWidth]); break; }
    }
  }
}
return out;
"""
KEY_COLUMNS = ("feature", "verdict", "lift_pct", "interval", "q_value")
# Scroll the grid to its first row whose ``field`` is ``value``; its index, or -1.
SHOW_FIRST_ROW_JS = """
const api = dash_ag_grid.getApi(arguments[0]);
let index = -1;
api.forEachNodeAfterFilterAndSort((node, i) => { if (index < 0 && node.data[arguments[1]] === arguments[2]) index = i; });
if (index >= 0) api.ensureIndexVisible(index, 'middle');
return index;
"""


@pytest.mark.parametrize("query", ["", "?confidence=0.2&min_pct=0"])
def test_the_tables_key_values_show_in_full_at_1280(driver, live_answer, query):
    """At 1280 x 800 no cell of the feature, verdict, lift, interval or q column is cut short ("+26.0…")."""
    url, _, _, _ = live_answer
    _open(driver, url + query, (1280, 800))
    seen = wait_for(
        lambda: (lambda got: got if all(got[c]["texts"] for c in KEY_COLUMNS) else None)(
            driver.execute_script(CLIPPED_CELLS_JS, ids.TABLE, KEY_COLUMNS)
        ),
        message="the table's cells",
    )
    for column in KEY_COLUMNS:
        assert not seen[column]["clipped"], (column, seen[column]["clipped"])
    # The cells read the values' full forms: a lift with its sign and unit, q in scientific form.
    assert any(re.fullmatch(r"[+\u2212]\d+\.\d %", t) for t in seen["lift_pct"]["texts"]), seen["lift_pct"]["texts"]
    assert any("\u00d7 10" in t for t in seen["q_value"]["texts"]), seen["q_value"]["texts"]
    assert all(t.endswith(" pp") or t == "\u2013" for t in seen["interval"]["texts"]), seen["interval"]["texts"]
    if "min_pct=0" in query:  # rare features come in: the longest verdict, scrolled to
        assert driver.execute_script(SHOW_FIRST_ROW_JS, ids.TABLE, "verdict", "too few images") >= 0
        bottom = wait_for(
            lambda: (lambda got: got if "too few images" in got["verdict"]["texts"] else None)(
                driver.execute_script(CLIPPED_CELLS_JS, ids.TABLE, ("verdict",))
            ),
            message="a 'too few images' verdict",
        )
        assert not bottom["verdict"]["clipped"], bottom["verdict"]["clipped"]
    # ... and the answer's columns still need no sideways scroll.
    grid = driver.execute_script(
        "return document.getElementById(arguments[0]).getBoundingClientRect().right", ids.TABLE
    )
    rights = driver.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' .ag-header-cell')]"
        ".map(c => [c.getAttribute('col-id'), c.getBoundingClientRect().right])",
        ids.TABLE,
    )
    assert all(right <= grid + 1 for column, right in rights if column in KEY_COLUMNS), rights


def test_the_header_lines_up_when_it_wraps(driver, live_answer):
    """At a width where the title and the status no longer fit one line, both start at the same left edge."""
    url, _, _, _ = live_answer
    _open(driver, url, (900, 900))
    brand, status = (
        driver.execute_script("return document.querySelector(arguments[0]).getBoundingClientRect().toJSON()", sel)
        for sel in (".topbar .brand", "#" + ids.STATUS)
    )
    assert status["top"] >= brand["bottom"] - 1  # wrapped
    assert abs(status["left"] - brand["left"]) <= 2


def test_a_table_row_selects_its_feature_by_keyboard(driver, live_answer):
    url, _, _, _ = live_answer
    _open(driver, url, SIZES[1])
    row = f"#{ids.TABLE} .ag-pinned-left-cols-container .ag-row[row-index='1']"
    feature = driver.find_element("css selector", row).get_attribute("row-id")
    cell = driver.find_element("css selector", row + " .ag-cell")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()", cell)
    cell.send_keys(" ")
    wait_for(
        lambda: f"feature={quote(feature, safe='')}" in driver.current_url, message="the row to be selected by Space"
    )
