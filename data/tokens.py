"""Who may read or write what: actors, the one permission check, and access tokens as stored.

Pure (no Flask, no SQL): the web edges resolve an ``Actor`` from a request and ask ``may``;
the store keeps only ``token_hash`` of each token; the CLI makes them with ``new_token``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from data.names import normal_name

READ = "read"
WRITE = "write"
ROLES = (READ, WRITE)
ALL_BUSINESSES = "*"
ACCESS_MODES = ("local", "tokens", "public")
TOKEN_PREFIX = "cat_"


@dataclass(frozen=True)
class Actor:
    """Who a request acts as: a token, the local machine, or an anonymous public reader.

    ``businesses`` None means every business; ``token_id`` names the stored token, if any.
    """

    name: str
    role: str
    businesses: frozenset[str] | None = None
    token_id: int | None = None

    @property
    def scope(self) -> str:
        """The businesses as a person reads them: ``*`` or a comma-separated list."""
        return ALL_BUSINESSES if self.businesses is None else ", ".join(sorted(self.businesses))


def may(actor: Actor | None, action: str, business: str, source: str | None = None) -> bool:
    """Whether ``actor`` may ``action`` (READ or WRITE) the dataset (business, source).

    The one permission check: every route, callback and download asks it. Scopes are per
    business (every source of it); a write role also reads.
    """
    if actor is None or action not in ROLES:
        return False
    if action == WRITE and actor.role != WRITE:
        return False
    return actor.businesses is None or business in actor.businesses


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe, with a prefix that secret scanners can match."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 of a token (hex), which is all the store keeps of it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(stored: str, computed: str) -> bool:
    """Compare two token hashes in constant time."""
    return hmac.compare_digest(stored.encode(), computed.encode())


def encode_businesses(businesses) -> str:
    """The scope as stored: a JSON list of business names in NFC, ``["*"]`` for every business."""
    # Business names are stored and looked up in NFC (data/names.py): a scope typed decomposed must match them.
    names = sorted({normal_name(name) for name in businesses})
    return json.dumps([ALL_BUSINESSES] if ALL_BUSINESSES in names else names)


def decode_businesses(stored: str) -> frozenset[str] | None:
    """The stored scope as ``Actor.businesses``: None for every business."""
    names = json.loads(stored)
    return None if ALL_BUSINESSES in names else frozenset(names)


def token_actor(row: dict) -> Actor:
    """The actor a stored token row (``FeatureStore.token_by_hash``) acts as."""
    return Actor(row["name"], row["role"], decode_businesses(row["businesses"]), int(row["id"]))
