"""Latency of GET /api/summary as the confidence threshold moves, at demo scale and at 10k x 1k.

For each size and engine (SQLite, PostgreSQL), the demo generator's build (seed 42) is stored
in a fresh database behind an app from the factory, and its CTRs (clicks and impressions) land
with PUT /api/ctr, as a CTR job sends them. Once that answer is sent, the app draws the
permutation nulls of both weightings and stores them (``data/nulls.py``); that time is printed.
Then the first summary after the landing is timed in the worker that took the write and in a
fresh worker (a new app and store on the same database, empty caches: it reads the build and the
stored nulls), against the same fresh worker drawing the nulls itself (nothing stored), which is
what the first summary cost before. Then the median over requests whose threshold moves each
time, as a slider does, for each weighting, and the pure ``feature_summary`` time on the same data.

    .venv/bin/python bench/bench_summary.py [--requests 40] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import BUSINESS, ENGINES, HEADERS, SOURCE, fresh_app, fresh_database, latency_line, median, timed

from data import writes
from data.analysis import feature_summary
from data.demo import demo_build
from data.schema import null_tables

# (images, features, median target in ms)
SIZES = [(659, 480, 50.0), (10_000, 1_000, 100.0)]
FIRST_TARGET_MS = 500.0  # the first summary after a build lands


def thresholds(n: int) -> list[float]:
    """A slider sweeping up and down in 0.05 steps, so that consecutive requests always differ."""
    up = [round(0.05 * k, 2) for k in range(20)]
    sweep = up + up[:0:-1]
    return [sweep[k % len(sweep)] for k in range(n)]


def get_summary(client, confidence: float, weighting: str = "mean") -> dict:
    """GET /api/summary at one threshold, failing loudly on anything but 200."""
    response = client.get(
        "/api/summary",
        query_string={"business": BUSINESS, "source": SOURCE, "confidence": confidence, "weighting": weighting},
    )
    if response.status_code != 200:
        raise SystemExit(f"GET /api/summary answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    return response.get_json()


def ctr_body(ctr) -> bytes:
    """The PUT /api/ctr body of a CTR set with clicks and impressions."""
    doc = {row.image: {"clicks": int(row.clicks), "impressions": int(row.impressions)} for row in ctr.itertuples()}
    return json.dumps(doc).encode()


def first_summaries(url: str, weighting: str, *, stored: bool) -> float:
    """The first summary of a fresh worker on ``url`` (new app, empty caches), with or without the stored nulls."""
    app, store = fresh_app(url=url)
    client = app.server.test_client()
    client.get("/healthz")  # Dash sets itself up on a server's first request (and reads the build)
    store.cache.clear()  # so the first summary reads the build and its nulls too
    if not stored:
        with store.engine.begin() as conn:
            conn.execute(null_tables.delete())
    seconds = timed(lambda: get_summary(client, 0.0, weighting))
    store.close()
    return seconds


def bench_size(engine: str, url: str, n_images: int, n_features: int, target_ms: float, requests: int) -> None:
    """Store one build of that size, land its CTRs, and print first-request, median and pure-analysis times."""
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    app, store = fresh_app(url=url)
    store.add_build(BUSINESS, SOURCE, batch)
    client = app.server.test_client()
    label = f"{engine:<10} summary {n_images}x{n_features}"
    client.get("/healthz")  # Dash sets itself up on a server's first request
    store.cache.clear()

    body = ctr_body(ctr)
    response = client.put("/api/ctr", data=body, headers=HEADERS)
    if response.status_code != 200:
        raise SystemExit(f"PUT /api/ctr answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    prepared = timed(response.close)  # what the server runs once the answer is sent
    stored = store.engine.connect().execute(null_tables.select()).all()
    size = sum(len(row.table_data) for row in stored)
    print(
        f"{label}: nulls drawn and stored after the CTR answer was sent: {prepared:.2f} s "
        f"({len(stored)} tables, {size / 2**20:.1f} MiB)"
    )
    for weighting in ("mean", "impressions"):
        same = timed(lambda w=weighting: get_summary(client, 0.0, w))
        print(latency_line(f"{label} {weighting} first summary after landing, same worker", same, FIRST_TARGET_MS))
        other = first_summaries(url, weighting, stored=True)
        print(latency_line(f"{label} {weighting} first summary after landing, another worker", other, FIRST_TARGET_MS))
        drawing = first_summaries(url, weighting, stored=False)
        print(f"{label} {weighting} first summary of a worker drawing the nulls itself: {drawing * 1000:.1f} ms")
        writes.prepare_nulls(store, BUSINESS, SOURCE)  # put them back for the next weighting

        answers = []
        times = [
            timed(lambda c=c, w=weighting, a=answers: a.append(get_summary(client, c, w))) for c in thresholds(requests)
        ]
        if not any(answer["features"] for answer in answers):
            raise SystemExit("every summary was empty: the bench measured nothing")
        print(latency_line(f"{label} {weighting} GET /api/summary, threshold moving", median(times), target_ms))

        dataset = store.dataset(BUSINESS, SOURCE)
        pure = [
            timed(lambda c=c, w=weighting, d=dataset: feature_summary(d, confidence=c, weighting=w, cache=store.cache))
            for c in thresholds(requests)
        ]
        print(latency_line(f"{label} {weighting} feature_summary alone", median(pure)))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="timed requests per size")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for n_images, n_features, target_ms in SIZES:
            for engine in engines:
                with fresh_database(engine, Path(tmp), f"summary_{n_images}x{n_features}.db") as url:
                    bench_size(engine, url, n_images, n_features, target_ms, args.requests)


if __name__ == "__main__":
    main()
