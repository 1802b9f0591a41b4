"""Configuration, read in one place: explicit argument > environment > default; and the store it names.

It lives in ``data`` because both edges need it: the page and the API (``dashboard``) and the
CLI loader (``ingest``), which must not import the page to open a store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import unquote

from data.cache import AnalysisCache
from data.store import FeatureStore
from data.tokens import ACCESS_MODES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'instance' / 'features.db'}"


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected 0/1, got {value!r}")


def _access(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ACCESS_MODES:
        raise ValueError(f"expected one of {', '.join(ACCESS_MODES)}")
    return mode


@dataclass(frozen=True)
class Settings:
    """Every setting of the app; each field's metadata names its environment variable."""

    database_url: str = field(default=DEFAULT_DATABASE_URL, metadata={"env": "DATABASE_URL", "parse": str})
    ingest_token: str | None = field(default=None, metadata={"env": "INGEST_TOKEN", "parse": str})
    max_body_mb: float = field(default=64.0, metadata={"env": "MAX_BODY_MB", "parse": float})
    demo_data: bool = field(default=True, metadata={"env": "DEMO_DATA", "parse": _bool})
    host: str = field(default="127.0.0.1", metadata={"env": "HOST", "parse": str})
    port: int = field(default=8050, metadata={"env": "PORT", "parse": int})
    keep_builds: int = field(default=20, metadata={"env": "KEEP_BUILDS", "parse": int})
    image_url_template: str | None = field(default=None, metadata={"env": "IMAGE_URL_TEMPLATE", "parse": str})
    poll_seconds: float = field(default=10.0, metadata={"env": "POLL_SECONDS", "parse": float})
    min_group_size: int = field(default=5, metadata={"env": "MIN_GROUP_SIZE", "parse": int})
    cache_mb: float = field(default=1024.0, metadata={"env": "CACHE_MB", "parse": float})
    provisional_windows: bool = field(default=True, metadata={"env": "PROVISIONAL_WINDOWS", "parse": _bool})
    request_budget_seconds: float = field(default=30.0, metadata={"env": "REQUEST_BUDGET_SECONDS", "parse": float})
    access: str = field(default="local", metadata={"env": "ACCESS", "parse": _access})
    secret_key: str | None = field(default=None, metadata={"env": "SECRET_KEY", "parse": str}, repr=False)

    def __post_init__(self):
        if self.max_body_mb <= 0:
            raise SettingsError("MAX_BODY_MB must be positive")
        if self.keep_builds < 1:
            raise SettingsError("KEEP_BUILDS must be at least 1")
        if self.poll_seconds <= 0:
            raise SettingsError("POLL_SECONDS must be positive")
        if self.min_group_size < 2:
            raise SettingsError("MIN_GROUP_SIZE must be at least 2")
        if self.cache_mb < 0:
            raise SettingsError("CACHE_MB must not be negative")
        if not self.request_budget_seconds > 0:
            raise SettingsError("REQUEST_BUDGET_SECONDS must be positive")
        if self.access not in ACCESS_MODES:
            raise SettingsError(f"ACCESS must be one of {', '.join(ACCESS_MODES)}, got {self.access!r}")

    @classmethod
    def env_names(cls) -> list[str]:
        """The environment variable of every setting, in declaration order."""
        return [f.metadata["env"] for f in fields(cls)]

    @classmethod
    def from_env(cls, environ=None, **overrides) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), with keyword overrides winning."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            if f.name in overrides:
                continue  # an explicit value wins, so a bad environment value for it is moot
            raw = environ.get(f.metadata["env"])
            if raw is None or (raw == "" and f.name in {"ingest_token", "image_url_template", "secret_key"}):
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise SettingsError(f"{f.metadata['env']}={raw!r}: {exc}") from None
        values.update(overrides)
        return cls(**values)

    def with_overrides(self, **changes) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def max_body_bytes(self) -> int:
        """MAX_BODY_MB in bytes."""
        return int(self.max_body_mb * 1024 * 1024)


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (None for other databases and for in-memory SQLite).

    Read from the text of the URL, as SQLAlchemy reads it, so that only the store imports SQLAlchemy.
    """
    scheme, _, rest = url.partition(":")
    if scheme.partition("+")[0] != "sqlite" or not rest.startswith("///"):
        return None
    database = unquote(rest[3:].partition("?")[0])
    if database in ("", ":memory:"):
        return None
    return Path(database.removeprefix("file:"))


def open_store(settings: Settings, cache: AnalysisCache | None = None, *, initialise: bool = True) -> FeatureStore:
    """The store for ``settings.database_url``, creating an SQLite file's folder if needed.

    Its analysis cache is ``cache``, or a new one sized by CACHE_MB (see ``data.cache.AnalysisCache``).
    With ``initialise=False`` nothing touches the database yet (see FeatureStore.initialise).
    """
    path = sqlite_file(settings.database_url)
    if path is not None:
        try:
            path.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # e.g. a volume not mounted yet: the store reports "database unreachable" when used
    cache = AnalysisCache(settings.cache_mb) if cache is None else cache
    return FeatureStore(settings.database_url, keep_builds=settings.keep_builds, cache=cache, initialise=initialise)
