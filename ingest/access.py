"""Who is asking: the actor of a request, from a bearer token, a signed-in session or the ACCESS setting.

The request-facing half of the permission seam (``data.tokens.may`` is the other): every write
route, read route, Dash callback and the page's layout resolve the actor here, once per request,
and ask ``may``. The store never sees a request; ``ingest.scoped.ScopedStore`` shows it to the
page and the read API as only the actor's datasets. Every refusal is logged on
``creatives.access`` with the actor's name, the route and the business, never a token.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime, timedelta

from flask import after_this_request, current_app, g, has_request_context, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from data.tokens import READ, WRITE, Actor, may, same_hash, token_actor, token_hash
from ingest.framing import read_target
from ingest.http import ApiError

audit = logging.getLogger("creatives.access")

SESSION_COOKIE = "creatives_session"
SESSION_SECONDS = 14 * 24 * 3600
SESSION_SALT = "creatives-session"
# last_used_at is written at most this often per token: a read request must not become a write.
TOUCH_SECONDS = 60
# A proxy in front of the app makes every request look local; these name the real client.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
LOCAL = "local"
PUBLIC = "public"
INGEST_TOKEN_NAME = "INGEST_TOKEN"


def unauthorised(detail: str) -> ApiError:
    """401 with the challenge a client needs to send a token."""
    return ApiError(401, "missing or wrong token", [detail], headers={"WWW-Authenticate": "Bearer"})


def log_refusal(status: int, actor: Actor | None, business: str | None = None, reason: str = "") -> None:
    """One audit line per refused request: actor, route, business (never a token)."""
    audit.warning(
        "refused %s: actor=%s route=%s %s business=%r%s",
        status,
        actor.name if actor else "anonymous",
        request.method,
        request.path,
        business,
        f" ({reason})" if reason else "",
    )


# -- the session cookie ----------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SESSION_SALT)


def session_value(token_id: int) -> str:
    """The signed cookie value of a session signed in with the stored token ``token_id``."""
    return _serializer().dumps({"t": int(token_id)})


def session_token_id() -> int | None:
    """The token id of the request's session cookie when its signature and age are good, else None."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=SESSION_SECONDS)
    except BadSignature:
        return None
    token_id = data.get("t") if isinstance(data, dict) else None
    return token_id if isinstance(token_id, int) else None


def behind_https() -> bool:
    """True when the client reached the app over HTTPS (directly or through a proxy saying so)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.is_secure or forwarded == "https"


def set_session(response, token_id: int):
    """Sign the response's client in: HttpOnly, SameSite=Lax, Secure behind HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token_id),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=behind_https(),
        path="/",
    )
    return response


def end_session(response):
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=behind_https())
    return response


# -- resolving the actor ---------------------------------------------------------------------


def stored_token_actor(store, token: str) -> Actor | None:
    """The actor of a stored token (its last use recorded), or None when no such token is stored."""
    computed = token_hash(token)
    row = store.token_by_hash(computed)
    if row is None or not same_hash(row["token_hash"], computed):
        return None
    _touch(store, row)
    return token_actor(row)


def _touch(store, row: dict) -> None:
    """Record the token's use once the answer is sent, at most every TOUCH_SECONDS.

    After the answer: on SQLite the write waits behind any write in progress (a large PUT), and
    a read must not wait for it, nor fail when the time cannot be saved.
    """
    last = row.get("last_used_at")
    if last and datetime.fromisoformat(last) > datetime.now(UTC) - timedelta(seconds=TOUCH_SECONDS):
        return

    def touch():
        try:
            store.touch_token(row["id"])
        except Exception as exc:  # derived bookkeeping: never worth failing or logging a traceback for
            audit.info("last use of token %r not recorded: %s", row["name"], exc)

    @after_this_request
    def _then_touch(response):
        response.call_on_close(touch)
        return response


def _bearer_actor(store, settings, header: str) -> Actor | None:
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return None
    if settings.ingest_token and same_hash(token_hash(given), token_hash(settings.ingest_token)):
        return Actor(INGEST_TOKEN_NAME, WRITE)
    return stored_token_actor(store, given)


def _session_actor(store) -> Actor | None:
    token_id = session_token_id()
    if token_id is None:
        return None
    row = store.token_by_id(token_id)
    if row is None:  # revoked: the session ends at this request
        g.end_session = True
        return None
    _touch(store, row)
    return token_actor(row)


def _anonymous_actor(settings) -> Actor | None:
    """Who a request without a credential acts as under ACCESS, or None."""
    if settings.access == "tokens":
        return None
    if is_local_request():
        # Writes from this machine need no token only while INGEST_TOKEN is unset (as before tokens existed).
        return Actor(LOCAL, READ if settings.ingest_token else WRITE)
    if settings.access == PUBLIC:
        return Actor(PUBLIC, READ)
    return None


def resolve(store, settings) -> None:
    """Resolve the request's actor into ``g`` once: ``g.actor`` (or None) and ``g.credential_error``."""
    if "actor" in g:
        return
    g.actor, g.credential_error, g.signed_in = None, None, False
    header = request.headers.get("Authorization")
    # Only a Bearer credential is this app's: another scheme (a proxy's Basic sign-in in front of
    # it) is the proxy's business, and must not turn away the page's session or an ACCESS=public read.
    if header is not None and header.partition(" ")[0].lower() == "bearer":
        # A credential that was sent must be valid, even where none is needed.
        g.actor = _bearer_actor(store, settings, header)
        if g.actor is None:
            g.credential_error = "the bearer token is not a valid token (revoked, mistyped or not of this app)"
        return
    g.actor = _session_actor(store)
    if g.actor is not None:
        g.signed_in = True
        return
    g.actor = _anonymous_actor(settings)


def current_actor() -> Actor | None:
    """The actor resolved for this request (None outside a request or before ``resolve``)."""
    return g.get("actor") if has_request_context() else None


def signed_in() -> bool:
    """Whether the request came with a valid signed-in session."""
    return has_request_context() and bool(g.get("signed_in"))


def require_actor(store, settings) -> Actor:
    """The request's actor; raises 401 (logged) when there is none."""
    resolve(store, settings)
    if g.actor is None:
        detail = g.credential_error or (
            "send the header Authorization: Bearer <token> (make one with: python -m ingest token create), "
            "or sign in on the page"
        )
        log_refusal(401, None, request.args.get("business"), "no valid credential")
        raise unauthorised(detail)
    return g.actor


def authorise_write(store, settings) -> None:
    """The write routes' check: 401 without a valid credential, 403 out of the actor's scope (both logged).

    Without INGEST_TOKEN and under ACCESS=local or public, a client off this machine that sends
    no token gets the 403 it always got, naming both ways to write remotely.
    """
    resolve(store, settings)
    actor = g.actor
    if actor is not None and actor.token_id is None and actor.name in (LOCAL, PUBLIC) and actor.role != WRITE:
        actor = None  # a reader by address only: a write needs a credential
    if actor is None:
        if g.credential_error or settings.ingest_token or settings.access == "tokens":
            log_refusal(401, None, None, "no valid credential")
            raise unauthorised(
                g.credential_error or "send the header Authorization: Bearer <token> of a write token or INGEST_TOKEN"
            )
        _refuse_remote_write()
    business, source = read_target()
    if not may(actor, WRITE, business, source):
        log_refusal(403, actor, business, f"{actor.role} token may not write this business")
        raise ApiError(
            403,
            "this token may not write to this business",
            [f"token {actor.name!r} ({actor.role}) may write to: {actor.scope if actor.role == WRITE else 'nothing'}"],
        )


def _refuse_remote_write() -> None:
    log_refusal(403, None, request.headers.get("Business"), "write from another machine without a token")
    if not is_loopback_request():
        raise ApiError(
            403,
            "writes are accepted only from this machine",
            [
                "INGEST_TOKEN is not set, so only loopback clients may write; set INGEST_TOKEN to accept remote writes",
                "or send Authorization: Bearer <token> of a write token (python -m ingest token create --role write)",
            ],
        )
    raise ApiError(
        403,
        "writes are accepted only from this machine",
        [
            f"INGEST_TOKEN is not set, so writes must name a loopback host (localhost, 127.0.0.1, [::1]), "
            f"got Host {request.host!r}; set INGEST_TOKEN to accept writes under other names"
        ],
    )


# -- loopback ------------------------------------------------------------------------------


def is_local_request() -> bool:
    """From a loopback address and naming a loopback host.

    A web page can make a browser on this machine send requests to 127.0.0.1 under its own
    host name (DNS rebinding); such a request names that host, never a loopback one.
    """
    hosts = [request.host] + [h for h in request.headers.get("X-Forwarded-Host", "").split(",") if h.strip()]
    return is_loopback_request() and all(map(is_loopback_host, hosts))


def is_loopback_request() -> bool:
    """True when the client and every forwarding proxy named in the headers are loopback addresses."""
    addresses = [request.remote_addr or ""]
    for header in FORWARDING_HEADERS:
        value = request.headers.get(header)
        if value is not None:
            addresses += _forwarded_addresses(header, value)
    return all(map(is_loopback, addresses))


def is_loopback_host(host: str) -> bool:
    """True for a Host header naming this machine: localhost, a .localhost name or a loopback address."""
    text = host.strip().lower()
    name = text.rpartition(":")[0] if text.count(":") == 1 else text
    name = name.rstrip(".")
    return name == "localhost" or name.endswith(".localhost") or is_loopback(text)


def _forwarded_addresses(header: str, value: str) -> list[str]:
    if header != "Forwarded":
        return [part.strip() for part in value.split(",")]
    found = []
    for element in value.replace(";", ",").split(","):
        key, _, node = element.strip().partition("=")
        if key.lower() == "for":
            found.append(node.strip('"'))
    return found or [""]


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (with or without brackets, a port, or an IPv4-mapped form)."""
    text = address.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return False
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback
