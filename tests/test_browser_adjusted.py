"""The marginal / adjusted switch and the co-occurrence panel in headless Chromium, on the reference data."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dashboard.factory import create_app
from dashboard.figures import format_pp
from dashboard.page import ids
from data import adjusted_cost
from data.adjusted import adjusted_summary
from data.batches import FeatureBatch, ctr_frame
from data.settings import Settings
from data.store import FeatureStore
from tests.browser import serve, wait_for, wait_for_charts

PAIR = ("Reference 2018", "vision")
IMPACT_X_JS = """
const gd = document.querySelector('#impact-chart .js-plotly-plot');
const t = gd && gd._fullData && gd._fullData[0];
return t ? {x: Array.from(t.x), y: Array.from(t.y)} : null;
"""
BAR_PIXEL_JS = """
const gd = document.querySelector('#impact-chart .js-plotly-plot');
const fl = gd._fullLayout, t = gd._fullData[0], i = t.y.indexOf(arguments[0]);
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
return {x: box.left + fl.xaxis.l2p(t.x[i] / 2), y: box.top + fl.yaxis.l2p(i)};
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory, reference_frame):
    path = tmp_path_factory.mktemp("adjusted") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    store.add_build(*PAIR, FeatureBatch.from_wide(reference_frame))
    store.replace_ctr(*PAIR, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


def _wait_for(predicate, timeout=30.0, message="condition"):
    return wait_for(predicate, timeout=timeout, message=message, interval=0.1)


def _click(driver, element):
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def test_switch_charts_the_adjusted_impact_and_the_panel_shows_what_a_feature_travels_with(driver, live, tmp_path):
    url, store = live
    driver.get(f"{url.rstrip('/')}/?business=Reference%202018&source=vision&confidence=0&min_pct=0&max_pct=100")
    wait_for_charts(driver)
    expected = adjusted_summary(store.dataset(*PAIR), confidence=0.0).set_index("feature")
    marginal = driver.execute_script(IMPACT_X_JS)
    np.testing.assert_allclose(marginal["x"], expected.loc[marginal["y"], "impact"] * 100, rtol=1e-9)

    _click(driver, driver.find_element("xpath", f"//*[@id='{ids.IMPACT_MODE}']//label[normalize-space()='Adjusted']"))
    adjusted = _wait_for(
        lambda: (d := driver.execute_script(IMPACT_X_JS)) and d["x"] != marginal["x"] and d,
        message="the adjusted bars",
    )
    np.testing.assert_allclose(adjusted["x"], expected.loc[adjusted["y"], "adjusted_impact"] * 100, rtol=1e-9)
    assert driver.find_element("id", ids.IMPACT_TITLE).text == "Adjusted impact"
    _wait_for(lambda: "adjusted=1" in driver.current_url, message="adjusted=1 in the URL")
    header = driver.find_element("css selector", "#summary-table .ag-header-cell[col-id='impact']").text
    assert "Adjusted impact" in header

    # Selecting skyblue in the table: it travels with text.
    _click(driver, driver.find_element("css selector", "#summary-table .ag-row[row-id='skyblue'] .ag-cell"))
    panel = _wait_for(
        lambda: "skyblue" in (t := driver.find_element("id", ids.COOCCURRENCE).text) and "text" in t and t,
        message="the panel for skyblue",
    )
    assert "marginal" in panel and "adjusted" in panel and "+0.46" in panel
    driver.save_screenshot(os.environ.get("ADJUSTED_SCREENSHOT", str(tmp_path / "adjusted.png")))

    # Hovering girl's bar in the impact chart switches the panel to girl, which travels with fun.
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    bars = driver.find_element("id", ids.IMPACT)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", bars)
    point = driver.execute_script(BAR_PIXEL_JS, "girl")
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(point["x"]), int(point["y"]))
    actions.perform()
    _wait_for(lambda: driver.find_element("id", ids.COOCCURRENCE).text.startswith("girl"), message="the panel for girl")
    assert "fun" in driver.find_element("id", ids.COOCCURRENCE).text

    # The URL reopens the adjusted view in a fresh page.
    driver.get(driver.current_url)
    wait_for_charts(driver)
    _wait_for(lambda: driver.find_element("id", ids.IMPACT_TITLE).text == "Adjusted impact", message="reopened title")
    again = driver.execute_script(IMPACT_X_JS)
    np.testing.assert_allclose(again["x"], adjusted["x"], rtol=1e-12)
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe


def test_panel_says_where_the_adjusted_numbers_are_then_shows_them_once_the_adjusted_view_is_drawn(
    driver, tmp_path, reference_frame, monkeypatch
):
    """When the fit of every feature is too costly for a selection, the marginal view's panel says so in
    words, and the Adjusted view, once drawn, fills it in."""
    monkeypatch.setattr(adjusted_cost, "QUICK_FIT_SECONDS", 0.0)  # the server runs in this process
    path = tmp_path / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    store.add_build(*PAIR, FeatureBatch.from_wide(reference_frame))
    store.replace_ctr(*PAIR, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    try:
        with serve(create_app(settings, store)) as url:
            driver.get(f"{url.rstrip('/')}/?business=Reference%202018&source=vision&confidence=0&min_pct=0&max_pct=100")
            wait_for_charts(driver)
            _click(driver, driver.find_element("css selector", "#summary-table .ag-row[row-id='skyblue'] .ag-cell"))
            panel = _wait_for(
                lambda: "skyblue" in (t := driver.find_element("id", ids.COOCCURRENCE).text) and "text" in t and t,
                message="the panel for skyblue",
            )
            expected = adjusted_summary(store.dataset(*PAIR), confidence=0.0).set_index("feature")
            assert "switch Impact to Adjusted" in panel
            assert f"marginal {format_pp(expected.at['skyblue', 'impact'])}" in panel
            assert len(store.cache.adjusted_fits) == 0
            _click(
                driver,
                driver.find_element("xpath", f"//*[@id='{ids.IMPACT_MODE}']//label[normalize-space()='Adjusted']"),
            )
            shown = f"adjusted {format_pp(expected.at['skyblue', 'adjusted_impact'])}"
            panel = _wait_for(
                lambda: shown in (t := driver.find_element("id", ids.COOCCURRENCE).text) and t,
                message="the adjusted numbers in the panel",
            )
            assert "switch Impact to Adjusted" not in panel and panel.startswith("skyblue")
    finally:
        store.close()


def test_adjusted_view_over_the_time_budget_says_so_in_the_notice(driver, live):
    """A view whose statistics run out of the request's budget leaves the charts as they were and
    says in the notice that it took too long and what to do."""
    _, store = live
    database = store.engine.url.render_as_string(hide_password=False)
    fresh = FeatureStore(database)  # a cache of its own: the adjusted fit is computed, not found
    settings = Settings.from_env(
        {}, database_url=database, demo_data=False, poll_seconds=3600, request_budget_seconds=1e-9
    )
    try:
        with serve(create_app(settings, fresh)) as url:
            driver.get(f"{url.rstrip('/')}/?business=Reference%202018&source=vision&confidence=0&min_pct=0&max_pct=100")
            wait_for_charts(driver)
            marginal = driver.execute_script(IMPACT_X_JS)
            assert not driver.find_element("id", ids.NOTICE).text
            mode = f"//*[@id='{ids.IMPACT_MODE}']//label[normalize-space()='Adjusted']"
            _click(driver, driver.find_element("xpath", mode))
            notice = _wait_for(
                lambda: "took too long" in (text := driver.find_element("id", ids.NOTICE).text) and text,
                message="the budget's notice",
            )
            assert "Retry" in notice and "minimum group size" in notice
            assert driver.execute_script(IMPACT_X_JS) == marginal  # the refused view is not drawn
    finally:
        fresh.close()
