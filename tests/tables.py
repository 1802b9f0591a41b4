"""Every stored row of a store, read straight from its tables: tests prove "nothing changed" with it."""

from __future__ import annotations

from sqlalchemy import select

from data.schema import metadata

# The session-signing key is made once, by whichever request first needs it (a refused one
# included): configuration of the app, not data a request could lose or change.
NOT_DATA = {"app_secrets"}


def snapshot(store) -> dict:
    """Every stored row of every data table, each table's rows sorted, keyed by table name."""
    with store.engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
            for table in metadata.sorted_tables
            if table.name not in NOT_DATA
        }
