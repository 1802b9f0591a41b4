"""Adjusted impact: time of all features' adjusted statistics, and the null calibration of their p.

Timing, at 659 x 480 and 10,000 x 1,000 (the demo generator, seed 42): ``fit_adjusted`` cold
(a new threshold, nothing cached) against ``feature_summary`` at the same threshold as the
baseline, then GET /api/summary with and without ``adjusted=1`` once the fit is cached.

Calibration: the reference CTRs shuffled, and demo builds with lognormal CTRs that no feature
affects; the share of p < 0.05 and p < 0.01 over all tested features, for the adjusted p that
decides significance and for the HC3 t test alone.

    .venv/bin/python bench/bench_adjusted.py [--rounds 3] [--null-runs 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import BUSINESS, SOURCE, fresh_app, median, timed

from dashboard.page.compute import compute_view
from dashboard.page.views import DEFAULT_FILTERS
from data.adjusted import fit_adjusted
from data.analysis import Dataset, feature_summary
from data.demo import REFERENCE_CSV, demo_build

# (images, features, target for the cold fit in ms)
SIZES = [(659, 480, 500.0), (10_000, 1_000, None)]


def cold_fit(dataset, confidence: float) -> tuple[float, float]:
    """Wall and CPU seconds of one uncached fit."""
    wall, cpu = time.perf_counter(), time.process_time()
    fit_adjusted(dataset, confidence)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_size(folder: Path, n_images: int, n_features: int, target_ms, rounds: int) -> None:
    """Print the cold fit's median against feature_summary's, and the API with and without adjusted=1."""
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    app, store = fresh_app(folder, f"adjusted_{n_images}x{n_features}.db")
    store.add_build(BUSINESS, SOURCE, batch)
    store.replace_ctr(BUSINESS, SOURCE, ctr)
    dataset = store.dataset(BUSINESS, SOURCE)
    label = f"adjusted {n_images}x{n_features}"
    thresholds = [0.0, 0.5, 0.25, 0.75, 0.1][:rounds]
    fits = [cold_fit(dataset, c) for c in thresholds]
    base = median([timed(lambda c=c: feature_summary(dataset, confidence=c, cache=store.cache)) for c in thresholds])
    wall = median([f[0] for f in fits])
    cpu = median([f[1] for f in fits])
    verdict = "" if target_ms is None else (" ok" if wall * 1000 <= target_ms else " MISSED")
    target = "" if target_ms is None else f" (target <= {target_ms:g} ms)"
    print(
        f"{label}: cold fit_adjusted median {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU{target}{verdict}; "
        f"feature_summary {base * 1000:.1f} ms; ratio {wall / base:.0f}"
    )
    # The page's redraw (charts in dcc.Loading) at a threshold not fitted yet, against marginal.
    page = timed(
        lambda: compute_view(store, BUSINESS, SOURCE, filters=DEFAULT_FILTERS.replace(confidence=0.33), adjusted=True)
    )
    page_marginal = timed(
        lambda: compute_view(store, BUSINESS, SOURCE, filters=DEFAULT_FILTERS.replace(confidence=0.34))
    )
    print(
        f"{label}: page redraw, adjusted at a new threshold {page * 1000:.0f} ms; "
        f"marginal {page_marginal * 1000:.0f} ms; ratio {page / page_marginal:.1f}"
    )
    client = app.server.test_client()
    client.get("/healthz")

    def get(**extra):
        args = {"business": BUSINESS, "source": SOURCE, "confidence": 0.5, **extra}
        response = client.get("/api/summary", query_string=args)
        if response.status_code != 200:
            raise SystemExit(f"GET /api/summary answered {response.status_code}")

    plain = median([timed(get) for _ in range(10)])
    adjusted = median([timed(lambda: get(adjusted=1)) for _ in range(10)])
    print(
        f"{label}: GET /api/summary cached fit: plain {plain * 1000:.1f} ms, adjusted=1 {adjusted * 1000:.1f} ms; "
        f"ratio {adjusted / plain:.2f}"
    )
    store.close()


def null_rates(datasets) -> str:
    """Shares of p < 0.05 and p < 0.01, adjusted p and t test alone, over every tested feature."""
    decided, t_only = [], []
    for dataset in datasets:
        for confidence in (0.0, 0.5):
            fit = fit_adjusted(dataset, confidence)
            tested = ~np.isnan(fit.p_value)
            decided.append(fit.p_value[tested])
            t_only.append(fit.t_p_value[tested])
    p, t = np.concatenate(decided), np.concatenate(t_only)
    return (
        f"p<0.05 {np.mean(p < 0.05):.3f}, p<0.01 {np.mean(p < 0.01):.4f} "
        f"(t test alone {np.mean(t < 0.05):.3f}, {np.mean(t < 0.01):.4f}) over {len(p)} tests"
    )


def calibration(runs: int) -> None:
    """Print the null rates on shuffled reference CTRs and on demo builds with no-effect lognormal CTRs."""
    rng = np.random.default_rng(7)
    ref = Dataset.from_wide(pd.read_csv(REFERENCE_CSV))
    shuffled = (Dataset(ref.images, ref.features, ref.confidences, rng.permutation(ref.ctr)) for _ in range(runs * 5))
    print(f"null, reference CTRs shuffled x{runs * 5}: {null_rates(shuffled)}")

    def lognormal(seed):
        batch, _ = demo_build(seed)
        conf = np.zeros((len(batch.images), len(batch.features)))
        rows, cols, values = zip(*batch.values)
        conf[rows, cols] = values
        ctr = 0.0098 * np.exp(rng.normal(0.0, 1.0, len(batch.images)))
        return Dataset.from_matrix(batch.images, batch.features, conf, pd.Series(ctr, index=batch.images))

    builds = (lognormal(1000 + k) for k in range(max(1, runs // 4)))
    print(f"null, demo builds with lognormal CTRs (sigma 1) x{max(1, runs // 4)}: {null_rates(builds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold fits per size (distinct thresholds, at most 5)")
    parser.add_argument("--null-runs", type=int, default=40, help="shuffles x5 of the reference; demo builds / 4")
    args = parser.parse_args()
    # Wall time follows what else the cores run; CPU time is this process's own work.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for n_images, n_features, target_ms in SIZES:
            bench_size(Path(tmp), n_images, n_features, target_ms, args.rounds)
    calibration(args.null_runs)


if __name__ == "__main__":
    main()
