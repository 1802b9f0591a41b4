"""Shared fixtures: a fresh database per test, the reference dataset, apps from the factory.

Tests of a module marked ``pytestmark = pytest.mark.both_engines`` run once on an SQLite file
and once on a PostgreSQL schema of their own (see tests/databases.py); the others on SQLite.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dashboard.factory import create_app
from data.analysis import Dataset
from data.settings import Settings
from data.store import FeatureStore
from tests.browser import browser_or_skip
from tests.databases import ENGINES, fresh_database

REFERENCE_CSV = Path(__file__).resolve().parent.parent / "data" / "samples" / "seed_images_287.csv"


@pytest.fixture(scope="session")
def reference_frame() -> pd.DataFrame:
    """The original dashboard's 287 images: image_name, ctr and seven feature columns."""
    return pd.read_csv(REFERENCE_CSV)


@pytest.fixture
def reference_dataset(reference_frame) -> Dataset:
    """The reference frame as an analysis Dataset."""
    return Dataset.from_wide(reference_frame)


def pytest_configure(config):
    config.addinivalue_line("markers", "both_engines: run the test on SQLite and on PostgreSQL")


def pytest_generate_tests(metafunc):
    if "engine_name" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_engines"):
        metafunc.parametrize("engine_name", ENGINES)


@pytest.fixture
def engine_name() -> str:
    """The database engine of the test: SQLite unless the test is marked both_engines."""
    return "sqlite"


@pytest.fixture
def db_url(engine_name, tmp_path):
    """A fresh, empty database for this test (an SQLite file, or a PostgreSQL schema)."""
    with fresh_database(engine_name, tmp_path) as url:
        yield url


@pytest.fixture
def store(db_url):
    """An empty FeatureStore on a fresh SQLite file."""
    store = FeatureStore(db_url)
    yield store
    store.close()


@pytest.fixture
def settings(db_url) -> Settings:
    """Settings for an app on the test's database, without demo data or a token."""
    return Settings.from_env({}, database_url=db_url, demo_data=False)


@pytest.fixture
def app(settings, store):
    """A Dash app from the factory, sharing the test's store."""
    return create_app(settings, store)


@pytest.fixture
def client(app):
    """Flask's test client on the app's server (requests come from 127.0.0.1)."""
    return app.server.test_client()


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium per test module (skipped, or failed under CI, without a browser)."""
    browser = browser_or_skip()
    yield browser
    browser.quit()


@pytest.fixture
def fits(monkeypatch) -> list:
    """Every adjusted fit of every feature run from now on (the cache's hits are not fits)."""
    from data import adjusted as adjusted_module

    calls = []
    real = adjusted_module._fit

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(adjusted_module, "_fit", counted)
    return calls
