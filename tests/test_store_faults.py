"""Storage faults: a JSON 503 naming the cause, nothing half-written, and recovery once the fault is gone."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from dashboard.api.errors import public_detail
from dashboard.factory import create_app
from data.batches import ctr_frame
from data.store import FeatureStore, StorageUnavailable
from tests.databases import postgres_server_url
from tests.tables import snapshot

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
FEATURES = {"a": {"x": 0.5}, "b": {"y": 0.25}}


def put(client, path, doc):
    return client.put(path, data=json.dumps(doc), headers=HEADERS)


def sticky_fault(store, statements):
    """A switch that, while on, runs ``statements`` on each connection the store checks out.

    What they set stays on the connection after the switch is off, as a connection opened while
    a file was read-only stays read-only: only new connections see the fault gone.
    """
    switch = {"on": False}

    @event.listens_for(store.engine, "checkout")
    def _checkout(dbapi_conn, _record, _proxy):
        if switch["on"]:
            cursor = dbapi_conn.cursor()
            for statement in statements:
                cursor.execute(statement)
            cursor.close()
            dbapi_conn.commit()  # PostgreSQL's SET is undone with the transaction it ran in

    return switch


READ_ONLY = {
    "sqlite": ["PRAGMA query_only = ON"],
    "postgresql": ["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"],
}


@pytest.mark.both_engines
def test_read_only_database_answers_503_and_recovers_by_itself(engine_name, settings, store, client):
    """Writes answer 503 "database is read-only" (reads still work, /healthz says so); once the
    database is writable again the next write succeeds without a restart."""
    assert put(client, "/api/features", FEATURES).status_code == 201
    fault = sticky_fault(store, READ_ONLY[engine_name])
    before = snapshot(store)
    fault["on"] = True
    for path, doc in (("/api/features", FEATURES), ("/api/ctr", {"a": 0.1})):
        response = put(client, path, doc)
        assert response.status_code == 503
        assert response.get_json()["error"] == "database is read-only"
        assert response.headers["Retry-After"]
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["error"] == "database is read-only"
    assert client.get("/api/summary", query_string={"business": "Acme", "source": "vision"}).status_code == 200
    assert snapshot(store) == before

    fault["on"] = False
    assert client.get("/healthz").status_code == 200
    assert put(client, "/api/features", FEATURES).status_code == 201
    assert len(store.builds("Acme", "vision")) == 2


def test_sqlite_file_opened_read_only_refuses_writes_with_503(tmp_path, settings):
    """A database file that can only be opened read-only (here: mode=ro) is reported as such."""
    path = tmp_path / "ro.db"
    FeatureStore(f"sqlite:///{path}").close()
    store = FeatureStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    client = create_app(settings, store).server.test_client()
    try:
        with pytest.raises(StorageUnavailable) as raised:
            store.replace_ctr("Acme", "vision", ctr_frame(["a"], [0.1]))
        assert raised.value.cause == "database is read-only"
        response = put(client, "/api/features", FEATURES)
        assert response.status_code == 503
        assert response.get_json() == {
            "error": "database is read-only",
            "details": [public_detail("database is read-only")],
        }
        assert store.is_empty()
    finally:
        store.close()


def test_full_disk_answers_503_and_recovers(store, client):
    """A write that runs out of space (SQLite) answers 503 "disk full" and stores nothing; the next works."""
    assert put(client, "/api/features", FEATURES).status_code == 201
    fault = sticky_fault(store, ["PRAGMA max_page_count = 1"])
    before = snapshot(store)
    fault["on"] = True
    big = {f"img_{i}": {f"f{j}": 0.5 for j in range(40)} for i in range(200)}
    response = put(client, "/api/features", big)
    assert response.status_code == 503
    assert response.get_json()["error"] == "disk full"
    assert snapshot(store) == before
    fault["on"] = False
    assert put(client, "/api/features", big).status_code == 201


@pytest.mark.both_engines
def test_unreachable_database_raises_storage_unavailable(engine_name, tmp_path):
    """No server (or no file folder) at the URL: StorageUnavailable "database unreachable", not a driver error."""
    url = (
        f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}"
        if engine_name == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=3"
    )
    with pytest.raises(StorageUnavailable) as raised:
        FeatureStore(url)
    assert raised.value.cause == "database unreachable"


@pytest.mark.parametrize("engine_name", ["postgresql"])
def test_connections_dropped_by_the_server_are_replaced(engine_name, store, client):
    """After PostgreSQL drops the store's connections (a restart, a failover), the next requests succeed."""
    assert put(client, "/api/features", FEATURES).status_code == 201
    with store.engine.connect() as conn:
        pids = {conn.execute(text("SELECT pg_backend_pid()")).scalar()}
    admin = create_engine(postgres_server_url(), poolclass=NullPool)
    with admin.begin() as conn:
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()
    assert client.get("/api/summary", query_string={"business": "Acme", "source": "vision"}).status_code == 200
    assert put(client, "/api/features", FEATURES).status_code == 201
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() not in pids
