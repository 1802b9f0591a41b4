"""Database outages under a real gunicorn: workers boot without the database and recover by themselves.

PostgreSQL's outage is a database of its own that stops accepting connections (and loses the
ones it had), as during a restart or a failover. SQLite's is the database's folder gone (a
volume not mounted: its mount point is no folder), so no connection can open the file.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from data.demo import DEMO_BUSINESS, REFERENCE_BUSINESS
from data.store import FeatureStore
from tests.databases import require_postgres
from tests.servers import gunicorn
from tests.tables import snapshot
from tests.test_multiworker import request


class PostgresOutage:
    """A PostgreSQL database of its own that can be made to refuse connections."""

    def __init__(self):
        self.server = make_url(require_postgres())
        self.name = f"outage_{uuid.uuid4().hex[:12]}"
        self.admin = create_engine(self.server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.url = self.server.set(database=self.name).render_as_string(hide_password=False)
        self.secrets = [self.name, str(self.server.port or 5432), self.server.host or "", self.server.username or ""]

    def create(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()

    def down(self) -> None:
        """Refuse new connections and end the open ones."""
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": self.name}
            )

    def up(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))


class SqliteOutage:
    """An SQLite file whose volume can be unmounted: its mount point becomes a plain file."""

    def __init__(self, folder: Path):
        self.volume = folder / "volume"
        self.away = folder / "volume.away"
        self.url = f"sqlite:///{self.volume / 'db' / 'features.db'}"
        self.secrets = [str(self.volume)]

    def create(self) -> None:
        (self.volume / "db").mkdir(parents=True)

    def drop(self) -> None:
        pass

    def down(self) -> None:
        self.volume.rename(self.away)
        self.volume.write_text("not mounted")

    def up(self) -> None:
        self.volume.unlink()
        if self.away.exists():
            self.away.rename(self.volume)
        else:
            (self.volume / "db").mkdir(parents=True)


@contextmanager
def outage_database(engine_name: str, folder: Path):
    database = SqliteOutage(folder) if engine_name == "sqlite" else PostgresOutage()
    database.create()
    try:
        yield database
    finally:
        database.drop()


def raw_get(port: int, path: str) -> tuple[int, dict, str]:
    """(status, headers, body text) of a GET."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def assert_outage_answers(port: int, secrets: list[str], probes: int = 6) -> None:
    """/healthz and the data routes answer 503 with a cause and Retry-After, naming no part of the server."""
    for _ in range(probes):
        for path in ("/healthz", "/api/datasets", "/api/summary?business=Acme&source=x"):
            status, headers, body = raw_get(port, path)
            assert status == 503, (path, status, body)
            assert headers.get("Retry-After"), (path, headers)
            assert '"error": "database unreachable"' in body or '"error":"database unreachable"' in body, body
            for secret in secrets:
                assert secret not in body, (path, secret, body)
    # The page itself loads, and says in words that the data is unavailable.
    status, _, body = raw_get(port, "/_dash-layout")
    assert status == 200 and "The data is unavailable right now" in body, body[:500]
    for secret in secrets:
        assert secret not in body


def wait_recovered(port: int, timeout: float = 60) -> float:
    """Seconds until /healthz and /api/datasets answer 200 on six probes in a row (every worker)."""
    start = time.monotonic()
    in_a_row = 0
    while time.monotonic() - start < timeout:
        ok = raw_get(port, "/healthz")[0] == 200 and raw_get(port, "/api/datasets")[0] == 200
        in_a_row = in_a_row + 1 if ok else 0
        if in_a_row >= 6:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not recovered within {timeout} s")


def demo_rows(url: str) -> tuple[int, int]:
    store = FeatureStore(url)
    try:
        rows = snapshot(store)
    finally:
        store.close()
    return len(rows["builds"]), len(rows["ctr_sets"])


@pytest.mark.both_engines
def test_outage_with_every_worker_killed_keeps_the_server_up_and_recovers(engine_name, tmp_path):
    """Database down, every worker killed: new workers boot, answer 503 with a cause, and serve
    again once the database is back, without a restart."""
    with outage_database(engine_name, tmp_path) as database:
        with gunicorn(tmp_path, database.url, workers=2, threads=2, DEMO_DATA=1) as server:
            assert server.wait_ready(2), server.output()[-3000:]
            assert request(server.port, "GET", "/api/datasets")[0] == 200
            database.down()
            for pid in server.worker_pids():
                os.kill(pid, signal.SIGKILL)
            assert server.wait_ready(4, timeout=60), server.output()[-3000:]
            assert server.process.poll() is None, server.output()[-3000:]
            assert_outage_answers(server.port, database.secrets)
            assert "Worker failed to boot" not in server.output()

            database.up()
            seconds = wait_recovered(server.port)
            print(f"\n{engine_name}: recovered {seconds:.2f} s after the database came back")
            status, listed = request(server.port, "GET", "/api/datasets")
            assert status == 200
            assert sorted(d["business"] for d in listed["datasets"]) == sorted([DEMO_BUSINESS, REFERENCE_BUSINESS])
            assert server.process.poll() is None
        assert demo_rows(database.url) == (2, 2)


@pytest.mark.both_engines
def test_cold_start_with_the_database_down_boots_and_loads_the_demo_once_it_is_up(engine_name, tmp_path):
    """Started while the database is down: the workers boot and answer 503; once it is up, the
    start-up work (schema, demo data) runs once in the background and the data is served."""
    with outage_database(engine_name, tmp_path) as database:
        database.down()
        with gunicorn(tmp_path, database.url, workers=2, threads=2, DEMO_DATA=1) as server:
            assert server.wait_ready(2, timeout=60), server.output()[-3000:]
            time.sleep(3)  # gunicorn's master used to give up within seconds
            assert server.process.poll() is None, server.output()[-3000:]
            assert_outage_answers(server.port, database.secrets, probes=3)

            database.up()
            seconds = wait_recovered(server.port)
            print(f"\n{engine_name}: cold start served {seconds:.2f} s after the database came up")
            status, listed = request(server.port, "GET", "/api/datasets")
            assert status == 200 and len(listed["datasets"]) == 2
            output = server.output()
            assert "Traceback" not in output and "Worker failed to boot" not in output, output[-3000:]
        assert demo_rows(database.url) == (2, 2)
    shutil.rmtree(tmp_path / "volume", ignore_errors=True)
