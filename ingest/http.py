"""The one error shape of the HTTP API: ``{"error": "...", "details": [...]}`` for every 4xx/5xx."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error to answer with the API's error shape and the given status."""

    def __init__(self, status: int, error: str, details: list[str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = list(details or [])


def error_response(status: int, error: str, details=None):
    """A JSON error answer in the API's shape."""
    response = jsonify({"error": error, "details": list(details or [])})
    response.status_code = status
    return response


def _is_api_request() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def register_error_handlers(server: Flask) -> None:
    """Answer every error under /api/ in the error shape; leave the page's errors to Flask."""

    @server.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.details)

    @server.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _is_api_request():
            return exc
        summary = {
            413: "request body too large",
        }.get(exc.code, exc.name.lower())
        return error_response(exc.code or 500, summary, [exc.description] if exc.description else [])

    @server.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _is_api_request():
            return InternalServerError()
        return error_response(500, "internal server error", [type(exc).__name__])
