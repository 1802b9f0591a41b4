"""FeatureStore: the one class that owns SQL. Returns DataFrames and Datasets, raises its own errors."""

from __future__ import annotations

import functools
import threading
import weakref
from contextlib import contextmanager
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import delete, select, text, update

from data import database, image_queries, metrics_queries, migrations, nulls, queries
from data.analysis import Dataset, permutation_tests
from data.batches import CTR_COLUMNS, FeatureBatch
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
from data.schema import access_tokens, app_secrets, builds, store_version

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _guarded(method):
    """Turn a storage fault inside ``method`` into StorageUnavailable (see database.storage_faults)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with database.storage_faults(self.engine):
            return method(self, *args, **kwargs)

    return wrapper


class _Writer:
    """The store's writes inside one open transaction (see FeatureStore.transaction)."""

    def __init__(self, store: FeatureStore, conn):
        self._store = store
        self._conn = conn

    def add_build(self, business: str, source: str, batch: FeatureBatch, *, tag: str | None = None) -> dict:
        """As FeatureStore.add_build, in the enclosing transaction."""
        queries.check_batch(batch)
        return self._store._add_build(self._conn, business, source, batch, tag)

    def replace_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """As FeatureStore.replace_ctr, in the enclosing transaction."""
        return self._store._replace_ctr(self._conn, business, source, ctr)

    def merge_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """As FeatureStore.merge_ctr, in the enclosing transaction."""
        return self._store._merge_ctr(self._conn, business, source, ctr.reindex(columns=CTR_COLUMNS))

    def put_thumbnails(self, business: str, source: str, items) -> list[bool]:
        """As FeatureStore.put_thumbnails, in the enclosing transaction."""
        return self._store._put_thumbnails(self._conn, business, source, items)

    def replace_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """As FeatureStore.replace_metrics, in the enclosing transaction."""
        return self._store._metrics_write(self._conn, metrics_queries.replace_metrics, business, source, frame)

    def merge_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """As FeatureStore.merge_metrics, in the enclosing transaction."""
        return self._store._metrics_write(self._conn, metrics_queries.merge_metrics, business, source, frame)


class FeatureStore:
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
            return seed(_Writer(self, conn))

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        """Several writes stored as one: ``with store.transaction() as w: w.add_build(...); w.replace_ctr(...)``."""
        with self._writing() as conn:
            yield _Writer(self, conn)

    def write(self, work):
        """``work(writer)`` as one transaction (writer as in ``transaction``), run once more after a
        storage fault as every single write is; returns what ``work`` returns."""
        return self._write(lambda conn: work(_Writer(self, conn)))

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

    @staticmethod
    def _changed(conn) -> None:
        # Last in each write: on PostgreSQL the row lock it takes is held only until commit.
        conn.execute(update(store_version).where(store_version.c.id == 1).values(version=store_version.c.version + 1))

    def add_build(self, business: str, source: str, batch: FeatureBatch, *, tag: str | None = None) -> dict:
        """Store a new build, which becomes the current one of its (business, source).

        All or nothing in one transaction; builds beyond the newest ``keep_builds`` of the pair
        are removed in the same transaction. Raises InvalidBatch before writing anything when a
        name repeats or a value's position is outside the batch's images or features. With a
        ``tag`` that a stored build of the pair already has, stores nothing and returns that
        build with ``created`` False.
        """
        queries.check_batch(batch)
        return self._write(lambda conn: self._add_build(conn, business, source, batch, tag))

    def _add_build(self, conn, business: str, source: str, batch: FeatureBatch, tag: str | None) -> dict:
        database.lock_dataset(conn, business, source)
        if tag is not None:
            found = queries.tagged_build(conn, business, source, tag)
            if found is not None:
                return found
        received_at = _now()
        build_id = queries.insert_build(conn, business, source, batch, tag, received_at)
        queries.prune_builds(conn, business, source, self.keep_builds)
        self._changed(conn)
        return {
            "build_id": build_id,
            "business": business,
            "source": source,
            "received_at": received_at,
            "images": len(batch.images),
            "features": len(batch.features),
            "values": len(batch.values),
            "build_tag": tag,
            "created": True,
        }

    def replace_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """Replace the CTR set of a (business, source) with ``ctr`` (columns image, ctr, clicks, impressions)."""
        return self._write(lambda conn: self._replace_ctr(conn, business, source, ctr))

    def _replace_ctr(self, conn, business: str, source: str, ctr: pd.DataFrame) -> dict:
        database.lock_dataset(conn, business, source)
        metrics_queries.refuse_ctr(conn, business, source)
        return self._store_ctr_set(conn, business, source, ctr.reindex(columns=CTR_COLUMNS))

    def merge_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """Upsert the given images' CTRs into the pair's set, keeping every other image's.

        The result is stored as a new set (a new id, so caches and version() see it) in one
        transaction. A set is all rates or all counts: raises CtrFormConflict, writing nothing,
        when ``ctr`` is in the other form than a non-empty stored set.
        """
        given = ctr.reindex(columns=CTR_COLUMNS)
        return self._write(lambda conn: self._merge_ctr(conn, business, source, given))

    def _merge_ctr(self, conn, business: str, source: str, given: pd.DataFrame) -> dict:
        given_counts = queries.has_counts(given)
        # Read inside the write transaction, after the pair's lock: a concurrent PUT or PATCH
        # either lands wholly before this read or waits for this transaction to end.
        database.lock_dataset(conn, business, source)
        metrics_queries.refuse_ctr(conn, business, source)
        stored = queries.ctr_frame(conn, queries.ctr_set_id(conn, business, source))
        if len(stored) and queries.has_counts(stored) != given_counts:
            have, sent = ("counts", "rates") if given_counts is False else ("rates", "counts")
            raise CtrFormConflict(
                f"the stored CTR set of {business!r} / {source!r} holds {have}, this body holds {sent}; "
                f"send {have}, or PUT the whole set to replace it"
            )
        kept = stored[~stored["image"].isin(given["image"])]
        merged = given if kept.empty else pd.concat([kept, given], ignore_index=True)
        return self._store_ctr_set(conn, business, source, merged)

    def _store_ctr_set(self, conn, business: str, source: str, frame: pd.DataFrame) -> dict:
        """Write ``frame`` as the pair's only CTR set, inside the caller's transaction."""
        received_at = _now()
        has_counts, n_images = queries.write_ctr_set(
            conn, business, source, frame, received_at, fresh_id=self._is_sqlite
        )
        self._changed(conn)
        return {
            "business": business,
            "source": source,
            "received_at": received_at,
            "images": n_images,
            "has_counts": has_counts,
        }

    # -- dated metrics (data/metrics_queries.py) --------------------------------------------

    def replace_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """Make ``frame`` (image, day, clicks, impressions) the pair's dated metrics; raises DatasetKindConflict over a CTR set."""
        return self._write(
            lambda conn: self._metrics_write(conn, metrics_queries.replace_metrics, business, source, frame)
        )

    def merge_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """Upsert ``frame``'s (image, day) rows into the pair's dated metrics, keeping every other day."""
        return self._write(
            lambda conn: self._metrics_write(conn, metrics_queries.merge_metrics, business, source, frame)
        )

    def _metrics_write(self, conn, write, business: str, source: str, frame: pd.DataFrame) -> dict:
        database.lock_dataset(conn, business, source)
        result = write(conn, business, source, frame, _now())
        self._changed(conn)
        return result

    def metrics(self, business: str, source: str, window=None) -> pd.DataFrame:
        """The pair's dated metrics (image, day, clicks, impressions) within ``window`` (a data.window.Window)."""
        with self._reading() as conn:
            return metrics_queries.daily(conn, business, source, window)

    def metric_ctr(self, business: str, source: str, window=None) -> pd.DataFrame:
        """The pair's CTRs summed over ``window`` (image, ctr, clicks, impressions; images with impressions in it)."""
        with self._reading() as conn:
            return metrics_queries.window_ctr(conn, business, source, window)

    def metric_set(self, business: str, source: str):
        """The pair's ``metrics_queries.MetricSet`` (id, extent), or None without dated metrics."""
        with self._reading() as conn:
            return metrics_queries.metric_set(conn, business, source)

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
            self._write(self._changed, probe=True)
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
        query = (
            select(
                builds.c.id.label("build_id"),
                builds.c.received_at,
                builds.c.n_images.label("images"),
                builds.c.n_features.label("features"),
                builds.c.n_values.label("values"),
                builds.c.tag.label("build_tag"),
            )
            .where(builds.c.business == business, builds.c.source == source)
            .order_by(builds.c.id.desc())
        )
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
        return pd.DataFrame(rows, columns=["build_id", "received_at", "images", "features", "values", "build_tag"])

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
            in_range = queries.build_id_in_range(conn, build_id)
            row = (
                in_range
                and conn.execute(select(builds.c.business, builds.c.source).where(builds.c.id == int(build_id))).first()
            )
        if not row:
            raise UnknownBuild(f"build {build_id} is not a stored build")
        return row.business, row.source

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
                ctr = metrics_queries.window_ctr(conn, business, source, metrics_key[2])
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
        return self._write(lambda conn: self._put_thumbnails(conn, business, source, items))

    def _put_thumbnails(self, conn, business: str, source: str, items) -> list[bool]:
        database.lock_dataset(conn, business, source)
        created = image_queries.upsert_thumbnails(conn, business, source, items, _now())
        if created:
            self._changed(conn)
        return created

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

        def delete(conn):
            database.lock_dataset(conn, business, source)
            deleted = image_queries.delete_thumbnail(conn, business, source, image)
            if deleted:
                self._changed(conn)
            return deleted

        return self._write(delete)

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
        self._write(lambda conn: queries.save_null_table(conn, key, data, _now(), KEEP_NULL_TABLES))

    # -- access tokens and shared secrets (no version bump: they are not data) -------------

    _TOKEN_COLUMNS = ("id", "name", "token_hash", "role", "businesses", "created_at", "last_used_at")

    def create_token(self, name: str, role: str, businesses: str, token_hash: str) -> dict:
        """Store a token's hash under ``name`` (``businesses``: data.tokens.encode_businesses);
        raises TokenExists, storing nothing, when the name is taken."""

        def write(conn):
            if conn.execute(select(access_tokens.c.id).where(access_tokens.c.name == name)).first() is not None:
                raise TokenExists(f"a token named {name!r} exists; revoke it first or choose another name")
            values = {"name": name, "token_hash": token_hash, "role": role, "businesses": businesses}
            conn.execute(access_tokens.insert().values(**values, created_at=_now()))

        self._write(write)
        return self.token_by_hash(token_hash)

    def tokens(self) -> pd.DataFrame:
        """Every stored token by name: name, role, businesses, created_at, last_used_at (never the hash)."""
        columns = ["name", "role", "businesses", "created_at", "last_used_at"]
        with self._reading() as conn:
            rows = conn.execute(select(*(access_tokens.c[c] for c in columns)).order_by(access_tokens.c.name)).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)

    def revoke_token(self, name: str) -> bool:
        """Delete the token named ``name``; False when there is none."""
        return self._write(
            lambda conn: conn.execute(delete(access_tokens).where(access_tokens.c.name == name)).rowcount > 0
        )

    def _token_where(self, condition) -> dict | None:
        with self._reading() as conn:
            row = conn.execute(select(*(access_tokens.c[c] for c in self._TOKEN_COLUMNS)).where(condition)).first()
        return None if row is None else dict(row._mapping)

    def token_by_hash(self, token_hash: str) -> dict | None:
        """The stored token whose hash is ``token_hash`` (its row as a dict), or None."""
        return self._token_where(access_tokens.c.token_hash == token_hash)

    def token_by_id(self, token_id: int) -> dict | None:
        """The stored token with that id, or None once it was revoked."""
        return self._token_where(access_tokens.c.id == int(token_id))

    def touch_token(self, token_id: int) -> None:
        """Record that the token was used now."""
        stamp = _now()
        self._write(
            lambda conn: conn.execute(
                update(access_tokens).where(access_tokens.c.id == int(token_id)).values(last_used_at=stamp)
            )
        )

    def secret(self, name: str, make) -> bytes:
        """The stored secret ``name``; the first caller stores ``make()``, every later one (any worker
        or host) reads that same value."""
        query = select(app_secrets.c.value).where(app_secrets.c.name == name)
        with self._reading() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return bytes(found)

        def write(conn):
            database.lock_startup(conn)  # PostgreSQL: one generator at a time; SQLite: BEGIN IMMEDIATE
            stored = conn.execute(query).scalar()
            if stored is None:
                stored = make()
                conn.execute(app_secrets.insert().values(name=name, value=stored))
            return bytes(stored)

        return self._write(write)
