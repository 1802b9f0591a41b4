"""Peak memory (RSS) of the server answering /api/summary on builds that are wide or long but sparse.

Two builds, each with a CTR for every image: a 40,000 x 40,000 diagonal (one value per image,
a 1 MiB-class body) and 1,000,000 images x 1 feature. For each, one subprocess PUTs the build
and its CTRs through the app (its peak RSS is printed for reference), then a fresh subprocess,
as a restarted server would, answers GET /api/summary twice and reports its peak RSS against
the target, and against a baseline: the same fresh server after its first request on an empty
database. Each subprocess runs under an address-space limit (``--limit-gb``) so that a build
read densely fails with MemoryError instead of taking the machine's memory.

    .venv/bin/python bench/bench_memory.py [--limit-gb 6] [--cases diagonal,long]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BUSINESS, HEADERS, SOURCE, fresh_app

TARGET_GB = 1.5
CASES = {"diagonal": (40_000, 40_000), "long": (1_000_000, 1)}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def _bodies(n_images: int, n_features: int) -> tuple[bytes, bytes]:
    """The PUT bodies: image i has feature i mod n_features at a confidence in (0.5, 1), and a CTR."""
    features = [f"feature_{j}" for j in range(n_features)]
    doc = {f"img_{i}": {features[i % n_features]: 0.5 + (i % 997) / 2000} for i in range(n_images)}
    ctr = {f"img_{i}": {"clicks": i % 37, "impressions": 1000 + i % 5000} for i in range(n_images)}
    return json.dumps(doc).encode(), json.dumps(ctr).encode()


def child_put(folder: str, n_images: int, n_features: int) -> dict:
    """Store the build and its CTRs through the app's PUT routes, and what follows them (the permutation nulls)."""
    app, store = fresh_app(Path(folder))
    client = app.server.test_client()
    features, ctr = _bodies(n_images, n_features)
    start = time.perf_counter()
    for route, body in (("/api/features", features), ("/api/ctr", ctr)):
        # Closed as a server closes it once sent: that runs what follows a write (the nulls' draw).
        with client.put(route, data=body, headers=HEADERS) as response:
            if response.status_code not in (200, 201):
                raise SystemExit(
                    f"PUT {route} answered {response.status_code}: {response.get_data(as_text=True)[:300]}"
                )
    store.close()
    return {"seconds": time.perf_counter() - start, "peak_gb": _peak_gb()}


def child_summary(folder: str, empty: bool) -> dict:
    """A fresh server: its first summary (reads the build) and a second one at another threshold."""
    app, store = fresh_app(Path(folder), "empty.db" if empty else "features.db")
    client = app.server.test_client()
    client.get("/healthz")
    if empty:
        return {"peak_gb": _peak_gb()}
    times, features = [], 0
    for confidence in (0.5, 0.6):
        start = time.perf_counter()
        response = client.get(
            "/api/summary", query_string={"business": BUSINESS, "source": SOURCE, "confidence": confidence}
        )
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            return {"status": response.status_code, "peak_gb": _peak_gb(), "error": response.get_data(as_text=True)}
        features = len(response.get_json()["features"])
    store.close()
    return {"status": 200, "features": features, "seconds": times, "peak_gb": _peak_gb()}


def run_child(args: list[str], limit_gb: float) -> dict:
    """Run this script as a child under an address-space limit; its last stdout line is JSON."""
    limit = int(limit_gb * 2**30)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, preexec_fn=cap, env=env, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"status": "failed", "peak_gb": float("nan"), "error": " | ".join(tail)}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gb", type=float, default=6.0, help="address-space limit of each subprocess")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: diagonal, long")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, *rest = args.child
        result = child_put(folder, *map(int, rest)) if kind == "put" else child_summary(folder, kind == "empty")
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        base = run_child(["--child", "empty", tmp], args.limit_gb)
        print(f"baseline: fresh server on an empty database, peak RSS {base['peak_gb']:.3f} GB")
        for name in args.cases.split(","):
            n_images, n_features = CASES[name]
            folder = Path(tmp) / name
            folder.mkdir()
            label = f"{name} {n_images:,} x {n_features:,}"
            put = run_child(["--child", "put", str(folder), str(n_images), str(n_features)], args.limit_gb)
            if "seconds" not in put:
                print(f"{label}: PUT failed: {put['error']}")
                continue
            print(f"{label}: PUT features + CTRs {put['seconds']:.1f} s, peak RSS {put['peak_gb']:.3f} GB")
            answer = run_child(["--child", "summary", str(folder)], args.limit_gb)
            if answer.get("status") != 200:
                print(f"{label}: summary failed ({answer.get('status')}): {answer.get('error', '')[:300]} MISSED")
                continue
            peak = answer["peak_gb"]
            verdict = "ok" if peak < TARGET_GB else "MISSED"
            first, second = (s * 1000 for s in answer["seconds"])
            print(
                f"{label}: summary of {answer['features']:,} features, first {first:.0f} ms, next {second:.0f} ms; "
                f"peak RSS {peak:.3f} GB (baseline {base['peak_gb']:.3f} GB, "
                f"ratio {peak / base['peak_gb']:.2f}; target < {TARGET_GB} GB) {verdict}"
            )


if __name__ == "__main__":
    main()
