"""What the API's routes raise: ``ApiError``, answered in the error shape by ``dashboard.api.errors``.

It lives here, the lowest layer that speaks HTTP, so that the write routes (here) and the read
API (``dashboard.api.routes``) raise the same exception without ``ingest`` importing the page.
"""

from __future__ import annotations

from flask import current_app

API_PREFIX = "/api/"


class ApiError(Exception):
    """An error to answer with the API's error shape and the given status."""

    def __init__(self, status: int, error: str, details: list[str] | None = None, headers: dict | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = list(details or [])
        self.headers = dict(headers or {})


def too_large_detail(limit: int | None = None) -> str:
    """The 413 detail naming the configured limit (the app's MAX_CONTENT_LENGTH by default)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") if limit is None else limit
    return f"the body may be at most {limit} bytes (MAX_BODY_MB)" if limit else "the body is too large"
