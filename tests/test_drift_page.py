"""The page's build comparison: compute_drift, the table's drift columns, URL state, and the picker in Chromium."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.factory import create_app
from dashboard.figures.drift import drift_figure, q_classes
from dashboard.page import ids
from dashboard.page.drift import (
    DRIFT_FIELDS,
    HIDDEN,
    compare_options,
    compute_drift,
    drift_outputs,
    table_columns,
    table_rows_with_drift,
)
from dashboard.page.table import TABLE_COLUMN_DEFS
from dashboard.page.views import DEFAULT_FILTERS, ViewState, parse_view, query_from_url, view_query
from data.batches import FeatureBatch, ctr_frame
from data.drift import feature_drift
from data.filters import Filters
from data.settings import Settings
from data.store import FeatureStore
from tests.browser import serve, wait_for, wait_for_charts

PAIR = ("Acme", "vision")
LABELS = [f"label_{j}" for j in range(8)]


def _frames(seed=5, n=300):
    """Build 1, build 2 (label_0 misses 40 % of its images; label_1 loses them all) and the CTRs."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(LABELS))) < 0.35
    conf = np.where(truth, rng.uniform(0.6, 1.0, truth.shape), 0.0)
    ctr = np.clip(0.01 * np.exp(rng.normal(0, 0.2, n)) * np.where(truth[:, 0], 0.4, 1.0), 0, 1)
    names = [f"img_{i:03d}" for i in range(n)]
    first = pd.DataFrame(conf, columns=LABELS).assign(image_name=names)
    second = first.copy()
    second.loc[truth[:, 0] & (rng.random(n) < 0.4), "label_0"] = 0.0
    second["label_1"] = 0.0
    return first, second, ctr_frame(names, ctr)


@pytest.fixture
def two_builds(store):
    first, second, ctr = _frames()
    a = store.add_build(*PAIR, FeatureBatch.from_wide(first, exclude=()))["build_id"]
    b = store.add_build(*PAIR, FeatureBatch.from_wide(second, exclude=()))["build_id"]
    store.replace_ctr(*PAIR, ctr)
    return store, a, b


def test_compute_drift_is_off_without_a_picked_build(two_builds):
    store, _, b = two_builds
    view = compute_drift(store, *PAIR, b, None, Filters(confidence=0.5))
    assert not view.on and view.drift is None
    figure, card, frame, note, rows, columns = drift_outputs(view, [{"feature": "x"}])
    assert card == HIDDEN and rows == [{"feature": "x"}] and columns == TABLE_COLUMN_DEFS


def test_compute_drift_charts_the_features_that_moved_sorted_by_change(two_builds):
    store, a, b = two_builds
    view = compute_drift(store, *PAIR, b, a, Filters(confidence=0.5), shown=0)
    expected = feature_drift(store.dataset(*PAIR, a), store.dataset(*PAIR, b), confidence=0.5)
    pd.testing.assert_frame_equal(view.drift, expected)
    moved = expected[expected["n_flipped"] > 0]
    assert set(moved["feature"]) == {"label_0", "label_1"}
    traces = view.figure.data
    ys = [y for t in traces for y in t.y]
    xs = {y: x for t in traces for y, x in zip(t.y, t.x)}
    assert sorted(ys) == sorted(moved.dropna(subset=["change"])["feature"])
    assert list(view.figure.layout.yaxis.categoryarray) == list(moved.dropna(subset=["change"])["feature"])
    for row in moved.dropna(subset=["change"]).itertuples():
        assert xs[row.feature] == pytest.approx(row.change * 100, rel=1e-12)
    assert "moved between build" in view.caption and "not charted" in view.caption
    assert view.note is None and view.shared_images == 300


def test_compute_drift_notes_builds_without_shared_images_or_ctr(store):
    first, _, ctr = _frames()
    other = first.assign(image_name=[f"new_{i}" for i in range(len(first))])
    a = store.add_build(*PAIR, FeatureBatch.from_wide(first, exclude=()))["build_id"]
    b = store.add_build(*PAIR, FeatureBatch.from_wide(other, exclude=()))["build_id"]
    no_ctr = compute_drift(store, *PAIR, b, a, Filters(confidence=0.5))
    assert "has a CTR" in no_ctr.note
    store.replace_ctr(*PAIR, pd.concat([ctr, ctr.assign(image=other["image_name"])], ignore_index=True))
    view = compute_drift(store, *PAIR, b, a, Filters(confidence=0.5))
    assert view.shared_images == 0 and "share no images" in view.note
    itself = compute_drift(store, *PAIR, b, b, Filters(confidence=0.5))
    assert "compared with itself" in itself.note and (itself.drift["change"] == 0).all()
    assert not itself.figure.data  # nothing moved: an empty chart that says so
    gone = compute_drift(store, *PAIR, b, 999, Filters(confidence=0.5))
    assert gone.on and gone.drift is None and "no longer stored" in gone.note


def test_table_rows_gain_the_drift_columns(two_builds):
    store, a, b = two_builds
    view = compute_drift(store, *PAIR, b, a, Filters(confidence=0.5))
    rows = table_rows_with_drift([{"feature": "label_0", "impact": 1.0}, {"feature": "nowhere"}], view)
    found = view.drift.set_index("feature").loc["label_0"]
    assert rows[0]["drift_change"] == found["change"] and rows[0]["drift_flipped"] == found["n_flipped"]
    assert rows[0]["impact"] == 1.0
    assert all(rows[1][field] is None for field in DRIFT_FIELDS.values())
    fields = [c["field"] for c in table_columns(view)]
    assert fields[: len(TABLE_COLUMN_DEFS)] == [c["field"] for c in TABLE_COLUMN_DEFS]
    assert set(DRIFT_FIELDS.values()) - {"drift_ci_high"} <= set(fields)


def test_compare_options_list_every_other_build():
    builds = pd.DataFrame(
        {
            "build_id": [9, 7, 4],
            "received_at": ["2026-11-26T02:21:49+00:00"] * 3,
            "build_tag": ["jenkins-12", None, None],
        }
    )
    options = compare_options(builds, 7)
    assert [o["value"] for o in options] == [9, 4]
    # Same-day builds are told apart by their time, and by their tag when they were sent one.
    assert [o["label"] for o in options] == ["#9 · 26 Nov 02:21 · jenkins-12", "#4 · 26 Nov 02:21"]


def test_drift_figure_colours_by_q_and_escapes_names():
    drift = pd.DataFrame(
        {
            "feature": ["<b>x</b>", "y", "z"],
            "change": [0.002, 0.0005, -0.001],
            "ci_low": [0.001, -0.001, np.nan],
            "ci_high": [0.003, 0.002, np.nan],
            "impact_from": [0.0, 0.0, 0.0],
            "impact_to": [0.002, 0.0005, -0.001],
            "p_value": [0.001, 0.4, np.nan],
            "q_value": [0.003, 0.4, np.nan],
            "n_flipped": [12, 3, 1],
            "low_n": [False, False, True],
            "significant": [True, False, False],
        }
    )
    assert q_classes(drift).tolist() == ["q < 0.01", "q ≥ 0.05", "too few images"]
    figure = drift_figure(drift)
    assert [t.name for t in figure.data] == ["q < 0.01", "q ≥ 0.05", "too few images"]
    assert "&lt;b&gt;x&lt;/b&gt;" in figure.data[0].hovertext[0] and "Images flipped: 12" in figure.data[0].hovertext[0]


@pytest.mark.parametrize("raw, expected", [("3", 3), ("0", None), ("-2", None), ("x", None), ("", None)])
def test_view_compare_build_round_trips_through_the_url(raw, expected):
    state = parse_view({"business": "Acme", "source": "vision", "compare_build": raw})
    assert state.compare == expected
    assert parse_view(query_from_url(view_query(state))) == state
    assert ("compare_build" in view_query(state)) == (expected is not None)


# -- in the browser ------------------------------------------------------------------------------

DRIFT_POINTS_JS = """
const gd = document.querySelector('#drift-chart .js-plotly-plot');
if (!gd || !gd._fullData) { return null; }
const out = [];
gd._fullData.forEach(t => (t.y || []).forEach((y, i) => out.push([y, t.x[i]])));
return out;
"""


@pytest.fixture(scope="module")
def live_builds(tmp_path_factory):
    path = tmp_path_factory.mktemp("drift") / "features.db"
    store = FeatureStore(f"sqlite:///{path}")
    first, second, ctr = _frames()
    a = store.add_build(*PAIR, FeatureBatch.from_wide(first, exclude=()))["build_id"]
    b = store.add_build(*PAIR, FeatureBatch.from_wide(second, exclude=()))["build_id"]
    store.replace_ctr(*PAIR, ctr)
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", demo_data=False, poll_seconds=3600)
    with serve(create_app(settings, store)) as url:
        yield url, store, a, b
    store.close()


def _wait_for(predicate, timeout=30.0, message="condition"):
    return wait_for(predicate, timeout=timeout, message=message)


def _expected_points(store, a, b, confidence=0.5):
    drift = feature_drift(
        store.dataset(*PAIR, a), store.dataset(*PAIR, b), confidence=confidence, min_pct=0, max_pct=100
    )
    moved = drift[(drift["n_flipped"] > 0) & drift["change"].notna()]
    return moved


def test_compare_picker_draws_the_drift_chart_and_table_columns(driver, live_builds):
    from selenium.webdriver.common.action_chains import ActionChains

    url, store, a, b = live_builds
    driver.get(url + "?business=Acme&source=vision&min_pct=0")
    wait_for_charts(driver, 60)
    card = driver.find_element("id", ids.DRIFT_CARD)
    assert not card.is_displayed()  # off by default
    assert "compare_build" not in driver.current_url

    driver.find_element("id", ids.COMPARE).click()
    label = f"#{a} · "
    option = _wait_for(
        lambda: next((o for o in driver.find_elements("css selector", "[role=option]") if label in o.text), None),
        message="the compare option",
    )
    option.click()

    moved = _expected_points(store, a, b)
    _wait_for(lambda: card.is_displayed(), message="the drift card")
    points = _wait_for(lambda: driver.execute_script(DRIFT_POINTS_JS), message="the drift chart")
    assert {y: x for y, x in points} == pytest.approx({r.feature: r.change * 100 for r in moved.itertuples()})
    _wait_for(lambda: f"compare_build={a}" in driver.current_url, message="the URL")
    assert parse_view(query_from_url(driver.current_url)) == ViewState(
        "Acme", "vision", filters=DEFAULT_FILTERS.replace(min_pct=0), compare=a
    )

    # Through the grid's API: columns scrolled out of view are not in the DOM.
    headers = driver.execute_script(
        "return dash_ag_grid.getApi('summary-table').getColumns().map(c => c.getColDef().headerName);"
    )
    assert "Change" in headers and "Images flipped" in headers
    rows = driver.execute_script(
        "const api = dash_ag_grid.getApi('summary-table'); const r = [];api.forEachNode(n => r.push(n.data)); return r;"
    )
    by_feature = moved.set_index("feature")
    label_0 = next(r for r in rows if r["feature"] == "label_0")
    assert label_0["drift_change"] == by_feature.loc["label_0", "change"]
    assert label_0["drift_flipped"] == by_feature.loc["label_0", "n_flipped"]

    point = driver.find_elements("css selector", "#drift-chart .scatterlayer .point")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", point)
    ActionChains(driver).move_to_element(point).perform()
    hover = _wait_for(
        lambda: " ".join(e.text for e in driver.find_elements("css selector", "#drift-chart .hovertext")),
        message="the hover label",
    )
    assert "Images flipped:" in hover and "Change of impact" in hover

    # The shared URL opens with the comparison on.
    driver.get(driver.current_url)
    wait_for_charts(driver, 60)
    _wait_for(lambda: driver.find_element("id", ids.DRIFT_CARD).is_displayed(), message="the reopened comparison")
    assert _wait_for(lambda: driver.execute_script(DRIFT_POINTS_JS), message="the reopened chart")
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
