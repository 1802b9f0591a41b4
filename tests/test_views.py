"""A view as plain data: URL round trips, fallbacks, file names, CSV contents and table rows."""

from __future__ import annotations

import io
import json
import random
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from dashboard.api import downloads
from dashboard.page import views
from dashboard.page.views import (
    CURRENT_BUILD,
    DEFAULT_FILTERS,
    ViewState,
    history_entry,
    parse_view,
    query_from_url,
    view_query,
)
from data.analysis import POINT_COLUMNS, SUMMARY_COLUMNS, Dataset, feature_summary, scatter_points
from data.filters import Filters

ODD_NAMES = [
    "Northwind Outfitters",
    'Café "Zürich" & Söhne',
    "A+B=C; 100% / #1?",
    "O'Brien's  ads",
    "東京 広告",
    "emoji 🎯 shop",
    "  leading and trailing  ",
]


def _url(state: ViewState) -> str:
    return "http://dash.example:8050/" + view_query(state)


# -- the URL ---------------------------------------------------------------------------------


def test_parse_view_without_a_query_gives_the_defaults():
    assert parse_view({}) == ViewState()
    assert ViewState().sparsity == [2, 100] and ViewState().build == CURRENT_BUILD


@pytest.mark.parametrize("business", ODD_NAMES)
@pytest.mark.parametrize("source", ["vision", "web ads/v2", "ça&va"])
def test_view_query_round_trips_odd_names(business, source):
    state = ViewState(
        business,
        source,
        7,
        filters=DEFAULT_FILTERS.replace(confidence=0.37, min_pct=5, max_pct=60, weighting="impressions"),
        shown=10,
    )
    assert parse_view(query_from_url(_url(state))) == state
    # Flask's request.args reads the query the same way.
    from flask import Flask, request

    with Flask(__name__).test_request_context("/" + view_query(state)):
        assert parse_view(request.args) == state


def test_view_query_round_trips_through_parse_qs_lists():
    state = ViewState(
        'Café "Zürich" & Söhne',
        "vision",
        CURRENT_BUILD,
        filters=DEFAULT_FILTERS.replace(confidence=0.0, min_pct=0, max_pct=100, weighting="mean"),
        shown=0,
    )
    parsed = parse_qs(urlsplit(_url(state)).query, keep_blank_values=True)
    assert parse_view(parsed) == state


def test_view_query_writes_every_value_and_the_build_only_when_pinned():
    query = view_query(ViewState("Northwind Outfitters", "vision"))
    assert query == (
        "?business=Northwind%20Outfitters&source=vision&confidence=0.50&min_pct=2&max_pct=100&weighting=mean&shown=25"
        "&adjusted=0"
    )
    assert view_query(ViewState("a", "b", adjusted=True)).endswith("&adjusted=1")
    assert "build_id=3" in view_query(ViewState("a", "b", build=3))
    assert "shown=all" in view_query(ViewState("a", "b", shown=0))


@pytest.mark.parametrize(
    "args, expected",
    [
        ({"confidence": "abc"}, {}),
        ({"confidence": "nan"}, {}),
        ({"confidence": "1.5"}, {}),
        ({"confidence": "-0.1"}, {}),
        ({"confidence": "0.333"}, {"confidence": 0.33}),
        ({"confidence": "1"}, {"confidence": 1.0}),
        ({"min_pct": "80", "max_pct": "10"}, {}),
        ({"min_pct": "-5"}, {}),
        ({"max_pct": "250"}, {}),
        ({"min_pct": "4.6", "max_pct": "60"}, {"min_pct": 5, "max_pct": 60}),
        ({"weighting": "bogus"}, {}),
        ({"weighting": "impressions"}, {"weighting": "impressions"}),
        ({"shown": "7"}, {}),
        ({"shown": "ALL"}, {"shown": 0}),
        ({"shown": "50"}, {"shown": 50}),
        ({"build_id": "x"}, {}),
        ({"build_id": "-3"}, {}),
        ({"build_id": "0"}, {}),
        ({"build_id": "١٢"}, {}),  # Arabic-Indic digits are digits to str.isdigit, not build ids
        ({"build_id": " 12 "}, {"build": 12}),
        ({"business": "", "source": ""}, {}),
    ],
)
def test_parse_view_falls_back_to_defaults_value_by_value(args, expected):
    filters = {name: expected.pop(name) for name in Filters.names() if name in expected}
    assert parse_view(args) == ViewState(**expected, filters=DEFAULT_FILTERS.replace(**filters))


def _field(state_or_query, name: str):
    """A field of a ViewState or SummaryQuery, the filters' ones by their own names."""
    holder = state_or_query.filters if name in Filters.names() else state_or_query
    return getattr(holder, name)


RAW_VALUES = ["", " ", "0", "1", "2", "0.5", "0.333", " 0.25 ", "1.5", "-1", "nan", "inf", "1e-1", "abc", "12", " 12 "]
RAW_VALUES += ["١٢", "99.6", "100", "250", "mean", "impressions", "median", "Mean"]


@pytest.mark.parametrize(
    "name, fixed",
    [
        ("build_id", {}),
        ("confidence", {}),
        ("min_pct", {"max_pct": "100"}),
        ("max_pct", {"min_pct": "0"}),
        ("weighting", {}),
    ],
)
def test_the_page_accepts_exactly_the_values_the_api_accepts(name, fixed):
    """The lenient page parser and the strict API parser come from one spec: same types and ranges."""
    from dashboard.api.routes import QueryError, SummaryQuery

    for raw in RAW_VALUES:
        args = {"business": "b", "source": "s", **fixed, name: raw}
        try:
            api = _field(SummaryQuery.from_args(args), name)
        except QueryError:
            api = None
        page = parse_view(args)
        field = {"build_id": "build"}.get(name, name)
        if api is None or not raw.strip():
            assert _field(page, field) == _field(ViewState(), field), (name, raw)
        elif name == "confidence":
            assert page.filters.confidence == round(api, 2), raw
        elif name in ("min_pct", "max_pct"):
            assert _field(page, field) == int(round(api)), raw
        else:
            assert _field(page, field) == api, raw


def test_the_shown_picker_offers_the_choices_the_url_accepts():
    from dashboard.page.controls import SHOWN_OPTIONS

    for option in SHOWN_OPTIONS:
        query = "all" if option["value"] == "0" else option["value"]
        assert str(parse_view({"shown": query}).shown) == option["value"]
    assert [o["label"] for o in SHOWN_OPTIONS] == [
        "Top & bottom 10",
        "Top & bottom 25",
        "Top & bottom 50",
        "All features",
    ]


def test_query_from_url_takes_the_first_of_repeated_values():
    assert query_from_url("http://x/?a=1&a=2&b=%20c") == {"a": "1", "b": " c"}
    assert query_from_url("http://x/") == {}
    assert query_from_url(None) == {}


def test_state_from_controls_reads_what_the_browser_sends():
    state = views.state_from_controls("acme", "vision", "current", 0.37000000000000005, [5, 60], "impressions", "0")
    assert state == ViewState(
        "acme",
        "vision",
        CURRENT_BUILD,
        filters=DEFAULT_FILTERS.replace(confidence=0.37, min_pct=5, max_pct=60, weighting="impressions"),
        shown=0,
    )
    assert views.state_from_controls("acme", "vision", 4, None, None, None, None) == ViewState("acme", "vision", 4)


def test_weighting_falls_back_to_the_mean_without_counts():
    state = ViewState("a", "b", filters=DEFAULT_FILTERS.replace(weighting="impressions"))
    assert views.with_weighting_available(state, False).filters.weighting == "mean"
    assert views.with_weighting_available(state, True) == state


@pytest.mark.parametrize("has_counts", [True, False])
def test_weighting_options_disable_impressions_without_counts(has_counts):
    options = {o["value"]: o for o in views.weighting_options(has_counts)}
    assert options["impressions"].get("disabled") is (not has_counts)
    assert not options["mean"].get("disabled")
    assert [o["label"] for o in views.weighting_options(has_counts)] == ["Mean of images", "Impression-weighted"]
    help_text, tip = views.weighting_help(has_counts), views.weighting_tip(has_counts)
    assert ("without clicks and impressions" in help_text) is (not has_counts)
    assert ("without clicks and impressions" in tip) is (not has_counts)


def test_weighting_help_without_a_dataset_blames_no_dataset():
    """With nothing selected the toggle is off, and the text does not speak of "this dataset"."""
    options = {o["value"]: o for o in views.weighting_options(None)}
    assert options["impressions"]["disabled"] is True
    for text in (views.weighting_help(None), views.weighting_tip(None)):
        assert "this dataset" not in text and "clicks and impressions" in text
    state = ViewState(None, None, filters=DEFAULT_FILTERS.replace(weighting="impressions"))
    assert views.with_weighting_available(state, None).filters.weighting == "mean"


# -- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, slug",
    [
        ("Northwind Outfitters", "northwind-outfitters"),
        ('Café "Zürich" & Söhne', "cafe-zurich-sohne"),
        ("../../etc/passwd", "etc-passwd"),
        ("C:\\Users\\x.csv", "c-users-x-csv"),
        ("東京 広告", "東京-広告"),
        ("A_B  c", "a-b-c"),
        ('"" / ..', "dataset"),
        ("", "dataset"),
        ("x" * 200, "x" * 60),
    ],
)
def test_slugify_keeps_letters_and_digits_only(text, slug):
    assert downloads.slugify(text) == slug


def test_download_filename_names_dataset_build_and_filters():
    filters = Filters(confidence=0.5, min_pct=2, max_pct=100)
    name = downloads.download_filename("Northwind Outfitters", "vision", 2, filters, "summary")
    assert name == "northwind-outfitters_vision_build-2_conf-0.50_prev-2-100_mean_summary.csv"
    filters = Filters(confidence=0.3, min_pct=0, max_pct=37.5, weighting="impressions")
    odd = downloads.download_filename('O\'Brien "&" Co', "web/ads", 14, filters, "points")
    assert odd == "o-brien-co_web-ads_build-14_conf-0.30_prev-0-37.5_impressions_points.csv"


# -- CSV and table contents ------------------------------------------------------------------


def _synthetic(n_images=80, n_features=12, seed=42, counts=True) -> Dataset:
    rng = random.Random(seed)
    images = [f"img_{i}" for i in range(n_images)]
    conf = np.array(
        [[round(rng.random(), 4) if rng.random() < 0.4 else 0.0 for _ in range(n_features)] for _ in range(n_images)]
    )
    impressions = [rng.randint(200, 5000) for _ in images]
    # feat_1 doubles the CTR, so that some rows are significant.
    clicks = [int(n * (0.005 + rng.random() * 0.01) * (2 if conf[i, 1] > 0 else 1)) for i, n in enumerate(impressions)]
    ctr = pd.DataFrame({"image": images, "ctr": [c / n for c, n in zip(clicks, impressions)]})
    if counts:
        ctr = ctr.assign(clicks=clicks, impressions=impressions)
    features = [f'feat "{j}", ü' if j % 3 == 0 else f"feat_{j}" for j in range(n_features)]
    return Dataset.from_matrix(images, features, conf, ctr)


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
@pytest.mark.parametrize("confidence, low, high", [(0.0, 0, 100), (0.3, 5, 60), (0.9, 0, 100)])
def test_summary_csv_holds_feature_summary_exactly(weighting, confidence, low, high):
    summary = feature_summary(
        _synthetic(), confidence=confidence, min_pct=low, max_pct=high, weighting=weighting, min_n=5
    )
    back = pd.read_csv(io.StringIO(downloads.summary_csv(summary)), dtype={"feature": object})
    assert list(back.columns) == SUMMARY_COLUMNS
    pd.testing.assert_frame_equal(back, summary.reset_index(drop=True), check_exact=True, check_dtype=False)


def test_points_csv_holds_scatter_points_exactly():
    dataset = _synthetic()
    summary = feature_summary(dataset, confidence=0.3, min_pct=5, max_pct=60)
    points = scatter_points(dataset, confidence=0.3, features=summary["feature"])
    back = pd.read_csv(io.StringIO(downloads.points_csv(points)), dtype={"image": object, "feature": object})
    assert list(back.columns) == POINT_COLUMNS
    expected = points.assign(feature=points["feature"].astype(object))
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_dtype=False)


def test_table_rows_equal_the_summary():
    summary = feature_summary(_synthetic(n_images=40), confidence=0.2, min_pct=0, max_pct=100, min_n=12)
    assert summary["low_n"].any() and summary["significant"].any()
    rows = views.table_rows(summary)
    assert [r["feature"] for r in rows] == list(summary["feature"])
    for row, (_, expected) in zip(rows, summary.iterrows()):
        for column in views.TABLE_COLUMNS[:-1]:
            value = expected[column]
            if isinstance(value, float) and np.isnan(value):
                assert row[column] is None
            else:
                assert row[column] == value
        assert row["result"] == (
            "too few images" if expected["low_n"] else "significant" if expected["significant"] else "not significant"
        )
    assert views.table_rows(summary.iloc[:0]) == []


def test_table_style_grows_with_rows_up_to_a_limit():
    heights = [int(views.table_style(n)["height"].rstrip("px")) for n in (0, 6, 20, 500)]
    assert heights[0] == heights[1] - 3 * views.TABLE_ROW_PX < heights[2] == views.TABLE_MAX_PX == heights[3]


# -- CSV injection -----------------------------------------------------------------------------

HOSTILE_NAMES = [
    '=HYPERLINK("https://evil.example/","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-1+1",
    "\tleading tab",
    "\rleading CR",
    "bare\rCR inside",
    "line\nbreak",
    "-",
    "=",
]
PLAIN = ["-1", "+2.5", "-0.25e-3", "plain", "1e5", "a=b"]


def _hostile_dataset() -> Dataset:
    names = HOSTILE_NAMES + PLAIN
    images = [f"{name} img" if i % 2 else name for i, name in enumerate(names)]
    conf = np.eye(len(names))[:, : len(names)] * 0.9 + 0.05
    ctr = pd.DataFrame({"image": images, "ctr": np.linspace(0.01, 0.05, len(names))})
    return Dataset.from_matrix(images, names, conf, ctr)


def _cells(text: str) -> list[list[str]]:
    import csv

    return list(csv.reader(io.StringIO(text, newline="")))


def _starts_a_formula(cell: str) -> bool:
    return cell.startswith(downloads.FORMULA_STARTS) and not downloads._PLAIN_NUMBER.fullmatch(cell)


@pytest.mark.parametrize("kind", ["summary", "points"])
def test_csv_downloads_start_no_formula_and_keep_every_row(kind):
    dataset = _hostile_dataset()
    summary = feature_summary(dataset, confidence=0.1, min_pct=0, max_pct=100, min_n=2)
    if kind == "summary":
        text, names = downloads.summary_csv(summary), list(summary["feature"])
    else:
        points = scatter_points(dataset, confidence=0.1, features=summary["feature"])
        text, names = downloads.points_csv(points), list(points["image"]) + list(points["feature"])
    rows = _cells(text)
    width = len(rows[0])
    assert all(len(row) == width for row in rows)  # a CR or LF in a name splits no row
    assert len(rows) == 1 + (len(summary) if kind == "summary" else len(points))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if _starts_a_formula(cell)]
    for name in HOSTILE_NAMES:
        # kept and readable; neutralised when it starts like a formula
        assert ("'" + name if name[0] in "=+-@\t\r" else name) in cells
    for number in ("-1", "+2.5", "-0.25e-3"):
        assert number in cells  # plain numbers are left as they are
    assert {n for n in names if not _starts_a_formula(n)} <= set(cells)


def test_csv_quotes_cells_holding_cr_or_lf():
    text = downloads.points_csv(
        pd.DataFrame(
            {"image": ["a\rb", "c\nd", "e"], "feature": ["x", "y", "z"], "confidence": [1.0] * 3, "ctr": [0.1] * 3}
        )
    )
    assert '"a\rb"' in text and '"c\nd"' in text and text.endswith("\r\n")
    assert [row[0] for row in _cells(text)] == ["image", "a\rb", "c\nd", "e"]


@pytest.mark.parametrize(
    "cell, expected",
    [("=1+1", "'=1+1"), ("-1", "-1"), ("-1.5e3", "-1.5e3"), ("-x", "'-x"), ("+", "'+"), ("@", "'@"), ("a-b", "a-b")],
)
def test_csv_safe_cell_prefixes_formula_starts_except_plain_numbers(cell, expected):
    assert downloads.csv_safe_cell(cell) == expected


def test_history_entry_replaces_only_for_sliders():
    assert history_entry("?a", ["confidence.value"]) == {"search": "?a", "replace": True}
    assert history_entry("?a", ["confidence.value", "sparsity.value"])["replace"] is True
    assert history_entry("?a", ["confidence.value", "features-shown.value"])["replace"] is False
    assert history_entry("?a", [])["replace"] is False


def test_the_feature_column_is_as_wide_as_its_longest_name_within_bounds():
    from dashboard.page.table import FEATURE_PX, TABLE_COLUMN_DEFS, sized_columns

    def width(names):
        columns = sized_columns(TABLE_COLUMN_DEFS, [{"feature": n} for n in names])
        return next(c["minWidth"] for c in columns if c["field"] == "feature")

    assert width(["smile"]) == FEATURE_PX[0]  # short names: the least width
    assert FEATURE_PX[0] < width(["x" * 20, "smile"]) < width(["x" * 30]) < FEATURE_PX[1]
    assert width(["x" * 200]) == FEATURE_PX[1]
    assert width([]) == FEATURE_PX[0]
    assert TABLE_COLUMN_DEFS[0]["minWidth"] == FEATURE_PX[0]  # the shared definition is left as it was


def test_packed_rows_unpack_to_the_same_rows_with_every_double_exact():
    summary = feature_summary(_synthetic(n_images=40), confidence=0.2, min_pct=0, max_pct=100, min_n=12)
    rows = views.table_rows(summary)
    assert any(v is None for r in rows for v in r.values())  # NaN, sent as null
    packed = json.loads(json.dumps(views.packed_rows(rows)))  # as the browser gets it
    assert packed["columns"]["impact"]["dtype"] == "f8" and isinstance(packed["columns"]["feature"], list)
    assert isinstance(packed["columns"]["n_with"], list)  # whole numbers read shorter as JSON
    assert views.unpacked_rows(packed) == rows
    assert len(json.dumps(packed)) < 0.6 * len(json.dumps(rows))
    assert views.unpacked_rows(views.packed_rows([])) == []
