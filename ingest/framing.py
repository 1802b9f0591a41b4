"""What a write request carries besides its JSON: the dataset headers and the body as sent.

Everything here guards against requests whose framing is ambiguous: a header sent twice, a
body cut short, a compressed body, a header too large to be a real one. Each is answered in
the API's error shape before validation sees the payload.
"""

from __future__ import annotations

import zlib

from flask import request
from werkzeug.exceptions import ClientDisconnected

from data.names import name_length_problem, normal_name
from ingest.http import ApiError, too_large_detail
from ingest.validation import parse_json_body, target_names, validate_target

BUSINESS_HEADERS = ("Business", "X-Business")
SOURCE_HEADERS = ("Image-Source", "X-Image-Source")
BUILD_TAG_HEADERS = ("Build-Tag", "X-Build-Tag")
# Gunicorn's default limit_request_field_size: the same answer whichever server runs the app.
MAX_HEADER_BYTES = 8190
# Content-Encoding values a write body may use; anything else is refused with 415.
IDENTITY_ENCODINGS = ("", "identity")
GZIP_ENCODINGS = ("gzip", "x-gzip")
_GZIP_CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def check_header_sizes() -> None:
    """Raise 431 when one header is longer than a server in front would accept (MAX_HEADER_BYTES)."""
    for name, value in request.headers.items():
        if len(name) + len(value) > MAX_HEADER_BYTES:
            raise ApiError(
                431,
                "request header fields too large",
                [f"header {name!r} is {len(value)} bytes long; a header may be at most {MAX_HEADER_BYTES} bytes"],
            )


def _header_text(value: str) -> str:
    """A header value as the client typed it: WSGI hands over its bytes as latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        return value  # already decoded (not from a real socket)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid headers", [f"header value {value!r} is not valid UTF-8"]) from None


def _one_header(names, problems: list[str]) -> str | None:
    """The value of a header that may come under either name, or None; records ambiguity.

    Servers join a repeated header with commas before the app sees it, so a comma is how a
    second ``Business`` header shows: refuse it rather than store ``"acme,evil"``.
    """
    found = {name: _header_text(request.headers[name]) for name in names if name in request.headers}
    values = set(found.values())
    if len(values) > 1:
        problems.append(f"headers {' and '.join(found)} disagree: send one of them, or the same value in both")
        return None
    value = next(iter(values), None)
    if value is not None and "," in value:
        label = " or ".join(found)
        problems.append(f"{label} header is sent more than once or holds a comma: send one value without commas")
        return None
    return value


def read_target() -> tuple[str, str]:
    """The (business, source) of a write from its headers; raises 400 when one is missing, blank or ambiguous."""
    ambiguous: list[str] = []
    business, source = target_names(_one_header(BUSINESS_HEADERS, ambiguous), _one_header(SOURCE_HEADERS, ambiguous))
    if ambiguous:
        raise ApiError(400, "ambiguous headers", ambiguous)
    problems = validate_target(business, source)
    if problems:
        raise ApiError(400, "missing or empty headers", problems)
    return business, source


def read_build_tag() -> str | None:
    """The optional Build-Tag header (e.g. Jenkins' $BUILD_TAG); raises 400 when it is blank, long or ambiguous."""
    problems: list[str] = []
    tag = _one_header(BUILD_TAG_HEADERS, problems)
    tag = None if tag is None else normal_name(tag)
    if tag is not None and not tag.strip():
        problems.append("header Build-Tag must not be empty when it is sent")
    elif tag is not None and (too_long := name_length_problem(tag)):
        problems.append(f"header Build-Tag: {too_long}")
    if problems:
        raise ApiError(400, "invalid headers", problems)
    return tag


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "request body too large", [too_large_detail(limit)])


def is_framing_error(exc: BaseException) -> bool:
    """True for the server's own error on a body it cannot decode (a malformed chunk, a bad trailer).

    Gunicorn decodes chunked bodies while the app reads them and raises its parser's errors
    there (``gunicorn.http.errors``); Werkzeug's server raises OSError or ValueError. Matched by
    module, so the app does not import the server.
    """
    return type(exc).__module__.startswith("gunicorn.http") or (
        isinstance(exc, (OSError, ValueError)) and "chunk" in str(exc).lower()
    )


def framing_detail(exc: BaseException) -> str:
    """What was wrong with the framing, in the server's words, capped."""
    text = str(exc).strip() or type(exc).__name__
    return f"the body's chunked framing is malformed ({type(exc).__name__}: {text[:200]})"


def read_raw_body(limit: int) -> bytes:
    """The body's bytes as sent, checked against Content-Length; raises 413 above ``limit``, 400 if cut short."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    try:
        raw = request.get_data(cache=False)
    except ClientDisconnected:
        raw = None
    except Exception as exc:
        if not is_framing_error(exc):
            raise
        raise ApiError(400, "malformed body framing", [framing_detail(exc)]) from None
    # Gunicorn hands over what arrived before the client closed; Werkzeug raises. Either way a
    # body shorter than its Content-Length is a broken upload, not a smaller payload.
    if raw is None or (declared is not None and len(raw) != declared):
        got = "fewer" if raw is None else len(raw)
        raise ApiError(
            400, "incomplete body", [f"Content-Length announced {declared} bytes, but {got} arrived before the end"]
        )
    # Without Content-Length (chunked), Werkzeug stops reading at the limit and returns what it
    # read; a body that fills the limit exactly is therefore taken as a longer one cut short.
    if declared is None and len(raw) >= limit:
        raise _too_large(limit)
    return raw


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body (one or more members); raises 413 past ``limit`` output bytes, 400
    for broken gzip or bytes after the last member.

    The input is fed in slices of _GZIP_CHUNK, so each call copies at most one slice and the
    work grows with the body (zlib's ``unconsumed_tail`` copies all the remaining input on every
    call: 100 KB of gzip before 60 MiB of other bytes took a minute that way). The output is
    capped at ``limit`` + 1 bytes, so a small "gzip bomb" costs at most ``limit`` bytes of memory.
    """
    view = memoryview(data)
    out = bytearray()
    pos = 0
    while pos < len(view):
        if view[pos : pos + 2] != GZIP_MAGIC[: len(view) - pos]:
            raise ApiError(
                400,
                "invalid body",
                [f"body is not valid gzip: {len(view) - pos} bytes follow the gzip data; send the gzip stream alone"]
                if pos
                else ["body is not valid gzip: it does not start with a gzip header"],
            )
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while not member.eof:
                if pos >= len(view):
                    raise ApiError(400, "invalid body", ["body is not valid gzip: it ends inside the compressed data"])
                piece = view[pos : pos + _GZIP_CHUNK]
                pos += len(piece)
                # Output is capped one byte past the limit: a tail left unread means the limit was passed.
                out += member.decompress(piece, limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_large(limit)
        except zlib.error as exc:
            raise ApiError(400, "invalid body", [f"body is not valid gzip: {exc}"]) from None
        pos -= len(member.unused_data)  # the next member starts where this one ended
    return bytes(out)


def read_json_body(limit: int):
    """The body (gzip or plain) parsed as JSON whatever its Content-Type; raises 413, 415 or 400."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in IDENTITY_ENCODINGS + GZIP_ENCODINGS:
        raise ApiError(
            415,
            "unsupported content encoding",
            [f"Content-Encoding {encoding!r} is not supported: send the body as is, or with Content-Encoding: gzip"],
        )
    raw = read_raw_body(limit)
    if encoding in GZIP_ENCODINGS:
        raw = gunzip(raw, limit)
    doc, problems = parse_json_body(raw)
    if problems:
        raise ApiError(400, "invalid body", problems)
    return doc
