"""Window sums of dated metrics, and what a new window costs the summary.

Part 1: a year of daily clicks and impressions for 10,000 images (3.65 M rows) lands with
``store.replace_metrics`` in a fresh database (SQLite, PostgreSQL); then each image's sums over a
window are read (``store.metric_ctr``: SQL SUM ... GROUP BY image over a range of the daily key;
every day from the all-days sums kept beside the rows), median of repeats, against the same run's
read of a 10,000-image CTR set (``store.ctr``), what the sums stand in for.

Part 2 (``--summary``): the server time of GET /api/summary for a window not seen before (new CTRs,
so new permutation nulls), at 659 x 480 (the demo with its 90 days) and at 10,000 x 1,000 (the demo
generator's build with the year of part 1), after the all-days summary was served once: the first,
provisional answer (``data/refine.py``), the full null's draw behind it, and the answer after it.

    .venv/bin/python bench/bench_metrics.py [--engines sqlite,postgresql] [--repeats 7] [--summary]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from common import ENGINES, fresh_app, fresh_database, median, timed

from data.batches import ctr_frame
from data.store import FeatureStore
from data.window import Window

N_IMAGES = 10_000
DAYS = 365
START = date(2025, 12, 1)
TARGET_MS = 200.0


def year_of_metrics(n_images: int = N_IMAGES, days: int = DAYS, seed: int = 7) -> pd.DataFrame:
    """One row per image and day: impressions around a per-image level, clicks at about 1 %."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.uniform(np.log(10), np.log(1_000), n_images))
    impressions = rng.poisson(np.repeat(level[None, :], days, axis=0)).ravel()
    clicks = rng.binomial(impressions, 0.01)
    images = np.array([f"img_{i:05d}" for i in range(n_images)], dtype=object)
    day_names = np.array([(START + timedelta(days=d)).isoformat() for d in range(days)], dtype=object)
    return pd.DataFrame(
        {
            "image": np.tile(images, days),
            "day": np.repeat(day_names, n_images),
            "clicks": clicks,
            "impressions": impressions,
        }
    )


def windows() -> dict[str, Window]:
    last = START + timedelta(days=DAYS - 1)
    return {
        "last 30 days": Window((last - timedelta(days=29)).isoformat(), last.isoformat()),
        "last 7 days": Window((last - timedelta(days=6)).isoformat(), last.isoformat()),
        "a quarter": Window((START + timedelta(days=120)).isoformat(), (START + timedelta(days=209)).isoformat()),
        "from a day on (half)": Window((START + timedelta(days=182)).isoformat(), None),
        "all days": Window(),
    }


def window_sums(engine: str, folder: Path, frame: pd.DataFrame, repeats: int) -> None:
    with fresh_database(engine, folder) as url:
        store = FeatureStore(url)
        try:
            loaded = timed(lambda: store.replace_metrics("Bench", "daily", frame))
            print(f"{engine}: {len(frame):,} rows stored in {loaded:.1f} s")
            totals = frame.groupby("image")[["clicks", "impressions"]].sum().reset_index()
            totals = totals[totals["impressions"] > 0]
            rates = totals["clicks"] / totals["impressions"]
            store.replace_ctr(
                "Bench", "ctr-set", ctr_frame(totals["image"], rates, totals["clicks"], totals["impressions"])
            )
            store.ctr("Bench", "ctr-set")  # warm the connection pool and the page cache alike
            baseline = median([timed(lambda: store.ctr("Bench", "ctr-set")) for _ in range(repeats)])
            print(f"{engine}: baseline, a 10,000-image CTR set read: median {baseline * 1000:.1f} ms")
            for label, window in windows().items():
                store.metric_ctr("Bench", "daily", window)
                seconds = median(
                    [timed(lambda w=window: store.metric_ctr("Bench", "daily", w)) for _ in range(repeats)]
                )
                ms = seconds * 1000
                verdict = "ok" if ms <= TARGET_MS else "MISSED"
                print(
                    f"{engine}: {label} {window.as_dict()}: median {ms:.1f} ms; ratio {seconds / baseline:.2f} "
                    f"to the CTR set (target <= {TARGET_MS:g} ms) {verdict}"
                )
        finally:
            store.close()


def first_and_refined(client, store, query: dict) -> str:
    """The first (provisional) summary of a window, the full null's draw behind it, and the summary after."""
    answers = []
    seconds = timed(lambda: answers.append(client.get("/api/summary", query_string=query).get_json()))
    refiner = store.cache.refiner
    behind = timed(lambda: refiner.wait()) if refiner is not None else 0.0
    again = timed(lambda: answers.append(client.get("/api/summary", query_string=query).get_json()))
    same = [f["feature"] for f in answers[0]["features"] if f["verdict"] in ("helps", "hurts")] == [
        f["feature"] for f in answers[1]["features"] if f["verdict"] in ("helps", "hurts")
    ]
    return (
        f"first {seconds * 1000:.0f} ms (provisional: {answers[0]['provisional']}); full null drawn behind it "
        f"in {behind:.2f} s; then {again * 1000:.0f} ms (provisional: {answers[1]['provisional']}); "
        f"same helps and hurts: {same}"
    )


def new_window_summaries(engine: str, folder: Path, frame: pd.DataFrame) -> None:
    from data.demo import DEMO_BUSINESS, DEMO_SOURCE, demo_build, load_demo

    with fresh_database(engine, folder, "summary.db") as url:
        app, store = fresh_app(url=url)
        client = app.server.test_client()
        try:
            load_demo(store)
            pair = {"business": DEMO_BUSINESS, "source": DEMO_SOURCE}
            first = timed(lambda: client.get("/api/summary", query_string=pair))
            print(f"{engine} 659 x 480: the all-days summary, first: {first * 1000:.0f} ms")
            for start in ("2026-09-01", "2026-10-01", "2026-11-01", "2026-09-15"):
                for weighting in ("mean", "impressions"):
                    end = (date.fromisoformat(start) + timedelta(days=29)).isoformat()
                    query = {**pair, "from": start, "to": end, "weighting": weighting}
                    first = first_and_refined(client, store, query)
                    print(f"{engine} 659 x 480: a new window {start}..{end}, {weighting}: {first} (target <= 100 ms)")

            batch, _ = demo_build(n_images=N_IMAGES, n_features=1_000)
            store.add_build("Big", "daily", batch)
            renamed = frame.assign(
                image=frame["image"].map(dict(zip([f"img_{i:05d}" for i in range(N_IMAGES)], batch.images)))
            )
            store.replace_metrics("Big", "daily", renamed)
            pair = {"business": "Big", "source": "daily"}
            first = timed(lambda: client.get("/api/summary", query_string=pair))
            print(f"{engine} 10,000 x 1,000: the all-days summary, first: {first:.2f} s")
            for label, window in list(windows().items())[:2]:
                for weighting in ("mean", "impressions"):
                    query = {**pair, "from": window.start, "to": window.end, "weighting": weighting}
                    first = first_and_refined(client, store, query)
                    print(f"{engine} 10,000 x 1,000: a new window ({label}), {weighting}: {first} (target <= 1 s)")
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--summary", action="store_true", help="also time summaries of new windows")
    args = parser.parse_args()
    started = time.perf_counter()
    frame = year_of_metrics()
    print(f"{len(frame):,} rows ({N_IMAGES:,} images x {DAYS} days) drawn in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        for engine in args.engines.split(","):
            window_sums(engine, Path(folder), frame, args.repeats)
            if args.summary:
                new_window_summaries(engine, Path(folder), frame)


if __name__ == "__main__":
    main()
