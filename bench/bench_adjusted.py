"""Adjusted impact: time of all features' adjusted statistics, and the null calibration of their p.

Timing, at 659 x 480 and 10,000 x 1,000 (the demo generator, seed 42): ``fit_adjusted`` cold
(a new threshold, nothing cached) against ``feature_summary`` at the same threshold as the
baseline, then GET /api/summary with and without ``adjusted=1`` once the fit is cached.

Wide builds: 300 images x 1,000 random features each present in half the images, through GET
/api/summary?adjusted=1 (target <= 10 s), and the ratio against the code as it was at
BASELINE_COMMIT (read from git) on 150 images x 250 features, a size that code could finish.

Calibration: the reference CTRs shuffled, and demo builds with lognormal CTRs that no feature
affects; the share of p < 0.05 and p < 0.01 over all tested features, for the adjusted p that
decides significance and for the HC3 t test alone.

    .venv/bin/python bench/bench_adjusted.py [--rounds 3] [--null-runs 40]
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import BUSINESS, ROOT, SOURCE, fresh_app, median, timed

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


# Before the bounded number of controls per feature and the presence-pattern cache key.
BASELINE_COMMIT = "32a7b2e"
BASELINE_MODULES = ("regression", "residual_permutation", "adjusted")


def random_build(n_images: int, n_features: int, share: float = 0.5, seed: int = 0):
    """Independent features, each present in ``share`` of the images (confidence 0.5-1), lognormal CTRs."""
    rng = np.random.default_rng(seed)
    conf = (rng.random((n_images, n_features)) < share) * rng.uniform(0.5, 1.0, (n_images, n_features))
    names = [f"i{k}" for k in range(n_images)]
    ctr = pd.Series(np.minimum(0.01 * np.exp(rng.normal(0, 1, n_images)), 1), index=names)
    return Dataset.from_matrix(names, [f"f{j}" for j in range(n_features)], conf, ctr)


def baseline_fit_adjusted(folder: Path):
    """``fit_adjusted`` as it was at BASELINE_COMMIT, imported from a copy of its modules."""
    package = folder / "baseline_adjusted"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in BASELINE_MODULES:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:data/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for other in BASELINE_MODULES:
            source = source.replace(f"from data.{other} import", f"from baseline_adjusted.{other} import")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    return importlib.import_module("baseline_adjusted.adjusted").fit_adjusted


def bench_wide(folder: Path) -> None:
    """The wide build through the API, and the ratio against the baseline on a size it can finish."""
    from dashboard.factory import create_app
    from data.settings import Settings
    from data.store import FeatureStore

    dataset = random_build(300, 1_000)
    frame = pd.DataFrame(dataset.dense(), columns=dataset.features)
    frame.insert(0, "image_name", dataset.images)
    from data.batches import FeatureBatch, ctr_frame

    store = FeatureStore(f"sqlite:///{folder / 'wide.db'}")
    store.add_build(BUSINESS, SOURCE, FeatureBatch.from_wide(frame))
    store.replace_ctr(BUSINESS, SOURCE, ctr_frame(pd.Series(dataset.images), pd.Series(dataset.ctr)))
    settings = Settings.from_env({}, database_url=f"sqlite:///{folder / 'wide.db'}", demo_data=False)
    client = create_app(settings, store).server.test_client()
    store.cache.clear()
    args = {"business": BUSINESS, "source": SOURCE, "confidence": 0.5, "adjusted": 1}
    wall = time.perf_counter()
    response = client.get("/api/summary", query_string=args)
    wall = time.perf_counter() - wall
    verdict = "ok" if response.status_code == 200 and wall <= 10 else "MISSED"
    print(
        f"wide 300x1000 at 50 %: GET /api/summary?adjusted=1 {response.status_code} in {wall:.2f} s (target <= 10 s) {verdict}"
    )
    again = timed(lambda: client.get("/api/summary", query_string={**args, "confidence": 0.5000001}))
    print(f"wide 300x1000 at 50 %: the same at confidence 0.5000001 (same presence, cached) {again * 1000:.0f} ms")
    store.close()

    small = random_build(150, 250)
    old = baseline_fit_adjusted(folder)
    base = timed(lambda: old(small, 0.5))
    new = timed(lambda: fit_adjusted(small, 0.5))
    print(
        f"wide 150x250 at 50 %: cold fit_adjusted {new * 1000:.0f} ms; at {BASELINE_COMMIT} {base:.1f} s; "
        f"ratio {new / base:.4f}"
    )


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
    parser.add_argument("--wide-only", action="store_true", help="only the wide builds and the baseline ratio")
    args = parser.parse_args()
    # Wall time follows what else the cores run; CPU time is this process's own work.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        bench_wide(Path(tmp))
        if args.wide_only:
            return
        for n_images, n_features, target_ms in SIZES:
            bench_size(Path(tmp), n_images, n_features, target_ms, args.rounds)
    calibration(args.null_runs)


if __name__ == "__main__":
    main()
