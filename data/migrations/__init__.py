"""The store's schema changes as Alembic revisions (``versions/``), run by the store at start-up.

``upgrade(conn)`` brings a database to the newest revision inside the caller's transaction, so
the store runs it under its start-up lock and workers starting at once migrate exactly once.
A database made before these revisions existed has no ``alembic_version`` table: the first
revision recognises each table it finds and adds only what is missing, keeping every row.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

FOLDER = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for these revisions (no alembic.ini); ``url`` for command-line use."""
    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision's id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(conn) -> None:
    """Run every revision the database on ``conn`` lacks, in the connection's open transaction."""
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
