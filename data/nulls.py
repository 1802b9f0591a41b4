"""Permutation null tables kept in the database, drawn when a build or CTR set lands.

A null table (``data/permutation.py``) depends only on the CTR values of a build's images and
the number of resamples, and at 10,000 images takes seconds of CPU to draw. So the write path
draws it once, right after a build or CTR set is stored, and keeps it in the store under a key
made of those values' digest; every worker that then loads the build reads the table back
(a few MiB) instead of drawing it again. The key names the table's format, so a change in how
tables are drawn never reads an old one.
"""

from __future__ import annotations

import io

import numpy as np

from data import permutation

# Drawn at landing up to this size (resamples x largest group; 10,000 images x 1,000 features: 1e8,
# about 5 s of CPU): a larger draw would hold the worker that took the write for too long, and is
# left to the first summary that needs it.
EAGER_CELLS = 150_000_000
# Every setting that shapes a table, so that changing one never reads a table drawn under another;
# bump the version when the drawing itself changes.
FORMAT = (
    f"v3-b{permutation.BODY_RESAMPLES}-s{permutation.SIDE_SHARE}-f{permutation.TAIL_FIT}"
    f"-d{permutation.DENSE_SIZES}-g{permutation.GRID_STEP}-m{permutation.MAX_SIZE}-c{permutation.CHUNK_CELLS}"
)


def storage_key(key: tuple) -> str:
    """The store's name for a permutation cache key ``(kind, resamples, digest)``."""
    kind, resamples, digest = key
    return f"{kind}:{resamples}:{digest}:{FORMAT}"


def to_bytes(table: permutation.NullTable) -> bytes:
    """A null table as an ``.npz`` archive (plain arrays, nothing pickled)."""
    arrays = {
        "n": np.int64(table.n),
        "resamples": np.int64(table.resamples),
        "sizes": table.sizes,
        "upper": table.upper,
        "lower": table.lower,
        "body": table.body,
        "tails": table.tails,
    }
    arrays.update({f"exact_{k}": values for k, values in table.exact.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def from_bytes(data: bytes) -> permutation.NullTable:
    """The null table ``to_bytes`` wrote."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        exact = {int(name.removeprefix("exact_")): archive[name] for name in archive.files if name.startswith("exact_")}
        return permutation.NullTable(
            n=int(archive["n"]),
            resamples=int(archive["resamples"]),
            sizes=archive["sizes"],
            upper=archive["upper"],
            lower=archive["lower"],
            body=archive["body"],
            tails=archive["tails"],
            exact=dict(sorted(exact.items())),
        )


def adopt_stored(read, tests) -> int:
    """Take the stored null tables of ``tests`` into their cache; ``read(storage key)`` gives bytes or None.

    Returns how many were read. Tables already at hand are not read again.
    """
    taken = 0
    for test in tests:
        if permutation.is_cached(test.cache, test.key):
            continue
        data = read(storage_key(test.key))
        if data is not None:
            permutation.adopt(test.cache, test.key, from_bytes(data))
            taken += 1
    return taken


def prepare(stored, write, tests) -> int:
    """Make sure the null table of each of ``tests`` is stored; returns how many were drawn.

    ``stored(storage key)`` says whether a table is stored already; a missing one is taken
    from the cache or drawn (no larger than EAGER_CELLS) and stored with
    ``write(storage key, bytes)``.
    """
    drawn = 0
    for test in tests:
        name = storage_key(test.key)
        if stored(name):
            continue
        if permutation.is_cached(test.cache, test.key) or test.draw_cells <= EAGER_CELLS:
            drawn += not permutation.is_cached(test.cache, test.key)
            write(name, to_bytes(test.table()))
    return drawn
