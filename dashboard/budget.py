"""Every request's time budget (REQUEST_BUDGET_SECONDS) and its translation into answers.

One seam: a hook opens a ``data.budget.Budget`` for each request (API reads and the page's
callbacks alike) with a check that the client is still connected, and one error handler turns
the data layer's ``BudgetExceeded`` into the API's error shape: 503 with ``Retry-After`` when
the work could fit on a less busy server, 422 when the request alone needs more than the budget.
"""

from __future__ import annotations

import logging
import socket

from flask import Flask, g, request

from dashboard.api.errors import error_response
from data import budget

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 10


def client_gone(environ) -> bool:
    """Whether the client closed its connection: a non-blocking peek at the request's socket.

    Gunicorn and Werkzeug's server put the socket in the WSGI environ; behind a server that does
    not (or a proxy that keeps the connection open), this answers False and the deadline alone
    bounds the work.
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None or request.content_length:  # an unread body would look like "still there"
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # connected, nothing sent: the usual case
    except (OSError, ValueError):
        return True  # reset or closed


def register_request_budget(server: Flask, seconds: float) -> None:
    """Open a budget of ``seconds`` for every request, and answer its refusal in the error shape."""

    @server.before_request
    def _open_budget():
        environ = request.environ
        g.budget_token = budget.start(budget.Budget(seconds, cancelled=lambda: client_gone(environ)))

    @server.teardown_request
    def _close_budget(_exc=None):
        token = g.pop("budget_token", None)
        if token is not None:
            budget.end(token)

    @server.errorhandler(budget.BudgetExceeded)
    def _exceeded(exc: budget.BudgetExceeded):
        log.warning("request budget exceeded on %s %s: %s", request.method, request.path, exc)
        if exc.fits:
            return error_response(
                503,
                "server busy: the statistics did not finish within the request's time budget",
                [str(exc), f"retry in {RETRY_AFTER_SECONDS} s"],
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return error_response(
            422,
            "request too costly: the statistics need more than the request's time budget",
            [str(exc), "ask for fewer features (min_n, confidence) or raise REQUEST_BUDGET_SECONDS"],
        )

    @server.errorhandler(budget.ClientGone)
    def _gone(exc: budget.ClientGone):
        # Nobody reads this answer; it only ends the request without a traceback.
        log.info("client left %s %s: work abandoned", request.method, request.path)
        return error_response(499, "client closed the request", [str(exc)])


def budget_notice(exc: budget.BudgetExceeded) -> dict:
    """The page's notice when a view's statistics ran out of the request's time budget: what happened, what to do."""
    if exc.fits:
        return {
            "title": "This view took too long to compute",
            "text": (
                "The server is busy and the statistics did not finish within a request's "
                f"{exc.seconds:g} s. Retry in a few seconds (move a control or reload the page), "
                "or narrow the view: a higher minimum group size or confidence leaves fewer features to compute."
            ),
        }
    return {
        "title": "This view needs more computation than a request may take",
        "text": (
            f"The statistics would take longer than a request's {exc.seconds:g} s even on an idle server. "
            "Narrow the view: raise the minimum group size or the confidence so fewer features are "
            "compared, or turn off the adjusted impact."
        ),
    }


def page_callback_error(exc: Exception):
    """Dash's ``on_error`` for the page's callbacks: a budget refusal becomes the page's notice.

    The callback's own outputs keep what they showed (the refused view is not drawn) and the
    notice says why and what to do; without this the browser got a 503 that nobody sees. Every
    other error goes on to the server's error handlers as before.
    """
    if not isinstance(exc, budget.BudgetExceeded):
        raise exc
    from dash import set_props

    from dashboard.page import ids
    from dashboard.page.components import notice_component

    log.warning("page view over the request budget on %s: %s", request.path, exc)
    set_props(ids.NOTICE, {"children": notice_component(budget_notice(exc))})
    return None
