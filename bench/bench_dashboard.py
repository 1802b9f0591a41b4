"""Time the server side of one slider move at demo scale, and size what it sends the browser.

For a 659-image x 480-feature build (the demo build when data.demo provides one that size,
else a random one, seed 42), each round moves the confidence threshold and computes the four
figures, the hover lookup and the summary table's rows with ``compute_view``, then serialises
them as Dash does. Prints the median times against a baseline of ``feature_summary`` alone,
and the JSON sizes, for the page's default (top and bottom features by impact) and for all
features.

Also prints the bytes per scatter point (target <= 16 with all features charted) and the
default view's total (target <= 1 MB at 659 x 480). ``--images 10000 --features 1000`` runs the
same on a demo build of that size.

    .venv/bin/python bench/bench_dashboard.py [--rounds 40] [--weighting impressions]
        [--images 10000 --features 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.page.compute import compute_view  # noqa: E402
from dashboard.page.views import DEFAULT_FILTERS, DEFAULT_SHOWN, packed_rows  # noqa: E402
from data.analysis import feature_summary  # noqa: E402
from data.batches import FeatureBatch, ctr_frame  # noqa: E402
from data.store import FeatureStore  # noqa: E402

N_IMAGES, N_FEATURES = 659, 480
TARGET_MS = 100
TARGET_BYTES_PER_POINT = 16
TARGET_DEFAULT_VIEW_KB = 1024
FIGURES = ("scatter", "avg_with", "impact")
_GROUPS = ["label", "object", "color", "scene", "text", "face", "style"]
_WORDS = [
    "person",
    "woman",
    "man",
    "child",
    "crowd",
    "smile",
    "guitar",
    "microphone",
    "stage",
    "concert",
    "car",
    "city",
    "street",
    "beach",
    "sky",
    "sunset",
    "night",
    "forest",
    "mountain",
    "water",
    "dog",
    "cat",
    "food",
    "drink",
    "bottle",
    "phone",
    "laptop",
    "shoe",
    "dress",
    "hat",
    "sunglasses",
    "logo",
    "poster",
    "headline",
    "price",
    "button",
    "red",
    "blue",
    "green",
    "black",
    "white",
    "yellow",
    "pink",
    "gold",
    "neon",
    "pastel",
    "vintage",
    "minimal",
    "collage",
    "closeup",
    "portrait",
    "landscape",
    "outdoor",
    "indoor",
    "studio",
    "graffiti",
    "flag",
    "sport",
    "ball",
    "light",
    "party",
    "dance",
    "fashion",
    "makeup",
    "tattoo",
    "festival",
    "album",
    "vinyl",
    "piano",
    "drum",
]


def synthetic_build(n_images: int = N_IMAGES, n_features: int = N_FEATURES, seed: int = 42) -> pd.DataFrame:
    """A wide frame (image_name, ctr, one column per feature) shaped like a real featurizer build.

    Feature prevalence is skewed (most features are rare), confidences of present features lie
    in (0, 1), CTRs are log-normal around 1% and a tenth of the features shift them.
    """
    rng = np.random.default_rng(seed)
    names = [f"{g}_{w}" for w in _WORDS for g in _GROUPS][:n_features]
    names += [f"label_extra{i}" for i in range(n_features - len(names))]
    prevalence = rng.beta(0.6, 4.0, n_features)
    present = rng.random((n_images, n_features)) < prevalence
    confidence = np.where(present, rng.beta(4, 2, (n_images, n_features)), 0.0)
    effect = np.where(rng.random(n_features) < 0.1, rng.normal(0, 0.25, n_features), 0.0)
    log_ctr = np.log(0.01) + rng.normal(0, 0.45, n_images) + (confidence > 0.5) @ effect
    frame = pd.DataFrame(confidence.round(4), columns=names)
    frame.insert(0, "ctr", np.exp(log_ctr))
    frame.insert(0, "image_name", [f"img_{i:04d}_{rng.choice(_WORDS)}.jpg" for i in range(n_images)])
    return frame


def demo_scale_store(path: Path) -> tuple[FeatureStore, str, str, str]:
    """A store holding a demo-scale build: data.demo's when it is that size, else a synthetic one."""
    store = FeatureStore(f"sqlite:///{path}")
    try:
        from data.demo import load_demo

        load_demo(store)
        datasets = store.datasets().sort_values("features", ascending=False)
        if len(datasets) and datasets["features"].iloc[0] >= N_FEATURES * 0.9:
            row = datasets.iloc[0]
            return store, row["business"], row["source"], "data.demo"
    except Exception as exc:  # the demo module is optional here: fall back to synthetic data
        print(f"data.demo unusable ({exc!r}); using a synthetic build", file=sys.stderr)
    frame = synthetic_build()
    store.add_build("bench", "vision", FeatureBatch.from_wide(frame))
    store.replace_ctr("bench", "vision", ctr_frame(frame["image_name"], frame["ctr"]))
    return store, "bench", "vision", "synthetic (seed 42)"


def measure(store, business, source, thresholds, shown, weighting="mean") -> dict:
    """Median times and the JSON sizes of slider moves through ``thresholds``."""
    dataset = store.dataset(business, source)
    compute_view(
        store,
        business,
        source,
        "current",
        DEFAULT_FILTERS.replace(confidence=0.5, min_pct=0, max_pct=100, weighting=weighting),
        shown=shown,
    )  # warm the cache
    baseline, compute, serialise, sizes, points = [], [], [], [], []
    for c in thresholds:
        t0 = time.perf_counter()
        feature_summary(dataset, confidence=float(c), weighting=weighting, cache=store.cache)
        t1 = time.perf_counter()
        view = compute_view(
            store,
            business,
            source,
            "current",
            DEFAULT_FILTERS.replace(confidence=float(c), min_pct=0, max_pct=100, weighting=weighting),
            shown=shown,
        )
        t2 = time.perf_counter()
        payload = {k: pio.to_json(getattr(view, k), validate=False) for k in FIGURES}
        payload["lookup"] = pio.json.to_json_plotly(view.lookup)
        payload["table"] = pio.json.to_json_plotly(packed_rows(view.table))  # as the page sends it
        t3 = time.perf_counter()
        baseline.append(t1 - t0)
        compute.append(t2 - t1)
        serialise.append(t3 - t2)
        sizes.append({k: len(v) for k, v in payload.items()})
        points.append(view.scatter.layout.meta["points"])
    mid = len(thresholds) // 2
    return {
        "baseline": statistics.median(baseline),
        "compute": statistics.median(compute),
        "serialise": statistics.median(serialise),
        "total": statistics.median([a + b for a, b in zip(compute, serialise)]),
        "sizes": sizes[mid],
        "points": points[mid],
        "threshold": thresholds[mid],
        "largest": max(sum(s.values()) for s in sizes),
    }


def sized_store(path: Path, n_images: int, n_features: int) -> tuple[FeatureStore, str, str, str]:
    """A store holding data.demo's build (seed 42) of the given size with its CTRs."""
    from data.demo import demo_build

    store = FeatureStore(f"sqlite:///{path}")
    batch, ctr = demo_build(n_images=n_images, n_features=n_features)
    store.add_build("bench", "vision", batch)
    store.replace_ctr("bench", "vision", ctr)
    return store, "bench", "vision", "data.demo.demo_build"


def report(result: dict, label: str, *, default_view: bool = False) -> None:
    """Print one mode's medians and sizes."""
    ms = lambda seconds: seconds * 1000  # noqa: E731
    verdict = "ok" if ms(result["total"]) < TARGET_MS else "MISSED"
    print(f"features shown: {label}")
    print(f"  feature_summary alone (baseline)   {ms(result['baseline']):7.1f} ms")
    print(
        f"  compute_view: figures, lookup, table {ms(result['compute']):5.1f} ms  "
        f"({result['compute'] / result['baseline']:.1f}x baseline)"
    )
    print(f"  JSON serialisation                 {ms(result['serialise']):7.1f} ms")
    print(f"  one slider move, server side       {ms(result['total']):7.1f} ms  (target < {TARGET_MS} ms) {verdict}")
    print(f"  JSON sent at confidence {result['threshold']:.2f} ({result['points']:,} scatter points):")
    for key, size in result["sizes"].items():
        print(f"    {key:<12} {size / 1024:8.1f} kB")
    total_kb = sum(result["sizes"].values()) / 1024
    print(f"    {'total':<12} {total_kb:8.1f} kB (largest over the rounds {result['largest'] / 1024:.1f} kB)")
    if default_view:
        verdict = "ok" if result["largest"] / 1024 <= TARGET_DEFAULT_VIEW_KB else "MISSED"
        print(
            f"  largest default view {result['largest'] / 1024:.1f} kB (target <= {TARGET_DEFAULT_VIEW_KB} kB) {verdict}"
        )
    if result["points"]:
        per_point = result["sizes"]["scatter"] / result["points"]
        with_lookup = (result["sizes"]["scatter"] + result["sizes"]["lookup"]) / result["points"]
        verdict = "ok" if per_point <= TARGET_BYTES_PER_POINT else "MISSED"
        print(
            f"  scatter bytes per point {per_point:.1f} (target <= {TARGET_BYTES_PER_POINT}) {verdict}; "
            f"with the hover lookup {with_lookup:.1f}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--weighting", choices=("mean", "impressions"), default="mean")
    parser.add_argument("--images", type=int, default=N_IMAGES)
    parser.add_argument("--features", type=int, default=N_FEATURES)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if (args.images, args.features) == (N_IMAGES, N_FEATURES):
            store, business, source, origin = demo_scale_store(Path(tmp) / "bench.db")
        else:
            store, business, source, origin = sized_store(Path(tmp) / "bench.db", args.images, args.features)
        dataset = store.dataset(business, source)
        print(
            f"build: {origin}, {len(dataset.images)} images x {len(dataset.features)} features; "
            f"{args.rounds} slider moves, confidence 0.20..0.80, weighting {args.weighting}, median of each"
        )
        if args.weighting == "impressions" and not dataset.has_counts:
            parser.error("this build's CTRs have no clicks and impressions")
        thresholds = np.linspace(0.2, 0.8, args.rounds)
        for shown, label in ((DEFAULT_SHOWN, f"top & bottom {DEFAULT_SHOWN} (the page's default)"), (0, "all")):
            report(measure(store, business, source, thresholds, shown, args.weighting), label, default_view=shown != 0)
        store.close()


if __name__ == "__main__":
    main()
