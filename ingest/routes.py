"""Flask routes of the write path: PUT /api/features and PUT /api/ctr."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, jsonify, request

from ingest.http import ApiError, too_large_detail
from ingest.validation import parse_json_body, validate_ctr, validate_features, validate_target

BUSINESS_HEADERS = ("Business", "X-Business")
SOURCE_HEADERS = ("Image-Source", "X-Image-Source")
# A proxy in front of the app makes every request look local; these name the real client.
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def create_ingest_blueprint(store, settings) -> Blueprint:
    """The blueprint with PUT /api/features and PUT /api/ctr."""
    bp = Blueprint("ingest", __name__)

    @bp.before_request
    def _authorise():
        check_write_access(settings.ingest_token)

    def accept(validate, what: str, write, status: int):
        business, source = read_target()
        result, problems = validate(read_json_body(settings.max_body_bytes))
        if problems:
            raise ApiError(400, f"invalid {what}", problems)
        return jsonify(write(business, source, result)), status

    @bp.put("/api/features")
    def put_features():
        return accept(validate_features, "features", store.add_build, 201)

    @bp.put("/api/ctr")
    def put_ctr():
        return accept(validate_ctr, "CTR", store.replace_ctr, 200)

    return bp


def check_write_access(token: str | None) -> None:
    """Raise 401 without the bearer token when one is set, 403 off loopback when none is."""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(
                401,
                "missing or wrong token",
                ["send the header Authorization: Bearer <INGEST_TOKEN>"],
                headers={"WWW-Authenticate": "Bearer"},
            )
        return
    if not _is_loopback_request():
        raise ApiError(
            403,
            "writes are accepted only from this machine",
            ["INGEST_TOKEN is not set, so only loopback clients may write; set INGEST_TOKEN to accept remote writes"],
        )


def _is_loopback_request() -> bool:
    addresses = [request.remote_addr or ""]
    for header in _FORWARDING_HEADERS:
        value = request.headers.get(header)
        if value is not None:
            addresses += _forwarded_addresses(header, value)
    return all(map(is_loopback, addresses))


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


def _header_text(value: str) -> str:
    """A header value as the client typed it: WSGI hands over its bytes as latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        return value  # already decoded (not from a real socket)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid headers", [f"header value {value!r} is not valid UTF-8"]) from None


def _first_header(names) -> str | None:
    for name in names:
        value = request.headers.get(name)
        if value is not None:
            return _header_text(value)
    return None


def read_target() -> tuple[str, str]:
    """The (business, source) of a write from its headers; raises 400 when one is missing or blank."""
    business, source = _first_header(BUSINESS_HEADERS), _first_header(SOURCE_HEADERS)
    problems = validate_target(business, source)
    if problems:
        raise ApiError(400, "missing or empty headers", problems)
    return business, source


def read_json_body(limit: int):
    """The body parsed as JSON whatever its Content-Type; raises 413 above ``limit`` bytes, 400 if unparsable."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request body too large", [too_large_detail(limit)])
    raw = request.get_data(cache=False)
    # Without Content-Length (chunked), Werkzeug stops reading at the limit and returns what it
    # read; a body that fills the limit exactly is therefore taken as a longer one cut short.
    if request.content_length is None and len(raw) >= limit:
        raise ApiError(413, "request body too large", [too_large_detail(limit)])
    doc, problems = parse_json_body(raw)
    if problems:
        raise ApiError(400, "invalid body", problems)
    return doc
