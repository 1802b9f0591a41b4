"""The per-request budget: deadline, early refusal of hopeless work, cancellation, and its answers."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from dashboard.budget import client_gone
from data import budget
from data.adjusted import fit_adjusted
from data.analysis import Dataset
from data.batches import FeatureBatch, ctr_frame
from data.cache import AnalysisCache
from data.drift import feature_drift


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_passes_within_its_deadline_and_stops_after_it():
    clock = FakeClock()
    limit = budget.Budget(10.0, clock=clock)
    limit.check(1, 10)
    clock.now = 10.5
    with pytest.raises(budget.BudgetExceeded) as caught:
        limit.check(5, 10)
    assert caught.value.seconds == 10.0
    assert "10 s budget" in str(caught.value)


def test_budget_refuses_early_work_whose_own_cost_cannot_fit(monkeypatch):
    clock = FakeClock()
    limit = budget.Budget(10.0, clock=clock)
    limit._cpu = lambda: limit._cpu_started + 2.0  # 2 CPU-s for 1 % of the work: ~200 s needed
    with pytest.raises(budget.BudgetExceeded) as caught:
        limit.check(1, 100)
    assert caught.value.fits is False
    assert caught.value.needed == pytest.approx(200.0)


def test_budget_past_its_deadline_on_a_busy_machine_says_it_could_fit():
    clock = FakeClock()
    limit = budget.Budget(10.0, clock=clock)
    limit._cpu = lambda: limit._cpu_started + 0.5  # little CPU of its own, much waiting
    clock.now = 11.0
    with pytest.raises(budget.BudgetExceeded) as caught:
        limit.check(50, 100)
    assert caught.value.fits is True


def test_budget_cancellation_raises_client_gone_and_unlimited_never_stops():
    gone = budget.Budget(None, cancelled=lambda: True)
    with pytest.raises(budget.ClientGone):
        gone.check()
    budget.UNLIMITED.check(1, 10**9)
    assert budget.current() is budget.UNLIMITED
    with budget.limit(gone) as inner:
        assert budget.current() is inner
    assert budget.current() is budget.UNLIMITED
    with pytest.raises(ValueError):
        budget.Budget(0.0)


def _wide(n_images: int, n_features: int, share: float, seed: int = 0) -> Dataset:
    """Random features, each present in ``share`` of the images, with lognormal CTRs."""
    rng = np.random.default_rng(seed)
    conf = (rng.random((n_images, n_features)) < share) * rng.uniform(0.5, 1.0, (n_images, n_features))
    names = [f"i{k}" for k in range(n_images)]
    ctr = pd.Series(np.minimum(0.01 * np.exp(rng.normal(0, 1, n_images)), 1), index=names)
    return Dataset.from_matrix(names, [f"f{j}" for j in range(n_features)], conf, ctr)


def test_fit_adjusted_stops_at_the_budget_and_caches_nothing():
    ds = _wide(120, 60, 0.5)
    clock = FakeClock()
    limit = budget.Budget(5.0, clock=clock)
    clock.now = 6.0
    cache = AnalysisCache()
    with budget.limit(limit), pytest.raises(budget.BudgetExceeded):
        fit_adjusted(ds, 0.4, cache=cache)
    assert cache.adjusted_fits.find(lambda key: key[0]() is ds) is None
    assert np.isfinite(fit_adjusted(ds, 0.4).estimate).any()  # unbounded again outside the block


def test_feature_drift_stops_at_the_budget():
    before, after = _wide(100, 10, 0.3, seed=1), _wide(100, 10, 0.3, seed=2)
    with budget.limit(budget.Budget(None, cancelled=lambda: True)), pytest.raises(budget.ClientGone):
        feature_drift(before, after, confidence=0.4)


def test_client_gone_peeks_at_the_requests_socket(app):
    ours, theirs = socket.socketpair()
    try:
        with app.server.test_request_context("/api/summary"):
            assert client_gone({"werkzeug.socket": ours}) is False
            assert client_gone({}) is False  # no socket known: only the deadline bounds the work
            theirs.close()
            assert client_gone({"werkzeug.socket": ours}) is True
    finally:
        ours.close()


PAIR = {"business": "wide", "source": "vision"}


def _store_wide(store, n_images=120, n_features=40):
    ds = _wide(n_images, n_features, 0.5)
    frame = pd.DataFrame(ds.dense(), columns=ds.features)
    frame.insert(0, "image_name", ds.images)
    store.add_build(PAIR["business"], PAIR["source"], FeatureBatch.from_wide(frame))
    store.replace_ctr(PAIR["business"], PAIR["source"], ctr_frame(pd.Series(ds.images), pd.Series(ds.ctr)))


def test_summary_adjusted_past_the_budget_answers_503_in_the_error_shape(store, settings):
    from dashboard.factory import create_app

    _store_wide(store)
    store.cache.clear()
    app = create_app(settings.with_overrides(request_budget_seconds=1e-9), store)
    response = app.server.test_client().get("/api/summary", query_string={**PAIR, "adjusted": "1"})
    assert response.status_code == 503, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "details"} and "time budget" in body["error"]
    assert response.headers["Retry-After"] == "10"
    # The marginal summary does not run the bounded work and still answers.
    plain = app.server.test_client().get("/api/summary", query_string=PAIR)
    assert plain.status_code == 200


def test_summary_adjusted_hopeless_request_answers_422(store, settings, monkeypatch):
    from dashboard.factory import create_app

    _store_wide(store)
    store.cache.clear()
    # Every CPU-time reading 1 s later than the last: the work projects far beyond the budget.
    ticks = iter(range(10**6))
    monkeypatch.setattr(budget.time, "thread_time", lambda: float(next(ticks)))
    app = create_app(settings.with_overrides(request_budget_seconds=3.0), store)
    response = app.server.test_client().get("/api/summary", query_string={**PAIR, "adjusted": "1"})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "REQUEST_BUDGET_SECONDS" in " ".join(response.get_json()["details"])
    assert "Retry-After" not in response.headers


def test_drift_past_the_budget_answers_503_in_the_error_shape(store, settings):
    from dashboard.factory import create_app

    _store_wide(store, n_features=10)
    _store_wide(store, n_features=10)
    builds = store.builds(PAIR["business"], PAIR["source"])["build_id"].tolist()
    app = create_app(settings.with_overrides(request_budget_seconds=1e-9), store)
    query = {**PAIR, "from_build": min(builds), "to_build": max(builds)}
    response = app.server.test_client().get("/api/drift", query_string=query)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert set(response.get_json()) == {"error", "details"}
    assert response.headers["Retry-After"] == "10"


def _redraw_adjusted(app, store):
    from dashboard.page import ids
    from tests.test_callbacks import REDRAW_OUTPUTS, _controls, _dash_post, _view_inputs

    extra = {(ids.VERSION, "data"): store.version(), (ids.REFINED, "data"): None}
    inputs = _view_inputs(_controls(**PAIR), impact_mode="adjusted", extra=extra)
    return _dash_post(app.server.test_client(), REDRAW_OUTPUTS, inputs, [(ids.STALE_BUILD, "data", None)])


def _notice_text(response) -> str:
    from dashboard.page import ids

    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    body = response.get_json()
    # The refused view is not drawn: the callback's own outputs keep what they showed.
    assert ids.TABLE_ROWS not in body.get("response", {}) and ids.IMPACT not in body.get("response", {})
    return json.dumps(body["sideUpdate"][ids.NOTICE]["children"])


def test_page_view_past_the_budget_says_so_in_the_notice(store, settings):
    from dashboard.factory import create_app

    _store_wide(store)
    store.cache.clear()
    app = create_app(settings.with_overrides(request_budget_seconds=1e-9), store)
    text = _notice_text(_redraw_adjusted(app, store))
    assert "This view took too long to compute" in text and "Retry" in text and "minimum group size" in text
    # Within the budget the same view draws, and its notice is not the budget's.
    drawn = _redraw_adjusted(create_app(settings, store), store)
    assert drawn.status_code == 200 and "took too long" not in drawn.get_data(as_text=True)


def test_page_view_that_cannot_fit_asks_for_a_narrower_view(store, settings, monkeypatch):
    from dashboard.factory import create_app

    _store_wide(store)
    store.cache.clear()
    ticks = iter(range(10**6))
    monkeypatch.setattr(budget.time, "thread_time", lambda: float(next(ticks)))
    app = create_app(settings.with_overrides(request_budget_seconds=3.0), store)
    text = _notice_text(_redraw_adjusted(app, store))
    assert "needs more computation than a request may take" in text and "turn off the adjusted impact" in text


def test_adjusted_read_stops_when_its_client_leaves(store, settings, caplog):
    """A client that closes its connection mid-computation frees the thread: the work is abandoned
    at the next check (no fit completed or cached) instead of running on for nobody."""
    import logging
    import threading
    import time

    from werkzeug.serving import make_server

    from dashboard.factory import create_app
    from tests.browser import wait_for

    _store_wide(store, n_images=300, n_features=1_000)  # seconds of adjusted fits
    store.cache.clear()
    app = create_app(settings.with_overrides(request_budget_seconds=600), store)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="dashboard.budget"):
            query = "business=wide&source=vision&adjusted=1&confidence=0.5"
            with socket.create_connection(("127.0.0.1", server.server_port)) as conn:
                conn.sendall(f"GET /api/summary?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                time.sleep(0.5)
            left = time.monotonic()
            wait_for(lambda: "work abandoned" in caplog.text, timeout=60, message="the work abandoned")
        print(f"\nabandoned {time.monotonic() - left:.2f} s after the client left")
        assert "client left GET /api/summary" in caplog.text
        assert len(store.cache.adjusted_fits) == 0  # nothing half-done was kept
    finally:
        server.shutdown()
        thread.join(timeout=10)
