"""Filters: one checked value for the threshold, prevalence range, min_n and weighting, parsed once from a query."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard.api.params import PARAMS, ParamError, QueryError, parse_lenient, parse_strict
from data.adjusted import adjusted_summary, cooccurring
from data.analysis import feature_summary, scatter_points
from data.drift import feature_drift
from data.filters import FilterError, Filters, as_filters

NAMES = ("confidence", "min_pct", "max_pct", "min_n", "weighting")
WINDOW = ("date_from", "date_to")


def test_filters_default_to_every_feature_at_threshold_zero():
    assert Filters() == Filters(confidence=0.0, min_pct=0.0, max_pct=100.0, min_n=5, weighting="mean")
    assert Filters.names() == NAMES + WINDOW
    assert Filters().window is None


def test_filters_check_and_normalise_their_window():
    from datetime import date

    filters = Filters(date_from=date(2026, 3, 1), date_to="2026-03-31")
    assert (filters.date_from, filters.date_to) == ("2026-03-01", "2026-03-31")
    assert filters.window_fields() == {"from": "2026-03-01", "to": "2026-03-31"}
    assert Filters(date_to="2026-03-31").window.as_dict() == {"from": None, "to": "2026-03-31"}
    with pytest.raises(FilterError) as refused:
        Filters(date_from="2026-04-01", date_to="2026-03-31", confidence=2)
    assert (
        len(refused.value.problems) == 2
        and "from (2026-04-01) must not be after to (2026-03-31)" in refused.value.problems
    )
    with pytest.raises(FilterError, match="from must be a date written YYYY-MM-DD"):
        Filters(date_from="2026-3-1")


def test_filters_normalise_numbers_to_their_types():
    filters = Filters(confidence=1, min_pct=np.int64(2), max_pct=np.float64(60), min_n=7.0, weighting="impressions")
    assert filters == Filters(confidence=1.0, min_pct=2.0, max_pct=60.0, min_n=7, weighting="impressions")
    assert [type(getattr(filters, name)) for name in NAMES] == [float, float, float, int, str]
    assert hash(filters) == hash(Filters(confidence=1.0, min_pct=2, max_pct=60, min_n=7, weighting="impressions"))


def test_filters_refuse_bad_values_naming_every_problem():
    with pytest.raises(FilterError) as caught:
        Filters(confidence=1.5, min_pct=-1, max_pct=200, min_n=1, weighting="median")
    assert caught.value.problems == [
        "confidence must be a number in [0, 1], got 1.5",
        "min_pct must be a number in [0, 100], got -1.0",
        "max_pct must be a number in [0, 100], got 200.0",
        "min_n must be a whole number >= 2, got 1",
        "weighting must be one of mean, impressions, got 'median'",
    ]
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"confidence": math.nan}, "confidence must be a number in [0, 1], got nan"),
        ({"confidence": math.inf}, "confidence must be a number in [0, 1], got inf"),
        ({"confidence": "0.5"}, "confidence must be a number in [0, 1], got '0.5'"),
        ({"confidence": True}, "confidence must be a number in [0, 1], got True"),
        ({"confidence": None}, "confidence must be a number in [0, 1], got None"),
        ({"min_n": 2.5}, "min_n must be a whole number >= 2, got 2.5"),
        ({"min_n": True}, "min_n must be a whole number >= 2, got True"),
        ({"min_n": "5"}, "min_n must be a whole number >= 2, got '5'"),
        ({"weighting": "Mean"}, "weighting must be one of mean, impressions, got 'Mean'"),
        ({"min_pct": 60, "max_pct": 10}, "min_pct (60) must not exceed max_pct (10)"),
    ],
)
def test_filters_refuse_what_the_api_refuses(changes, problem):
    with pytest.raises(FilterError) as caught:
        Filters(**changes)
    assert caught.value.problems == [problem]


RAW = ["0", "1", "2", "0.5", "0.333", " 0.25 ", "1.5", "-1", "-0", "nan", "inf", "-inf", "1e-1", "99.6", "100", "250"]
RAW += ["3", "3.0", "1e400"]


@pytest.mark.parametrize("name", ["confidence", "min_pct", "max_pct", "min_n"])
def test_filters_accept_exactly_the_numbers_the_api_accepts(name):
    """A value the API's parser refuses, Filters refuses too (and the reverse), with the same value when accepted."""
    fixed = {"min_pct": "0"} if name == "max_pct" else {"max_pct": "100"} if name == "min_pct" else {}
    for raw in RAW:
        try:
            api = parse_strict({**fixed, name: raw}, list(fixed) + [name])["filters"]
        except QueryError:
            api = None
        number = float(raw)
        try:
            direct = Filters(**{k: float(v) for k, v in fixed.items()}, **{name: number})
        except FilterError:
            direct = None
        if name == "min_n" and api is None and direct is not None:
            # The query wants digits: "3.0" names the whole number 3 to a notebook, not to a URL.
            assert raw.strip() == "3.0", raw
            continue
        assert (api is None) == (direct is None), raw
        if api is not None:
            assert api == direct, raw


def test_parsing_gives_one_filters_value_with_the_callers_defaults():
    values = parse_strict(
        {"business": "b", "confidence": "0.25", "weighting": "impressions"}, ["business", *NAMES], defaults={"min_n": 9}
    )
    assert values == {"business": "b", "filters": Filters(confidence=0.25, min_n=9, weighting="impressions")}
    with pytest.raises(QueryError) as caught:
        parse_strict({"min_pct": "60", "max_pct": "10", "confidence": "x"}, NAMES)
    assert caught.value.problems == [
        "confidence must be a number in [0, 1], got 'x'",
        "min_pct (60) must not exceed max_pct (10)",
    ]
    assert "filters" not in parse_strict({"business": "b", "source": "s"}, ["business", "source"])


def test_lenient_parsing_reads_controls_numbers_as_numbers_and_falls_back_value_by_value():
    page = {name: PARAMS[name].page_default for name in ("confidence", "min_pct", "max_pct", "weighting")}
    values = parse_lenient(
        {"confidence": 0.37, "min_pct": 5, "max_pct": 60, "weighting": "impressions"},
        NAMES[:3] + ("weighting",),
        defaults={"min_n": 7},
    )
    assert values == {"filters": Filters(confidence=0.37, min_pct=5, max_pct=60, min_n=7, weighting="impressions")}
    bad = parse_lenient({"confidence": 1.5, "min_pct": True, "max_pct": [], "weighting": 3}, NAMES[:3] + ("weighting",))
    assert bad == {"filters": Filters(**page)}
    crossed = parse_lenient({"confidence": "0.4", "min_pct": 80, "max_pct": 10}, NAMES[:3])
    assert crossed["filters"] == Filters(confidence=0.4, min_pct=page["min_pct"], max_pct=page["max_pct"])


def test_a_controls_number_is_checked_by_the_same_rules_as_its_text():
    confidence, build = PARAMS["confidence"], PARAMS["build_id"]
    assert confidence.parse(0.3333333333333333) == 0.3333333333333333 == confidence.parse("0.3333333333333333")
    assert build.parse(12) == 12 == build.parse("12")
    for param, value in ((confidence, 1.5), (confidence, math.nan), (build, 0), (build, 2.5), (confidence, True)):
        with pytest.raises(ParamError):
            param.parse(value)


def test_as_filters_takes_a_filters_and_keywords_the_keywords_winning():
    base = Filters(confidence=0.2, min_pct=5)
    assert as_filters() == Filters()
    assert as_filters(base) is base
    assert as_filters(base, confidence=0.5) == Filters(confidence=0.5, min_pct=5)
    with pytest.raises(TypeError, match="filters must be a Filters, got float 0.5; pass confidence=..."):
        as_filters(0.5)
    with pytest.raises(TypeError):
        as_filters(base, threshold=0.5)
    with pytest.raises(FilterError):
        as_filters(base, max_pct=1)  # below min_pct
    assert base.available_for(False) is base
    weighted = base.replace(weighting="impressions")
    assert weighted.available_for(True) is weighted and weighted.available_for(None) == base


def test_the_analysis_reads_a_filters_value_and_keywords_alike(reference_dataset):
    filters = Filters(confidence=0.5, min_pct=1, max_pct=60, min_n=4)
    keywords = {"confidence": 0.5, "min_pct": 1, "max_pct": 60, "min_n": 4}
    summary = feature_summary(reference_dataset, filters)
    pd.testing.assert_frame_equal(summary, feature_summary(reference_dataset, **keywords))
    pd.testing.assert_frame_equal(summary, feature_summary(reference_dataset, Filters(confidence=0.1), **keywords))
    assert summary["prevalence_pct"].between(1, 60).all() and len(summary) < len(feature_summary(reference_dataset))
    pd.testing.assert_frame_equal(
        scatter_points(reference_dataset, filters, summary["feature"]),
        scatter_points(reference_dataset, features=summary["feature"], confidence=0.5),
    )
    pd.testing.assert_frame_equal(
        adjusted_summary(reference_dataset, filters), adjusted_summary(reference_dataset, **keywords)
    )
    pd.testing.assert_frame_equal(
        cooccurring(reference_dataset, "girl", filters), cooccurring(reference_dataset, "girl", confidence=0.5, min_n=4)
    )
    pd.testing.assert_frame_equal(
        feature_drift(reference_dataset, reference_dataset, filters),
        feature_drift(reference_dataset, reference_dataset, **keywords),
    )
    with pytest.raises(TypeError, match="filters must be a Filters"):
        feature_summary(reference_dataset, 0.5)
