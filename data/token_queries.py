"""The SQL of access tokens (their hashes) and shared secrets on one connection, composed by FeatureStore."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import delete, select, update

from data import database
from data.errors import TokenExists
from data.schema import access_tokens, app_secrets

TOKEN_COLUMNS = ("id", "name", "token_hash", "role", "businesses", "created_at", "last_used_at")
LISTED_COLUMNS = ["name", "role", "businesses", "created_at", "last_used_at"]  # never the hash


def insert_token(conn, name: str, role: str, businesses: str, token_hash: str, created_at: str) -> None:
    """Store a token's hash under ``name``; raises TokenExists, storing nothing, when the name is taken."""
    if conn.execute(select(access_tokens.c.id).where(access_tokens.c.name == name)).first() is not None:
        raise TokenExists(f"a token named {name!r} exists; revoke it first or choose another name")
    values = {"name": name, "token_hash": token_hash, "role": role, "businesses": businesses}
    conn.execute(access_tokens.insert().values(**values, created_at=created_at))


def tokens(conn) -> pd.DataFrame:
    """Every stored token by name, without its hash."""
    query = select(*(access_tokens.c[c] for c in LISTED_COLUMNS)).order_by(access_tokens.c.name)
    return pd.DataFrame([tuple(r) for r in conn.execute(query).all()], columns=LISTED_COLUMNS)


def delete_token(conn, name: str) -> bool:
    """Delete the token named ``name``; False when there is none."""
    return conn.execute(delete(access_tokens).where(access_tokens.c.name == name)).rowcount > 0


def _token_where(conn, condition) -> dict | None:
    row = conn.execute(select(*(access_tokens.c[c] for c in TOKEN_COLUMNS)).where(condition)).first()
    return None if row is None else dict(row._mapping)


def token_by_hash(conn, token_hash: str) -> dict | None:
    """The stored token whose hash is ``token_hash`` (its row as a dict), or None."""
    return _token_where(conn, access_tokens.c.token_hash == token_hash)


def token_by_id(conn, token_id: int) -> dict | None:
    """The stored token with that id, or None."""
    return _token_where(conn, access_tokens.c.id == int(token_id))


def touch_token(conn, token_id: int, used_at: str) -> None:
    """Record when the token was last used."""
    conn.execute(update(access_tokens).where(access_tokens.c.id == int(token_id)).values(last_used_at=used_at))


def secret(conn, name: str) -> bytes | None:
    """The stored secret ``name``, or None."""
    found = conn.execute(select(app_secrets.c.value).where(app_secrets.c.name == name)).scalar()
    return None if found is None else bytes(found)


def secret_or_store(conn, name: str, make) -> bytes:
    """The stored secret ``name``; when there is none, ``make()`` stored under it."""
    database.lock_startup(conn)  # PostgreSQL: one generator at a time; SQLite: BEGIN IMMEDIATE
    stored = conn.execute(select(app_secrets.c.value).where(app_secrets.c.name == name)).scalar()
    if stored is None:
        stored = make()
        conn.execute(app_secrets.insert().values(name=name, value=stored))
    return bytes(stored)
