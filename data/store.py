"""FeatureStore: the one class that owns SQL. Returns DataFrames and Datasets, raises its own errors."""

from __future__ import annotations

import functools
import threading
import weakref
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import select, text

from data import database, image_queries, metrics_queries, metrics_windows, migrations, nulls, queries, token_queries
from data.analysis import Dataset, permutation_tests
from data.batches import FeatureBatch
from data.cache import DEFAULT_CACHE_MB, AnalysisCache
from data.errors import (
    CtrFormConflict,
    DatasetKindConflict,
    InvalidBatch,
    StorageUnavailable,
    StoreError,
    TokenExists,
    UnknownBuild,
    UnknownDataset,
    WindowUnavailable,
)
from data.metrics_store import DatedMetrics
from data.schema import builds, store_version
from data.store_writer import StoreWriter

__all__ = [
    "CtrFormConflict",
    "DatasetKindConflict",
    "FeatureStore",
    "InvalidBatch",
    "StorageUnavailable",
    "StoreError",
    "TokenExists",
    "UnknownBuild",
    "UnknownDataset",
    "WindowUnavailable",
]

DEFAULT_KEEP_BUILDS = 20
KEEP_NULL_TABLES = 32  # the permutation null tables kept, newest first (a few MiB each at 10k images)


def _guarded(method):
    """Turn a storage fault inside ``method`` into StorageUnavailable (see database.storage_faults)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with database.storage_faults(self.engine):
            return method(self, *args, **kwargs)

    return wrapper


class FeatureStore(DatedMetrics):
    """Builds of image features and CTR sets per (business, image source), in long format."""

    def __init__(
        self,
        url: str,
        *,
        keep_builds: int = DEFAULT_KEEP_BUILDS,
        cache_mb: float = DEFAULT_CACHE_MB,
        cache=None,
        initialise: bool = True,
    ):
        if keep_builds < 1:
            raise ValueError("keep_builds must be at least 1")
        # The loaded builds and what the analysis derives from them (an AnalysisCache, the app's
        # when it passes one): the analysis of this store's datasets takes ``cache=store.cache``.
        self.cache = AnalysisCache(cache_mb) if cache is None else cache
        self.url = url
        self.keep_builds = keep_builds
        self._is_sqlite = database.is_sqlite(url)
        self.engine = database.open_engine(url)
        # Datasets by (build id, CTR set id), bounded by their bytes rather than their number.
        self._cache = self.cache.datasets
        # Each cached dataset's permutation tests, whose null tables a read takes from the database.
        self._tests = weakref.WeakKeyDictionary()
        self._tests_lock = threading.Lock()
        # The storage fault that made the last write fail, until a write succeeds again.
        self.write_fault: StorageUnavailable | None = None
        # A server that waits for its database opens the store without it and initialises later.
        if initialise:
            self.initialise()

    def __repr__(self) -> str:
        return f"FeatureStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- start-up --------------------------------------------------------------------------

    @_guarded
    def initialise(self, seed=None):
        """Migrate the schema to the newest revision (``data/migrations/``) and, when ``seed`` is
        given and no build is stored, run ``seed(writer)`` (writer has add_build and replace_ctr);
        returns its result or None.

        All in one transaction under a database-wide lock (an advisory lock on PostgreSQL, BEGIN
        IMMEDIATE on SQLite), so workers and hosts starting at once do it exactly once: the others
        wait, then find it done. A migration or seed that fails leaves the database as it was.
        """
        with database.write_connection(self.engine) as conn, conn.begin():
            database.lock_startup(conn)
            migrations.upgrade(conn)
            if seed is None or conn.execute(select(builds.c.id).limit(1)).first() is not None:
                return None
            return seed(self._writer(conn))

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        """Several writes stored as one: ``with store.transaction() as w: w.add_build(...); w.replace_ctr(...)``."""
        with self._writing() as conn:
            yield self._writer(conn)

    def write(self, work):
        """``work(writer)`` as one transaction (writer as in ``transaction``), run once more after a
        storage fault as every single write is; returns what ``work`` returns."""
        return self._write(lambda conn: work(self._writer(conn)))

    def _writer(self, conn) -> StoreWriter:
        return StoreWriter(conn, keep_builds=self.keep_builds, fresh_ctr_id=self._is_sqlite)

    @contextmanager
    def _writing(self, *, probe: bool = False):
        try:
            with database.storage_faults(self.engine):
                with database.write_connection(self.engine) as conn, conn.begin() as tx:
                    yield conn
                    if probe:
                        tx.rollback()
        except StorageUnavailable as exc:
            self.write_fault = exc
            raise
        self.write_fault = None

    def _write(self, write, *, probe: bool = False):
        """``write(conn)`` in a write transaction; after a storage fault, once more on a new connection.

        A connection opened during a fault can keep it (SQLite opens a file it cannot write
        read-only for good), and reads may have left such connections in the pool: the fault
        dropped them all, so the second try tells whether the fault itself is still there.
        """
        try:
            with self._writing(probe=probe) as conn:
                return write(conn)
        except StorageUnavailable as exc:
            if exc.cause == "database busy":
                raise  # it already waited its full timeout
        with self._writing(probe=probe) as conn:
            return write(conn)

    @contextmanager
    def _reading(self):
        with database.storage_faults(self.engine):
            with database.read_connection(self.engine) as conn, conn.begin():
                yield conn

    def add_build(self, business: str, source: str, batch: FeatureBatch, *, tag: str | None = None) -> dict:
        """Store a new build, which becomes the current one of its (business, source).

        All or nothing in one transaction; builds beyond the newest ``keep_builds`` of the pair
        are removed in the same transaction. Raises InvalidBatch before writing anything when a
        name repeats or a value's position is outside the batch's images or features. With a
        ``tag`` that a stored build of the pair already has, stores nothing and returns that
        build with ``created`` False.
        """
        queries.check_batch(batch)
        return self._write(lambda conn: self._writer(conn).add_checked_build(business, source, batch, tag=tag))

    def replace_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """Replace the CTR set of a (business, source) with ``ctr`` (columns image, ctr, clicks, impressions)."""
        return self._write(lambda conn: self._writer(conn).replace_ctr(business, source, ctr))

    def merge_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """Upsert the given images' CTRs into the pair's set, keeping every other image's.

        The result is stored as a new set (a new id, so caches and version() see it) in one
        transaction. A set is all rates or all counts: raises CtrFormConflict, writing nothing,
        when ``ctr`` is in the other form than a non-empty stored set.
        """
        return self._write(lambda conn: self._writer(conn).merge_ctr(business, source, ctr))

    # -- reading ---------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers a query, a new connection may write now, and, if the
        last write failed on a storage fault, a write (rolled back) succeeds; raises StorageUnavailable otherwise.

        The new connection sees the database as it is, not as this process's pooled connections
        last saw it (a database made read-only, a folder gone); it never waits behind a writer.
        """
        with self._reading() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
        with database.storage_faults(self.engine):
            database.check_writable(self.engine)
        if self.write_fault is not None:
            # Only then: a probe write waits behind any PUT in progress.
            self._write(queries.bump_version, probe=True)
        return True

    def version(self) -> str:
        """A token that changes whenever any build or CTR set is written."""
        with self._reading() as conn:
            return str(conn.execute(select(store_version.c.version)).scalar() or 0)

    def is_empty(self) -> bool:
        """True when no build has been stored yet."""
        with self._reading() as conn:
            return conn.execute(select(builds.c.id).limit(1)).first() is None

    def datasets(self) -> pd.DataFrame:
        """The current build of each (business, source), most recently updated first."""
        with self._reading() as conn:
            frame = metrics_queries.with_metrics(conn, queries.current_builds(conn))
        frame["has_counts"] = frame["has_counts"].fillna(0).astype(bool)
        updated = frame[["received_at", "ctr_received_at"]].fillna("").max(axis=1)
        frame = frame.assign(updated_at=updated).sort_values(["updated_at", "build_id"], ascending=False)
        return frame.drop(columns=["ctr_set_id"]).reset_index(drop=True)

    def builds(self, business: str, source: str) -> pd.DataFrame:
        """The stored builds of a (business, source), newest first; raises UnknownDataset."""
        with self._reading() as conn:
            return queries.pair_builds(conn, business, source)

    def ctr(self, business: str, source: str) -> pd.DataFrame:
        """The current CTR set of a (business, source) (empty when none was uploaded)."""
        with self._reading() as conn:
            set_id = queries.ctr_set_id(conn, business, source)
            return queries.ctr_frame(conn, set_id)

    def resolve_build(self, business: str, source: str, build_id: int | None = None) -> int:
        """The given build id checked against the pair, or the pair's current build."""
        with self._reading() as conn:
            return queries.resolve_build(conn, business, source, build_id)

    def build_pair(self, build_id: int) -> tuple[str, str]:
        """The (business, source) a build belongs to; raises UnknownBuild."""
        with self._reading() as conn:
            return queries.build_pair(conn, build_id)

    def dataset(self, business: str, source: str, build_id: int | None = None, *, window=None) -> Dataset:
        """The build (current by default) as a Dataset with the pair's CTRs (over ``window``) aligned to it."""
        return self.load_build(business, source, build_id, window=window)[0]

    def load_build(
        self, business: str, source: str, build_id: int | None = None, *, fall_back: bool = False, window=None
    ) -> tuple[Dataset, int, int | None]:
        """``(dataset, build id, gone)`` of a build (current by default), resolved and read in one
        snapshot, so a build pruned by a concurrent write cannot vanish between the two.

        With ``fall_back``, a build id that is no longer stored gives the current build and
        ``gone`` names the id that fell back (else None). Confidences are a scipy.sparse CSC
        array where that is smaller than a dense matrix. Cached per (build, CTR set) within
        ``cache_mb``: builds never change, and a new CTR upload gets a new id, so a cache hit
        costs two indexed lookups; after a CTR upload the build's matrix is reused rather than
        read again. A pair with dated metrics gets each image's clicks and impressions summed
        over ``window`` (a ``data.window.Window``; None: every day), cached per window; a window
        on a pair without them raises WindowUnavailable.
        """
        gone = None
        with self._reading() as conn:
            try:
                bid = queries.resolve_build(conn, business, source, build_id)
            except UnknownBuild:
                if not fall_back:
                    raise
                bid, gone = queries.resolve_build(conn, business, source, None), build_id
            set_id = queries.ctr_set_id(conn, business, source)
            metrics_key = metrics_queries.dataset_key(conn, business, source, window)
            key = (bid, set_id if metrics_key is None else metrics_key)
            cached = self._cache.get(key)
            if cached is not None:
                self._adopt_nulls(cached)
                return cached, bid, gone
            same_build = self._cache.find(lambda k: k[0] == bid)
            if same_build is not None:
                images, features, confidences = same_build.images, same_build.features, same_build.confidences
            else:
                images, features, confidences = queries.read_matrix(conn, bid)
            if metrics_key is None:
                ctr = queries.ctr_frame(conn, set_id)
            else:
                ctr = metrics_windows.window_ctr(conn, business, source, metrics_key[2])
        dataset = Dataset.from_matrix(images, features, confidences, ctr)
        # A replaced CTR set never comes back: its entry would only hold the build twice.
        self._cache.discard(lambda k: k[0] == bid and not metrics_queries.same_ctrs(k[1], key[1]))
        self._cache.put(key, dataset, dataset.nbytes)
        self._adopt_nulls(dataset)
        return dataset, bid, gone

    # -- image thumbnails (kept per image name across builds) ------------------------------

    def put_thumbnails(self, business: str, source: str, items) -> list[bool]:
        """Store each ``(image, Thumbnail)`` (data/thumbnails.py) of the pair in one transaction,
        replacing a stored one of the same name; returns, per item, whether it was new."""
        items = list(items)
        return self._write(lambda conn: self._writer(conn).put_thumbnails(business, source, items))

    def thumbnail(self, business: str, source: str, image: str):
        """The stored thumbnail of an image (a ``data.image_queries.StoredThumbnail``), or None."""
        with self._reading() as conn:
            return image_queries.thumbnail(conn, business, source, image)

    def thumbnail_tags(self, business: str, source: str, images=None) -> dict[str, str]:
        """Image name -> etag of the pair's stored thumbnails (of ``images`` only, when given)."""
        with self._reading() as conn:
            return image_queries.thumbnail_tags(conn, business, source, images)

    def delete_thumbnail(self, business: str, source: str, image: str) -> bool:
        """Delete an image's thumbnail; returns whether one was stored."""
        return self._write(lambda conn: self._writer(conn).delete_thumbnail(business, source, image))

    # -- permutation nulls (derived data: no version bump, and losing one only costs a draw) --

    def null_tests(self, dataset: Dataset) -> list:
        """The dataset's permutation tests (``analysis.permutation_tests``), made once per dataset."""
        with self._tests_lock:
            tests = self._tests.get(dataset)
            if tests is None:
                tests = self._tests[dataset] = permutation_tests(dataset, self.cache)
            return tests

    def _adopt_nulls(self, dataset: Dataset) -> None:
        """Read the dataset's stored null tables that this process does not hold (e.g. after a cache eviction)."""
        nulls.adopt_stored(self.null_table_data, self.null_tests(dataset))

    def null_table_data(self, key: str) -> bytes | None:
        """The stored bytes of a permutation null table (``data/nulls.py``), or None."""
        with self._reading() as conn:
            return queries.null_table_data(conn, key)

    def has_null_table(self, key: str) -> bool:
        """Whether a permutation null table is stored under ``key`` (without reading it)."""
        with self._reading() as conn:
            return queries.has_null_table(conn, key)

    def save_null_table(self, key: str, data: bytes) -> None:
        """Store a permutation null table's bytes, keeping the newest ``KEEP_NULL_TABLES``."""
        self._write(lambda conn: queries.save_null_table(conn, key, data, queries.now(), KEEP_NULL_TABLES))

    # -- access tokens and shared secrets (no version bump: they are not data) -------------

    def create_token(self, name: str, role: str, businesses: str, token_hash: str) -> dict:
        """Store a token's hash under ``name`` (``businesses``: data.tokens.encode_businesses);
        raises TokenExists, storing nothing, when the name is taken."""
        self._write(lambda conn: token_queries.insert_token(conn, name, role, businesses, token_hash, queries.now()))
        return self.token_by_hash(token_hash)

    def tokens(self) -> pd.DataFrame:
        """Every stored token by name: name, role, businesses, created_at, last_used_at (never the hash)."""
        with self._reading() as conn:
            return token_queries.tokens(conn)

    def revoke_token(self, name: str) -> bool:
        """Delete the token named ``name``; False when there is none."""
        return self._write(lambda conn: token_queries.delete_token(conn, name))

    def token_by_hash(self, token_hash: str) -> dict | None:
        """The stored token whose hash is ``token_hash`` (its row as a dict), or None."""
        with self._reading() as conn:
            return token_queries.token_by_hash(conn, token_hash)

    def token_by_id(self, token_id: int) -> dict | None:
        """The stored token with that id, or None once it was revoked."""
        with self._reading() as conn:
            return token_queries.token_by_id(conn, token_id)

    def touch_token(self, token_id: int) -> None:
        """Record that the token was used now."""
        stamp = queries.now()
        self._write(lambda conn: token_queries.touch_token(conn, token_id, stamp))

    def secret(self, name: str, make) -> bytes:
        """The stored secret ``name``; the first caller stores ``make()``, every later one (any worker
        or host) reads that same value."""
        with self._reading() as conn:
            found = token_queries.secret(conn, name)
        if found is not None:
            return found
        return self._write(lambda conn: token_queries.secret_or_store(conn, name, make))
