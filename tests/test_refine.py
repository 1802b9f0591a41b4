"""A new time window's first answer from a smaller permutation null, the full one drawn behind it
and stored (data/refine.py): the API, the downloads, another worker, and the page's redraw."""

from __future__ import annotations

import pytest

from dashboard.api.downloads import summary_csv
from dashboard.api.routes import records
from dashboard.factory import create_app
from dashboard.page import ids
from data import nulls
from data.analysis import Filters, feature_summary
from data.cache import AnalysisCache
from data.demo import DEMO_BUSINESS, DEMO_SOURCE, load_demo
from data.store import FeatureStore
from data.window import Window
from tests import simulation
from tests.test_callbacks import REDRAW_OUTPUTS, _controls, _dash_post, _view_inputs

PAIR = {"business": DEMO_BUSINESS, "source": DEMO_SOURCE}
# Not one of the presets drawn when the metrics land: a window no null was drawn for.
FROM, TO = "2026-09-03", "2026-10-01"


@pytest.fixture
def demo(store):
    load_demo(store)
    return store


def _summary(store, filters: Filters, summarise=feature_summary) -> list[dict]:
    frame = summarise(store.dataset(*PAIR.values(), window=filters.window), filters, cache=AnalysisCache())
    return records(frame, list(frame.columns))


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_a_new_window_answers_from_the_smaller_null_then_from_the_full_one(client, demo, weighting):
    query = {**PAIR, "from": FROM, "to": TO, "weighting": weighting}
    filters = Filters(date_from=FROM, date_to=TO, weighting=weighting)
    first = client.get("/api/summary", query_string=query).get_json()
    assert first["provisional"] is True
    # Exactly the smaller null's answer: the same counts, averages and impacts, coarser p-values.
    assert first["features"] == _summary(demo, filters, simulation.provisional_summary)
    exact = _summary(demo, filters)
    assert first["features"] != exact
    assert client.application.extensions["feature_store"].cache.refiner.wait(120)
    second = client.get("/api/summary", query_string=query).get_json()
    assert second["provisional"] is False
    assert second["features"] == exact
    # Stored for every worker under its null's name.
    (test,) = [t for t in demo.null_tests(demo.dataset(*PAIR.values(), window=filters.window)) if t.kind == weighting]
    assert demo.has_null_table(nulls.storage_key(test.key))


def test_another_worker_reads_the_stored_full_null_on_its_first_answer(client, demo, settings):
    query = {**PAIR, "from": FROM, "to": TO}
    assert client.get("/api/summary", query_string=query).get_json()["provisional"] is True
    assert client.application.extensions["feature_store"].cache.refiner.wait(120)
    other = FeatureStore(settings.database_url)  # a second worker: its own store and cache
    try:
        answer = create_app(settings, other).server.test_client().get("/api/summary", query_string=query)
        assert answer.get_json()["provisional"] is False
        assert answer.get_json()["features"] == _summary(demo, Filters(date_from=FROM, date_to=TO))
    finally:
        other.close()


def test_every_day_and_the_downloads_are_never_provisional(client, demo):
    assert client.get("/api/summary", query_string=PAIR).get_json()["provisional"] is False
    # A file keeps exact p-values, even for a window whose JSON answer would be provisional.
    csv = client.get("/api/summary.csv", query_string={**PAIR, "from": FROM, "to": TO})
    exact = feature_summary(demo.dataset(*PAIR.values(), window=Window(FROM, TO)), Filters(date_from=FROM, date_to=TO))
    assert csv.data.decode() == summary_csv(exact)


def test_provisional_answers_can_be_turned_off(settings, demo):
    client = create_app(settings.with_overrides(provisional_windows=False), demo).server.test_client()
    answer = client.get("/api/summary", query_string={**PAIR, "from": FROM, "to": TO}).get_json()
    assert answer["provisional"] is False
    assert answer["features"] == _summary(demo, Filters(date_from=FROM, date_to=TO))


def test_a_trend_says_when_a_period_is_provisional(client, demo):
    query = {**PAIR, "feature": "smile", "period": "month", "from": "2026-09-02", "to": "2026-10-30"}
    assert client.get("/api/trend", query_string=query).get_json()["provisional"] is True
    assert client.application.extensions["feature_store"].cache.refiner.wait(120)
    assert client.get("/api/trend", query_string=query).get_json()["provisional"] is False


def _redraw(client, store, refined=None) -> dict:
    controls = _controls(business=DEMO_BUSINESS, source=DEMO_SOURCE, date_from=FROM, date_to=TO)
    extra = {(ids.VERSION, "data"): store.version(), (ids.REFINED, "data"): refined}
    response = _dash_post(
        client, REDRAW_OUTPUTS, _view_inputs(controls, extra=extra), [(ids.STALE_BUILD, "data", None)]
    )
    assert response.status_code == 200
    return response.get_json()["response"]


def _tick(client, pending, refined=None):
    return _dash_post(
        client,
        [(ids.REFINED, "data")],
        [(ids.REFINE_POLL, "n_intervals", 1)],
        [(ids.PENDING_NULL, "data", pending), (ids.REFINED, "data", refined)],
    )


def test_the_page_says_it_is_refining_and_redraws_once_the_full_null_is_stored(client, demo):
    first = _redraw(client, demo)
    pending = first[ids.PENDING_NULL]["data"]
    assert pending and first[ids.REFINE_POLL]["disabled"] is False
    assert "refining the p-values" in str(first[ids.NOTICE]["children"])
    assert client.application.extensions["feature_store"].cache.refiner.wait(120)
    ready = _tick(client, pending)
    assert ready.status_code == 200 and ready.get_json()["response"][ids.REFINED]["data"] == pending
    again = _tick(client, pending, refined=pending)  # told once: no second redraw
    assert again.status_code == 204 or ids.REFINED not in again.get_json().get("response", {}), again.get_json()
    second = _redraw(client, demo, refined=pending)
    assert second[ids.PENDING_NULL]["data"] is None and second[ids.REFINE_POLL]["disabled"] is True
    assert "refining" not in str(second[ids.NOTICE]["children"])


def test_the_trend_card_says_when_its_periods_are_provisional(client, demo):
    from dashboard.page.trend import PROVISIONAL_HINT, compute_trend
    from dashboard.page.views import ViewState

    state = ViewState(business=DEMO_BUSINESS, source=DEMO_SOURCE, filters=Filters(date_from=FROM, date_to=TO))
    assert compute_trend(demo, state, "smile", "week").hint.endswith(PROVISIONAL_HINT)
    assert client.application.extensions["feature_store"].cache.refiner.wait(120)
    assert not compute_trend(demo, state, "smile", "week").hint.endswith(PROVISIONAL_HINT)


def test_the_refiner_keeps_at_most_its_bound_of_draws_waiting_newest_first():
    """A reader asking for window after window queues no more than MAX_QUEUED full draws; the oldest are forgotten."""
    import numpy as np

    from data import permutation, refine

    cache = AnalysisCache()
    refiner = refine.Refiner()
    rng = np.random.default_rng(0)
    tests = [
        permutation.StudentizedTest("mean", rng.random(40), n_tests=5, cache=cache)
        for _ in range(refine.MAX_QUEUED + 4)
    ]
    for test in tests:
        table, pending = refiner.table(test)
        assert table is not None and pending == nulls.storage_key(test.key)
    assert list(refiner._queue) == [t.key for t in tests[-refine.MAX_QUEUED :]]
    assert refiner.wait(120)
    assert all(permutation.is_cached(cache, t.key) for t in tests[-refine.MAX_QUEUED :])
    assert not any(permutation.is_cached(cache, t.key) for t in tests[:4])
