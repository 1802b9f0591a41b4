"""Database outages under a real gunicorn: workers boot without the database and recover by themselves.

PostgreSQL's outage is a database of its own that stops accepting connections (and loses the
ones it had), as during a restart or a failover. SQLite's is the database's folder gone (a
volume not mounted: its mount point is no folder), so no connection can open the file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
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

from dashboard.factory import create_app
from data.demo import DEMO_BUSINESS, REFERENCE_BUSINESS
from data.settings import Settings
from data.store import FeatureStore
from tests.databases import require_postgres
from tests.servers import READY, free_port, gunicorn
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


def wait_recovered(port: int, timeout: float = 120) -> float:
    """Seconds until /healthz and /api/datasets answer 200 on six probes in a row.

    Six in a row need not have reached every worker (gunicorn does not deal connections in
    turn), so a read that must succeed afterwards goes through ``served``.
    """
    start = time.monotonic()
    in_a_row = 0
    while time.monotonic() - start < timeout:
        ok = raw_get(port, "/healthz")[0] == 200 and raw_get(port, "/api/datasets")[0] == 200
        in_a_row = in_a_row + 1 if ok else 0
        if in_a_row >= 6:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not recovered within {timeout} s")


def served(port: int, path: str, timeout: float = 120) -> dict:
    """The JSON body of GET ``path`` once it answers 200; a worker still waiting out its start-up
    retry pause (at most MAX_RETRY_SECONDS) answers 503 meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = request(port, "GET", path)
        if status == 200:
            return body
        assert time.monotonic() < deadline, f"{path} still answers {status} after {timeout} s: {body}"
        time.sleep(0.2)


def demo_rows(url: str) -> tuple[int, int]:
    """(builds, CTR data): the reference's CTR set and the demo's dated metrics count as one each."""
    store = FeatureStore(url)
    try:
        rows = snapshot(store)
    finally:
        store.close()
    return len(rows["builds"]), len(rows["ctr_sets"]) + len(rows["metric_sets"])


@pytest.mark.both_engines
def test_outage_with_every_worker_killed_keeps_the_server_up_and_recovers(engine_name, tmp_path):
    """Database down, every worker killed: new workers boot, answer 503 with a cause, and serve
    again once the database is back, without a restart."""
    with outage_database(engine_name, tmp_path) as database:
        with gunicorn(tmp_path, database.url, workers=2, threads=2, DEMO_DATA=1) as server:
            assert server.wait_ready(2), server.output()[-3000:]
            # A booted worker may still be finishing its start-up (the other one holds the start-up
            # lock while it loads the demo, and a busy machine can outlast one attempt's wait).
            wait_recovered(server.port)
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
            for _ in range(12):
                listed = served(server.port, "/api/datasets")
                assert sorted(d["business"] for d in listed["datasets"]) == sorted([DEMO_BUSINESS, REFERENCE_BUSINESS])
            assert server.process.poll() is None
            # The workers that booted during the outage serve now: none was restarted to recover.
            assert server.output().count(READY) == 4, server.output()[-3000:]
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
            for _ in range(12):
                assert len(served(server.port, "/api/datasets")["datasets"]) == 2
            output = server.output()
            assert output.count(READY) == 2, output[-3000:]
            assert "Traceback" not in output and "Worker failed to boot" not in output, output[-3000:]
        assert demo_rows(database.url) == (2, 2)
    shutil.rmtree(tmp_path / "volume", ignore_errors=True)


class ReadOnly:
    """Make the database read-only for new connections: a database default on PostgreSQL, an
    immutable file on SQLite (root may write any file its mode forbids, but not an immutable one)."""

    def __init__(self, engine_name: str, url: str):
        self.engine_name = engine_name
        self.url = make_url(url)

    def set(self, on: bool) -> None:
        if self.engine_name == "sqlite":
            subprocess.run(["chattr", "+i" if on else "-i", self.url.database], check=True)
            return
        admin = create_engine(self.url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.url.database}" SET default_transaction_read_only = {on}'))
        admin.dispose()


@pytest.mark.both_engines
def test_healthz_reports_a_read_only_database_from_every_worker(engine_name, tmp_path):
    """With the database read-only, every probe of /healthz answers 503, whichever worker
    answers and whatever its pooled connections saw; once writable again, every probe answers 200."""
    with outage_database(engine_name, tmp_path) as database:
        read_only = ReadOnly(engine_name, database.url)
        with gunicorn(tmp_path, database.url, workers=3, threads=2, DEMO_DATA=1) as server:
            assert server.wait_ready(3), server.output()[-3000:]
            # Warm every worker's pool with a writable connection first.
            assert all(raw_get(server.port, "/healthz")[0] == 200 for _ in range(12))
            read_only.set(True)
            try:
                answers = [raw_get(server.port, "/healthz") for _ in range(12)]
            finally:
                read_only.set(False)
            assert [status for status, _, _ in answers] == [503] * 12
            for _, headers, body in answers:
                assert '"database is read-only"' in body and headers.get("Retry-After")
                for secret in database.secrets:
                    assert secret not in body
            assert [raw_get(server.port, "/healthz")[0] for _ in range(12)] == [200] * 12


@pytest.mark.both_engines
def test_unreachable_database_answers_name_no_part_of_the_server(engine_name, tmp_path):
    """A server that cannot be reached: the answers give the cause, never its host, port, database or user."""
    secret_db, secret_user = f"secret_db_{uuid.uuid4().hex[:6]}", "secret_user"
    if engine_name == "sqlite":
        (tmp_path / "mnt").write_text("not a folder")
        url, secrets = f"sqlite:///{tmp_path / 'mnt' / secret_db / 'x.db'}", [secret_db, str(tmp_path)]
    else:
        require_postgres()
        port = free_port()
        url = f"postgresql+psycopg://{secret_user}@127.0.0.1:{port}/{secret_db}"
        secrets = [secret_db, secret_user, str(port), "127.0.0.1"]
    settings = Settings.from_env({}, database_url=url, demo_data=False)
    app = create_app(settings)
    app.server.extensions["dashboard_startup"].stop()
    client = app.server.test_client()
    for path in ("/healthz", "/api/datasets", "/api/version", "/api/summary?business=a&source=b"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert answer.get_json()["error"] == "database unreachable"
        assert answer.headers["Retry-After"]
        for secret in secrets:
            assert secret not in answer.get_data(as_text=True), (path, secret)
    put = client.put("/api/ctr", data=b'{"a": 0.5}', headers={"Business": "a", "Image-Source": "b"})
    assert put.status_code == 503 and put.get_json()["error"] == "database unreachable"
    page = client.get("/_dash-layout").get_data(as_text=True)
    assert "The data is unavailable right now" in page and all(secret not in page for secret in secrets)
    assert client.get("/api/openapi.json").status_code == 200


def test_startup_retries_in_the_background_until_the_database_appears(tmp_path):
    """The app built while its SQLite folder is missing serves once the folder appears, without a restart."""
    mount = tmp_path / "mnt"
    mount.write_text("not mounted")
    settings = Settings.from_env({}, database_url=f"sqlite:///{mount / 'db' / 'x.db'}", demo_data=True)
    app = create_app(settings)
    startup = app.server.extensions["dashboard_startup"]
    client = app.server.test_client()
    assert not startup.ready and client.get("/api/datasets").status_code == 503
    mount.unlink()
    (mount / "db").mkdir(parents=True)
    assert startup.wait(timeout=30)
    assert client.get("/healthz").status_code == 200
    assert len(client.get("/api/datasets").get_json()["datasets"]) == 2
