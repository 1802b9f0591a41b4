"""The verdict panel and the page's answer columns, and the contradictions they once had with the rest."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import figures
from dashboard.page import ids, views
from dashboard.page.adjusted import cooccurrence_rows
from dashboard.page.callbacks import answer_outputs
from dashboard.page.compute import compute_view
from dashboard.page.controls import sparsity_text
from dashboard.page.drift import UNCHANGED, compute_drift, table_rows_with_drift
from dashboard.page.layout import INDEX_STRING, page
from dashboard.page.selection import build_options
from dashboard.page.verdict import ROWS_SHOWN, chart_texts, verdict_groups, verdict_panel
from dashboard.page.views import CURRENT_BUILD
from data.analysis import feature_summary
from data.demo import DEMO_BUSINESS, DEMO_SOURCE, demo_build
from data.filters import Filters

ASSETS = Path(__file__).resolve().parent.parent / "dashboard" / "page" / "assets"


def _summary(rows):
    """A small summary frame: (feature, impact, q, low_n, avg_ctr_without), with the answer's columns
    as ``feature_summary`` sets them (verdict from q < 0.05 and the sign, the FCR interval the per-test one)."""
    frame = pd.DataFrame(rows, columns=["feature", "impact", "q_value", "low_n", "avg_ctr_without"])
    frame["ci_low"], frame["ci_high"] = frame["impact"] - 0.001, frame["impact"] + 0.001
    frame["n_with"] = 20
    called = frame["q_value"] < 0.05
    frame["verdict"] = np.where(
        frame["low_n"], "too few images", np.where(called, np.where(frame["impact"] > 0, "helps", "hurts"), "unclear")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["lift_pct"] = np.where(
            frame["avg_ctr_without"] > 0, 100 * frame["impact"] / frame["avg_ctr_without"], np.nan
        )
    frame["ci_low_fcr"], frame["ci_high_fcr"] = frame["ci_low"], frame["ci_high"]
    return frame


@pytest.fixture
def demo_store(store):
    batch, ctr = demo_build()
    store.add_build(DEMO_BUSINESS, DEMO_SOURCE, batch)
    store.replace_ctr(DEMO_BUSINESS, DEMO_SOURCE, ctr)
    return store


def _text(component) -> str:
    """Every string in a component tree (what the browser shows as text)."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_a_summary_without_the_answer_columns_is_refused_by_name():
    summary = _summary([("a", 0.002, 0.01, False, 0.01), ("b", -0.003, 0.001, False, 0.01)])
    older = summary.drop(columns=["verdict", "ci_high_fcr"])  # e.g. a frame from elsewhere
    for call in (verdict_panel, verdict_groups, views.table_rows):
        with pytest.raises(ValueError, match=r"lacks the columns verdict, ci_high_fcr: .*feature_summary"):
            call(older)
    with pytest.raises(ValueError, match=r"lacks the column lift_pct:"):
        views.table_rows(summary.drop(columns=["lift_pct"]))
    # A summary from the analysis has them, and is taken as it is.
    assert views.require_answer_columns(summary) is summary
    groups = verdict_groups(summary)
    assert (list(groups.helps["feature"]), list(groups.hurts["feature"])) == (["a"], ["b"])


def test_evidence_order_puts_clear_gains_on_top_and_clear_losses_at_the_bottom():
    summary = _summary(
        [
            ("big_unclear", 0.009, 0.5, False, 0.01),
            ("helps_weak", 0.001, 0.04, False, 0.01),
            ("helps_strong", 0.002, 0.001, False, 0.01),
            ("untested", np.nan, np.nan, True, 0.01),
            ("hurts_strong", -0.002, 0.001, False, 0.01),
            ("hurts_weak", -0.008, 0.03, False, 0.01),
        ]
    )
    order = list(views.evidence_order(summary)["feature"])
    assert order == ["helps_strong", "helps_weak", "big_unclear", "untested", "hurts_weak", "hurts_strong"]


def test_verdict_panel_names_every_significant_feature_ranked_by_evidence(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.0)
    groups = verdict_groups(summary)
    assert groups.significant  # the reference data has answers
    assert list(groups.helps["q_value"]) == sorted(groups.helps["q_value"])
    text = _text(verdict_panel(summary))
    for name in groups.significant:
        assert name in text
    # More than ROWS_SHOWN on a side: the rest are still named, each a button that selects it.
    many = _summary([(f"gain_{i}", 0.001 * (i + 1), 0.001 * (i + 1), False, 0.01) for i in range(ROWS_SHOWN + 4)])
    panel = verdict_panel(many)
    assert len(verdict_groups(many).helps) > ROWS_SHOWN
    text = _text(panel)
    for name in many["feature"]:
        assert name in text


def test_verdict_panel_prints_signs_with_the_typographic_minus(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.0)
    text = _text(verdict_panel(summary))
    assert figures.MINUS in text
    assert not re.search(r"(?<![\w])-\d", text)  # no hyphen-minus before a number


def test_scripts_print_signs_with_the_typographic_minus():
    script = (ASSETS / "dashboard.js").read_text()
    assert '? "+" : "-"' not in script and ': "-")' not in script
    assert 'var MINUS = "\\u2212"' in script


def test_chart_texts_state_each_charts_verdict_in_words(demo_store):
    view = compute_view(demo_store, DEMO_BUSINESS, DEMO_SOURCE, CURRENT_BUILD, Filters(confidence=0.5, min_pct=2))
    texts = chart_texts(view.table_summary, view.summary, view.overall_ctr)
    helps = view.summary.loc[view.summary["verdict"] == "helps", "feature"]
    assert all(name in texts["impact"] for name in helps)
    assert "Helps:" in texts["impact"] and "Hurts:" in texts["impact"]
    assert f"{view.overall_ctr * 100:.2f}%" in texts["scatter"]


def test_travels_with_shows_the_tables_q_under_the_prevalence_filter(demo_store):
    """The panel's q once came from BH over every feature, ignoring the prevalence filter."""
    filters = Filters(confidence=0.5, min_pct=10, max_pct=60, min_n=5)
    state = views.ViewState(DEMO_BUSINESS, DEMO_SOURCE, filters=filters)
    view = compute_view(demo_store, DEMO_BUSINESS, DEMO_SOURCE, CURRENT_BUILD, filters)
    every = feature_summary(demo_store.dataset(DEMO_BUSINESS, DEMO_SOURCE), confidence=0.5, min_n=5)
    table = {row["feature"]: row["q_value"] for row in view.table}
    differs = 0
    for feature in list(table)[:8]:
        numbers = cooccurrence_rows(demo_store, state, feature)
        assert numbers["q_value"] == pytest.approx(table[feature], nan_ok=True)
        differs += numbers["q_value"] != every.set_index("feature").at[feature, "q_value"]
    assert differs  # the filter changes q: the old panel would have shown another number


def test_unchanged_features_read_the_same_in_the_compare_table(store):
    from data.batches import FeatureBatch
    from tests.test_drift_page import PAIR, _frames

    first, _, ctr = _frames()
    a = store.add_build(*PAIR, FeatureBatch.from_wide(first, exclude=()))["build_id"]
    b = store.add_build(*PAIR, FeatureBatch.from_wide(first, exclude=()))["build_id"]
    store.replace_ctr(*PAIR, ctr)
    filters = Filters(confidence=0.5, min_n=105)
    view = compute_view(store, *PAIR, CURRENT_BUILD, filters)
    drift = compute_drift(store, *PAIR, b, a, filters)
    rows = table_rows_with_drift(view.table, drift)
    # Every feature kept its images and labels: each reads "unchanged", large groups and small alike.
    assert rows and all(r[UNCHANGED] and r["drift_ci_low"] is None and r["drift_ci_high"] is None for r in rows)
    assert any(r["n_with"] < 105 for r in rows) and any(r["n_with"] >= 105 for r in rows)


def test_prevalence_default_is_shown_beside_the_slider():
    assert sparsity_text(views.DEFAULT_SPARSITY) == f"{views.DEFAULT_SPARSITY[0]}–{views.DEFAULT_SPARSITY[1]} %"
    layout = page(pd.DataFrame(columns=["business", "source", "images_with_ctr"]), [], "v", 60)
    assert sparsity_text(views.DEFAULT_SPARSITY) in _text(layout)


def test_build_options_tell_same_day_builds_apart_by_time_and_tag():
    builds = pd.DataFrame(
        {
            "build_id": [3, 2],
            "received_at": ["2026-11-26T14:05:00+00:00", "2026-11-26T09:41:00+00:00"],
            "build_tag": ["nightly-88", None],
        }
    )
    labels = [o["label"] for o in build_options(builds)]
    assert labels == ["#3 · 26 Nov 14:05 · nightly-88 · current", "#2 · 26 Nov 09:41"]


def test_build_options_read_the_stored_tag(store):
    batch, _ = demo_build(n_images=30, n_features=6)
    store.add_build("acme", "vision", batch, tag="jenkins-7")
    assert "jenkins-7" in build_options(store.builds("acme", "vision"))[0]["label"]


def test_empty_store_hides_the_evidence_and_never_says_no_feature_passes(store):
    view = compute_view(store, None, None)
    shown = answer_outputs(view)
    assert shown["evidence"] == {"display": "none"} and shown["verdict_card"] == {"display": "none"}
    assert "No data yet" in _text(shown["notice"])
    layout = page(store.datasets(), [], "v", 60)
    text = _text(layout)
    assert "No feature passes" not in text and "No data yet" not in text  # the pickers say "–", not a clipped phrase


def test_page_names_its_language_and_hands_the_scripts_their_ids():
    assert '<html lang="en">' in INDEX_STRING
    assert f'"{ids.SCATTER}"' in INDEX_STRING and "window.CREATIVE_IDS" in INDEX_STRING
