"""FeatureStore: the one class that owns SQL. Returns DataFrames and Datasets, raises its own errors."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain, repeat

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, inspect, select, text, update

from data import database, matrix
from data.analysis import Dataset
from data.batches import CTR_COLUMNS, FeatureBatch
from data.cache import ByteLRU
from data.errors import CtrFormConflict, InvalidBatch, StorageUnavailable, StoreError, UnknownBuild, UnknownDataset
from data.schema import (
    build_features,
    build_images,
    builds,
    ctr_sets,
    ctr_values,
    feature_values,
    metadata,
    store_version,
)

__all__ = [
    "CtrFormConflict",
    "FeatureStore",
    "InvalidBatch",
    "StorageUnavailable",
    "StoreError",
    "UnknownBuild",
    "UnknownDataset",
]

DEFAULT_KEEP_BUILDS = 20
DEFAULT_CACHE_MB = 1024
# Rows fetched from the database at a time while a build is read: bounds the Python objects alive.
_FETCH_ROWS = 65536


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
        _check_batch(batch)
        return self._store._add_build(self._conn, business, source, batch, tag)

    def replace_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """As FeatureStore.replace_ctr, in the enclosing transaction."""
        return self._store._replace_ctr(self._conn, business, source, ctr)


class FeatureStore:
    """Builds of image features and CTR sets per (business, image source), in long format."""

    def __init__(self, url: str, *, keep_builds: int = DEFAULT_KEEP_BUILDS, cache_mb: float = DEFAULT_CACHE_MB):
        if keep_builds < 1:
            raise ValueError("keep_builds must be at least 1")
        if cache_mb < 0:
            raise ValueError("cache_mb must not be negative")
        self.url = url
        self.keep_builds = keep_builds
        self._is_sqlite = database.is_sqlite(url)
        self.engine = database.open_engine(url)
        # Datasets by (build id, CTR set id), bounded by their bytes rather than their number.
        self._cache = ByteLRU(int(cache_mb * 1024 * 1024))
        # The storage fault that made the last write fail, until a write succeeds again.
        self.write_fault: StorageUnavailable | None = None
        self.initialise()

    def __repr__(self) -> str:
        return f"FeatureStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- start-up --------------------------------------------------------------------------

    @_guarded
    def initialise(self, seed=None):
        """Create what is missing of the schema and, when ``seed`` is given and no build is stored,
        run ``seed(writer)`` (writer has add_build and replace_ctr); returns its result or None.

        All in one transaction under a database-wide lock (an advisory lock on PostgreSQL, BEGIN
        IMMEDIATE on SQLite), so workers and hosts starting at once do it exactly once: the others
        wait, then find it done. A seed that fails leaves the database as it was.
        """
        with database.write_connection(self.engine) as conn, conn.begin():
            database.lock_startup(conn)
            metadata.create_all(conn)
            _upgrade(conn)
            if conn.execute(select(store_version.c.id)).first() is None:
                conn.execute(store_version.insert().values(id=1, version=0))
            if seed is None or conn.execute(select(builds.c.id).limit(1)).first() is not None:
                return None
            return seed(_Writer(self, conn))

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        """Several writes stored as one: ``with store.transaction() as w: w.add_build(...); w.replace_ctr(...)``."""
        with self._writing() as conn:
            yield _Writer(self, conn)

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
        _check_batch(batch)
        return self._write(lambda conn: self._add_build(conn, business, source, batch, tag))

    def _add_build(self, conn, business: str, source: str, batch: FeatureBatch, tag: str | None) -> dict:
        database.lock_dataset(conn, business, source)
        if tag is not None:
            found = self._tagged_build(conn, business, source, tag)
            if found is not None:
                return found
        received_at = _now()
        build_id = conn.execute(
            builds.insert().values(
                business=business,
                source=source,
                received_at=received_at,
                n_images=len(batch.images),
                n_features=len(batch.features),
                n_values=len(batch.values),
                tag=tag,
            )
        ).inserted_primary_key[0]
        database.bulk_insert(
            conn,
            build_images,
            ("build_id", "idx", "name"),
            zip(repeat(build_id), range(len(batch.images)), batch.images),
        )
        database.bulk_insert(
            conn,
            build_features,
            ("build_id", "idx", "name"),
            zip(repeat(build_id), range(len(batch.features)), batch.features),
        )
        database.bulk_insert(
            conn,
            feature_values,
            ("build_id", "image_idx", "feature_idx", "confidence"),
            ((build_id, i, j, c) for i, j, c in batch.values),
        )
        self._prune(conn, business, source)
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

    @staticmethod
    def _tagged_build(conn, business: str, source: str, tag: str) -> dict | None:
        row = conn.execute(
            select(builds).where(builds.c.business == business, builds.c.source == source, builds.c.tag == tag)
        ).first()
        if row is None:
            return None
        return {
            "build_id": row.id,
            "business": row.business,
            "source": row.source,
            "received_at": row.received_at,
            "images": row.n_images,
            "features": row.n_features,
            "values": row.n_values,
            "build_tag": row.tag,
            "created": False,
        }

    def _prune(self, conn, business: str, source: str) -> None:
        old = (
            select(builds.c.id)
            .where(builds.c.business == business, builds.c.source == source)
            .order_by(builds.c.id.desc())
            .offset(self.keep_builds)
        )
        old_ids = list(conn.execute(old).scalars())
        if not old_ids:
            return
        for table in (feature_values, build_images, build_features):
            conn.execute(delete(table).where(table.c.build_id.in_(old_ids)))
        conn.execute(delete(builds).where(builds.c.id.in_(old_ids)))

    def replace_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """Replace the CTR set of a (business, source) with ``ctr`` (columns image, ctr, clicks, impressions)."""
        return self._write(lambda conn: self._replace_ctr(conn, business, source, ctr))

    def _replace_ctr(self, conn, business: str, source: str, ctr: pd.DataFrame) -> dict:
        database.lock_dataset(conn, business, source)
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
        given_counts = _has_counts(given)
        # Read inside the write transaction, after the pair's lock: a concurrent PUT or PATCH
        # either lands wholly before this read or waits for this transaction to end.
        database.lock_dataset(conn, business, source)
        stored = self._ctr_frame(conn, self._ctr_set_id(conn, business, source))
        if len(stored) and _has_counts(stored) != given_counts:
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
        has_counts = _has_counts(frame)
        rows = [
            (image, float(rate), _int_or_none(clicks), _int_or_none(impressions))
            for image, rate, clicks, impressions in frame.itertuples(index=False, name=None)
        ]
        received_at = _now()
        pair = (ctr_sets.c.business == business) & (ctr_sets.c.source == source)
        new_set = {
            "business": business,
            "source": source,
            "received_at": received_at,
            "n_images": len(rows),
            "has_counts": int(has_counts),
        }
        if self._is_sqlite:
            # Taken before the delete: SQLite hands the largest id out again once its row is
            # gone, and the id must be new because it keys the dataset cache. PostgreSQL's
            # sequence never repeats an id, and a max() there would race with other pairs' writers.
            new_set["id"] = (conn.execute(select(func.max(ctr_sets.c.id))).scalar() or 0) + 1
        conn.execute(delete(ctr_values).where(ctr_values.c.ctr_set_id.in_(select(ctr_sets.c.id).where(pair))))
        conn.execute(delete(ctr_sets).where(pair))
        set_id = conn.execute(ctr_sets.insert().values(**new_set)).inserted_primary_key[0]
        database.bulk_insert(
            conn,
            ctr_values,
            ("ctr_set_id", "image", "ctr", "clicks", "impressions"),
            ((set_id,) + row for row in rows),
        )
        self._changed(conn)
        return {
            "business": business,
            "source": source,
            "received_at": received_at,
            "images": len(rows),
            "has_counts": has_counts,
        }

    # -- reading ---------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers a query and, if the last write failed on a storage
        fault, takes a write again (rolled back); raises StorageUnavailable otherwise."""
        with self._reading() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
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
        current = select(func.max(builds.c.id).label("id")).group_by(builds.c.business, builds.c.source).subquery()
        query = (
            select(
                builds.c.business,
                builds.c.source,
                builds.c.id.label("build_id"),
                builds.c.received_at,
                builds.c.n_images.label("images"),
                builds.c.n_features.label("features"),
                ctr_sets.c.id.label("ctr_set_id"),
                ctr_sets.c.received_at.label("ctr_received_at"),
                ctr_sets.c.has_counts,
            )
            .join(current, current.c.id == builds.c.id)
            .outerjoin(ctr_sets, (ctr_sets.c.business == builds.c.business) & (ctr_sets.c.source == builds.c.source))
        )
        with self._reading() as conn:
            frame = pd.DataFrame(
                conn.execute(query).mappings().all(),
                columns=[
                    "business",
                    "source",
                    "build_id",
                    "received_at",
                    "images",
                    "features",
                    "ctr_set_id",
                    "ctr_received_at",
                    "has_counts",
                ],
            )
            frame["images_with_ctr"] = [
                self._images_with_ctr(conn, b, s) for b, s in zip(frame["build_id"], frame["ctr_set_id"])
            ]
        frame["has_counts"] = frame["has_counts"].fillna(0).astype(bool)
        updated = frame[["received_at", "ctr_received_at"]].fillna("").max(axis=1)
        frame = frame.assign(updated_at=updated).sort_values(["updated_at", "build_id"], ascending=False)
        return frame.drop(columns=["ctr_set_id"]).reset_index(drop=True)

    @staticmethod
    def _images_with_ctr(conn, build_id, ctr_set_id) -> int:
        if ctr_set_id is None or pd.isna(ctr_set_id):
            return 0
        # IN (subquery), not a join: SQLite runs the join as one scan of the CTR set per image
        # (10 s at 10,000 images), while the subquery becomes a single lookup list.
        measured = select(ctr_values.c.image).where(ctr_values.c.ctr_set_id == int(ctr_set_id))
        query = (
            select(func.count())
            .select_from(build_images)
            .where(build_images.c.build_id == int(build_id), build_images.c.name.in_(measured))
        )
        return int(conn.execute(query).scalar_one())

    def builds(self, business: str, source: str) -> pd.DataFrame:
        """The stored builds of a (business, source), newest first; raises UnknownDataset."""
        query = (
            select(
                builds.c.id.label("build_id"),
                builds.c.received_at,
                builds.c.n_images.label("images"),
                builds.c.n_features.label("features"),
                builds.c.n_values.label("values"),
            )
            .where(builds.c.business == business, builds.c.source == source)
            .order_by(builds.c.id.desc())
        )
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
        return pd.DataFrame(rows, columns=["build_id", "received_at", "images", "features", "values"])

    def ctr(self, business: str, source: str) -> pd.DataFrame:
        """The current CTR set of a (business, source) (empty when none was uploaded)."""
        with self._reading() as conn:
            set_id = self._ctr_set_id(conn, business, source)
            return self._ctr_frame(conn, set_id)

    @staticmethod
    def _ctr_set_id(conn, business: str, source: str) -> int | None:
        return conn.execute(
            select(ctr_sets.c.id).where(ctr_sets.c.business == business, ctr_sets.c.source == source)
        ).scalar()

    @staticmethod
    def _ctr_frame(conn, set_id: int | None) -> pd.DataFrame:
        if set_id is None:
            rows = []
        else:
            rows = conn.execute(
                select(ctr_values.c.image, ctr_values.c.ctr, ctr_values.c.clicks, ctr_values.c.impressions).where(
                    ctr_values.c.ctr_set_id == set_id
                )
            ).all()
            rows = list(map(tuple, rows))  # pandas probes Row objects the slow way (see _matrix)
        frame = pd.DataFrame(rows, columns=CTR_COLUMNS)
        frame["image"] = frame["image"].astype(object)
        frame["ctr"] = frame["ctr"].astype("float64")
        for col in ("clicks", "impressions"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def resolve_build(self, business: str, source: str, build_id: int | None = None) -> int:
        """The given build id checked against the pair, or the pair's current build."""
        with self._reading() as conn:
            return self._resolve_build(conn, business, source, build_id)

    @staticmethod
    def _resolve_build(conn, business, source, build_id) -> int:
        pair = (builds.c.business == business) & (builds.c.source == source)
        if build_id is None:
            found = conn.execute(select(func.max(builds.c.id)).where(pair)).scalar()
            if found is None:
                raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
            return int(found)
        # An id past the 64-bit range of the id column is no stored build (SQLite would overflow).
        in_range = 0 < int(build_id) < 2**63
        found = in_range and conn.execute(select(builds.c.id).where(pair, builds.c.id == int(build_id))).scalar()
        if not found:
            if conn.execute(select(builds.c.id).where(pair).limit(1)).first() is None:
                raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
            raise UnknownBuild(f"build {build_id} is not a stored build of {business!r} / {source!r}")
        return int(found)

    def build_pair(self, build_id: int) -> tuple[str, str]:
        """The (business, source) a build belongs to; raises UnknownBuild."""
        with self._reading() as conn:
            row = conn.execute(select(builds.c.business, builds.c.source).where(builds.c.id == int(build_id))).first()
        if row is None:
            raise UnknownBuild(f"build {build_id} is not a stored build")
        return row.business, row.source

    def dataset(self, business: str, source: str, build_id: int | None = None) -> Dataset:
        """The build (current by default) as a Dataset with the pair's CTRs aligned to it."""
        return self.load_build(business, source, build_id)[0]

    def load_build(
        self, business: str, source: str, build_id: int | None = None, *, fall_back: bool = False
    ) -> tuple[Dataset, int, int | None]:
        """``(dataset, build id, gone)`` of a build (current by default), resolved and read in one
        snapshot, so a build pruned by a concurrent write cannot vanish between the two.

        With ``fall_back``, a build id that is no longer stored gives the current build and
        ``gone`` names the id that fell back (else None). Confidences are a scipy.sparse CSC
        array where that is smaller than a dense matrix. Cached per (build, CTR set) within
        ``cache_mb``: builds never change, and a new CTR upload gets a new id, so a cache hit
        costs two indexed lookups; after a CTR upload the build's matrix is reused rather than
        read again.
        """
        gone = None
        with self._reading() as conn:
            try:
                bid = self._resolve_build(conn, business, source, build_id)
            except UnknownBuild:
                if not fall_back:
                    raise
                bid, gone = self._resolve_build(conn, business, source, None), build_id
            set_id = self._ctr_set_id(conn, business, source)
            key = (bid, set_id)
            cached = self._cache.get(key)
            if cached is not None:
                return cached, bid, gone
            same_build = self._cache.find(lambda k: k[0] == bid)
            if same_build is not None:
                images, features, confidences = same_build.images, same_build.features, same_build.confidences
            else:
                images, features, confidences = self._matrix(conn, bid)
            ctr = self._ctr_frame(conn, set_id)
        dataset = Dataset.from_matrix(images, features, confidences, ctr)
        # A replaced CTR set never comes back: its entry would only hold the build twice.
        self._cache.discard(lambda k: k[0] == bid and k != key)
        self._cache.put(key, dataset, dataset.nbytes)
        return dataset, bid, gone

    def _matrix(self, conn, build_id: int):
        """A build's image names, feature names and confidences (compact: sparse where smaller)."""
        images = (
            conn.execute(
                select(build_images.c.name).where(build_images.c.build_id == build_id).order_by(build_images.c.idx)
            )
            .scalars()
            .all()
        )
        features = (
            conn.execute(
                select(build_features.c.name)
                .where(build_features.c.build_id == build_id)
                .order_by(build_features.c.idx)
            )
            .scalars()
            .all()
        )
        images = np.array(images, dtype=object)
        features = np.array(features, dtype=object)
        # Plain DBAPI tuples, flattened by fromiter: np.array over SQLAlchemy Rows probes each
        # Row for the array protocols and every failed probe raises inside SQLAlchemy, which
        # took 20 s for a 10k x 1k build. Fetched in chunks so that only one chunk of Python
        # tuples is alive at a time (a million rows as tuples take ~150 MB).
        cursor = conn.connection.driver_connection.cursor()
        chunks = []
        try:
            cursor.execute(
                "SELECT image_idx, feature_idx, confidence FROM feature_values WHERE build_id = "
                + database.placeholder(conn),
                (build_id,),
            )
            while fetched := cursor.fetchmany(_FETCH_ROWS):
                flat = np.fromiter(chain.from_iterable(fetched), dtype=np.float64, count=3 * len(fetched))
                chunks.append(flat.reshape(-1, 3))
        finally:
            cursor.close()
        rows = np.concatenate(chunks) if chunks else np.zeros((0, 3))
        del chunks
        confidences = matrix.from_triples(
            rows[:, 0].astype(np.int32), rows[:, 1].astype(np.int32), rows[:, 2], (len(images), len(features))
        )
        return images, features, confidences


def _check_batch(batch: FeatureBatch) -> None:
    """Refuse what the schema cannot: stored, it would break or silently skew every later read."""
    for kind, names in (("image", batch.images), ("feature", batch.features)):
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})[:5]
            raise InvalidBatch(f"{kind} names repeat: {repeated}")
    n_images, n_features = len(batch.images), len(batch.features)
    for i, j, _ in batch.values:
        if not (0 <= i < n_images and 0 <= j < n_features):
            raise InvalidBatch(
                f"value at image position {i}, feature position {j} is outside the batch's "
                f"{n_images} images and {n_features} features"
            )


def _has_counts(frame: pd.DataFrame) -> bool:
    return bool(len(frame) and frame["impressions"].notna().all() and frame["clicks"].notna().all())


def _int_or_none(value):
    return None if value is None or pd.isna(value) else int(value)


def _upgrade(conn) -> None:
    """Bring a database made by an earlier version up to the schema (inside the start-up lock)."""
    if "tag" not in {c["name"] for c in inspect(conn).get_columns("builds")}:
        conn.execute(text("ALTER TABLE builds ADD COLUMN tag TEXT"))
    next(i for i in builds.indexes if i.name == "ux_builds_tag").create(conn, checkfirst=True)
