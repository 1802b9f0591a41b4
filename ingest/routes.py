"""Flask routes of the write path: PUT /api/features, PUT and PATCH /api/ctr."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, jsonify, request

from data import writes
from data.store import CtrFormConflict
from ingest.framing import check_header_sizes, read_build_tag, read_json_body, read_target
from ingest.http import API_PREFIX, ApiError
from ingest.validation import validate_ctr, validate_features

# A proxy in front of the app makes every request look local; these name the real client.
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def create_ingest_blueprint(store, settings) -> Blueprint:
    """The blueprint with PUT /api/features, PUT /api/ctr (replace) and PATCH /api/ctr (upsert)."""
    bp = Blueprint("ingest", __name__)

    @bp.before_app_request
    def _header_sizes():
        if request.path.startswith(API_PREFIX):
            check_header_sizes()

    @bp.before_request
    def _authorise():
        check_write_access(settings.ingest_token)

    def read_body():
        # One limit, the app's MAX_CONTENT_LENGTH (from MAX_BODY_MB): Werkzeug stops reading a
        # chunked body there, and the same number decides 413 here and caps a gzip body's output.
        return read_json_body(request.max_content_length)

    def written(work, status: int):
        """Store ``work(writer)`` through the write seam; its post-write work runs once the answer is sent."""
        jobs = []
        result = writes.write(store, work, schedule=jobs.append)
        if status == 201 and not result.pop("created", True):
            status = 200  # a retry of a stored build (same Build-Tag) gets that build back, and nothing is stored
        response = jsonify(result)
        for job in jobs:
            response.call_on_close(job)
        return response, status

    def accept(validate, what: str, write, status: int):
        business, source = read_target()
        result, problems = validate(read_body())
        if problems:
            raise ApiError(400, f"invalid {what}", problems)
        return written(lambda writer: getattr(writer, write)(business, source, result), status)

    @bp.put("/api/features")
    def put_features():
        tag = read_build_tag()
        business, source = read_target()
        batch, problems = validate_features(read_body())
        if problems:
            raise ApiError(400, "invalid features", problems)
        return written(lambda writer: writer.add_build(business, source, batch, tag=tag), 201)

    @bp.put("/api/ctr")
    def put_ctr():
        return accept(validate_ctr, "CTR", "replace_ctr", 200)

    @bp.patch("/api/ctr")
    def patch_ctr():
        try:
            return accept(validate_ctr, "CTR", "merge_ctr", 200)
        except CtrFormConflict as exc:
            raise ApiError(409, "CTR form differs from the stored set", [str(exc)]) from None

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
    # A web page can make a browser on this machine send requests to 127.0.0.1 under its own
    # host name (DNS rebinding); such a request names that host, never a loopback one.
    hosts = [request.host] + [h for h in request.headers.get("X-Forwarded-Host", "").split(",") if h.strip()]
    if not all(map(is_loopback_host, hosts)):
        raise ApiError(
            403,
            "writes are accepted only from this machine",
            [
                f"INGEST_TOKEN is not set, so writes must name a loopback host (localhost, 127.0.0.1, [::1]), "
                f"got Host {request.host!r}; set INGEST_TOKEN to accept writes under other names"
            ],
        )


def _is_loopback_request() -> bool:
    addresses = [request.remote_addr or ""]
    for header in _FORWARDING_HEADERS:
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
