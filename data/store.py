"""FeatureStore: the one class that owns SQL. Returns DataFrames and Datasets, raises its own errors."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import chain, repeat

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, delete, event, func, select, text
from sqlalchemy.engine import Engine, make_url

from data import matrix
from data.analysis import Dataset
from data.batches import CTR_COLUMNS, FeatureBatch
from data.cache import ByteLRU
from data.schema import (
    build_features,
    build_images,
    builds,
    ctr_sets,
    ctr_values,
    feature_values,
    metadata,
)

DEFAULT_KEEP_BUILDS = 20
DEFAULT_CACHE_MB = 1024
# Rows fetched from the database at a time while a build is read: bounds the Python objects alive.
_FETCH_ROWS = 65536


class StoreError(Exception):
    """Base class of the store's errors."""


class UnknownDataset(StoreError, LookupError):
    """No build has been stored for that (business, source)."""


class UnknownBuild(StoreError, LookupError):
    """That build id does not exist for that (business, source)."""


class CtrFormConflict(StoreError, ValueError):
    """A CTR upsert in the other form (rates or counts) than the stored set."""


class InvalidBatch(StoreError, ValueError):
    """A batch that repeats a name or whose values point outside its own images or features."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout, and explicit BEGIN so writers take the lock up front.

    pysqlite's own transaction handling defers BEGIN and cannot upgrade a read lock under
    contention without failing at once; BEGIN IMMEDIATE on writes waits on the busy timeout
    instead, so concurrent PUTs queue rather than error.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class FeatureStore:
    """Builds of image features and CTR sets per (business, image source), in long format."""

    def __init__(self, url: str, *, keep_builds: int = DEFAULT_KEEP_BUILDS, cache_mb: float = DEFAULT_CACHE_MB):
        if keep_builds < 1:
            raise ValueError("keep_builds must be at least 1")
        if cache_mb < 0:
            raise ValueError("cache_mb must not be negative")
        self.url = url
        self.keep_builds = keep_builds
        parsed = make_url(url)
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        self.engine = create_engine(url)
        if self._is_sqlite:
            _sqlite_setup(self.engine)
        metadata.create_all(self.engine)
        # Datasets by (build id, CTR set id), bounded by their bytes rather than their number.
        self._cache = ByteLRU(int(cache_mb * 1024 * 1024))

    def __repr__(self) -> str:
        return f"FeatureStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    def _write(self):
        conn = self.engine.connect()
        if self._is_sqlite:
            conn = conn.execution_options(sqlite_write=True)
        return conn

    def _executemany(self, conn, table, columns: tuple[str, ...], rows) -> None:
        """Bulk insert through the DBAPI cursor: several times faster than Core executemany."""
        marks = ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * len(columns))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def add_build(self, business: str, source: str, batch: FeatureBatch) -> dict:
        """Store a new build, which becomes the current one of its (business, source).

        All or nothing in one transaction; builds beyond the newest ``keep_builds`` of the pair
        are removed in the same transaction. Raises InvalidBatch before writing anything when a
        name repeats or a value's position is outside the batch's images or features.
        """
        _check_batch(batch)
        received_at = _now()
        with self._write() as conn, conn.begin():
            build_id = conn.execute(
                builds.insert().values(
                    business=business,
                    source=source,
                    received_at=received_at,
                    n_images=len(batch.images),
                    n_features=len(batch.features),
                    n_values=len(batch.values),
                )
            ).inserted_primary_key[0]
            self._executemany(
                conn,
                build_images,
                ("build_id", "idx", "name"),
                zip(repeat(build_id), range(len(batch.images)), batch.images),
            )
            self._executemany(
                conn,
                build_features,
                ("build_id", "idx", "name"),
                zip(repeat(build_id), range(len(batch.features)), batch.features),
            )
            self._executemany(
                conn,
                feature_values,
                ("build_id", "image_idx", "feature_idx", "confidence"),
                ((build_id, i, j, c) for i, j, c in batch.values),
            )
            self._prune(conn, business, source)
        return {
            "build_id": build_id,
            "business": business,
            "source": source,
            "received_at": received_at,
            "images": len(batch.images),
            "features": len(batch.features),
            "values": len(batch.values),
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
        with self._write() as conn, conn.begin():
            return self._store_ctr_set(conn, business, source, ctr.reindex(columns=CTR_COLUMNS))

    def merge_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """Upsert the given images' CTRs into the pair's set, keeping every other image's.

        The result is stored as a new set (a new id, so caches and version() see it) in one
        transaction. A set is all rates or all counts: raises CtrFormConflict, writing nothing,
        when ``ctr`` is in the other form than a non-empty stored set.
        """
        given = ctr.reindex(columns=CTR_COLUMNS)
        given_counts = _has_counts(given)
        with self._write() as conn, conn.begin():
            # Read inside the write transaction: a concurrent PUT or PATCH either lands wholly
            # before this read or waits for this transaction to end.
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
        # Taken before the delete: SQLite hands the largest id out again once its row is
        # gone, and the id must be new because it keys the dataset cache and version().
        set_id = (conn.execute(select(func.max(ctr_sets.c.id))).scalar() or 0) + 1
        conn.execute(
            delete(ctr_values).where(
                ctr_values.c.ctr_set_id.in_(
                    select(ctr_sets.c.id).where(ctr_sets.c.business == business, ctr_sets.c.source == source)
                )
            )
        )
        conn.execute(delete(ctr_sets).where(ctr_sets.c.business == business, ctr_sets.c.source == source))
        conn.execute(
            ctr_sets.insert().values(
                id=set_id,
                business=business,
                source=source,
                received_at=received_at,
                n_images=len(rows),
                has_counts=int(has_counts),
            )
        )
        self._executemany(
            conn,
            ctr_values,
            ("ctr_set_id", "image", "ctr", "clicks", "impressions"),
            ((set_id,) + row for row in rows),
        )
        return {
            "business": business,
            "source": source,
            "received_at": received_at,
            "images": len(rows),
            "has_counts": has_counts,
        }

    # -- reading ---------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers a query (raises otherwise)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
        return True

    def version(self) -> str:
        """A token that changes whenever any build or CTR set is written."""
        with self.engine.connect() as conn:
            build_max = conn.execute(select(func.max(builds.c.id))).scalar()
            ctr_max = conn.execute(select(func.max(ctr_sets.c.id))).scalar()
        return f"{build_max or 0}.{ctr_max or 0}"

    def is_empty(self) -> bool:
        """True when no build has been stored yet."""
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
        return pd.DataFrame(rows, columns=["build_id", "received_at", "images", "features", "values"])

    def ctr(self, business: str, source: str) -> pd.DataFrame:
        """The current CTR set of a (business, source) (empty when none was uploaded)."""
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            row = conn.execute(select(builds.c.business, builds.c.source).where(builds.c.id == int(build_id))).first()
        if row is None:
            raise UnknownBuild(f"build {build_id} is not a stored build")
        return row.business, row.source

    def dataset(self, business: str, source: str, build_id: int | None = None) -> Dataset:
        """The build (current by default) as a Dataset with the pair's CTRs aligned to it.

        Confidences are a scipy.sparse CSC array where that is smaller than a dense matrix.
        Cached per (build, CTR set) within ``cache_mb``: builds never change, and a new CTR
        upload gets a new id, so a cache hit costs two indexed lookups; after a CTR upload the
        build's matrix is reused rather than read again.
        """
        with self.engine.connect() as conn:
            bid = self._resolve_build(conn, business, source, build_id)
            set_id = self._ctr_set_id(conn, business, source)
            key = (bid, set_id)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
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
        return dataset

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
                + ("?" if conn.dialect.paramstyle == "qmark" else "%s"),
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

    def snapshot(self) -> dict:
        """Every stored row, for tests that prove a rejected write changed nothing."""
        with self.engine.connect() as conn:
            return {
                table.name: sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
                for table in metadata.sorted_tables
            }


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
