"""The gallery in headless Chromium, on the demo's reference data and its drawn thumbnails.

A feature selected (by the URL, a bar) shows its images highest CTR first with their pictures
loaded; the switch shows the images without it or both sides; the tiles are reached and moved
through by keyboard, and a focused tile links its image in the scatter; axe-core finds nothing
serious in the gallery.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard.factory import create_app
from dashboard.page import ids
from dashboard.page.gallery import PAGE_SIZE
from data.demo import REFERENCE_BUSINESS, REFERENCE_SOURCE, load_demo
from data.demo_images import demo_thumbnails
from data.gallery import feature_gallery
from data.settings import Settings
from data.store import FeatureStore
from tests.axe import SEVERE, axe_script
from tests.browser import rest_pointer_on, serve, wait_for, wait_for_charts

PAIR = (REFERENCE_BUSINESS, REFERENCE_SOURCE)
CONFIDENCE = 0.5  # the page's default threshold

# Each shown tile of one side: its image name, the text of its label, its picture's state.
TILES_JS = """
const list = document.getElementById(arguments[0]);
if (!list || list.closest('[hidden]')) { return null; }
return Array.from(list.querySelectorAll(':scope > .gallery-tile')).map(tile => {
  const img = tile.querySelector('img');
  return {image: tile.dataset.image, text: tile.innerText, tabindex: tile.tabIndex,
          alt: img ? img.alt : null, loading: img ? img.loading : null, loaded: Boolean(img && img.complete && img.naturalWidth > 0),
          placeholder: Boolean(tile.querySelector('.gallery-placeholder'))};
});
"""
LINK_JS = """
const link = document.querySelector('#scatter-chart svg.hover-link');
return link && link.style.display !== 'none' ? link.querySelectorAll('circle').length : 0;
"""
# The middle of a feature's bar in the impact chart, from the centre of the chart's plot area.
BAR_OFFSET_JS = """
const gd = document.querySelector('#impact-chart .js-plotly-plot');
const fl = gd._fullLayout, t = gd._fullData[0], i = Array.from(t.y).indexOf(arguments[0]);
const drag = gd.querySelector('.nsewdrag');
const box = drag.getBoundingClientRect();
return {x: fl.xaxis.l2p(t.x[i] / 2) - box.width / 2, y: fl.yaxis.l2p(i) - box.height / 2};
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on the demo data, whose first load stores a drawn thumbnail for every image."""
    path = tmp_path_factory.mktemp("gallery") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    load_demo(store)
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


def _tiles(driver, side):
    return driver.execute_script(TILES_JS, ids.gallery_id(side, "tiles"))


def _expected(store, feature, side, offset=0):
    frame = feature_gallery(store.dataset(*PAIR), feature, CONFIDENCE, side)
    return frame, list(frame["image"].iloc[offset : offset + PAGE_SIZE])


def _open(driver, url, query):
    driver.get(f"{url.rstrip('/')}/?business=Reference%202018&source=vision{query}")
    wait_for_charts(driver)


def _shows(driver, side, names):
    tiles = _tiles(driver, side)
    return tiles if tiles is not None and [t["image"] for t in tiles] == names else None


def _choose(driver, mode):
    label = driver.find_element("css selector", f"#{ids.GALLERY_SIDE} input[value='{mode}'] + label")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", label)
    label.click()


def test_feature_in_the_url_shows_its_images_by_ctr_with_their_pictures(driver, live):
    url, store = live
    frame, names = _expected(store, "text", "with")
    _open(driver, url, "&feature=text")
    wait_for(lambda: _shows(driver, "with", names), message="the tiles of text, highest CTR first")
    card = driver.find_element("id", ids.GALLERY_CARD)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start', behavior: 'instant'})", card)
    tiles = wait_for(
        lambda: (lambda t: t if sum(x["loaded"] for x in t) >= 12 else None)(_tiles(driver, "with")),
        message="12 loaded thumbnails",
    )
    ctrs = list(frame["ctr"].iloc[: len(tiles)])
    assert ctrs == sorted(ctrs, reverse=True) and len(tiles) == min(PAGE_SIZE, len(frame))
    # The first 24 pictures are fetched as soon as they are drawn, the rest as they scroll into view.
    assert len(tiles) > 24 and [t["loading"] for t in tiles] == ["eager"] * 24 + ["lazy"] * (len(tiles) - 24)
    # Each tile's label holds its CTR and confidence as the API computes them.
    for tile, ctr, conf in zip(tiles, ctrs, frame["confidence"]):
        assert f"CTR {ctr * 100:.2f}%" in tile["text"] and f"confidence {conf:.2f}" in tile["text"]
        assert tile["alt"] == tile["image"] and not tile["placeholder"]
    assert _tiles(driver, "without") is None  # the other side stays hidden
    # Each name of up to 80 characters shows whole, on at most four lines (the reference names
    # share "imgcontent." and differ in their middle and end; a one-line ellipsis showed only
    # the shared start). Longer ones end in an ellipsis; the tile's title holds the whole name.
    clipped = driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' .gallery-name'))"
        ".filter(n => n.textContent.length <= 80)"
        ".filter(n => n.scrollHeight > n.clientHeight + 1 || n.scrollWidth > n.clientWidth + 1)"
        ".map(n => [n.textContent, n.scrollHeight, n.clientHeight, n.clientWidth]);",
        ids.gallery_id("with", "tiles"),
    )
    assert clipped == []
    heading = driver.find_element("id", ids.gallery_id("with", "heading")).text
    average = frame["ctr"].mean() * 100  # the summary's avg_ctr_with under the page's default mean weighting
    assert heading == f"With text: {len(frame)} images, average CTR {average:.2f}%, highest first"
    assert driver.find_element("id", ids.gallery_id("with", "range")).text == f"1–{PAGE_SIZE} of {len(frame)}"
    assert "feature=text" in driver.current_url
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_switch_shows_the_images_without_it_or_both_and_pages_through_them(driver, live):
    url, store = live
    _open(driver, url, "&feature=poster")
    _, with_names = _expected(store, "poster", "with")
    wait_for(lambda: _shows(driver, "with", with_names), message="the images with poster")
    frame, without_names = _expected(store, "poster", "without")
    _choose(driver, "without")
    wait_for(lambda: _shows(driver, "without", without_names), message="the images without poster")
    assert _tiles(driver, "with") is None
    _choose(driver, "both")
    wait_for(lambda: _shows(driver, "with", with_names) and _shows(driver, "without", without_names), message="both")
    assert len(frame) > PAGE_SIZE  # the without side has a second page
    nxt = driver.find_element("id", ids.gallery_id("without", "next"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", nxt)
    nxt.click()
    _, second = _expected(store, "poster", "without", PAGE_SIZE)
    wait_for(lambda: _shows(driver, "without", second), message="the second page")
    assert _shows(driver, "with", with_names)  # the other side stays on its page
    shown = driver.find_element("id", ids.gallery_id("without", "range")).text
    assert shown == f"{PAGE_SIZE + 1}–{min(2 * PAGE_SIZE, len(frame))} of {len(frame)}"
    assert driver.find_element("id", ids.gallery_id("without", "prev")).is_enabled()


def test_clicking_a_bar_opens_that_features_gallery(driver, live):
    url, store = live
    _open(driver, url, "")
    _, names = _expected(store, "headwear", "with")
    chart = driver.find_element("id", ids.IMPACT)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", chart)
    offset = driver.execute_script(BAR_OFFSET_JS, "headwear")
    drag = driver.find_element("css selector", f"#{ids.IMPACT} .nsewdrag")
    ActionChains(driver).move_to_element_with_offset(drag, int(offset["x"]), int(offset["y"])).click().perform()
    wait_for(lambda: _shows(driver, "with", names), message="the images with headwear")
    wait_for(lambda: "feature=headwear" in driver.current_url, message="the URL to keep the feature")


def test_tiles_are_reached_and_moved_through_by_keyboard_and_link_the_scatter(driver, live):
    url, store = live
    _, names = _expected(store, "text", "with")
    _open(driver, url, "&feature=text")
    wait_for(lambda: _shows(driver, "with", names), message="the tiles")
    assert [t["tabindex"] for t in _tiles(driver, "with")][:3] == [0, -1, -1]  # one tab stop per grid
    last_radio = driver.find_element("css selector", f"#{ids.GALLERY_SIDE} input[value='both']")
    driver.execute_script("arguments[0].focus()", last_radio)
    ActionChains(driver).send_keys(Keys.TAB).perform()
    active = driver.switch_to.active_element
    assert active.get_attribute("data-image") == names[0]
    wait_for(lambda: driver.execute_script(LINK_JS) > 0, message="the scatter link of the focused tile")
    assert names[0] in driver.find_element("id", ids.HOVER_CARD).text
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    assert driver.switch_to.active_element.get_attribute("data-image") == names[1]
    wait_for(lambda: names[1] in driver.find_element("id", ids.HOVER_CARD).text, message="the link to follow")
    across = driver.execute_script(
        "const t = document.querySelectorAll('#' + arguments[0] + ' > .gallery-tile');"
        "return Array.from(t).filter(x => x.offsetTop === t[0].offsetTop).length;",
        ids.gallery_id("with", "tiles"),
    )
    ActionChains(driver).send_keys(Keys.ARROW_DOWN).perform()
    assert driver.switch_to.active_element.get_attribute("data-image") == names[1 + across]
    ActionChains(driver).send_keys(Keys.END).perform()
    assert driver.switch_to.active_element.get_attribute("data-image") == names[-1]
    # The pointer on another tile links that one while it rests there.
    hovered = driver.find_element("css selector", f"#{ids.gallery_id('with', 'tiles')} > [data-image='{names[2]}']")
    rest_pointer_on(driver, hovered, away=driver.find_element("id", ids.GALLERY_SIDE))
    wait_for(lambda: names[2] in driver.find_element("id", ids.HOVER_CARD).text, message="the hovered tile's link")
    # Tab leaves the grid for the pager, and focus elsewhere ends the link.
    ActionChains(driver).send_keys(Keys.TAB).perform()
    assert driver.switch_to.active_element.get_attribute("data-image") is None
    wait_for(lambda: driver.execute_script(LINK_JS) == 0, message="the link to end")


def test_axe_core_finds_no_serious_violation_in_the_gallery(driver, live):
    from axe_selenium_python import Axe

    url, store = live
    _open(driver, url, "&feature=text")
    _, names = _expected(store, "text", "with")
    wait_for(lambda: _shows(driver, "with", names), message="the tiles")
    _choose(driver, "both")
    wait_for(lambda: _tiles(driver, "without"), message="both sides")
    axe = Axe(driver, script_url=axe_script())
    axe.inject()
    results = axe.run(context={"include": [[f"#{ids.GALLERY_CARD}"]]})
    severe = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in results["violations"] if v["impact"] in SEVERE]
    assert severe == []


@pytest.fixture(scope="module")
def live_markup(tmp_path_factory):
    """A dataset whose feature and image names read like HTML; half the images have a thumbnail."""
    import numpy as np
    import pandas as pd

    from data.batches import FeatureBatch
    from tests.helpers import load_frame

    path = tmp_path_factory.mktemp("gallery-markup") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    rng = np.random.default_rng(42)
    frame = pd.DataFrame(np.where(rng.random((30, 2)) < 0.5, 0.9, 0.0), columns=["<b>bold</b>", "plain"])
    frame.insert(0, "ctr", 0.01 + rng.random(30) * 0.01)
    frame.insert(0, "image_name", [f'<img src=x onerror="window.__owned=1">_{i}' for i in range(30)])
    load_frame(store, frame, "Markup & Co", "vision")
    pictured = list(frame["image_name"][::2])
    store.put_thumbnails("Markup & Co", "vision", demo_thumbnails(FeatureBatch.from_wide(frame), pictured))
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store
    store.close()


def test_names_like_markup_show_as_text_in_tiles_and_placeholders(driver, live_markup):
    from urllib.parse import quote

    url, store = live_markup
    driver.get(
        f"{url.rstrip('/')}/?business={quote('Markup & Co')}&source=vision&min_pct=0&feature=" + quote("<b>bold</b>")
    )
    wait_for_charts(driver)
    names = list(feature_gallery(store.dataset("Markup & Co", "vision"), "<b>bold</b>", CONFIDENCE)["image"])
    tiles = wait_for(lambda: _shows(driver, "with", names), message="the tiles")
    assert driver.find_element("id", ids.GALLERY_TITLE).text == "Images of <b>bold</b>"
    stored = set(store.thumbnail_tags("Markup & Co", "vision"))
    for tile in tiles:
        assert tile["image"] in tile["text"]  # the name as text
        assert tile["placeholder"] is (tile["image"] not in stored)
        assert tile["alt"] == (tile["image"] if tile["image"] in stored else None)
    # Only the pictures' own <img>s exist in the gallery: no name became an element.
    assert (
        driver.execute_script(
            "return document.querySelectorAll('#gallery-card img:not(.gallery-img), #gallery-card b').length"
        )
        == 0
    )
    assert driver.execute_script("return window.__owned === undefined")
