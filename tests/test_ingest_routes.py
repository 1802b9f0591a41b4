"""PUT /api/features and PUT /api/ctr through the app from the factory, on real SQLite files."""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections import Counter

import numpy as np
import pytest

from dashboard.factory import create_app
from data.store import FeatureStore
from ingest.routes import is_loopback
from tests.browser import serve_address
from tests.helpers import dense_doc
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
TOKEN = "s3cret-token"


def put(client, path, body, headers=HEADERS, **kwargs):
    """PUT a body (an object is sent as JSON text, bytes as they are) with the given headers."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.put(path, data=data, headers=headers, **kwargs)


def features_doc(rng: random.Random, images: int, features: int) -> dict:
    """A deterministic sparse features body: about half the values are absent or 0."""
    names = [f"label_{j}" for j in range(features)]
    return {f"img_{i}": {name: round(rng.random(), 6) for name in names if rng.random() < 0.5} for i in range(images)}


@pytest.fixture
def seeded(client, store):
    """The store with one build and one CTR set already in it, so "unchanged" means something."""
    assert put(client, "/api/features", {"a": {"x": 0.5}, "b": {"y": 0.25}}).status_code == 201
    assert put(client, "/api/ctr", {"a": 0.1, "b": 0.2}).status_code == 200
    return store


@pytest.fixture
def small_client(settings, store):
    """A client of an app whose body limit is 50 KiB."""
    return create_app(settings.with_overrides(max_body_mb=50 / 1024), store).server.test_client()


@pytest.fixture
def token_client(settings, store):
    """A client of an app that requires the bearer token for writes."""
    return create_app(settings.with_overrides(ingest_token=TOKEN), store).server.test_client()


@pytest.fixture
def live_server(app):
    """The app served by a threaded WSGI server on a loopback port; yields (host, port)."""
    with serve_address(app) as address:
        yield address


def raw_put(address, path, body, headers, *, chunked=False):
    """A PUT over a real socket; header values may be bytes (sent as they are)."""
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.putrequest("PUT", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body), 4096):
                piece = body[start : start + 4096]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        else:
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# -- the happy path ------------------------------------------------------------------------


def test_put_features_stores_a_build_and_answers_201(client, store):
    doc = {"a": {"x": 0.5, "y": 0}, "b": {}, "c": {"z": 1, "x": 0.25}}
    response = put(client, "/api/features", doc)
    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in ("business", "source", "images", "features", "values")} == {
        "business": "Acme",
        "source": "vision",
        "images": 3,
        "features": 3,
        "values": 3,
    }
    assert body["build_id"] == store.resolve_build("Acme", "vision")
    assert body["received_at"]
    dataset = store.dataset("Acme", "vision")
    assert list(dataset.images) == ["a", "b", "c"]
    assert list(dataset.features) == ["x", "y", "z"]
    assert dataset.dense().tolist() == [[0.5, 0, 0], [0, 0, 0], [0.25, 0, 1]]


def test_put_features_each_put_is_a_new_current_build(client, store):
    first = put(client, "/api/features", {"a": {"x": 0.5}}).get_json()["build_id"]
    second = put(client, "/api/features", {"b": {"y": 0.5}}).get_json()["build_id"]
    assert second > first
    assert store.builds("Acme", "vision")["build_id"].tolist() == [second, first]
    assert list(store.dataset("Acme", "vision").images) == ["b"]


def test_put_features_accepts_x_prefixed_headers(client, store):
    response = put(
        client, "/api/features", {"a": {"x": 0.5}}, headers={"X-Business": "Acme", "X-Image-Source": "vision"}
    )
    assert response.status_code == 201
    assert store.builds("Acme", "vision")["images"].tolist() == [1]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"],
)
def test_put_features_parses_json_whatever_the_content_type(client, store, content_type):
    response = put(client, "/api/features", {"a": {"x": 0.5}}, content_type=content_type)
    assert response.status_code == 201
    assert store.dataset("Acme", "vision").dense().tolist() == [[0.5]]


def test_put_features_dense_body_round_trips_exactly(client, store):
    rng = random.Random(42)
    doc = {f"img_{i}": {f"f_{j}": rng.random() for j in range(60)} for i in range(80)}
    assert put(client, "/api/features", doc).get_json()["values"] == 80 * 60
    dataset = store.dataset("Acme", "vision")
    assert np.array_equal(dataset.dense(), dense_doc(doc, dataset.images, dataset.features))


def test_put_ctr_plain_rates_replace_the_set(client, store):
    assert put(client, "/api/ctr", {"a": 0.1, "b": 0.2}).status_code == 200
    response = put(client, "/api/ctr", {"c": 0.3})
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("business", "source", "images", "has_counts")} == {
        "business": "Acme",
        "source": "vision",
        "images": 1,
        "has_counts": False,
    }
    assert store.ctr("Acme", "vision")["image"].tolist() == ["c"]


def test_put_ctr_counts_keep_clicks_and_impressions(client, store):
    response = put(client, "/api/ctr", {"a": {"clicks": 3, "impressions": 7}, "b": {"clicks": 0, "impressions": 5}})
    assert response.status_code == 200 and response.get_json()["has_counts"] is True
    stored = store.ctr("Acme", "vision")
    assert stored["ctr"].tolist() == [3 / 7, 0.0]
    assert stored["clicks"].tolist() == [3, 0]
    assert stored["impressions"].tolist() == [7, 5]


@pytest.mark.parametrize("ctr_first", [True, False])
def test_put_ctr_before_or_after_features_aligns_to_the_build(client, store, ctr_first):
    steps = [
        ("/api/ctr", {"a": 0.1, "c": 0.3, "unknown": 0.9}),
        ("/api/features", {"a": {"x": 1}, "b": {}, "c": {"x": 0.5}}),
    ]
    for path, doc in steps if ctr_first else steps[::-1]:
        assert put(client, path, doc).status_code in (200, 201)
    dataset = store.dataset("Acme", "vision")
    assert np.array_equal(dataset.ctr, [0.1, np.nan, 0.3], equal_nan=True)
    assert client.get("/api/datasets").get_json()["datasets"][0]["images_with_ctr"] == 2


@pytest.mark.parametrize(
    "business, source", [("Robert'); DROP TABLE builds;--", 'Café ☕ "quoted"'), ("  padded  ", "a/b?c=d&e")]
)
def test_put_features_stores_header_values_as_given(client, store, business, source):
    headers = {"Business": business, "Image-Source": source}
    assert put(client, "/api/features", {"a": {"x": 0.5}}, headers=headers).status_code == 201
    assert put(client, "/api/ctr", {"a": 0.25}, headers=headers).status_code == 200
    listed = client.get("/api/datasets").get_json()["datasets"]
    assert [(d["business"], d["source"], d["images_with_ctr"]) for d in listed] == [(business, source, 1)]
    summary = client.get("/api/summary", query_string={"business": business, "source": source})
    assert summary.status_code == 200 and summary.get_json()["business"] == business
    assert snapshot(store)["builds"][0][1:3] == (business, source)


def test_put_features_decodes_utf8_header_bytes_from_a_real_socket(live_server, store):
    headers = {"Business": 'Café ☕ "quoted"'.encode(), "Image-Source": b"vision"}
    status, body = raw_put(live_server, "/api/features", b'{"a": {"x": 0.5}}', headers)
    assert status == 201 and body["business"] == 'Café ☕ "quoted"'
    assert store.datasets()["business"].tolist() == ['Café ☕ "quoted"']


def test_put_features_rejects_header_bytes_that_are_not_utf8(live_server, store):
    before = snapshot(store)
    status, body = raw_put(
        live_server, "/api/features", b'{"a": {"x": 0.5}}', {"Business": b"Caf\xe9", "Image-Source": b"v"}
    )
    assert status == 400 and body["error"] == "invalid headers"
    assert snapshot(store) == before


# -- rejected requests change nothing ------------------------------------------------------

BIG = json.dumps({f"img_{i}": {"x": 0.5} for i in range(3000)})
COMMON_BAD = [
    (
        "invalid-utf8",
        b'{"a": {"x": 0.5}}\xff',
        HEADERS,
        400,
        "invalid body",
        "body is not valid UTF-8: byte 0xff at offset 17",
    ),
    ("invalid-json", b'{"a": ', HEADERS, 400, "invalid body", None),
    ("empty-body", b"", HEADERS, 400, "invalid body", "body is empty: expected a JSON object"),
    ("list-body", b"[1, 2]", HEADERS, 400, None, None),
    ("empty-object", b"{}", HEADERS, 400, None, None),
    (
        "missing-business",
        b'{"a": {"x": 0.5}}',
        {"Image-Source": "v"},
        400,
        "missing or empty headers",
        "Business header is missing",
    ),
    (
        "missing-source",
        b'{"a": 0.5}',
        {"Business": "b"},
        400,
        "missing or empty headers",
        "Image-Source header is missing",
    ),
    (
        "empty-business",
        b'{"a": 0.5}',
        {"Business": "", "Image-Source": "v"},
        400,
        "missing or empty headers",
        "Business header must not be empty",
    ),
    (
        "blank-source",
        b'{"a": 0.5}',
        {"Business": "b", "Image-Source": "  "},
        400,
        "missing or empty headers",
        "Image-Source header must not be empty",
    ),
    (
        "too-large",
        BIG.encode(),
        HEADERS,
        413,
        "request body too large",
        f"the body may be at most {50 * 1024} bytes (MAX_BODY_MB)",
    ),
]
FEATURES_BAD = [
    ("image-not-object", b'{"a": 0.5}', 'image "a": must be an object of feature -> confidence, got 0.5'),
    ("text-value", b'{"a": {"x": "high"}}', 'image "a" feature "x": value must be a number in [0, 1], got "high"'),
    ("bool-value", b'{"a": {"x": true}}', 'image "a" feature "x": value must be a number in [0, 1], got true'),
    ("null-value", b'{"a": {"x": null}}', 'image "a" feature "x": value must be a number in [0, 1], got null'),
    ("nan-value", b'{"a": {"x": NaN}}', 'image "a" feature "x": value must be a number in [0, 1], got NaN'),
    (
        "infinity-value",
        b'{"a": {"x": Infinity}}',
        'image "a" feature "x": value must be a number in [0, 1], got Infinity',
    ),
    ("negative-value", b'{"a": {"x": -0.5}}', 'image "a" feature "x": value must be a number in [0, 1], got -0.5'),
    ("above-one", b'{"a": {"x": 1.5}}', 'image "a" feature "x": value must be a number in [0, 1], got 1.5'),
    ("empty-image", b'{"": {"x": 0.5}}', 'image "": name must not be empty'),
    ("blank-image", b'{" ": {"x": 0.5}}', 'image " ": name must not be empty'),
    ("empty-feature", b'{"a": {"": 0.5}}', 'image "a" feature "": name must not be empty'),
    (
        "one-bad-among-many",
        json.dumps({**{f"i{k}": {"x": 0.5} for k in range(500)}, "i9": {"x": 2}}).encode(),
        'image "i9" feature "x": value must be a number in [0, 1], got 2',
    ),
]
CTR_BAD = [
    (
        "mixed-layouts",
        b'{"a": 0.1, "b": {"clicks": 1, "impressions": 2}}',
        'body mixes plain CTRs (e.g. image "a") with click and impression counts (e.g. image "b"): use one layout for every image',
    ),
    (
        "text-ctr",
        b'{"a": "0.1"}',
        'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got "0.1"',
    ),
    (
        "bool-ctr",
        b'{"a": false}',
        'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got false',
    ),
    (
        "null-ctr",
        b'{"a": null}',
        'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got null',
    ),
    (
        "nan-ctr",
        b'{"a": NaN}',
        'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got NaN',
    ),
    ("negative-ctr", b'{"a": -0.1}', 'image "a": CTR must be a number in [0, 1], got -0.1'),
    ("ctr-above-one", b'{"a": 1.1}', 'image "a": CTR must be a number in [0, 1], got 1.1'),
    ("empty-image", b'{"": 0.1}', 'image "": name must not be empty'),
    (
        "clicks-over-impressions",
        b'{"a": {"clicks": 3, "impressions": 2}}',
        'image "a": clicks (3) must not exceed impressions (2)',
    ),
    (
        "zero-impressions",
        b'{"a": {"clicks": 0, "impressions": 0}}',
        'image "a" "impressions": must be a whole number >= 1, got 0',
    ),
    (
        "negative-clicks",
        b'{"a": {"clicks": -1, "impressions": 2}}',
        'image "a" "clicks": must be a whole number >= 0, got -1',
    ),
    (
        "fractional-clicks",
        b'{"a": {"clicks": 1.5, "impressions": 2}}',
        'image "a" "clicks": must be a whole number >= 0, got 1.5',
    ),
    ("missing-impressions", b'{"a": {"clicks": 1}}', 'image "a": "impressions" is missing'),
]
BAD_REQUESTS = (
    [
        pytest.param(path, *case[1:], id=f"{name}-{case[0]}")
        for path, name in (("/api/features", "features"), ("/api/ctr", "ctr"))
        for case in COMMON_BAD
    ]
    + [
        pytest.param("/api/features", body, HEADERS, 400, "invalid features", detail, id=f"features-{name}")
        for name, body, detail in FEATURES_BAD
    ]
    + [
        pytest.param("/api/ctr", body, HEADERS, 400, "invalid CTR", detail, id=f"ctr-{name}")
        for name, body, detail in CTR_BAD
    ]
)


@pytest.mark.parametrize("path, body, headers, status, error, detail", BAD_REQUESTS)
def test_put_rejected_request_changes_nothing(small_client, seeded, path, body, headers, status, error, detail):
    before = snapshot(seeded)
    version = seeded.version()
    response = put(small_client, path, body, headers=headers)
    assert response.status_code == status
    answer = response.get_json()
    assert set(answer) == {"error", "details"} and answer["details"]
    if error:
        assert answer["error"] == error
    if detail:
        assert detail in answer["details"]
    assert snapshot(seeded) == before
    assert seeded.version() == version


def test_put_chunked_body_over_the_limit_is_refused_by_a_real_server(settings, store):
    app = create_app(settings.with_overrides(max_body_mb=50 / 1024), store)
    with serve_address(app) as address:
        small = b'{"a": {"x": 0.5}}'
        assert raw_put(address, "/api/features", small, HEADERS, chunked=True)[0] == 201
        before = snapshot(store)
        status, body = raw_put(address, "/api/features", BIG.encode(), HEADERS, chunked=True)
        assert status == 413 and body["error"] == "request body too large"
        assert snapshot(store) == before
        just_under = b'{"a": {"x": 0.5}}'.ljust(50 * 1024 - 1)
        assert raw_put(address, "/api/features", just_under, HEADERS, chunked=True)[0] == 201


def test_put_problems_are_all_reported_with_a_cap(client, seeded):
    before = snapshot(seeded)
    doc = {f"img_{i}": {"x": "bad", "y": -1} for i in range(40)}
    answer = put(client, "/api/features", doc).get_json()
    assert answer["error"] == "invalid features"
    assert len(answer["details"]) == 51 and answer["details"][-1] == "... and 30 more problems"
    assert snapshot(seeded) == before


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer s3cret-tokeñ"],
)
@pytest.mark.parametrize("path", ["/api/features", "/api/ctr"])
def test_put_with_token_set_refuses_missing_or_wrong_token(token_client, seeded, path, authorization):
    before = snapshot(seeded)
    headers = dict(HEADERS, **({"Authorization": authorization} if authorization is not None else {}))
    response = put(token_client, path, {"a": {"x": 0.5}} if path.endswith("features") else {"a": 0.5}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"] == "missing or wrong token"
    assert snapshot(seeded) == before


def test_put_with_token_set_accepts_it_from_any_address(token_client, store):
    headers = dict(HEADERS, Authorization=f"Bearer {TOKEN}")
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert (
        put(token_client, "/api/features", {"a": {"x": 0.5}}, headers=headers, environ_base=remote).status_code == 201
    )
    assert put(token_client, "/api/ctr", {"a": 0.5}, headers=headers, environ_base=remote).status_code == 200
    assert store.dataset("Acme", "vision").ctr.tolist() == [0.5]


def test_put_with_token_set_checks_the_token_before_the_body(token_client, seeded):
    response = put(token_client, "/api/features", b"not json", headers={})
    assert response.status_code == 401


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_put_without_token_accepts_loopback_clients(client, store, remote):
    response = put(client, "/api/features", {"a": {"x": 0.5}}, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == 201


@pytest.mark.parametrize(
    "remote, extra",
    [
        ("10.0.0.8", {}),
        ("192.168.1.20", {}),
        ("2001:db8::1", {}),
        ("::ffff:10.0.0.1", {}),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.7"}),
        ("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}),
    ],
)
@pytest.mark.parametrize("path", ["/api/features", "/api/ctr"])
def test_put_without_token_refuses_other_clients(client, seeded, path, remote, extra):
    before = snapshot(seeded)
    body = {"a": {"x": 0.5}} if path.endswith("features") else {"a": 0.5}
    response = put(client, path, body, headers={**HEADERS, **extra}, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == 403
    answer = response.get_json()
    assert answer["error"] == "writes are accepted only from this machine"
    assert "set INGEST_TOKEN" in answer["details"][0]
    assert snapshot(seeded) == before


def test_put_without_token_accepts_a_local_proxy_forwarding_a_local_client(client, store):
    headers = {**HEADERS, "X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1;proto=http"}
    assert put(client, "/api/features", {"a": {"x": 0.5}}, headers=headers).status_code == 201


@pytest.mark.parametrize(
    "address, expected",
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:8080", True),
        ("127.0.0.1:5000", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("128.0.0.1", False),
        ("localhost", False),
        ("", False),
        ("unknown", False),
    ],
)
def test_is_loopback_recognises_loopback_addresses(address, expected):
    assert is_loopback(address) is expected


# -- routing errors in the error shape -----------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "post", "delete"])
def test_unknown_api_path_answers_404_in_the_error_shape(client, method):
    response = getattr(client, method)("/api/nothing/here")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "not found",
        "details": [f"no API route {method.upper()} /api/nothing/here"],
    }


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("get", "/api/features", "OPTIONS, PUT"),
        ("post", "/api/ctr", "OPTIONS, PATCH, PUT"),
        ("put", "/api/datasets", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_answers_405_in_the_error_shape(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.get_json() == {"error": "method not allowed", "details": [f"{path} accepts {allowed}"]}


def test_page_paths_still_serve_the_page(client):
    for path in ("/", "/some/page"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "text/html"


# -- durability and concurrency ------------------------------------------------------------


def test_put_data_survives_a_restart(client, store, settings):
    put(client, "/api/features", {"a": {"x": 0.5}, "b": {"y": 1}})
    put(client, "/api/ctr", {"a": {"clicks": 1, "impressions": 4}, "b": {"clicks": 2, "impressions": 4}})
    query = {"business": "Acme", "source": "vision"}
    datasets = client.get("/api/datasets").get_json()
    summary = client.get("/api/summary", query_string=query).get_json()
    store.close()

    reopened = FeatureStore(settings.database_url)
    try:
        again = create_app(settings, reopened).server.test_client()
        assert again.get("/api/datasets").get_json() == datasets
        assert again.get("/api/summary", query_string=query).get_json() == summary
        assert reopened.ctr("Acme", "vision")["clicks"].tolist() == [1, 2]
    finally:
        reopened.close()


def test_put_concurrent_ctr_sets_each_land_whole(settings, store):
    """8 threads x 5 PUT /api/ctr on a real threaded server: every one is stored, none is mixed."""
    threads, per_thread = 8, 5
    sent, failures, lock = {}, [], threading.Lock()

    def writer(address, t: int):
        rng = random.Random(42 + t)
        for k in range(per_thread):
            images = [f"img_{i}" for i in range(40 + t)]
            doc = {image: {"clicks": rng.randint(0, 50), "impressions": 1000 + 7 * t + k} for image in images}
            status, body = raw_put(address, "/api/ctr", json.dumps(doc).encode(), HEADERS)
            with lock:
                if status == 200:
                    sent[body["received_at"]] = doc
                else:
                    failures.append((status, body))

    with serve_address(create_app(settings, store)) as address:
        workers = [threading.Thread(target=writer, args=(address, t)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    assert failures == []
    assert len(sent) == threads * per_thread
    # The set stored is the last one committed, whole: received_at is taken inside each write.
    last = sent[max(sent)]
    stored = store.ctr("Acme", "vision")
    assert dict(zip(stored["image"], zip(stored["clicks"], stored["impressions"]))) == {
        image: (v["clicks"], v["impressions"]) for image, v in last.items()
    }


def test_put_concurrent_builds_are_each_complete(settings, db_url):
    threads, per_thread = 8, 3
    store = FeatureStore(db_url, keep_builds=threads * per_thread)
    app = create_app(settings, store)
    sent: dict[int, dict] = {}
    failures: list = []
    lock = threading.Lock()

    def writer(address, t: int):
        rng = random.Random(42 + t)
        for k in range(per_thread):
            doc = features_doc(rng, images=30 + t, features=20 + k)
            status, body = raw_put(address, "/api/features", json.dumps(doc).encode(), HEADERS)
            with lock:
                if status == 201:
                    sent[body["build_id"]] = (doc, body)
                else:
                    failures.append((status, body))

    with serve_address(app) as address:
        workers = [threading.Thread(target=writer, args=(address, t)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    try:
        assert failures == []
        assert len(sent) == threads * per_thread  # distinct build ids
        history = store.builds("Acme", "vision")
        assert set(history["build_id"]) == set(sent)
        assert store.resolve_build("Acme", "vision") in sent
        rows = Counter(row[0] for row in snapshot(store)["feature_values"])
        for build_id, values in zip(history["build_id"], history["values"]):
            doc, answer = sent[build_id]
            assert rows[build_id] == values == answer["values"]
            dataset = store.dataset("Acme", "vision", build_id)
            assert np.array_equal(dataset.dense(), dense_doc(doc, dataset.images, dataset.features))
    finally:
        store.close()


def test_put_features_with_a_stored_build_tag_answers_200_and_stores_nothing(client, store):
    """A retried PUT (same Build-Tag, as after a lost 201) gets the stored build back, unchanged."""
    tagged = {**HEADERS, "Build-Tag": "jenkins-acme-features-41"}
    first = put(client, "/api/features", {"a": {"x": 0.5}}, headers=tagged)
    assert first.status_code == 201
    assert first.get_json()["build_tag"] == "jenkins-acme-features-41"
    before = snapshot(store)
    retry = put(client, "/api/features", {"a": {"x": 0.5}}, headers=tagged)
    assert retry.status_code == 200
    assert retry.get_json() == first.get_json()
    assert snapshot(store) == before
    # A new tag, or none, is a new build.
    assert put(client, "/api/features", {"a": {"x": 0.5}}, headers={**HEADERS, "Build-Tag": "42"}).status_code == 201
    untagged = put(client, "/api/features", {"a": {"x": 0.5}})
    assert untagged.status_code == 201 and untagged.get_json()["build_tag"] is None
    assert len(store.builds("Acme", "vision")) == 3


@pytest.mark.parametrize("tag", ["", "   ", "x" * 256], ids=["empty", "blank", "too long"])
def test_put_features_refuses_a_bad_build_tag_and_changes_nothing(seeded, client, tag):
    """A Build-Tag that is sent must name something: 400, nothing stored."""
    before = snapshot(seeded)
    response = put(client, "/api/features", {"a": {"x": 0.5}}, headers={**HEADERS, "Build-Tag": tag})
    assert response.status_code == 400
    assert "Build-Tag" in response.get_json()["details"][0]
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/features", {"a\u0000b": {"x": 0.5}}),
        ("/api/features", {"a": {"x\u0000": 0.5}}),
        ("/api/ctr", {"a\u0000": 0.1}),
    ],
    ids=["image", "feature", "ctr image"],
)
def test_put_refuses_names_with_nul_and_changes_nothing(seeded, client, path, body):
    """A NUL character in a name (which PostgreSQL's text cannot hold) is a 400 on every engine."""
    before = snapshot(seeded)
    response = put(client, path, body)
    assert response.status_code == 400
    assert any("NUL" in detail for detail in response.get_json()["details"])
    assert snapshot(seeded) == before
