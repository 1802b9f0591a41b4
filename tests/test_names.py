"""Names from users: one Unicode form (NFC), exact case, and a length every read route can carry.

A name written in NFD is stored and found as its NFC form, wherever it enters (headers, query
parameters, JSON keys); names longer than MAX_NAME_BYTES are refused at the write, so that any
stored name fits a read's request line under gunicorn.
"""

from __future__ import annotations

import json
import socket
import unicodedata
from urllib.parse import quote

import pytest

from data.names import MAX_NAME_BYTES
from data.store import FeatureStore
from tests.servers import gunicorn
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
LONGEST = "😀" * (MAX_NAME_BYTES // 4)  # 252 bytes of UTF-8, 756 percent-encoded


def put(client, path, doc, business="Acme", source="vision", **headers):
    """A PUT whose header values arrive as a server hands them over: UTF-8 bytes read as latin-1."""
    sent = {"Business": business, "Image-Source": source, **headers}
    return client.put(path, data=json.dumps(doc), headers={k: v.encode().decode("latin-1") for k, v in sent.items()})


def test_nfd_and_nfc_business_are_one_dataset(client, store):
    assert NFC != NFD
    assert put(client, "/api/features", {"a": {"x": 0.5}}, business=NFD).status_code == 201
    assert put(client, "/api/features", {"a": {"x": 0.25}}, business=NFC).status_code == 201
    listed = client.get("/api/datasets").get_json()["datasets"]
    assert [d["business"] for d in listed] == [NFC]
    for name in (NFC, NFD):
        builds = client.get("/api/builds", query_string={"business": name, "source": "vision"})
        assert builds.status_code == 200 and len(builds.get_json()["builds"]) == 2
        summary = client.get("/api/summary", query_string={"business": name, "source": "vision"})
        assert summary.status_code == 200 and summary.get_json()["business"] == NFC


def test_image_and_feature_names_are_stored_in_nfc(client, store):
    assert put(client, "/api/features", {NFD: {NFD: 0.5, "y": 0.25}}).status_code == 201
    assert put(client, "/api/ctr", {NFD: 0.1}).status_code == 200
    dataset = store.dataset("Acme", "vision")
    assert list(dataset.images) == [NFC] and NFC in list(dataset.features)
    assert store.ctr("Acme", "vision")["image"].tolist() == [NFC]


@pytest.mark.parametrize(
    "path, doc", [("/api/features", {NFC: {"x": 0.5}, NFD: {"x": 0.5}}), ("/api/ctr", {NFC: 0.1, NFD: 0.2})]
)
def test_names_equal_in_nfc_in_one_body_are_duplicates(client, store, path, doc):
    before = snapshot(store)
    answer = put(client, path, doc)
    assert answer.status_code == 400
    assert any("more than once" in d and "NFC" in d for d in answer.get_json()["details"])
    assert snapshot(store) == before


def test_feature_names_equal_in_nfc_in_one_image_are_duplicates(client, store):
    answer = put(client, "/api/features", {"a": {NFC: 0.5, NFD: 0.25}})
    assert answer.status_code == 400 and "more than once" in answer.get_json()["details"][0]


def test_case_matters_in_names(client, store):
    """One rule, documented: names are compared exactly (after NFC); "Acme" and "acme" are two datasets."""
    assert put(client, "/api/features", {"a": {"x": 0.5}}, business="Acme").status_code == 201
    assert put(client, "/api/features", {"a": {"x": 0.5}}, business="acme").status_code == 201
    assert sorted(d["business"] for d in client.get("/api/datasets").get_json()["datasets"]) == ["Acme", "acme"]
    assert client.get("/api/builds", query_string={"business": "ACME", "source": "vision"}).status_code == 404


def test_build_tag_in_nfd_finds_the_build_tagged_in_nfc(client, store):
    first = put(client, "/api/features", {"a": {"x": 0.5}}, **{"Build-Tag": NFC})
    retry = put(client, "/api/features", {"a": {"x": 0.5}}, **{"Build-Tag": NFD})
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.get_json()["build_id"] == first.get_json()["build_id"]


TOO_LONG = [
    ("business", lambda c: put(c, "/api/features", {"a": {"x": 0.5}}, business="B" * 5000)),
    ("source", lambda c: put(c, "/api/ctr", {"a": 0.5}, source="é" * 128)),
    ("image", lambda c: put(c, "/api/features", {"i" * (1024 * 1024): {"x": 0.5}})),
    ("feature", lambda c: put(c, "/api/features", {"a": {"f" * (MAX_NAME_BYTES + 1): 0.5}})),
    ("ctr image", lambda c: put(c, "/api/ctr", {"😀" * 64: 0.5})),
    ("build tag", lambda c: put(c, "/api/features", {"a": {"x": 0.5}}, **{"Build-Tag": "t" * 256})),
]


@pytest.mark.parametrize("what, send", TOO_LONG, ids=[t[0] for t in TOO_LONG])
def test_names_past_the_limit_are_refused_and_change_nothing(client, store, what, send):
    before = snapshot(store)
    answer = send(client)
    assert answer.status_code == 400, answer.get_json()
    assert any(f"at most {MAX_NAME_BYTES}" in d for d in answer.get_json()["details"])
    assert snapshot(store) == before


def test_names_at_the_limit_are_stored(client, store):
    assert put(client, "/api/features", {LONGEST: {LONGEST: 0.5}}, business=LONGEST, source=LONGEST).status_code == 201
    assert list(store.dataset(LONGEST, LONGEST).images) == [LONGEST]


def test_read_parameters_past_the_limit_are_400(client):
    answer = client.get("/api/summary", query_string={"business": "B" * 5000, "source": "vision"})
    assert answer.status_code == 400 and f"at most {MAX_NAME_BYTES}" in answer.get_json()["details"][0]


def _raw_get(port: int, target: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_longest_names_can_be_read_back_on_every_route_through_gunicorn(engine_name, db_url, tmp_path):
    """A stored name at the limit fits each read's request line (a 5,000-byte one was stored, then 414 on reads)."""
    with gunicorn(tmp_path, db_url, workers=1, threads=2) as server:
        assert server.wait_ready(1), server.output()[-2000:]
        body = json.dumps({LONGEST: {LONGEST: 0.5}, "b": {"y": 0.5}}).encode()
        head = (
            f"PUT /api/features HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
            f"Business: {LONGEST}\r\nImage-Source: {LONGEST}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as conn:
            conn.sendall(head.encode() + body)
            assert conn.recv(65536).split(b" ", 2)[1] == b"201"
        name = quote(LONGEST, safe="")
        pair = f"business={name}&source={name}"
        filters = "confidence=0.5&min_pct=0&max_pct=100&min_n=2&weighting=mean"
        for target in (
            f"/api/builds?{pair}",
            f"/api/summary?{pair}&{filters}&build_id=9223372036854775807&adjusted=0",
            f"/api/summary.csv?{pair}&{filters}",
            f"/api/points.csv?{pair}&{filters}",
            f"/api/drift?{pair}&from_build=1&to_build=1&{filters}",
            f"/?{pair}&build_id=1&{filters}&shown=all&adjusted=0&compare_build=1",
        ):
            assert _raw_get(server.port, target) in (200, 404), target
        assert _raw_get(server.port, f"/api/summary?{pair}&{filters}") == 200
    store = FeatureStore(db_url)
    try:
        assert store.datasets()["business"].tolist() == [LONGEST]
    finally:
        store.close()


def test_cli_loader_stores_names_in_nfc(store, tmp_path):
    """The CLI is another way in: its --business and the CSV's image and feature names follow the same rule."""
    from ingest.cli import load_csv

    path = tmp_path / "nfd.csv"
    path.write_text(f"image_name,ctr,{NFD}\n{NFD},0.1,0.5\nb,0.2,0\n", encoding="utf-8")
    load_csv(store, path, NFD, "vision")
    dataset = store.dataset(NFC, "vision")
    assert list(dataset.images) == [NFC, "b"] and list(dataset.features) == [NFC]
