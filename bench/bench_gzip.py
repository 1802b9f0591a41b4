"""gzip bodies refused for bytes after the member: the cost per trailing MiB stays flat as the tail grows.

The same 100 KB gzip member is followed by 6, 24 and 60 MiB of zero bytes; each body goes
through ``gunzip`` (the write path's decompression) and is refused. The baseline is the 6 MiB
body measured in the same run: a cost linear in the body gives ratios near 4 and 10.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.framing import gunzip  # noqa: E402
from ingest.http import ApiError  # noqa: E402

MIB = 1024 * 1024


def refuse_seconds(body: bytes, rounds: int) -> float:
    """The best of ``rounds`` times to refuse ``body``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            gunzip(body, 64 * MIB)
        except ApiError as exc:
            assert exc.status == 400, exc.details
        else:
            raise AssertionError("a body with trailing bytes was accepted")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(42)
    doc = {f"img_{i}": {f"f{j}": round(rng.random(), 6) for j in range(20)} for i in range(700)}
    head = gzip.compress(json.dumps(doc).encode())
    print(f"gzip member: {len(head) / 1000:.0f} KB")
    base = None
    for tail_mib in (6, 24, 60):
        seconds = refuse_seconds(head + bytes(tail_mib * MIB), args.rounds)
        base = base or seconds
        print(
            f"+{tail_mib:>2} MiB after it: refused in {seconds * 1000:8.1f} ms, ratio to +6 MiB {seconds / base:5.1f}"
        )


if __name__ == "__main__":
    main()
