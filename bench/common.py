"""What the HTTP benchmarks share: an app on a fresh database (SQLite or PostgreSQL), dense PUT bodies,
timing and report lines."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `.venv/bin/python bench/bench_x.py` from anywhere, without installing the project.
    sys.path.insert(0, str(ROOT))

from dashboard.factory import create_app  # noqa: E402
from data.batches import FeatureBatch  # noqa: E402
from data.settings import Settings  # noqa: E402
from data.store import FeatureStore  # noqa: E402

# The PostgreSQL server the benchmarks use: BENCH_DATABASE_URL, else the tests' server.
POSTGRES_URL = (
    os.environ.get("BENCH_DATABASE_URL")
    or os.environ.get("TEST_DATABASE_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ENGINES = ("sqlite", "postgresql")

BUSINESS = "Bench Outfitters"
SOURCE = "vision"
TOKEN = "bench-token"
# As Jenkins sends a PUT in production: with the bearer token.
HEADERS = {"Business": BUSINESS, "Image-Source": SOURCE, "Authorization": f"Bearer {TOKEN}"}


@contextmanager
def fresh_database(engine: str, folder: Path, name: str = "features.db"):
    """Yield the URL of an empty database: an SQLite file in ``folder``, or a PostgreSQL schema
    of its own on POSTGRES_URL's server, dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{folder / name}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fresh_app(folder: Path | None = None, name: str = "features.db", *, url: str | None = None):
    """An app from the factory, without demo data, on ``url`` or a new SQLite file in ``folder``: (app, store)."""
    url = url or f"sqlite:///{folder / name}"
    settings = Settings.from_env({}, database_url=url, demo_data=False, ingest_token=TOKEN)
    store = FeatureStore(url, keep_builds=settings.keep_builds)
    return create_app(settings, store), store


def dense_features_body(batch: FeatureBatch) -> bytes:
    """The PUT /api/features body a featurizer sends: every image lists every feature, zeros included."""
    rows = [[0.0] * len(batch.features) for _ in batch.images]
    for i, j, confidence in batch.values:
        rows[i][j] = confidence
    doc = {image: dict(zip(batch.features, row)) for image, row in zip(batch.images, rows)}
    return json.dumps(doc).encode()


def timed(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values) -> float:
    """The median of some timings."""
    return statistics.median(values)


def ratio_line(label: str, measured: float, baseline: float, target: float) -> str:
    """``label: 0.84 s; baseline 0.61 s; ratio 1.38 (target <= 2.0) ok``."""
    ratio = measured / baseline
    verdict = "ok" if ratio <= target else "MISSED"
    return f"{label}: {measured:.3f} s; baseline {baseline:.3f} s; ratio {ratio:.2f} (target <= {target:g}) {verdict}"


def latency_line(label: str, seconds: float, target_ms: float | None = None) -> str:
    """``label: median 12.3 ms (target < 50 ms) ok``, or without a target."""
    ms = seconds * 1000
    if target_ms is None:
        return f"{label}: median {ms:.1f} ms"
    verdict = "ok" if ms < target_ms else "MISSED"
    return f"{label}: median {ms:.1f} ms (target < {target_ms:g} ms) {verdict}"
