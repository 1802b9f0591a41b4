"""Hostile write requests: ambiguous headers, cut bodies, gzip, huge headers, foreign hosts, odd names.

Each rejected request must answer in the API's error shape and leave the stored rows and the
version token exactly as they were. The framing cases also run against a real gunicorn on a raw
socket, since only a real server shows how repeated headers and short bodies arrive.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.store import FeatureStore
from ingest.framing import MAX_HEADER_BYTES, gunzip
from ingest.http import ApiError
from ingest.routes import is_loopback_host
from ingest.validation import MAX_COUNT
from tests.tables import snapshot

ROOT = Path(__file__).resolve().parent.parent
HEADERS = [("Business", "Acme"), ("Image-Source", "vision")]
FEATURES = b'{"a": {"x": 0.5}}'
CTR = b'{"a": 0.5}'
BOMB = gzip.compress(b'{"a": {"x": 0.5}}' + b" " * (4 * 1024 * 1024))  # 4 MiB of JSON in ~4 KiB

# (id, path, body, extra headers, environ overrides, status, error, a detail that must appear)
REJECTED = [
    (
        "surrogate-image",
        "/api/features",
        b'{"\\ud800": {"x": 0.5}}',
        [],
        {},
        400,
        "invalid features",
        "name must be Unicode text, got a lone surrogate (an unpaired \\ud800-\\udfff escape)",
    ),
    (
        "surrogate-feature",
        "/api/features",
        b'{"a": {"x\\udfff": 0.5}}',
        [],
        {},
        400,
        "invalid features",
        'image "a" feature "x\udfff": name must be Unicode text',
    ),
    ("surrogate-ctr-image", "/api/ctr", b'{"\\udc80": 0.5}', [], {}, 400, "invalid CTR", "name must be Unicode text"),
    (
        "clicks-1e30",
        "/api/ctr",
        b'{"a": {"clicks": 1000000000000000000000000000000, "impressions": 1000000000000000000000000000000}}',
        [],
        {},
        400,
        "invalid CTR",
        f'image "a" "clicks": out of range, must be at most {MAX_COUNT} (2**53 - 1), '
        "got 1000000000000000000000000000000",
    ),
    (
        "impressions-2-63",
        "/api/ctr",
        b'{"a": {"clicks": 1, "impressions": %d}}' % 2**63,
        [],
        {},
        400,
        "invalid CTR",
        f'image "a" "impressions": out of range, must be at most {MAX_COUNT} (2**53 - 1), got {2**63}',
    ),
    (
        "impressions-2-53",
        "/api/ctr",
        b'{"a": {"clicks": 1, "impressions": %d}}' % 2**53,
        [],
        {},
        400,
        "invalid CTR",
        "out of range",
    ),
    (
        "two-business-headers",
        "/api/features",
        FEATURES,
        [("Business", "evil")],
        {},
        400,
        "ambiguous headers",
        "Business header is sent more than once or holds a comma: send one value without commas",
    ),
    (
        "two-source-headers",
        "/api/ctr",
        CTR,
        [("Image-Source", "other")],
        {},
        400,
        "ambiguous headers",
        "Image-Source header is sent more than once or holds a comma: send one value without commas",
    ),
    (
        "business-and-x-business-differ",
        "/api/features",
        FEATURES,
        [("X-Business", "evil")],
        {},
        400,
        "ambiguous headers",
        "headers Business and X-Business disagree: send one of them, or the same value in both",
    ),
    (
        "truncated-body",
        "/api/features",
        FEATURES,
        [],
        {"CONTENT_LENGTH": "100"},
        400,
        "incomplete body",
        None,
    ),
    ("gzip-bomb", "/api/features", BOMB, [("Content-Encoding", "gzip")], {}, 413, "request body too large", None),
    (
        "gzip-garbage",
        "/api/features",
        b"\x1f\x8b not gzip",
        [("Content-Encoding", "gzip")],
        {},
        400,
        "invalid body",
        None,
    ),
    (
        "gzip-cut-short",
        "/api/ctr",
        gzip.compress(CTR)[:-12],
        [("Content-Encoding", "gzip")],
        {},
        400,
        "invalid body",
        None,
    ),
    (
        "brotli",
        "/api/features",
        FEATURES,
        [("Content-Encoding", "br")],
        {},
        415,
        "unsupported content encoding",
        "Content-Encoding 'br' is not supported: send the body as is, or with Content-Encoding: gzip",
    ),
    (
        "huge-authorization",
        "/api/features",
        FEATURES,
        [("Authorization", "Bearer " + "x" * 65536)],
        {},
        431,
        "request header fields too large",
        None,
    ),
    (
        "foreign-host",
        "/api/features",
        FEATURES,
        [("Host", "rebind.evil.example")],
        {},
        403,
        "writes are accepted only from this machine",
        None,
    ),
    (
        "foreign-forwarded-host",
        "/api/ctr",
        CTR,
        [("X-Forwarded-Host", "rebind.evil.example")],
        {},
        403,
        "writes are accepted only from this machine",
        None,
    ),
]


@pytest.fixture
def small_client(settings, store):
    """A client of an app whose body limit is 64 KiB."""
    from dashboard.factory import create_app

    return create_app(settings.with_overrides(max_body_mb=1 / 16), store).server.test_client()


@pytest.fixture
def seeded(client, store):
    """The store with one build and one CTR set, so "unchanged" means something."""
    assert client.put("/api/features", data=b'{"a": {"x": 0.5}, "b": {}}', headers=HEADERS).status_code == 201
    assert client.put("/api/ctr", data=b'{"a": 0.1, "b": 0.2}', headers=HEADERS).status_code == 200
    return store


def assert_error_shape(answer: dict, error: str, detail: str | None) -> None:
    """The API's error shape with the given summary and, when given, a detail containing ``detail``."""
    assert set(answer) == {"error", "details"} and answer["details"]
    assert all(isinstance(d, str) for d in answer["details"])
    assert answer["error"] == error
    if detail:
        assert any(detail in d for d in answer["details"]), answer["details"]


@pytest.mark.parametrize(
    "path, body, extra, environ, status, error, detail", [pytest.param(*row[1:], id=row[0]) for row in REJECTED]
)
def test_hostile_write_is_refused_and_changes_nothing(
    small_client, seeded, path, body, extra, environ, status, error, detail
):
    before, version = snapshot(seeded), seeded.version()
    response = small_client.put(path, data=body, headers=HEADERS + extra, environ_overrides=environ)
    assert response.status_code == status
    assert_error_shape(response.get_json(), error, detail)
    assert snapshot(seeded) == before
    assert seeded.version() == version


def test_gzip_body_is_decompressed_and_stored(client, store):
    doc = {f"img_{i}": {"x": i / 100} for i in range(1, 50)}
    body = gzip.compress(json.dumps(doc).encode())
    response = client.put("/api/features", data=body, headers=HEADERS + [("Content-Encoding", "gzip")])
    assert response.status_code == 201 and response.get_json()["values"] == 49
    assert store.dataset("Acme", "vision").confidences[:, 0].tolist() == [i / 100 for i in range(1, 50)]
    ctr = gzip.compress(b'{"img_1": 0.25}') + gzip.compress(b"")  # two members, as `cat a.gz b.gz`
    assert client.put("/api/ctr", data=ctr, headers=HEADERS + [("Content-Encoding", "x-gzip")]).status_code == 200
    assert store.ctr("Acme", "vision")["ctr"].tolist() == [0.25]


def test_gzip_limit_applies_to_the_decompressed_bytes():
    data = b"x" * 1000
    assert gunzip(gzip.compress(data), 1000) == data
    with pytest.raises(ApiError) as refused:
        gunzip(gzip.compress(data + b"y"), 1000)
    assert refused.value.status == 413


def test_gzip_bomb_is_refused_under_the_limit_of_the_app(settings, store):
    from dashboard.factory import create_app

    small = create_app(settings.with_overrides(max_body_mb=1), store).server.test_client()
    before = snapshot(store)
    response = small.put("/api/features", data=BOMB, headers=HEADERS + [("Content-Encoding", "gzip")])
    assert response.status_code == 413 and "1048576 bytes" in response.get_json()["details"][0]
    assert snapshot(store) == before


def test_counts_at_the_bound_are_stored_exactly(client, store):
    body = b'{"a": {"clicks": %d, "impressions": %d}}' % (MAX_COUNT - 1, MAX_COUNT)
    assert client.put("/api/ctr", data=body, headers=HEADERS).status_code == 200
    stored = store.ctr("Acme", "vision")
    assert stored["clicks"].tolist() == [MAX_COUNT - 1] and stored["impressions"].tolist() == [MAX_COUNT]


@pytest.mark.parametrize(
    "extra",
    [[("X-Business", "Acme")], [("X-Business", "Acme"), ("X-Image-Source", "vision")]],
    ids=["business-twice-same", "both-pairs-same"],
)
def test_same_value_under_both_header_names_is_accepted(client, store, extra):
    assert client.put("/api/features", data=FEATURES, headers=HEADERS + extra).status_code == 201
    assert store.datasets()["business"].tolist() == ["Acme"]


def test_header_just_under_the_limit_is_accepted(client, store):
    value = "y" * (MAX_HEADER_BYTES - len("X-Trace"))
    assert client.put("/api/features", data=FEATURES, headers=HEADERS + [("X-Trace", value)]).status_code == 201


def test_huge_header_on_a_read_is_answered_in_the_error_shape(client):
    response = client.get("/api/version", headers={"X-Trace": "z" * 20000})
    assert response.status_code == 431
    assert_error_shape(response.get_json(), "request header fields too large", "'X-Trace'")


@pytest.mark.parametrize(
    "host, expected",
    [
        ("localhost", True),
        ("localhost:8050", True),
        ("LOCALHOST.", True),
        ("app.localhost:8050", True),
        ("127.0.0.1", True),
        ("127.0.0.1:8050", True),
        ("[::1]:8050", True),
        ("[::1]", True),
        ("localhost.evil.example", False),
        ("evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("evil-localhost", False),
        ("10.0.0.1:8050", False),
        ("", False),
    ],
)
def test_is_loopback_host_accepts_only_names_of_this_machine(host, expected):
    assert is_loopback_host(host) is expected


@pytest.mark.parametrize("host", ["localhost:8050", "127.0.0.1:8050", "[::1]:8050"])
def test_loopback_host_names_may_write_without_a_token(client, store, host):
    headers = HEADERS + [("Host", host)]
    assert client.put("/api/features", data=FEATURES, headers=headers).status_code == 201


def test_token_writes_are_not_bound_to_a_host(settings, store):
    from dashboard.factory import create_app

    client = create_app(settings.with_overrides(ingest_token="t0k"), store).server.test_client()
    headers = HEADERS + [("Host", "ingest.example.com"), ("Authorization", "Bearer t0k")]
    response = client.put("/api/features", data=FEATURES, headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 201


def test_summary_build_id_past_the_id_range_is_404(client, seeded):
    for build_id in ("99999999999999999999", str(2**63), str(2**63 - 1)):
        response = client.get(
            "/api/summary", query_string={"business": "Acme", "source": "vision", "build_id": build_id}
        )
        assert response.status_code == 404
        assert_error_shape(response.get_json(), "unknown build", f"build {build_id} is not a stored build")


def test_page_build_id_past_the_id_range_falls_back_to_the_current_build(seeded):
    from dashboard.page import views
    from dashboard.page.selection import resolve_view

    state = views.parse_view({"business": "Acme", "source": "vision", "build_id": "99999999999999999999"})
    resolved = resolve_view(state, seeded)[0]
    assert resolved.build == views.CURRENT_BUILD and resolved.business == "Acme"


# -- the same framing cases against a real gunicorn ---------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """gunicorn serving app:server from the repository on a free loopback port; yields (port, db_url)."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('gunicorn') / 'features.db'}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("INGEST_TOKEN", "MAX_BODY_MB")}
    env.update(DATABASE_URL=db_url, DEMO_DATA="0", PYTHONPATH=str(ROOT))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "app:server", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "gunicorn exited at start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start listening"
                time.sleep(0.1)
        yield port, db_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def raw_exchange(port: int, request: bytes, *, close_after_send: bool = False) -> tuple[int, dict]:
    """Send bytes as they are on a new connection; the answer's status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        if close_after_send:
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def raw_put(path: str, headers: list[tuple[str, str]], body: bytes, *, length: int | None = None) -> bytes:
    """A PUT request as bytes, with the headers in the given order (repeats kept)."""
    lines = [f"PUT {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


GUNICORN_REJECTED = [
    pytest.param(HEADERS + [("Business", "evil")], FEATURES, None, 400, "ambiguous headers", id="two-business-headers"),
    pytest.param(HEADERS + [("Image-Source", "x")], FEATURES, None, 400, "ambiguous headers", id="two-source-headers"),
    pytest.param(
        HEADERS + [("X-Business", "evil")], FEATURES, None, 400, "ambiguous headers", id="business-x-business-differ"
    ),
    pytest.param(HEADERS, FEATURES, 100, 400, "incomplete body", id="truncated-body"),
    pytest.param(
        HEADERS + [("Authorization", "Bearer " + "x" * 65536)],
        FEATURES,
        None,
        431,
        "request header fields too large",
        id="huge-authorization",
    ),
    pytest.param(HEADERS + [("Content-Encoding", "br")], FEATURES, None, 415, "unsupported content encoding", id="br"),
]


@pytest.mark.parametrize("headers, body, length, status, error", GUNICORN_REJECTED)
def test_gunicorn_refuses_hostile_framing_and_stores_nothing(gunicorn_server, headers, body, length, status, error):
    port, db_url = gunicorn_server
    assert raw_exchange(port, raw_put("/api/features", HEADERS, FEATURES))[0] == 201
    store = FeatureStore(db_url)
    try:
        before, version = snapshot(store), store.version()
        answer_status, answer = raw_exchange(
            port, raw_put("/api/features", headers, body, length=length), close_after_send=True
        )
        assert answer_status == status
        assert_error_shape(answer, error, None)
        assert snapshot(store) == before
        assert store.version() == version
    finally:
        store.close()


def test_gunicorn_accepts_a_gzip_body(gunicorn_server):
    port, db_url = gunicorn_server
    body = gzip.compress(b'{"g1": {"x": 0.75}, "g2": {}}')
    status, answer = raw_exchange(port, raw_put("/api/features", HEADERS + [("Content-Encoding", "gzip")], body))
    assert status == 201 and answer["images"] == 2
    store = FeatureStore(db_url)
    try:
        assert list(store.dataset("Acme", "vision").images) == ["g1", "g2"]
    finally:
        store.close()


# -- malformed chunked framing: gunicorn decodes it while the app reads the body -------------

CHUNKED_REJECTED = [
    pytest.param(b"zz\r\n{}\r\n0\r\n\r\n", id="size-not-hex"),
    pytest.param(b"-2\r\n{}\r\n0\r\n\r\n", id="negative-size"),
    pytest.param(b"0x2\r\n{}\r\n0\r\n\r\n", id="0x-size"),
    pytest.param(b"2\r\n{}0\r\n\r\n", id="missing-crlf"),
    pytest.param(b"2;=\x01\r\n{}\r\n0\r\n\r\n", id="bad-extension"),
    pytest.param(b"2\r\n{}\r\n0\r\nnot a trailer\r\n\r\n", id="bad-trailer"),
]
WRITE_ROUTES = [("PUT", "/api/features"), ("PUT", "/api/ctr"), ("PATCH", "/api/ctr")]


def raw_chunked(method: str, path: str, chunks: bytes) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", "Transfer-Encoding: chunked"]
    head += [f"{name}: {value}" for name, value in HEADERS]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + chunks


@pytest.mark.parametrize("method, path", WRITE_ROUTES)
@pytest.mark.parametrize("chunks", CHUNKED_REJECTED)
def test_gunicorn_refuses_malformed_chunked_framing_with_400(gunicorn_server, method, path, chunks):
    """Each malformed chunked body is a 400 in the error shape on every write route, and stores nothing."""
    port, db_url = gunicorn_server
    store = FeatureStore(db_url)
    try:
        before, version = snapshot(store), store.version()
        status, answer = raw_exchange(port, raw_chunked(method, path, chunks), close_after_send=True)
        assert status == 400, answer
        assert_error_shape(answer, "malformed body framing", None)
        assert "chunk" in answer["details"][0]
        assert snapshot(store) == before and store.version() == version
    finally:
        store.close()


@pytest.mark.parametrize("chunks", CHUNKED_REJECTED[:2])
def test_gunicorn_refuses_malformed_chunked_framing_on_the_callback_route(gunicorn_server, chunks):
    """The page's callback route reads its body too: a malformed chunk is a 400 there, not an HTML 500."""
    port, _ = gunicorn_server
    status, answer = raw_exchange(port, raw_chunked("POST", "/_dash-update-component", chunks), close_after_send=True)
    assert status == 400 and answer["error"] == "malformed body framing"


def test_gunicorn_accepts_a_well_formed_chunked_body(gunicorn_server):
    port, _ = gunicorn_server
    body = b'{"c1": {"x": 0.5}}'
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, answer = raw_exchange(port, raw_chunked("PUT", "/api/features", chunks), close_after_send=True)
    assert status == 201 and answer["images"] == 1


# -- gzip: trailing bytes are refused, and the cost follows the body -------------------------

GZIP_JSON = gzip.compress(b'{"a": {"x": 0.5}}')


@pytest.mark.parametrize(
    "tail",
    [b"x", b"\x00" * 8, b"garbage after the member", b"\x1f", b"\x1f\x8b", gzip.compress(b"{}")[:-3]],
    ids=["one-byte", "zeros", "text", "half-magic", "magic-only", "cut-member"],
)
def test_gzip_with_bytes_after_the_members_is_refused_and_changes_nothing(client, seeded, tail):
    before, version = snapshot(seeded), seeded.version()
    response = client.put("/api/features", data=GZIP_JSON + tail, headers=HEADERS + [("Content-Encoding", "gzip")])
    assert response.status_code == 400
    assert_error_shape(response.get_json(), "invalid body", "body is not valid gzip")
    assert snapshot(seeded) == before and seeded.version() == version


def test_gzip_trailing_bytes_are_counted_in_the_answer():
    with pytest.raises(ApiError) as refused:
        gunzip(GZIP_JSON + b"x" * 1000, 10_000)
    assert refused.value.status == 400 and "1000 bytes follow the gzip data" in refused.value.details[0]


def test_gzip_of_100_kb_before_60_mib_of_other_bytes_is_refused(client, seeded):
    """The reproduction: 100 KB of gzip then 60 MiB of bytes (a minute of copying before) is a 400."""
    rng = random.Random(42)
    doc = {f"img_{i}": {f"f{j}": round(rng.random(), 6) for j in range(20)} for i in range(700)}
    head = gzip.compress(json.dumps(doc).encode())
    assert 50_000 < len(head) < 200_000
    before = snapshot(seeded)
    body = head + bytes(60 * 1024 * 1024)
    response = client.put("/api/features", data=body, headers=HEADERS + [("Content-Encoding", "gzip")])
    assert response.status_code == 400
    assert f"{60 * 1024 * 1024} bytes follow the gzip data" in response.get_json()["details"][0]
    assert snapshot(seeded) == before


def test_gzip_members_split_anywhere_decompress_alike():
    """Members of every size around the input slice, back to back, decompress to their concatenation."""
    parts = [bytes(random.Random(n).randbytes(n)) for n in (0, 1, 65_535, 65_536, 65_537, 200_000)]
    data = b"".join(gzip.compress(p) for p in parts)
    assert gunzip(data, sum(map(len, parts))) == b"".join(parts)
