"""Fresh databases for tests: an SQLite file, or a new schema on a PostgreSQL server.

PostgreSQL is the one named by TEST_DATABASE_URL, else a local server (127.0.0.1:5432, user
postgres, database test). Without one, its tests are skipped, unless CI is set: then they fail.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENGINES = ("sqlite", "postgresql")


def postgres_server_url() -> str:
    """The PostgreSQL server for tests: TEST_DATABASE_URL or the local default."""
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


@cache
def _postgres_problem() -> str | None:
    """Why the test server cannot be used, or None when it answers."""
    url = make_url(postgres_server_url())
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means: no server for these tests
        return f"{url.render_as_string(hide_password=True)}: {type(exc).__name__}: {str(exc).strip()[:300]}"
    return None


def require_postgres() -> str:
    """The server URL; skips the test without a server, or fails it when CI is set."""
    problem = _postgres_problem()
    if problem:
        message = f"no PostgreSQL server for the tests ({problem}); set TEST_DATABASE_URL"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return postgres_server_url()


@contextmanager
def fresh_database(engine_name: str, folder: Path, name: str = "features.db"):
    """Yield the URL of an empty database: an SQLite file in ``folder``, or a PostgreSQL schema
    of its own (dropped afterwards, with everything in it)."""
    if engine_name == "sqlite":
        yield f"sqlite:///{folder / name}"
        return
    server = make_url(require_postgres())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # libpq's options put the schema first on the search path of every connection.
        yield server.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
