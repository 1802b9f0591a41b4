"""Who gets in: the gate every request passes, the sign-in form, POST /login and POST /logout.

The gate resolves the request's actor (``ingest.access``) before any route runs: the read API
and Dash's layout and callback requests answer 401 without one, the page answers with the
sign-in form and nothing of the data. What an actor may then see is decided per dataset by
``data.tokens.may``, through ``ingest.scoped.ScopedStore``, which the read API, the layout and
every callback read through. The write routes check their own target (``ingest.routes``).
"""

from __future__ import annotations

import secrets
from html import escape
from urllib.parse import urlsplit

from dash import html
from flask import Flask, g, redirect, request

from data.errors import StorageUnavailable
from ingest.access import (
    current_actor,
    end_session,
    log_refusal,
    require_actor,
    resolve,
    set_session,
    signed_in,
    stored_token_actor,
)
from ingest.http import API_PREFIX, ApiError

# Served to anyone: static files that hold no data, the health check and the sign-in routes.
OPEN_PREFIXES = ("/_dash-component-suites/", "/assets/")
# The API's document describes routes, never data: open like the health probe.
OPEN_PATHS = {"/healthz", "/login", "/logout", "/_favicon.ico", "/api/openapi.json"}
SESSION_KEY_NAME = "session_key"

SIGN_IN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>Sign in - Creative analytics</title>
<link rel="stylesheet" href="/assets/bootstrap.min.css">
<link rel="icon" type="image/x-icon" href="/_favicon.ico">
</head>
<body class="bg-light">
<main class="container" style="max-width: 28rem; margin-top: 4rem">
<h1 class="h3 mb-3">Creative analytics</h1>
<form method="post" action="/login" class="card card-body">
<label for="token" class="form-label">Access token</label>
<input type="password" id="token" name="token" class="form-control{invalid_class}" autocomplete="current-password" required
 autofocus aria-describedby="token-help{error_id}"{invalid}>
<div id="token-help" class="form-text">A read or write token made with <code>python -m ingest token create</code>.</div>
{error}<input type="hidden" name="next" value="{next}">
<button type="submit" class="btn btn-primary mt-3">Sign in</button>
</form>
</main>
</body>
</html>
"""


def sign_in_page(next_path: str = "/", error: str | None = None) -> str:
    """The sign-in form: one password field named ``token``, and nothing of the data."""
    message = (
        f'<div id="token-error" class="alert alert-danger mt-3 mb-0" role="alert">{escape(error)}</div>\n'
        if error
        else ""
    )
    # After a refused token the field says so to assistive technology, and names the message.
    marks = {"invalid_class": " is-invalid", "error_id": " token-error", "invalid": ' aria-invalid="true"'}
    return SIGN_IN_PAGE.format(
        error=message, next=escape(safe_next(next_path), quote=True), **(marks if error else dict.fromkeys(marks, ""))
    )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def session_key(store, settings) -> bytes | str:
    """SECRET_KEY, else a key generated once and kept in the database for every worker and host."""
    return settings.secret_key or store.secret(SESSION_KEY_NAME, lambda: secrets.token_bytes(32))


def same_origin() -> bool:
    """Whether a form POST comes from this site's own page (its Origin, else its Referer).

    With the SameSite=Lax cookie this keeps another site from signing a browser in or out.
    """
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    hosts = {request.host.lower()} | {
        h.strip().lower() for h in request.headers.get("X-Forwarded-Host", "").split(",") if h.strip()
    }
    return urlsplit(source).netloc.lower() in hosts


def install_access(server: Flask, store, settings) -> None:
    """Put the gate in front of every route, and add POST /login and POST /logout."""

    @server.before_request
    def _gate():
        path = request.path
        if server.secret_key is None and path != "/healthz" and not path.startswith(OPEN_PREFIXES):
            # Read (or made) in the database on first use, not at start: a worker boots while the
            # database is down. Until it is back no session can be read (none is signed in): the
            # page says the data is unavailable, and data routes answer 503 on their own.
            try:
                server.secret_key = session_key(store, settings)
            except StorageUnavailable:
                pass
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
        if path.startswith(API_PREFIX):
            if request.method in ("GET", "HEAD"):
                require_actor(store, settings)  # writes check credential and scope in their blueprint
            return None
        if path.startswith("/_"):  # Dash's layout, dependencies and callbacks
            require_actor(store, settings)
            return None
        resolve(store, settings)
        if current_actor() is not None:
            return None
        if request.method not in ("GET", "HEAD"):
            require_actor(store, settings)
        log_refusal(401, None, request.args.get("business"), "page without a session: sign-in form")
        return sign_in_page(request.full_path.rstrip("?")), 200, {"Cache-Control": "no-store"}

    @server.after_request
    def _ended(response):
        if g.get("end_session"):
            end_session(response)
        return response

    @server.post("/login")
    def login():
        if not same_origin():
            log_refusal(403, None, None, "sign-in from another site")
            raise ApiError(403, "cross-site request refused", ["sign in from this site's own page"])
        token = request.form.get("token", "").strip()
        actor = stored_token_actor(store, token) if token else None
        next_path = request.form.get("next")
        if actor is None:
            log_refusal(401, None, None, "sign-in with an invalid token")
            page = sign_in_page(next_path, "That token is not valid: it may be mistyped or revoked.")
            return page, 401, {"Cache-Control": "no-store"}
        return set_session(redirect(safe_next(next_path), 303), actor.token_id)

    @server.get("/login")
    def login_form():
        # The address bar shows /login after a refused token: reloading it (a GET) must give the
        # form again, not the page's shell, whose layout request would be refused, and reload.
        resolve(store, settings)
        next_path = safe_next(request.args.get("next"))
        if current_actor() is not None:
            return redirect(next_path, 303)
        return sign_in_page(next_path), 200, {"Cache-Control": "no-store"}

    @server.get("/logout")
    def logout_link():
        # Only a same-site POST ends a session (a link or an image elsewhere must not): back to the page.
        return redirect("/", 303)

    @server.post("/logout")
    def logout():
        if not same_origin():
            log_refusal(403, current_actor(), None, "sign-out from another site")
            raise ApiError(403, "cross-site request refused", ["sign out from this site's own page"])
        return end_session(redirect("/", 303))


def sign_out_bar(name: str) -> html.Form:
    """Who is signed in, and the button that ends the session (a real POST /logout)."""
    return html.Form(
        [
            html.Span(["Signed in as ", html.Strong(name)], className="me-2"),
            html.Button("Sign out", type="submit", id="sign-out", className="btn btn-sm btn-outline-light"),
        ],
        action="/logout",
        method="POST",
        className="sign-out d-flex justify-content-end align-items-center px-3 py-1 small",
    )


def with_sign_out(serve_layout):
    """The layout function, with the sign-out bar above the page for a signed-in session."""

    def serve():
        layout = serve_layout()
        if not signed_in():
            return layout
        return html.Div([sign_out_bar(current_actor().name), layout])

    return serve
