"""The page's marginal / adjusted switch and co-occurrence panel: URL state, computed views, callbacks."""

from __future__ import annotations

import json
import math
import re
import threading

import numpy as np
import pytest

from dashboard.factory import create_app
from dashboard.page import ids, views
from dashboard.page.adjusted import (
    ADJUSTED_COMPUTING,
    ADJUSTED_DEFERRED,
    PANEL_HINT,
    cooccurrence_panel,
    cooccurrence_rows,
    hovered_feature,
    table_column_defs,
)
from dashboard.page.callbacks import chart_outputs
from dashboard.page.compute import compute_view
from dashboard.page.dependencies import READ_CONTROLS, VIEW_CONTROLS
from dashboard.page.table import TABLE_COLUMN_DEFS
from dashboard.page.views import DEFAULT_FILTERS
from data import adjusted as adjusted_module
from data import adjusted_cost
from data.adjusted import adjusted_summary, cooccurring
from data.adjusted_cost import QUICK_FIT_SECONDS, fit_seconds
from data.analysis import feature_summary
from data.batches import FeatureBatch, ctr_frame
from data.demo import DEMO_BUSINESS, DEMO_SOURCE, demo_build

PAIR = ("Reference 2018", "vision")


@pytest.fixture
def reference_store(store, reference_frame):
    store.add_build(*PAIR, FeatureBatch.from_wide(reference_frame))
    store.replace_ctr(*PAIR, ctr_frame(reference_frame["image_name"], reference_frame["ctr"]))
    return store


@pytest.fixture
def demo_store(store):
    batch, ctr = demo_build()
    store.add_build(DEMO_BUSINESS, DEMO_SOURCE, batch)
    store.replace_ctr(DEMO_BUSINESS, DEMO_SOURCE, ctr)
    return store


@pytest.mark.parametrize(
    "raw, adjusted", [("1", True), ("0", False), ("", False), ("yes", False), (None, False), ("2", False)]
)
def test_parse_view_reads_adjusted(raw, adjusted):
    args = {} if raw is None else {"adjusted": raw}
    assert views.parse_view(args).adjusted is adjusted


def test_adjusted_round_trips_through_the_url_and_the_controls():
    state = views.ViewState("a", "b", adjusted=True)
    assert views.parse_view(views.query_from_url("http://x/" + views.view_query(state))) == state
    controls = views.state_from_controls("a", "b", "current", 0.5, [2, 100], "mean", "25", None, "adjusted")
    assert controls.adjusted is True
    marginal = views.state_from_controls("a", "b", "current", 0.5, [2, 100], "mean", "25", None, "marginal")
    assert marginal.adjusted is False


def test_compute_view_adjusted_charts_and_tables_the_adjusted_impact(reference_store, reference_dataset):
    view = compute_view(
        reference_store, *PAIR, filters=DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100), adjusted=True
    )
    expected = adjusted_summary(reference_dataset, confidence=0.0).set_index("feature")
    bars = view.impact.data[0]
    features = list(bars.y)
    np.testing.assert_allclose(np.asarray(bars.x, dtype=float), expected.loc[features, "adjusted_impact"] * 100)
    # Ranked by the evidence of the adjusted impact: its q and sign.
    swapped = expected.reset_index().assign(
        impact=expected["adjusted_impact"].to_numpy(), q_value=expected["adjusted_q_value"].to_numpy()
    )
    assert features == list(views.evidence_order(swapped)["feature"])
    rows = {row["feature"]: row for row in view.table}
    assert rows["skyblue"]["impact"] == expected.loc["skyblue", "adjusted_impact"]
    assert rows["skyblue"]["q_value"] == expected.loc["skyblue", "adjusted_q_value"]
    # Significance follows the adjusted q: text's marginal q is 0.015, its adjusted q 0.053.
    assert rows["text"]["result"] == "not significant"
    assert expected.loc["text", "q_value"] < 0.05 <= expected.loc["text", "adjusted_q_value"]
    assert "impact adjusted for co-occurring features" in view.shown_text
    marginal = compute_view(
        reference_store, *PAIR, filters=DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100)
    )
    assert {row["feature"]: row["impact"] for row in marginal.table}["skyblue"] == expected.loc["skyblue", "impact"]


def test_compute_view_adjusted_under_impression_weighting_shows_marginal_with_a_notice(store):
    batch, ctr = demo_build(n_images=120, n_features=40)
    store.add_build("acme", "vision", batch)
    store.replace_ctr("acme", "vision", ctr)
    view = compute_view(
        store,
        "acme",
        "vision",
        filters=DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100, weighting="impressions"),
        adjusted=True,
    )
    assert view.notice["title"] == "Adjusted impact is computed for the mean of images only"
    assert "adjusted" not in view.shown_text


def test_cooccurrence_rows_show_font_travelling_with_text(demo_store):
    state = views.ViewState(DEMO_BUSINESS, DEMO_SOURCE, filters=DEFAULT_FILTERS.replace(confidence=0.5))
    numbers = cooccurrence_rows(demo_store, state, "font")
    first = numbers["controls"][0]
    assert first["feature"] == "text" and first["phi"] > 0.6
    # Both impacts of text, as the summary of every feature gives them.
    dataset = demo_store.dataset(DEMO_BUSINESS, DEMO_SOURCE)
    every = adjusted_summary(dataset, confidence=0.5).set_index("feature")
    assert first["impact"] == every.at["text", "impact"]
    assert first["adjusted_impact"] == every.at["text", "adjusted_impact"]
    # font's own marginal impact is text's, mostly; adjusted, it is not significant.
    assert numbers["q_value"] < 0.05 < numbers["adjusted_q_value"]
    phis = [abs(row["phi"]) for row in numbers["controls"]]
    assert phis == sorted(phis, reverse=True)


def test_cooccurrence_rows_none_without_a_feature_or_data(demo_store, store):
    state = views.ViewState(DEMO_BUSINESS, DEMO_SOURCE, filters=DEFAULT_FILTERS.replace(confidence=0.5))
    assert cooccurrence_rows(demo_store, state, "no such feature") is None
    assert cooccurrence_rows(demo_store, state, None) is None
    assert cooccurrence_rows(demo_store, views.ViewState("x", "y"), "font") is None


def test_cooccurrence_panel_lists_at_most_the_strongest_controls():
    controls = [
        {"feature": f"f{k}", "phi": 0.5 - k / 100, "impact": 0.001, "adjusted_impact": np.nan, "dropped": None}
        for k in range(20)
    ]
    numbers = {"feature": "a<b", "impact": 0.002, "q_value": 0.01, "adjusted_impact": 0.001, "adjusted_q_value": 0.2}
    text = str(cooccurrence_panel({**numbers, "controls": controls}))
    assert "f11" in text and "f12" not in text and "and 8 more" in text
    assert "+0.200 pp" in text and "+0.100 pp" in text
    assert PANEL_HINT in str(cooccurrence_panel(None))


@pytest.fixture
def large_store(store):
    batch, ctr = demo_build(n_images=4000, n_features=500)
    store.add_build("acme", "vision", batch)
    store.replace_ctr("acme", "vision", ctr)
    return store


def test_cooccurrence_rows_in_the_marginal_view_of_a_large_build_fit_nothing(large_store, fits):
    """At a size where the fit of every feature is slow, selecting a feature must not start it."""
    filters = DEFAULT_FILTERS.replace(confidence=0.5)
    dataset = large_store.dataset("acme", "vision")
    assert fit_seconds(dataset, 0.5, min_n=filters.min_n) > QUICK_FIT_SECONDS
    view = compute_view(large_store, "acme", "vision", filters=filters)
    table = {row["feature"]: row for row in view.table}
    state = views.ViewState("acme", "vision", filters=filters)
    feature = next(f for f in table if len(cooccurring(dataset, f, filters)) >= 2)
    numbers = cooccurrence_rows(large_store, state, feature)
    assert fits == [] and len(large_store.cache.adjusted_fits) == 0
    assert numbers["adjusted"] == "deferred"
    # The table's impact and q: the same BH family.
    assert numbers["impact"] == table[feature]["impact"] and numbers["q_value"] == table[feature]["q_value"]
    assert math.isnan(numbers["adjusted_impact"]) and math.isnan(numbers["adjusted_q_value"])
    # The controls and their marginal impacts are all there.
    every = feature_summary(dataset, filters.replace(min_pct=0, max_pct=100)).set_index("feature")
    expected = cooccurring(dataset, feature, filters)
    assert [r["feature"] for r in numbers["controls"]] == list(
        expected.reindex(expected["phi"].abs().sort_values(ascending=False).index)["feature"]
    )
    for row in numbers["controls"]:
        assert row["impact"] == every.at[row["feature"], "impact"]
    text = str(cooccurrence_panel(numbers))
    assert ADJUSTED_DEFERRED in text and "nan" not in text.lower()


def test_panel_callback_on_a_large_build_answers_without_fitting(settings, large_store, fits):
    client = create_app(settings, large_store).server.test_client()
    response = _panel_request(client, "acme", "vision", [{"feature": "text"}])
    assert response.status_code == 200
    assert "switch Impact to Adjusted" in response.get_data(as_text=True)
    assert fits == []


@pytest.mark.parametrize("selected, shown", [([{"feature": "font"}], True), (None, False)])
def test_panel_callback_follows_a_redrawn_view_for_the_selected_feature(settings, demo_store, selected, shown):
    """The view drawn again (another mode, threshold or filter) refreshes the selected feature's panel."""
    client = create_app(settings, demo_store).server.test_client()
    response = _panel_request(
        client,
        DEMO_BUSINESS,
        DEMO_SOURCE,
        selected,
        redraw=1,
        changed=(ids.COOCCURRENCE_REDRAW, "data"),
    )
    if shown:
        assert response.status_code == 200
        text = json.dumps(response.get_json(), ensure_ascii=False)
        assert '"font"' in text and re.search(r"· adjusted [+\u2212]\d", text)
    else:
        # Nothing selected: the panel stays as it is (no_update: the answer holds no output).
        assert response.status_code == 204 or ids.COOCCURRENCE not in response.get_json().get("response", {})


def test_cooccurrence_rows_show_the_adjusted_numbers_once_the_adjusted_view_fitted_them(
    reference_store, reference_dataset, fits, monkeypatch
):
    monkeypatch.setattr(adjusted_cost, "QUICK_FIT_SECONDS", 0.0)  # every fit counts as slow
    filters = DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100)
    state = views.ViewState(*PAIR, filters=filters)
    before = cooccurrence_rows(reference_store, state, "skyblue")
    assert before["adjusted"] == "deferred" and fits == []
    compute_view(reference_store, *PAIR, filters=filters, adjusted=True)  # the adjusted view is drawn
    assert len(fits) == 1
    after = cooccurrence_rows(reference_store, state, "skyblue")
    assert len(fits) == 1 and after["adjusted"] == "shown"
    expected = adjusted_summary(reference_dataset, confidence=0.0).set_index("feature")
    assert after["adjusted_impact"] == expected.at["skyblue", "adjusted_impact"]
    assert after["adjusted_q_value"] == expected.at["skyblue", "adjusted_q_value"]
    text = next(row for row in after["controls"] if row["feature"] == "text")
    assert text["adjusted_impact"] == expected.at["text", "adjusted_impact"]
    assert after["q_value"] == before["q_value"] and after["controls"][0]["phi"] == before["controls"][0]["phi"]
    assert ADJUSTED_DEFERRED not in str(cooccurrence_panel(after))


def test_cooccurrence_rows_say_the_adjusted_numbers_are_on_their_way_while_the_view_fits_them(
    reference_store, monkeypatch
):
    monkeypatch.setattr(adjusted_cost, "QUICK_FIT_SECONDS", 0.0)
    started, release = threading.Event(), threading.Event()
    real = adjusted_module._fit

    def slow(*args):
        started.set()
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(adjusted_module, "_fit", slow)
    filters = DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100)
    state = views.ViewState(*PAIR, filters=filters)
    view = threading.Thread(
        target=compute_view, args=(reference_store, *PAIR), kwargs={"filters": filters, "adjusted": True}
    )
    view.start()
    try:
        assert started.wait(30)
        numbers = cooccurrence_rows(reference_store, state, "skyblue")
        assert numbers["adjusted"] == "computing"
        assert ADJUSTED_COMPUTING in str(cooccurrence_panel(numbers))
    finally:
        release.set()
        view.join(60)
    assert cooccurrence_rows(reference_store, state, "skyblue")["adjusted"] == "shown"


def test_cooccurrence_rows_in_the_adjusted_view_fit_as_the_view_does(reference_store, fits, monkeypatch):
    monkeypatch.setattr(adjusted_cost, "QUICK_FIT_SECONDS", 0.0)
    filters = DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100)
    numbers = cooccurrence_rows(reference_store, views.ViewState(*PAIR, filters=filters, adjusted=True), "skyblue")
    assert numbers["adjusted"] == "shown" and len(fits) == 1 and math.isfinite(numbers["adjusted_impact"])


def test_table_column_defs_name_the_adjusted_columns():
    assert table_column_defs(TABLE_COLUMN_DEFS, False) is TABLE_COLUMN_DEFS
    adjusted = table_column_defs(TABLE_COLUMN_DEFS, True)
    headers = [c["headerName"] for c in adjusted]
    assert "Adjusted impact" in headers and "q (adjusted)" in headers
    assert [c["field"] for c in adjusted] == [c["field"] for c in TABLE_COLUMN_DEFS]


def test_hovered_feature_reads_the_bar_category():
    assert hovered_feature({"points": [{"y": "text", "x": 0.1}]}) == "text"
    assert hovered_feature(None) is None
    assert hovered_feature({"points": []}) is None


def _post(client, outputs, inputs, state=(), changed=None):
    """A Dash update of ``outputs``; ``changed`` the input that fired it (by default the first)."""
    multi = len(outputs) > 1
    body = {
        "output": (
            "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs)) if multi else "{}.{}".format(*outputs[0])
        ),
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if multi
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{(changed or inputs[0])[0]}.{(changed or inputs[0])[1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    return client.post("/_dash-update-component", json=body)


def _panel_request(client, business, source, selected, redraw=None, changed=None):
    """The Travels-with panel's callback for ``selected`` rows, the view at the page's defaults."""
    values = {"business": business, "source": source, "build": "current", "confidence": 0.5}
    values |= {"sparsity": [2, 100], "weighting": "mean", "shown": "25"}
    return _post(
        client,
        [(ids.COOCCURRENCE, "children")],
        [
            (ids.TABLE, "selectedRows", selected),
            (ids.AVG_WITH, "hoverData", None),
            (ids.IMPACT, "hoverData", None),
            (ids.COOCCURRENCE_REDRAW, "data", redraw),
        ],
        [(*VIEW_CONTROLS[name], values.get(name)) for name in READ_CONTROLS],
        changed=changed,
    )


def test_panel_callback_follows_the_table_selection(settings, demo_store):
    client = create_app(settings, demo_store).server.test_client()
    response = _panel_request(client, DEMO_BUSINESS, DEMO_SOURCE, [{"feature": "font"}])
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert '"font"' in text and '"text"' in text and "Travels with" in text


@pytest.mark.parametrize(
    "weighting, title, notice",
    [
        ("mean", "Adjusted impact", None),
        ("impressions", "Impact", "Adjusted impact is computed for the mean of images only"),
    ],
)
def test_impact_heading_names_the_impact_shown_not_the_one_asked(demo_store, weighting, title, notice):
    """Under impression weighting the adjusted impact is not computed: the heading says "Impact",
    as the notice says the marginal impact is shown (they once disagreed)."""
    view = compute_view(
        demo_store,
        DEMO_BUSINESS,
        DEMO_SOURCE,
        filters=DEFAULT_FILTERS.replace(confidence=0.5, min_pct=2, max_pct=100, weighting=weighting),
        adjusted=True,
    )
    shown = chart_outputs(view)
    assert shown["impact_title"] == title
    assert ("adjusted impact" in shown["bar_hint"]) is (weighting == "mean")
    assert (view.notice or {}).get("title") == notice
    assert view.adjusted is (weighting == "mean")
