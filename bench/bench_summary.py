"""Latency of GET /api/summary as the confidence threshold moves, at demo scale and at 10k x 1k.

For each size and engine (SQLite, PostgreSQL), the demo generator's build (seed 42) and its
CTRs are stored in a fresh database behind an app from the factory. The server's first request (Dash sets itself up) and the
first summary (which loads the build into the cache) are reported on their own, then the median
over requests whose threshold moves each time, as a slider does, for each weighting. The first
summary of a weighting also draws the permutation null of the build's CTRs (``data.permutation``);
its cost and the memory of its table are printed on their own, as is the pure ``feature_summary``
time on the same data.

    .venv/bin/python bench/bench_summary.py [--requests 40] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import BUSINESS, ENGINES, SOURCE, fresh_app, fresh_database, latency_line, median, timed

from data import permutation
from data.analysis import feature_summary
from data.demo import demo_build

# (images, features, median target in ms)
SIZES = [(659, 480, 50.0), (10_000, 1_000, 500.0)]


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


def null_table(dataset, weighting: str) -> permutation.NullTable:
    """The cached permutation null of a dataset's CTRs (or counts) for a weighting."""
    known = dataset.has_ctr
    units = dataset.ctr[known] if weighting == "mean" else np.column_stack([dataset.clicks, dataset.impressions])[known]
    return permutation.StudentizedTest(weighting, units, n_tests=len(dataset.features)).table(1)


def bench_size(engine: str, url: str, n_images: int, n_features: int, target_ms: float, requests: int) -> None:
    """Store one build of that size and print its first-request, median and pure-analysis times."""
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    app, store = fresh_app(url=url)
    store.add_build(BUSINESS, SOURCE, batch)
    store.replace_ctr(BUSINESS, SOURCE, ctr)
    client = app.server.test_client()
    label = f"{engine:<10} summary {n_images}x{n_features}"

    # Dash sets itself up (and serves the layout) on the server's first request of any kind.
    setup = timed(lambda: client.get("/healthz"))
    print(f"{label}: server's first request {setup * 1000:.1f} ms")
    for weighting in ("mean", "impressions"):
        permutation.clear_cache()
        first = timed(lambda w=weighting: get_summary(client, 0.0, w))
        table = null_table(store.dataset(BUSINESS, SOURCE), weighting)
        print(
            f"{label} {weighting}: first summary (draws the null; the first one also loads the build) "
            f"{first * 1000:.1f} ms; null table of {table.resamples:,} permutations, "
            f"group sizes up to {table.k_max}, {table.nbytes / 2**20:.1f} MiB"
        )
        answers = []
        times = [
            timed(lambda c=c, w=weighting, a=answers: a.append(get_summary(client, c, w))) for c in thresholds(requests)
        ]
        if not any(answer["features"] for answer in answers):
            raise SystemExit("every summary was empty: the bench measured nothing")
        print(latency_line(f"{label} {weighting} GET /api/summary, threshold moving", median(times), target_ms))

        dataset = store.dataset(BUSINESS, SOURCE)
        pure = [
            timed(lambda c=c, w=weighting, d=dataset: feature_summary(d, c, weighting=w)) for c in thresholds(requests)
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
