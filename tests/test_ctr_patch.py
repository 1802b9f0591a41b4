"""PATCH /api/ctr: upsert the given images' CTRs into the stored set, all or nothing."""

from __future__ import annotations

import http.client
import json
import random
import threading

import pytest

from dashboard.factory import create_app
from data.batches import ctr_frame
from data.store import CtrFormConflict, FeatureStore
from tests.browser import serve_address
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
TOKEN = "s3cret-token"


def send(client, method, body, headers=HEADERS, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.open("/api/ctr", method=method, data=data, headers=headers, **kwargs)


def stored(store) -> dict:
    frame = store.ctr("Acme", "vision")
    return {
        image: (ctr, None if clicks is None or clicks != clicks else int(clicks), None if n != n else n)
        for image, ctr, clicks, n in zip(
            frame["image"], frame["ctr"], frame["clicks"].astype(object), frame["impressions"].astype(object)
        )
    }


def rates(store) -> dict:
    frame = store.ctr("Acme", "vision")
    return dict(zip(frame["image"], frame["ctr"]))


def test_patch_ctr_upserts_and_keeps_the_rest(client, store):
    assert send(client, "PUT", {"a": 0.1, "b": 0.2}).status_code == 200
    version = store.version()
    response = send(client, "PATCH", {"b": 0.5, "c": 0.3})
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("business", "source", "images", "has_counts")} == {
        "business": "Acme",
        "source": "vision",
        "images": 3,
        "has_counts": False,
    }
    assert rates(store) == {"a": 0.1, "b": 0.5, "c": 0.3}
    assert store.version() != version


def test_patch_ctr_reaches_the_analysis(client, store):
    assert client.put("/api/features", data=json.dumps({"a": {"x": 0.9}, "b": {"y": 0.9}}), headers=HEADERS)
    send(client, "PUT", {"a": 0.1})
    assert store.dataset("Acme", "vision").images_with_ctr == 1
    send(client, "PATCH", {"b": 0.2})
    dataset = store.dataset("Acme", "vision")
    assert dataset.images_with_ctr == 2
    assert dict(zip(dataset.images, dataset.ctr)) == {"a": 0.1, "b": 0.2}


def test_patch_ctr_counts_merge_with_counts(client, store):
    send(client, "PUT", {"a": {"clicks": 1, "impressions": 10}, "b": {"clicks": 2, "impressions": 10}})
    response = send(client, "PATCH", {"b": {"clicks": 3, "impressions": 30}, "c": {"clicks": 0, "impressions": 5}})
    assert response.status_code == 200 and response.get_json()["has_counts"] is True
    assert stored(store) == {"a": (0.1, 1, 10), "b": (0.1, 3, 30), "c": (0.0, 0, 5)}


def test_patch_ctr_on_a_pair_without_a_set_creates_it(client, store):
    response = send(client, "PATCH", {"a": {"clicks": 1, "impressions": 4}})
    assert response.status_code == 200 and response.get_json()["images"] == 1
    assert stored(store) == {"a": (0.25, 1, 4)}


@pytest.mark.parametrize(
    "first, patch, detail",
    [
        ({"a": {"clicks": 1, "impressions": 10}}, {"b": 0.2}, "holds counts, this body holds rates"),
        ({"a": 0.1}, {"b": {"clicks": 1, "impressions": 10}}, "holds rates, this body holds counts"),
    ],
)
def test_patch_ctr_in_the_other_form_is_409_and_changes_nothing(client, store, first, patch, detail):
    send(client, "PUT", first)
    before, version = snapshot(store), store.version()
    response = send(client, "PATCH", patch)
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "CTR form differs from the stored set"
    assert detail in body["details"][0] and "PUT the whole set" in body["details"][0]
    assert snapshot(store) == before and store.version() == version


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b'{"a": 1.5}', HEADERS, 400),
        (b'{"a": {"clicks": 3, "impressions": 2}}', HEADERS, 400),
        (b'{"a": 0.1, "b": {"clicks": 1, "impressions": 2}}', HEADERS, 400),
        (b'{"a": 0.1, "a": 0.2}', HEADERS, 400),
        (b"{}", HEADERS, 400),
        (b"not json", HEADERS, 400),
        (b'{"a": 0.1}', {"Business": "Acme"}, 400),
    ],
)
def test_patch_ctr_rejected_request_changes_nothing(client, store, body, headers, status):
    send(client, "PUT", {"a": 0.1, "b": 0.2})
    before, version = snapshot(store), store.version()
    response = send(client, "PATCH", body, headers=headers)
    assert response.status_code == status
    assert set(response.get_json()) == {"error", "details"}
    assert snapshot(store) == before and store.version() == version


def test_patch_ctr_needs_the_same_authorisation_as_put(settings, store, client):
    send(client, "PUT", {"a": 0.1})
    before = snapshot(store)
    token_client = create_app(settings.with_overrides(ingest_token=TOKEN), store).server.test_client()
    assert send(token_client, "PATCH", {"a": 0.9}).status_code == 401
    assert send(client, "PATCH", {"a": 0.9}, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    assert snapshot(store) == before
    authorised = {**HEADERS, "Authorization": f"Bearer {TOKEN}"}
    assert send(token_client, "PATCH", {"a": 0.9}, headers=authorised).status_code == 200
    assert rates(store) == {"a": 0.9}


def test_store_merge_ctr_refuses_the_other_form_before_writing(store):
    store.replace_ctr("Acme", "vision", ctr_frame(["a"], [0.5], [1], [2]))
    before = snapshot(store)
    with pytest.raises(CtrFormConflict):
        store.merge_ctr("Acme", "vision", ctr_frame(["b"], [0.1]))
    assert snapshot(store) == before


def _request(port, method, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, "/api/ctr", body=json.dumps(body).encode(), headers=HEADERS)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_concurrent_patch_and_put_stay_consistent(settings, db_url):
    """Every answer and the final set agree with applying the writes one at a time in commit order."""
    store = FeatureStore(db_url)
    app = create_app(settings, store)
    done, failures, lock = [], [], threading.Lock()

    def writer(port: int, t: int):
        rng = random.Random(t)
        for k in range(6):
            if t == 0 and k % 2 == 0:
                method, body = "PUT", {f"base{i}": round(rng.random(), 6) for i in range(rng.randint(1, 5))}
            else:
                images = rng.sample([f"img{i}" for i in range(8)] + ["base0", "base1"], 3)
                method, body = "PATCH", {image: round(rng.random(), 6) for image in images}
            status, answer = _request(port, method, body)
            with lock:
                (done if status == 200 else failures).append((answer.get("received_at"), method, body, answer))

    with serve_address(app) as (_host, port):
        workers = [threading.Thread(target=writer, args=(port, t)) for t in range(5)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    try:
        assert failures == []
        assert len(done) == 30
        model: dict = {}
        # received_at is taken inside each write's transaction, so it orders the commits.
        for _, method, body, answer in sorted(done, key=lambda w: w[0]):
            model = dict(body) if method == "PUT" else {**model, **body}
            assert answer["images"] == len(model)
        assert rates(store) == model
        assert store.ctr("Acme", "vision")["image"].is_unique
    finally:
        store.close()
