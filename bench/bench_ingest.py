"""How much a dense PUT /api/features costs over parsing the body and inserting its rows by hand,
on SQLite and on PostgreSQL, side by side.

Two bodies of 659 images x 480 features: the demo build (seed 42) as a featurizer sends it, every
image listing every feature, most values 0 (about 6 MB of JSON); and a worst case for storage
where every value is non-zero (about 11 MB, 316k rows). Each round PUTs a body through the app
(Flask test client, fresh database, demo data off) and, interleaved, runs the baseline on the
same engine: ``json.loads`` of the same bytes plus one bulk insert of its non-zero (image,
feature, confidence) rows into a fresh table in one transaction (SQLite: ``executemany`` with
the store's WAL and ``synchronous=FULL``, also timed with ``synchronous=NORMAL`` to show what
durable commits cost; PostgreSQL: psycopg's ``COPY``). Prints the medians. PostgreSQL is the
server of BENCH_DATABASE_URL or TEST_DATABASE_URL (default: 127.0.0.1:5432, database test).

    .venv/bin/python bench/bench_ingest.py [--rounds 5] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from common import ENGINES, HEADERS, dense_features_body, fresh_app, fresh_database, median, ratio_line, timed

from data.demo import demo_build

TARGET_RATIO = 2.0


def _rows(body: bytes):
    doc = json.loads(body)
    return (
        (image, feature, confidence)
        for image, features in doc.items()
        for feature, confidence in features.items()
        if confidence
    )


def baseline_sqlite(body: bytes, path: Path, synchronous: str = "FULL") -> int:
    """Parse the body and insert its non-zero values into a new SQLite file; returns the row count."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # The store's own settings, so the comparison is of work done, not of durability chosen.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE feature_values (image TEXT, feature TEXT, confidence REAL)")
        conn.execute("BEGIN")
        cursor = conn.executemany("INSERT INTO feature_values VALUES (?, ?, ?)", _rows(body))
        conn.execute("COMMIT")
        return cursor.rowcount
    finally:
        conn.close()


def baseline_postgresql(body: bytes, url: str) -> int:
    """Parse the body and COPY its non-zero values into a new table; returns the row count."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE feature_values (image TEXT, feature TEXT, confidence DOUBLE PRECISION)")
        count = 0
        with conn.cursor().copy("COPY feature_values (image, feature, confidence) FROM STDIN") as copy:
            for row in _rows(body):
                copy.write_row(row)
                count += 1
        conn.commit()
    return count


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


def compare(engine: str, label: str, body: bytes, n_images: int, n_features: int, rounds: int) -> None:
    """Time the app's PUT against the baseline on the same body and engine, interleaved; print the ratio."""
    app_times, base_times, normal_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for round_ in range(rounds + 1):
            answer, rows = {}, {}
            with fresh_database(engine, folder, f"app_{round_}.db") as url:
                app, store = fresh_app(url=url)
                client = app.server.test_client()
                app_time = timed(lambda: answer.update(put_features(client, body)))  # noqa: B023 (timed calls it at once)
                store.close()
            with fresh_database(engine, folder, f"base_{round_}.db") as url:
                if engine == "sqlite":
                    path = folder / f"base_{round_}.db"
                    base_time = timed(lambda: rows.update(n=baseline_sqlite(body, path)))  # noqa: B023
                    normal = folder / f"normal_{round_}.db"
                    normal_times.append(timed(lambda: baseline_sqlite(body, normal, "NORMAL")))  # noqa: B023
                else:
                    base_time = timed(lambda: rows.update(n=baseline_postgresql(body, url)))  # noqa: B023
            if answer["values"] != rows["n"] or answer["images"] != n_images or answer["features"] != n_features:
                raise SystemExit(f"app stored {answer}, baseline {rows['n']} rows: they should agree")
            if round_:  # the first round warms imports and caches
                app_times.append(app_time)
                base_times.append(base_time)
    print(ratio_line(f"  {engine:<10} put_features", median(app_times), median(base_times), TARGET_RATIO))
    print(
        f"  {engine:<10} rounds: app {', '.join(f'{t:.3f}' for t in app_times)} s; "
        f"baseline {', '.join(f'{t:.3f}' for t in base_times)} s"
    )
    if normal_times:
        print(
            f"  {engine:<10} baseline with synchronous=NORMAL instead of FULL: {median(normal_times[1:]):.3f} s "
            f"(FULL costs {median(base_times) - median(normal_times[1:]):+.3f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each (after one warm-up)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    batch, _ = demo_build()
    n_images, n_features = len(batch.images), len(batch.features)
    for label, body in (
        ("demo build", dense_features_body(batch)),
        ("every value non-zero", all_nonzero_body(n_images, n_features)),
    ):
        nonzero = sum(1 for _ in _rows(body))
        print(
            f"body ({label}): {n_images} images x {n_features} features, {len(body) / 1e6:.1f} MB, {nonzero} non-zero values"
        )
        for engine in engines:
            compare(engine, label, body, n_images, n_features, args.rounds)


if __name__ == "__main__":
    main()
