"""Names from users (business, image source, image, feature, build tag): one form and one length.

A name is kept in Unicode NFC, so "café" typed precomposed or decomposed is one name, and is
compared exactly in that form (case matters: "Acme" and "acme" are two names). A name may have
at most MAX_NAME_BYTES bytes of UTF-8, so that a read naming two of them in its URL, each
percent-encoded at up to three bytes per byte, stays well inside gunicorn's 4,094-byte request line.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 255


def normal_name(name: str) -> str:
    """``name`` in Unicode NFC (the same string when it already is)."""
    return name if unicodedata.is_normalized("NFC", name) else unicodedata.normalize("NFC", name)


def is_normal_name(name: str) -> bool:
    """True when ``name`` is in NFC and within MAX_NAME_BYTES (the writes' fast path)."""
    return (len(name) * 4 <= MAX_NAME_BYTES or _utf8_size(name) <= MAX_NAME_BYTES) and unicodedata.is_normalized(
        "NFC", name
    )


def name_length_problem(name: str) -> str | None:
    """Why ``name`` is too long, or None."""
    if len(name) * 4 <= MAX_NAME_BYTES:
        return None  # no character takes more than 4 bytes
    size = _utf8_size(name)
    if size <= MAX_NAME_BYTES:
        return None
    return f"name is {size} bytes long in UTF-8; a name may have at most {MAX_NAME_BYTES}"


def _utf8_size(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))
