"""How much a dense PUT /api/features costs over parsing the body and inserting its rows by hand.

Two bodies of 659 images x 480 features: the demo build (seed 42) as a featurizer sends it, every
image listing every feature, most values 0 (about 6 MB of JSON); and a worst case for storage
where every value is non-zero (about 11 MB, 316k rows). Each round PUTs a body through the app
(Flask test client, fresh SQLite file, demo data off) and, interleaved, runs the baseline:
``json.loads`` of the same bytes plus one ``sqlite3`` ``executemany`` of its non-zero
(image, feature, confidence) rows into a fresh file in one transaction. Prints the medians.

    .venv/bin/python bench/bench_ingest.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from common import HEADERS, dense_features_body, fresh_app, median, ratio_line, timed

from data.demo import demo_build

TARGET_RATIO = 2.0


def baseline_insert(body: bytes, path: Path) -> int:
    """Parse the body and insert its non-zero values into a new SQLite file; returns the row count."""
    doc = json.loads(body)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # The store's own settings, so the comparison is of work done, not of durability chosen.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE feature_values (image TEXT, feature TEXT, confidence REAL)")
        conn.execute("BEGIN")
        cursor = conn.executemany(
            "INSERT INTO feature_values VALUES (?, ?, ?)",
            (
                (image, feature, confidence)
                for image, features in doc.items()
                for feature, confidence in features.items()
                if confidence
            ),
        )
        conn.execute("COMMIT")
        return cursor.rowcount
    finally:
        conn.close()


def put_features(client, body: bytes) -> dict:
    """PUT the body and return the answer, failing loudly on anything but 201."""
    response = client.put("/api/features", data=body, headers=HEADERS)
    if response.status_code != 201:
        raise SystemExit(f"PUT /api/features answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    return response.get_json()


def all_nonzero_body(n_images: int, n_features: int, seed: int = 42) -> bytes:
    """A worst case for storage: every (image, feature) has a non-zero confidence."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0001, 1.0, (n_images, n_features)).astype(np.float32).astype(float)
    features = [f"feature_{j}" for j in range(n_features)]
    doc = {f"image_{i}": dict(zip(features, row)) for i, row in enumerate(values.tolist())}
    return json.dumps(doc).encode()


def compare(label: str, body: bytes, n_images: int, n_features: int, rounds: int) -> None:
    """Time the app's PUT against the baseline on the same body, interleaved, and print the ratio."""
    app_times, base_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for round_ in range(rounds + 1):
            app, store = fresh_app(folder, f"app_{round_}.db")
            client = app.server.test_client()
            answer = {}
            app_time = timed(lambda: answer.update(put_features(client, body)))  # noqa: B023 (timed calls it at once)
            rows = {}
            base_time = timed(lambda: rows.update(n=baseline_insert(body, folder / f"base_{round_}.db")))  # noqa: B023
            if answer["values"] != rows["n"] or answer["images"] != n_images or answer["features"] != n_features:
                raise SystemExit(f"app stored {answer}, baseline {rows['n']} rows: they should agree")
            store.close()
            if round_:  # the first round warms imports and caches
                app_times.append(app_time)
                base_times.append(base_time)
    print(
        f"body ({label}): {n_images} images x {n_features} features, {len(body) / 1e6:.1f} MB, {answer['values']} non-zero values"
    )
    print(
        ratio_line(f"put_features {n_images}x{n_features} {label}", median(app_times), median(base_times), TARGET_RATIO)
    )
    print(
        f"  rounds: app {', '.join(f'{t:.3f}' for t in app_times)} s; baseline {', '.join(f'{t:.3f}' for t in base_times)} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each (after one warm-up)")
    args = parser.parse_args()

    batch, _ = demo_build()
    n_images, n_features = len(batch.images), len(batch.features)
    compare("demo build", dense_features_body(batch), n_images, n_features, args.rounds)
    compare("every value non-zero", all_nonzero_body(n_images, n_features), n_images, n_features, args.rounds)


if __name__ == "__main__":
    main()
