"""The date range and the trend in headless Chromium, on the demo's 90 days of dated counts:
presets that set the URL, a header and a verdict that follow the window, a painted trend chart."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from dashboard.factory import create_app
from dashboard.page import ids
from data.analysis import feature_summary
from data.demo import DEMO_BUSINESS, DEMO_SOURCE, REFERENCE_BUSINESS, REFERENCE_SOURCE, load_demo
from data.filters import Filters
from data.settings import Settings
from data.store import FeatureStore
from data.window import Window
from tests.axe import severe_violations
from tests.browser import decode_png, serve, wait_for, wait_for_charts

PAIR = (DEMO_BUSINESS, DEMO_SOURCE)
VERDICT_JS = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' .vd-side')).flatMap(side =>
  Array.from(side.querySelectorAll('[data-feature]')).map(b =>
    [side.classList.contains('helps') ? 'helps' : 'hurts', b.dataset.feature]));
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = tmp_path_factory.mktemp("dates") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    load_demo(store)
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url.rstrip("/"), store
    store.close()


def _open(driver, url, query=""):
    driver.set_window_size(1280, 800)
    driver.get(f"{url}/?business={DEMO_BUSINESS.replace(' ', '%20')}&source={DEMO_SOURCE}{query}")
    wait_for_charts(driver, timeout=90)


def _status(driver) -> str:
    return driver.find_element("id", ids.STATUS).text


def _answer(store, window: Window | None) -> set[tuple[str, str]]:
    summary = feature_summary(store.dataset(*PAIR, window=window), Filters(confidence=0.5, min_pct=2))
    called = summary[summary["verdict"].isin(["helps", "hurts"])]
    return set(zip(called["verdict"], called["feature"], strict=True))


def test_a_preset_sets_the_window_the_url_the_header_and_the_answer(driver, live):
    url, store = live
    extent = store.metric_set(*PAIR)
    _open(driver, url)
    control = driver.find_element("id", ids.DATE_CONTROL)
    assert control.is_displayed()
    assert "(every day)" in _status(driver)
    label = control.find_element("css selector", f"#{ids.DATE_PRESET} input[value='30'] + label")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", label)
    label.click()
    last = date.fromisoformat(str(extent.last_day)[:10])
    first = (last - timedelta(days=29)).isoformat()
    wait_for(lambda: f"from={first}" in driver.current_url and f"to={last}" in driver.current_url, message="the URL")
    wait_for(lambda: "30 days" in _status(driver) and "(every day)" not in _status(driver), message="the header")
    window = Window(first, last.isoformat())
    expected = _answer(store, window)
    assert expected != _answer(store, None)  # the demo's fading effect: the window changes the answer
    wait_for_charts(driver, timeout=90)
    shown = wait_for(
        lambda: (lambda v: v if set(map(tuple, v or [])) == expected else None)(
            driver.execute_script(VERDICT_JS, ids.VERDICT)
        ),
        message="the verdict of the window",
        timeout=90,
    )
    assert shown
    # The picker shows the preset's days.
    assert driver.find_element("id", ids.DATE_FROM_INPUT).get_attribute("value")


def test_the_trend_of_the_selected_feature_is_painted_and_the_page_stays_accessible(driver, live):
    url, store = live
    _open(driver, url, "&feature=smile&from=2026-10-01")
    card = driver.find_element("id", ids.TREND_CARD)
    wait_for(lambda: driver.find_element("id", ids.TREND_TITLE).text == "Trend of smile", message="the trend")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start', behavior: 'instant'})", card)
    caption = wait_for(
        lambda: driver.find_element("id", ids.CHART_TEXT[ids.TREND]).get_attribute("textContent"),
        message="the trend's words",
        timeout=90,
    )
    assert caption.startswith("Impact of smile per week")
    shot = decode_png(driver.find_element("id", ids.TREND).screenshot_as_png)[..., :3].astype(np.int16)
    r, g, b = shot[..., 0], shot[..., 1], shot[..., 2]
    bars = (b - r > 40) & (b > 150)  # the images behind each point, in the "with" blue
    points = (g - r > 60) & (g - b > 20)  # periods where smile clearly helped, in green
    assert bars.sum() > 500 and points.sum() > 20
    assert severe_violations(driver) == []


# Each answer of the page's redraw, as it arrives: whether its notice says the window is being refined.
NOTICES_JS = """
window.__refining = [];
const fetched = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : input.url;
  return fetched.apply(this, arguments).then(response => {
    if (url.includes('_dash-update-component')) {
      response.clone().text().then(text => {
        if (text.includes('"view-notice"')) window.__refining.push(text.includes('refining the p-values'));
      });
    }
    return response;
  });
};
"""


def test_a_new_window_answers_provisionally_then_redraws_by_itself_with_the_exact_answer(driver, live):
    url, store = live
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NOTICES_JS})
    window = Window("2026-09-03", "2026-10-01")  # not a preset: no null was drawn for it
    _open(driver, url, f"&from={window.start}&to={window.end}")
    # First the provisional answer, saying so; then, unasked, the exact one.
    wait_for(
        lambda: (lambda seen: seen[:1] == [True] and seen[-1] is False)(
            driver.execute_script("return window.__refining")
        ),
        message="a provisional answer, then the refined one",
        timeout=90,
    )
    expected = _answer(store, window)
    shown = wait_for(
        lambda: (lambda v: v if set(map(tuple, v or [])) == expected else None)(
            driver.execute_script(VERDICT_JS, ids.VERDICT)
        ),
        message="the exact verdict of the window",
        timeout=90,
    )
    assert shown and "refining" not in driver.find_element("id", ids.NOTICE).text


def test_a_dataset_with_one_ctr_per_image_has_no_date_range(driver, live):
    url, _ = live
    driver.get(f"{url}/?business={REFERENCE_BUSINESS.replace(' ', '%20')}&source={REFERENCE_SOURCE}&from=2026-10-01")
    wait_for_charts(driver, timeout=90)
    assert not driver.find_element("id", ids.DATE_CONTROL).is_displayed()
    assert not driver.find_element("id", ids.TREND_CARD).is_displayed()
    assert "CTR over" not in _status(driver)
