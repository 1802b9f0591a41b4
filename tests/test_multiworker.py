"""Several gunicorn workers on one database: start-up, concurrent writers and readers, a killed writer.

``GUNICORN_STARTS`` sets how many fresh three-worker starts the start-up test makes per engine
(1 by default, to keep the suite short; 20 to reproduce the start-up race reliably).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from data import database, matrix
from data.demo import DEMO_BUSINESS, REFERENCE_BUSINESS
from data.store import FeatureStore
from tests.databases import fresh_database
from tests.servers import gunicorn
from tests.tables import snapshot

STARTS = int(os.environ.get("GUNICORN_STARTS", "1"))


def request(port: int, method: str, path: str, body=None, headers=None, timeout: float = 120):
    """(status, parsed JSON body) of one HTTP request to the server on ``port``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@pytest.mark.both_engines
def test_three_worker_starts_on_a_fresh_database_all_boot_and_load_the_demo_once(engine_name, tmp_path):
    """Each start of three workers at once on an empty database boots all three; the demo is stored once."""
    for start in range(STARTS):
        with fresh_database(engine_name, tmp_path, f"start_{start}.db") as url:
            with gunicorn(tmp_path, url, workers=3, threads=1, DEMO_DATA=1) as server:
                ready = server.wait_ready(3)
                output = server.output()
                assert ready, f"start {start}: not every worker booted\n{output[-3000:]}"
                assert "Worker failed to boot" not in output and "Traceback" not in output, output[-3000:]
                status, listed = request(server.port, "GET", "/api/datasets")
            store = FeatureStore(url)
            try:
                rows = snapshot(store)
            finally:
                store.close()
            assert status == 200
            assert sorted(d["business"] for d in listed["datasets"]) == sorted([DEMO_BUSINESS, REFERENCE_BUSINESS])
            counts = (len(rows["builds"]), len(rows["ctr_sets"]), len(rows["metric_sets"]))
            assert counts == (2, 1, 1), f"start {start}"  # the demo's CTRs are dated metrics


def features_body(writer: int, round_: int, n_images: int) -> dict:
    """A build whose size and values say who sent it: every image but img_0 has feature f0 at a known value."""
    value = (writer * 100 + round_ + 1) / 10_000
    return {f"img_{i}": {"f0": value, f"f{1 + i % 3}": 0.5} if i else {"f1": 0.5} for i in range(n_images)}


@pytest.mark.parametrize("keep_builds", [1, 20])
@pytest.mark.parametrize("engine_name", ["postgresql"])
def test_concurrent_writers_and_readers_on_postgresql(engine_name, db_url, tmp_path, keep_builds):
    """8 writers PUT features and CTRs (and PATCH CTRs) while readers read: every write and read
    succeeds, and every read shows one whole build with one whole CTR set."""
    headers = {"Business": "Acme", "Image-Source": "vision", "Content-Type": "application/json"}
    rounds, sizes = 4, {}
    failures, reads = [], []
    writing = threading.Event()
    writing.set()
    with gunicorn(tmp_path, db_url, workers=3, threads=4, KEEP_BUILDS=keep_builds) as server:
        assert server.wait_ready(3), server.output()[-3000:]
        status, first = request(server.port, "PUT", "/api/features", features_body(99, 0, 10), headers)
        assert status == 201
        sizes[first["build_id"]] = (10, (99 * 100 + 1) / 10_000)
        status, _ = request(server.port, "PUT", "/api/ctr", {f"img_{i}": 0.5 for i in range(60)}, headers)
        assert status == 200

        def writer(w: int):
            rng = random.Random(w)
            for r in range(rounds):
                n_images = 10 + rng.randrange(40)
                status, body = request(server.port, "PUT", "/api/features", features_body(w, r, n_images), headers)
                if status == 201:
                    sizes[body["build_id"]] = (n_images, (w * 100 + r + 1) / 10_000)
                else:
                    failures.append(("features", status, body))
                rate = (w * 100 + r + 1) / 100_000
                method = "PATCH" if r % 2 else "PUT"
                ctr = {f"img_{i}": rate for i in range(60)}
                status, body = request(server.port, method, "/api/ctr", ctr, headers)
                if status != 200:
                    failures.append((f"{method} ctr", status, body))

        def reader():
            query = "/api/summary?business=Acme&source=vision&min_n=2"
            while writing.is_set():
                status, body = request(server.port, "GET", query)
                reads.append((status, body))
                status, body = request(server.port, "GET", "/api/datasets")
                if status != 200:
                    reads.append((status, body))

        readers = [threading.Thread(target=reader) for _ in range(3)]
        writers = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        writing.clear()
        for thread in readers:
            thread.join()
        crashed = "Traceback" in server.output()

    assert failures == []
    assert not crashed
    assert len(reads) > 10
    assert [r for r in reads if r[0] != 200] == []
    for _, body in reads:
        build = body["build_id"]
        if build in sizes:
            n_images, value = sizes[build]
            assert body["images"] == n_images
            f0 = next((f for f in body["features"] if f["feature"] == "f0"), None)
            assert f0 is not None, json.dumps(body)[:3000]
            assert f0["n_with"] == n_images - 1  # every image but one has f0; all of them got a CTR
        # One CTR set: every image with a CTR has the same rate, so the mean with f0 is that rate.
        f0 = next((f for f in body["features"] if f["feature"] == "f0"), None)
        assert f0 is not None, json.dumps(body)[:3000]
        assert body["images_with_ctr"] == body["images"]
        rates = [0.5] + [(w * 100 + r + 1) / 100_000 for w in range(8) for r in range(rounds)]
        assert min(abs(f0["avg_ctr_with"] - rate) / rate for rate in rates) < 1e-12
    store = FeatureStore(db_url)
    try:
        history = store.builds("Acme", "vision")
        assert len(history) == min(keep_builds, 8 * rounds + 1)
        for build_id, n_images in zip(history["build_id"], history["images"]):
            dataset = store.dataset("Acme", "vision", int(build_id))
            assert sizes[int(build_id)][0] == n_images == len(dataset.images)
            f0 = list(dataset.features).index("f0")
            assert np.all(matrix.dense(dataset.confidences)[1:, f0] == sizes[int(build_id)][1])
    finally:
        store.close()


@pytest.mark.parametrize("engine_name", ["postgresql"])
def test_worker_killed_mid_put_leaves_the_previous_build_current_and_whole(engine_name, db_url, tmp_path):
    """kill -9 of the worker while it stores a large build: the previous build stays current and
    whole, nothing of the killed one remains, and the next PUT works."""
    headers = {"Business": "Acme", "Image-Source": "vision", "Content-Type": "application/json"}
    small = {f"img_{i}": {"f0": 0.25, "f1": 0.5} for i in range(30)}
    big = {f"img_{i}": {f"f{j}": 0.5 + (i * j % 97) / 1000 for j in range(300)} for i in range(3000)}
    admin = create_engine(db_url, poolclass=NullPool)
    # Its own application_name tells the server's sessions apart from any other client's.
    name = f"killed-{uuid.uuid4().hex[:12]}"
    # A session of the app that holds a dataset's write lock is inside its write transaction.
    writing_sql = text(
        "SELECT a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.application_name = :name AND l.locktype = 'advisory' AND l.granted AND l.classid = :lock_class"
    )
    params = {"name": name, "lock_class": database._LOCK_CLASS_DATASET}
    server_url = make_url(db_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
    with gunicorn(tmp_path, server_url, workers=1, threads=2) as server:
        assert server.wait_ready(1), server.output()[-3000:]
        status, first = request(server.port, "PUT", "/api/features", small, headers)
        assert status == 201
        store = FeatureStore(db_url)
        before = snapshot(store)
        (worker,) = server.worker_pids()
        answer = {}
        sender = threading.Thread(
            target=lambda: answer.update(
                result=_request_or_error(server.port, "PUT", "/api/features", big, headers),
            )
        )
        sender.start()
        # Kill the worker while it writes the big build: between taking the lock and committing.
        deadline = time.monotonic() + 180
        with admin.connect() as conn:
            while (writing := conn.execute(writing_sql, params).scalar()) is None and time.monotonic() < deadline:
                time.sleep(0.002)
        assert writing, "the big PUT never reached its write transaction"
        os.kill(worker, signal.SIGKILL)
        sender.join(timeout=60)
        assert "error" in answer.get("result", {"error": 1}) or answer["result"][0] >= 500
        # The server ends the killed worker's transaction; wait until its session is gone.
        deadline = time.monotonic() + 60
        with admin.connect() as conn:
            while conn.execute(writing_sql, params).scalar() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
        assert snapshot(store) == before
        assert store.resolve_build("Acme", "vision") == first["build_id"]
        dataset = store.dataset("Acme", "vision")
        assert len(dataset.images) == 30 and np.all(matrix.dense(dataset.confidences) == [0.25, 0.5])
        # Gunicorn replaces the worker; the dataset's lock died with the session, so writes go on.
        assert server.wait_ready(2)
        status, _ = request(server.port, "PUT", "/api/features", small, headers)
        assert status == 201
        store.close()
    admin.dispose()


def _request_or_error(port, method, path, body, headers):
    try:
        return request(port, method, path, body, headers)
    except Exception as exc:  # the connection dies with the worker
        return {"error": repr(exc)}
