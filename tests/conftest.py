"""Shared fixtures: real SQLite files per test, the reference dataset, apps from the factory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dashboard.factory import create_app
from data.analysis import Dataset
from data.settings import Settings
from data.store import FeatureStore

REFERENCE_CSV = Path(__file__).resolve().parent.parent / "data" / "samples" / "seed_images_287.csv"


@pytest.fixture(scope="session")
def reference_frame() -> pd.DataFrame:
    """The original dashboard's 287 images: image_name, ctr and seven feature columns."""
    return pd.read_csv(REFERENCE_CSV)


@pytest.fixture
def reference_dataset(reference_frame) -> Dataset:
    """The reference frame as an analysis Dataset."""
    return Dataset.from_wide(reference_frame)


@pytest.fixture
def db_url(tmp_path) -> str:
    """A fresh SQLite file for this test."""
    return f"sqlite:///{tmp_path / 'features.db'}"


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
