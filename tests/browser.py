"""Headless Chromium for the page tests: find the browser, start a driver, serve an app in a thread.

Also usable by hand: ``python -m tests.browser http://127.0.0.1:8050/ /tmp/page.png`` saves a
screenshot once the four charts have drawn.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1600, 1400)
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
CHART_IDS = ("scatter-chart", "impact-chart", "avg-with-chart")


def find_chromium() -> str | None:
    """The Chromium binary on PATH, if any."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_chromedriver() -> str | None:
    """The chromedriver binary, if any."""
    if Path(CHROMEDRIVER).exists():
        return CHROMEDRIVER
    return shutil.which("chromedriver")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not find_chromium():
        return "chromium is not installed"
    if not find_chromedriver():
        return "chromedriver is not installed"
    return None


def chrome_driver(download_dir: str | Path | None = None):
    """A headless Chromium driver that records the console and the network (performance log).

    With ``download_dir``, downloads are saved there without asking.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium()
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    if download_dir is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(download_dir),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        )
    driver = webdriver.Chrome(service=Service(find_chromedriver()), options=options)
    driver.set_page_load_timeout(60)
    return driver


def browser_or_skip(**kwargs):
    """``chrome_driver(**kwargs)`` for a test; without a browser it skips, or fails when CI is set."""
    reason = missing_browser()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run under CI, but {reason}")
        pytest.skip(reason)
    return chrome_driver(**kwargs)


def wait_for_download(folder: str | Path, timeout: float = 20.0) -> Path:
    """The one finished file in ``folder``.

    Chromium writes *.crdownload, and briefly a hidden .org.chromium.Chromium.* file, until it is done.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = list(Path(folder).iterdir())
        partial = [p for p in names if p.name.endswith((".crdownload", ".tmp")) or p.name.startswith(".")]
        files = [p for p in names if p not in partial]
        if files and not partial:
            if len(files) > 1:
                raise AssertionError(f"expected one download, got {sorted(p.name for p in files)}")
            return files[0]
        time.sleep(0.2)
    raise TimeoutError(f"no download finished in {folder} within {timeout:g} s")


@contextmanager
def serve_address(app, host: str = "127.0.0.1"):
    """Serve a Dash app's Flask server on a free loopback port in a background thread; yield (host, port)."""
    from werkzeug.serving import make_server

    server = make_server(host, 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host, server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def serve(app, host: str = "127.0.0.1"):
    """Serve a Dash app as ``serve_address`` does; yield its base URL."""
    with serve_address(app, host) as (bound, port):
        yield f"http://{bound}:{port}/"


def wait_for(predicate, *, timeout: float = 30.0, message: str = "condition", interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


STEADY_RECT_JS = """
const r = arguments[0].getBoundingClientRect();
return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)];
"""


def rest_pointer_on(driver, element, *, away) -> None:
    """Move the mouse onto ``element`` as a user would: bring it into view, wait until it stops
    moving (smooth scrolling and late layout shift it), start from the ``away`` element so the
    move crosses into ``element`` and fires a fresh ``mouseover``, then rest there."""
    from selenium.webdriver.common.action_chains import ActionChains

    into_view = "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})"
    driver.execute_script(into_view, away)
    ActionChains(driver).move_to_element(away).perform()
    driver.execute_script(into_view, element)
    last = [None]

    def steady():
        rect = driver.execute_script(STEADY_RECT_JS, element)
        still, last[0] = rect == last[0], rect
        return still

    wait_for(steady, message="the element to stop moving", interval=0.15)
    ActionChains(driver).move_to_element(element).perform()


CHARTS_DRAWN_JS = """
const ids = arguments[0];
return ids.every(id => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return gd && gd._fullLayout && gd.data !== undefined;
}) && !document.querySelector('[data-dash-is-loading="true"]');
"""


def wait_for_charts(driver, timeout: float = 30.0, ids=CHART_IDS) -> None:
    """Wait until all four charts have drawn and no callback is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(CHARTS_DRAWN_JS, list(ids)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"charts did not draw within {timeout:g} s")


def screenshot(url: str, path: str, *, full_page: bool = True) -> None:
    """Save a PNG of the page at ``url`` once its charts have drawn."""
    driver = chrome_driver()
    try:
        driver.get(url)
        wait_for_charts(driver)
        time.sleep(1.0)
        if full_page:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WINDOW[0], max(WINDOW[1], height + 40))
            time.sleep(0.5)
        driver.save_screenshot(path)
        for entry in driver.get_log("browser"):
            print(entry["level"], entry["message"], file=sys.stderr)
    finally:
        driver.quit()


def _unfilter(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """One PNG scanline with its filter undone (PNG spec, section 9)."""
    if kind == 0:
        return line
    if kind == 1:  # Sub: a running sum along each channel, modulo 256
        return line.reshape(-1, bpp).cumsum(axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:  # Up
        return line + prev
    out, up = bytearray(line.tobytes()), prev.tobytes()
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:  # Average
            out[i] = (out[i] + ((a + b) >> 1)) & 0xFF
            continue
        c = up[i - bpp] if i >= bpp else 0  # Paeth
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return np.frombuffer(bytes(out), dtype=np.uint8)


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of an 8-bit RGB or RGBA PNG (as Chromium's screenshots are) as a (height, width, channels) array."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}")
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, 1 + width * bpp)
    pixels = np.zeros((height, width * bpp), dtype=np.uint8)
    prev = pixels[0]
    for row in range(height):
        pixels[row] = prev = _unfilter(int(raw[row, 0]), raw[row, 1:], prev, bpp)
    return pixels.reshape(height, width, bpp)


if __name__ == "__main__":
    screenshot(sys.argv[1], sys.argv[2])
