"""The signed-in page in headless Chromium: a token for one business shows that business and nothing of another.

Skipped when Chromium or chromedriver is missing, unless CI is set: then they fail instead.
"""

from __future__ import annotations

import json
import time

import pytest

from dashboard.factory import create_app
from dashboard.page import ids
from data.settings import Settings
from data.tokens import READ, encode_businesses, new_token, token_hash
from tests.axe import severe_violations
from tests.browser import serve, wait_for, wait_for_charts
from tests.helpers import load_frame

MINE, THEIRS, SOURCE = "Acme Outfitters", "Bravo Shoes", "vision"
SECRET_FEATURE = "bravoonly"  # every feature of the other business starts with it

# Records every Dash request body and answer, installed before each page loads.
RECORDER_JS = """
window.__traffic = [];
const originalFetch = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : input.url;
  const sent = (init && init.body) || '';
  return originalFetch.apply(this, arguments).then(response => {
    if (url.includes('_dash-')) {
      response.clone().text().then(text => window.__traffic.push({url: url, sent: String(sent), text: text}));
    }
    return response;
  });
};
"""


@pytest.fixture(scope="module")
def driver(driver):
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER_JS})
    return driver


@pytest.fixture
def live(tmp_path, reference_frame):
    settings = Settings.from_env(
        {}, database_url=f"sqlite:///{tmp_path / 'f.db'}", demo_data=False, access="tokens", poll_seconds=1
    )
    app = create_app(settings)
    store = app.server.extensions["feature_store"]
    load_frame(store, reference_frame, MINE, SOURCE)
    theirs = reference_frame.rename(columns=lambda c: c if c in ("image_name", "ctr") else f"{SECRET_FEATURE}_{c}")
    load_frame(store, theirs, THEIRS, SOURCE)
    token = new_token()
    store.create_token("acme-analyst", READ, encode_businesses([MINE]), token_hash(token))
    with serve(app) as url:
        yield url, store, token


def _traffic(driver) -> list[dict]:
    return driver.execute_script("return window.__traffic || [];")


def test_signed_in_page_shows_its_business_and_nothing_of_another(driver, live):
    url, store, token = live
    driver.get(url + "?" + "business=Bravo%20Shoes&source=vision")
    field = wait_for(lambda: driver.find_elements("css selector", "input[name=token]"), message="sign-in form")[0]
    assert field.get_attribute("type") == "password"
    label = driver.find_element("css selector", "label[for=token]")
    assert label.text.strip() and field.get_attribute("id") == "token"
    assert MINE not in driver.page_source and SECRET_FEATURE not in driver.page_source
    assert driver.execute_script("return window.__traffic.length") == 0  # no Dash request without a session
    assert severe_violations(driver) == []
    field.send_keys("cat_mistyped")
    driver.find_element("css selector", "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements("id", "token-error"), message="the refusal's message")
    assert severe_violations(driver) == []
    field = driver.find_element("css selector", "input[name=token]")
    assert field.get_attribute("aria-invalid") == "true"

    field.send_keys(token)
    driver.find_element("css selector", "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements("id", ids.STATUS), message="the page after sign-in")
    wait_for_charts(driver)
    wait_for(lambda: MINE in driver.find_element("id", ids.STATUS).text, message="the signed-in business")
    assert "Signed in as" in driver.page_source and "acme-analyst" in driver.page_source
    bar, topbar = (driver.find_element("css selector", c) for c in (".sign-out", ".topbar"))
    # The bar reads as the top bar's first line: its colours, directly above it.
    assert bar.value_of_css_property("background-color") == topbar.value_of_css_property("background-color")
    assert bar.rect["y"] + bar.rect["height"] <= topbar.rect["y"] + 1
    options = driver.execute_script(
        "return Array.from(document.querySelectorAll('#" + ids.BUSINESS + " *')).map(e => e.textContent).join(' ');"
    )
    assert THEIRS not in options
    figures = json.dumps(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => [gd.data, gd.layout]);"
        )
    )
    assert "text" in figures and SECRET_FEATURE not in figures  # its own features drawn, none of the other's
    assert THEIRS not in driver.page_source and SECRET_FEATURE not in driver.page_source
    traffic = _traffic(driver)
    assert any("_dash-layout" in t["url"] for t in traffic) and any("update-component" in t["url"] for t in traffic)
    for t in traffic:
        assert THEIRS not in t["text"] and SECRET_FEATURE not in t["text"], t["url"]
        assert THEIRS not in t["sent"] and SECRET_FEATURE not in t["sent"], t["url"]

    driver.find_element("id", "sign-out").click()
    wait_for(lambda: driver.find_elements("css selector", "input[name=token]"), message="sign-in form after sign-out")
    status = driver.execute_script(
        "const r = new XMLHttpRequest(); r.open('GET', '/_dash-layout', false); r.send(); return r.status;"
    )
    assert status == 401
    assert MINE not in driver.page_source


def _sign_in(driver, url, token):
    driver.get(url)
    field = wait_for(lambda: driver.find_elements("css selector", "input[name=token]"), message="sign-in form")[0]
    field.send_keys(token)
    driver.find_element("css selector", "form button[type=submit]").click()
    wait_for_charts(driver)


def test_revoking_the_token_ends_the_open_page_at_its_next_request(driver, live):
    url, store, token = live
    _sign_in(driver, url, token)
    assert MINE in driver.find_element("id", ids.STATUS).text
    store.revoke_token("acme-analyst")
    # The next poll is refused; the page reloads into the sign-in form and shows no data.
    wait_for(lambda: driver.find_elements("css selector", "input[name=token]"), message="sign-in form after revocation")
    assert MINE not in driver.page_source and not driver.find_elements("id", ids.STATUS)
    assert driver.get_cookie("creatives_session") is None


def test_reloading_the_sign_in_address_shows_the_form_and_stays(driver, live):
    """After a refused token the address is /login: loading it again gives the form, with no reload loop."""
    url, store, token = live
    driver.get(url.rstrip("/") + "/login")
    field = wait_for(lambda: driver.find_elements("css selector", "input[name=token]"), message="sign-in form")[0]
    driver.execute_script("window.__same_document = true;")
    time.sleep(2)  # a page shell would have asked for its layout, been refused and reloaded by now
    assert driver.execute_script("return window.__same_document === true && window.__traffic.length === 0;")
    field.send_keys(token)
    driver.find_element("css selector", "form button[type=submit]").click()
    wait_for_charts(driver)
    assert MINE in driver.find_element("id", ids.STATUS).text
