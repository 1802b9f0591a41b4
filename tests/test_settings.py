"""Settings: defaults, environment parsing, precedence, errors, and the README's configuration table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from data.cache import AnalysisCache
from data.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, open_store, sqlite_file

README = Path(__file__).resolve().parent.parent / "README.md"

FULL_ENV = {
    "DATABASE_URL": "sqlite:////var/lib/creatives/features.db",
    "INGEST_TOKEN": "s3cret",
    "MAX_BODY_MB": "12.5",
    "DEMO_DATA": "0",
    "HOST": "0.0.0.0",
    "PORT": "9000",
    "KEEP_BUILDS": "3",
    "IMAGE_URL_TEMPLATE": "https://cdn.example.com/{image}.jpg",
    "POLL_SECONDS": "2.5",
    "MIN_GROUP_SIZE": "8",
    "CACHE_MB": "256",
    "PROVISIONAL_WINDOWS": "0",
    "REQUEST_BUDGET_SECONDS": "12.5",
    "ACCESS": "Tokens",
    "SECRET_KEY": "k3y",
}


def test_settings_defaults():
    """Without environment, every field has its documented default."""
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL.startswith("sqlite:///") and DEFAULT_DATABASE_URL.endswith("instance/features.db")
    assert settings.ingest_token is None
    assert settings.max_body_mb == 64.0 and settings.max_body_bytes == 64 * 1024 * 1024
    assert settings.demo_data is True
    assert (settings.host, settings.port) == ("127.0.0.1", 8050)
    assert settings.keep_builds == 20
    assert settings.image_url_template is None
    assert settings.poll_seconds == 10.0
    assert settings.min_group_size == 5
    assert settings.cache_mb == 1024.0
    assert settings.provisional_windows is True
    assert settings.request_budget_seconds == 30.0
    assert settings.access == "local" and settings.secret_key is None


def test_settings_from_env_parses_every_variable():
    """Each variable is read and converted to its field's type."""
    settings = Settings.from_env(FULL_ENV)
    assert settings == Settings(
        database_url="sqlite:////var/lib/creatives/features.db",
        ingest_token="s3cret",
        max_body_mb=12.5,
        demo_data=False,
        host="0.0.0.0",
        port=9000,
        keep_builds=3,
        image_url_template="https://cdn.example.com/{image}.jpg",
        poll_seconds=2.5,
        min_group_size=8,
        cache_mb=256.0,
        provisional_windows=False,
        request_budget_seconds=12.5,
        access="tokens",
        secret_key="k3y",
    )
    assert settings.max_body_bytes == int(12.5 * 1024 * 1024)
    assert set(FULL_ENV) == set(Settings.env_names())


def test_settings_from_env_reads_os_environ_by_default(monkeypatch):
    """With no mapping given, the process environment is used."""
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("DEMO_DATA", "off")
    settings = Settings.from_env()
    assert settings.port == 8123 and settings.demo_data is False


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_settings_demo_data_accepts_common_booleans(raw, expected):
    """DEMO_DATA takes the usual spellings of true and false."""
    assert Settings.from_env({"DEMO_DATA": raw}).demo_data is expected


@pytest.mark.parametrize(
    "name, field",
    [("INGEST_TOKEN", "ingest_token"), ("IMAGE_URL_TEMPLATE", "image_url_template"), ("SECRET_KEY", "secret_key")],
)
def test_settings_empty_optional_string_means_unset(name, field):
    """An empty token or URL template counts as not set, not as an empty value."""
    assert getattr(Settings.from_env({name: ""}), field) is None


def test_settings_explicit_overrides_win_over_env():
    """Keyword overrides beat the environment, which beats the defaults."""
    settings = Settings.from_env(FULL_ENV, port=7000, demo_data=True, database_url="sqlite:///other.db")
    assert (settings.port, settings.demo_data, settings.database_url) == (7000, True, "sqlite:///other.db")
    assert settings.keep_builds == 3
    assert Settings.from_env({}, keep_builds=2).keep_builds == 2


def test_settings_override_makes_a_bad_env_value_irrelevant():
    """An environment value that an explicit argument replaces is not parsed."""
    assert Settings.from_env({"PORT": "eighty"}, port=8080).port == 8080


@pytest.mark.parametrize(
    "name, raw",
    [
        ("PORT", "eighty"),
        ("PORT", "80.5"),
        ("MAX_BODY_MB", "lots"),
        ("MAX_BODY_MB", "0"),
        ("MAX_BODY_MB", "-5"),
        ("DEMO_DATA", "maybe"),
        ("KEEP_BUILDS", "0"),
        ("KEEP_BUILDS", "many"),
        ("POLL_SECONDS", "0"),
        ("POLL_SECONDS", "soon"),
        ("MIN_GROUP_SIZE", "1"),
        ("MIN_GROUP_SIZE", "2.5"),
        ("CACHE_MB", "-1"),
        ("CACHE_MB", "big"),
        ("REQUEST_BUDGET_SECONDS", "0"),
        ("REQUEST_BUDGET_SECONDS", "-1"),
        ("REQUEST_BUDGET_SECONDS", "nan"),
        ("REQUEST_BUDGET_SECONDS", "soon"),
        ("ACCESS", "open"),
        ("ACCESS", ""),
    ],
)
def test_settings_bad_value_raises_naming_the_variable(name, raw):
    """A value that cannot be used raises SettingsError whose message names the variable."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: raw})


def test_settings_are_frozen_and_copied_with_overrides():
    """Settings cannot be changed in place; with_overrides returns a changed copy."""
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    changed = settings.with_overrides(port=1234)
    assert (changed.port, settings.port) == (1234, 8050)
    with pytest.raises(SettingsError, match="KEEP_BUILDS"):
        settings.with_overrides(keep_builds=0)


def test_settings_env_names_in_declaration_order():
    """env_names lists one variable per field, in the dataclass's order (the README's table order)."""
    assert Settings.env_names() == [
        "DATABASE_URL",
        "INGEST_TOKEN",
        "MAX_BODY_MB",
        "DEMO_DATA",
        "HOST",
        "PORT",
        "KEEP_BUILDS",
        "IMAGE_URL_TEMPLATE",
        "POLL_SECONDS",
        "MIN_GROUP_SIZE",
        "CACHE_MB",
        "PROVISIONAL_WINDOWS",
        "REQUEST_BUDGET_SECONDS",
        "ACCESS",
        "SECRET_KEY",
    ]
    assert len(Settings.env_names()) == len(dataclasses.fields(Settings))


def test_settings_every_variable_is_in_readme_configuration_table():
    """Each environment variable has a row in the README's configuration table."""
    assert README.exists(), "README.md is missing at the repository root"
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("|")]
    first_cells = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        first_cells.add(re.sub(r"[`*]", "", cells[0]))
    missing = [name for name in Settings.env_names() if name not in first_cells]
    assert not missing, f"README.md's configuration table lacks: {', '.join(missing)}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/creatives/features.db",
        "sqlite:///relative/dir/features.db",
        "sqlite:///a%20b/features.db",
        "sqlite+pysqlite:///rel/p.db?mode=ro",
        "sqlite:///file:foo/bar.db?uri=true",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://postgres@127.0.0.1:5432/test",
    ],
)
def test_sqlite_file_reads_the_url_as_sqlalchemy_does(url):
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    expected = None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        expected = Path(parsed.database.removeprefix("file:"))
    assert sqlite_file(url) == expected


def test_open_store_creates_the_sqlite_files_folder(tmp_path):
    path = tmp_path / "not" / "yet" / "features.db"
    store = open_store(Settings.from_env({}, database_url=f"sqlite:///{path}", keep_builds=3))
    try:
        assert store.is_empty() and path.parent.is_dir()
    finally:
        store.close()


def test_cache_mb_sizes_the_app_analysis_cache(tmp_path):
    from dashboard.factory import create_app

    environ = {"CACHE_MB": "8", "DEMO_DATA": "0", "DATABASE_URL": f"sqlite:///{tmp_path / 'features.db'}"}
    store = create_app(Settings.from_env(environ)).server.extensions["feature_store"]
    try:
        cache = store.cache
        assert (cache.datasets.max_bytes, cache.null_tables.max_bytes, cache.adjusted_fits.max_bytes) == (
            8 * 2**20,
            2 * 2**20,  # a quarter for the permutation nulls
            2**20 // 2,  # a sixteenth for the adjusted fits
        )
    finally:
        store.close()
    # The default split keeps the budgets the caches had before they were configurable.
    default = AnalysisCache()
    assert (default.datasets.max_bytes, default.null_tables.max_bytes, default.adjusted_fits.max_bytes) == (
        1024 * 2**20,
        256 * 2**20,
        64 * 2**20,
    )
