"""The one error shape of the HTTP API: ``{"error": "...", "details": [...]}`` for every 4xx/5xx.

App-wide, so it is registered by the factory: it answers the read API's and the write routes'
``ApiError``s alike, Werkzeug's own errors, and /api/ paths that Dash's catch-all page route
would otherwise answer with the page.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule

from data.errors import StorageUnavailable
from ingest.framing import framing_detail, is_framing_error
from ingest.http import API_PREFIX, ApiError, too_large_detail

log = logging.getLogger(__name__)

RETRY_AFTER = "10"
# What an outage answer says, by cause. The driver's own message names the server (host, port,
# database, user), which is for the log only.
_PUBLIC_DETAILS = {
    "database is read-only": "the database accepts no writes right now; reads may still work",
    "disk full": "the database has no space left for this write",
    "database unreachable": "the app cannot reach its database right now",
    "database busy": "the database is too busy to answer right now",
    "database not ready": "the app is still preparing its database",
    "start-up failed": "the app could not prepare its database; it keeps trying",
}


def public_detail(cause: str) -> str:
    """The one line an outage answer gives about ``cause``: what happened and that it passes."""
    return f"{_PUBLIC_DETAILS.get(cause, 'the database cannot serve this request now')}; try again later"


def error_response(status: int, error: str, details=None, headers=None):
    """A JSON error answer in the API's shape."""
    response = jsonify({"error": error, "details": list(details or [])})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX) or request.path == "/healthz"


def _route_api_path(server: Flask) -> None:
    """Raise 404 or 405 for an /api/ request that no API route serves.

    Dash's catch-all ``/<path:path>`` would otherwise answer an unknown /api/ path with the
    page (200), and a known path with the wrong method as a 405 of the page's route. Matching
    against the API's own rules alone gives the answer an API client expects.
    """
    rule = request.url_rule
    if not request.path.startswith(API_PREFIX):
        return
    if request.routing_exception is None and rule is not None and rule.rule.startswith(API_PREFIX):
        return
    api_rules = Map(
        [
            Rule(r.rule, endpoint=r.endpoint, methods=r.methods)
            for r in server.url_map.iter_rules()
            if r.rule.startswith(API_PREFIX)
        ]
    )
    api_rules.bind("localhost").match(request.path, method=request.method)
    raise request.routing_exception or InternalServerError()


def register_error_handlers(server: Flask) -> None:
    """Answer every error under /api/ in the error shape; leave the page's errors to Flask."""

    @server.before_request
    def _api_routing():
        _route_api_path(server)

    @server.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.details, exc.headers)

    @server.errorhandler(StorageUnavailable)
    def _storage_unavailable(exc: StorageUnavailable):
        # Also for the page's callbacks: the fault is the server's, and it passes by itself.
        log.warning("storage unavailable on %s %s: %s", request.method, request.path, exc)
        return error_response(503, exc.cause, [public_detail(exc.cause)], {"Retry-After": RETRY_AFTER})

    @server.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _is_api_request():
            return exc
        code = exc.code or 500
        headers = {}
        details = [exc.description] if exc.description else []
        # Werkzeug's stock wording speaks of the URL and the server; say what the API client needs.
        if exc.description == RequestEntityTooLarge.description:
            details = [too_large_detail()]
        if exc.description == NotFound.description:
            details = [f"no API route {request.method} {request.path}"]
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
            details = [f"{request.path} accepts {headers['Allow']}"]
        summary = {413: "request body too large"}.get(code, exc.name.lower())
        return error_response(code, summary, details, headers)

    @server.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        if is_framing_error(exc):
            # A malformed chunked body read by any route (the page's callbacks included): the client's fault.
            log.warning("malformed body framing on %s %s: %s", request.method, request.path, exc)
            return error_response(400, "malformed body framing", [framing_detail(exc)])
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _is_api_request():
            return InternalServerError()
        return error_response(500, "internal server error", [type(exc).__name__])
