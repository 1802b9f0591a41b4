"""Deterministic dated metrics for the tests: clicks and impressions per image and day."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pandas as pd

from data.metrics_queries import METRIC_COLUMNS


def make_metrics(
    images, days: int = 20, seed: int = 7, start: date = date(2026, 3, 1), skip: float = 0.2
) -> pd.DataFrame:
    """Rows (image, day, clicks, impressions) for ``images`` over ``days`` days, some days left out."""
    rnd = random.Random(seed)
    rows = []
    for d in range(days):
        day = (start + timedelta(days=d)).isoformat()
        for image in images:
            if rnd.random() < skip:
                continue
            impressions = rnd.randrange(0, 2_000)
            clicks = rnd.randrange(0, impressions // 10 + 1)
            rows.append((image, day, clicks, impressions))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def window_ctrs(frame: pd.DataFrame, start: str | None = None, end: str | None = None) -> dict:
    """From raw rows, per image with impressions in [start, end]: (clicks, impressions, clicks / impressions)."""
    kept = frame
    if start:
        kept = kept[kept["day"] >= start]
    if end:
        kept = kept[kept["day"] <= end]
    out = {}
    for image, clicks, impressions in zip(kept["image"], kept["clicks"], kept["impressions"]):
        c, n = out.get(image, (0, 0))
        out[image] = (c + int(clicks), n + int(impressions))
    return {image: (c, n, c / n) for image, (c, n) in out.items() if n > 0}
