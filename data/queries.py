"""The store's SQL on one connection: the reads, writes and checks FeatureStore runs in its transactions.

Plain functions of an open connection, so the store composes them into one snapshot or one
write; nothing here opens, commits or caches.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import chain, repeat

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, delete, func, select, update

from data import database, matrix
from data.batches import CTR_COLUMNS, FeatureBatch
from data.errors import InvalidBatch, UnknownBuild, UnknownDataset
from data.schema import (
    build_features,
    build_images,
    build_matrices,
    builds,
    ctr_sets,
    ctr_values,
    feature_values,
    null_tables,
    store_version,
)

# Rows fetched from the database at a time while a build is read: bounds the Python objects alive.
_FETCH_ROWS = 65536


def now() -> str:
    """The time a row is written: UTC, ISO 8601 to the microsecond."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def bump_version(conn) -> None:
    """Change the store's version token; last in each write of data."""
    # Last, because on PostgreSQL the row lock it takes is held only until commit.
    conn.execute(update(store_version).where(store_version.c.id == 1).values(version=store_version.c.version + 1))


def tagged_build(conn, business: str, source: str, tag: str) -> dict | None:
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


def images_with_ctr(conn, build_id, ctr_set_id) -> int:
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


def ctr_set_id(conn, business: str, source: str) -> int | None:
    return conn.execute(
        select(ctr_sets.c.id).where(ctr_sets.c.business == business, ctr_sets.c.source == source)
    ).scalar()


def ctr_frame(conn, set_id: int | None) -> pd.DataFrame:
    if set_id is None:
        rows = []
    else:
        rows = conn.execute(
            select(ctr_values.c.image, ctr_values.c.ctr, ctr_values.c.clicks, ctr_values.c.impressions).where(
                ctr_values.c.ctr_set_id == set_id
            )
        ).all()
        rows = list(map(tuple, rows))  # pandas probes Row objects the slow way (see read_matrix)
    frame = pd.DataFrame(rows, columns=CTR_COLUMNS)
    frame["image"] = frame["image"].astype(object)
    frame["ctr"] = frame["ctr"].astype("float64")
    for col in ("clicks", "impressions"):
        frame[col] = frame[col].astype("Int64")
    return frame


def pair_builds(conn, business: str, source: str) -> pd.DataFrame:
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
    rows = conn.execute(query).mappings().all()
    if not rows:
        raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
    return pd.DataFrame(rows, columns=["build_id", "received_at", "images", "features", "values", "build_tag"])


def build_pair(conn, build_id) -> tuple[str, str]:
    """The (business, source) a build belongs to; raises UnknownBuild."""
    row = build_id_in_range(conn, build_id) and (
        conn.execute(select(builds.c.business, builds.c.source).where(builds.c.id == int(build_id))).first()
    )
    if not row:
        raise UnknownBuild(f"build {build_id} is not a stored build")
    return row.business, row.source


def build_id_in_range(conn, build_id) -> bool:
    """True when ``build_id`` fits the id column, so that it can name a stored build at all.

    An id past the column's range is no stored build, but the drivers refuse to send it
    (SQLite overflows past 64 bits, PostgreSQL's INTEGER past 32 bits); the column's type decides.
    """
    bits = 31 if conn.dialect.name == "postgresql" and not isinstance(builds.c.id.type, BigInteger) else 63
    return 0 < int(build_id) < 2**bits


def resolve_build(conn, business, source, build_id) -> int:
    pair = (builds.c.business == business) & (builds.c.source == source)
    if build_id is None:
        found = conn.execute(select(func.max(builds.c.id)).where(pair)).scalar()
        if found is None:
            raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
        return int(found)
    found = (
        build_id_in_range(conn, build_id)
        and conn.execute(select(builds.c.id).where(pair, builds.c.id == int(build_id))).scalar()
    )
    if not found:
        if conn.execute(select(builds.c.id).where(pair).limit(1)).first() is None:
            raise UnknownDataset(f"no build for business {business!r} and source {source!r}")
        raise UnknownBuild(f"build {build_id} is not a stored build of {business!r} / {source!r}")
    return int(found)


def read_matrix(conn, build_id: int):
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
            select(build_features.c.name).where(build_features.c.build_id == build_id).order_by(build_features.c.idx)
        )
        .scalars()
        .all()
    )
    images = np.array(images, dtype=object)
    features = np.array(features, dtype=object)
    archive = database.read_bytes(conn, build_matrices.c.matrix_data, build_matrices.c.build_id, build_id)
    if archive is not None:
        return images, features, matrix.from_bytes(archive)
    # A build stored without an archive (by an earlier version) is read from its values.
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


def check_batch(batch: FeatureBatch) -> None:
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


def has_counts(frame: pd.DataFrame) -> bool:
    return bool(len(frame) and frame["impressions"].notna().all() and frame["clicks"].notna().all())


def int_or_none(value):
    return None if value is None or pd.isna(value) else int(value)


def insert_build(conn, business: str, source: str, batch: FeatureBatch, tag: str | None, received_at: str) -> int:
    """Insert a build's row, names and non-zero values; returns its id."""
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
        conn, build_images, ("build_id", "idx", "name"), zip(repeat(build_id), range(len(batch.images)), batch.images)
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
    shape = (len(batch.images), len(batch.features))
    conn.execute(
        build_matrices.insert().values(build_id=build_id, matrix_data=matrix.triples_to_bytes(batch.values, shape))
    )
    return build_id


def prune_builds(conn, business: str, source: str, keep: int) -> None:
    """Delete the pair's builds beyond its newest ``keep``, values and names first."""
    old = (
        select(builds.c.id)
        .where(builds.c.business == business, builds.c.source == source)
        .order_by(builds.c.id.desc())
        .offset(keep)
    )
    old_ids = list(conn.execute(old).scalars())
    if not old_ids:
        return
    for table in (feature_values, build_matrices, build_images, build_features):
        conn.execute(delete(table).where(table.c.build_id.in_(old_ids)))
    conn.execute(delete(builds).where(builds.c.id.in_(old_ids)))


def write_ctr_set(
    conn, business: str, source: str, frame: pd.DataFrame, received_at: str, *, fresh_id: bool
) -> tuple[bool, int]:
    """Write ``frame`` as the pair's only CTR set; returns (has counts, images).

    ``fresh_id`` picks the new set's id past every id ever used, for engines that hand a
    deleted largest id out again (SQLite): the id keys the dataset cache, so it must be new.
    """
    has_counts_ = has_counts(frame)
    rows = [
        (image, float(rate), int_or_none(clicks), int_or_none(impressions))
        for image, rate, clicks, impressions in frame.itertuples(index=False, name=None)
    ]
    pair = (ctr_sets.c.business == business) & (ctr_sets.c.source == source)
    new_set = {
        "business": business,
        "source": source,
        "received_at": received_at,
        "n_images": len(rows),
        "has_counts": int(has_counts_),
    }
    if fresh_id:
        # Taken before the delete. PostgreSQL's sequence never repeats an id, and a max() there
        # would race with other pairs' writers.
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
    return has_counts_, len(rows)


def current_builds(conn) -> pd.DataFrame:
    """Each pair's current build with its CTR set's id, time, counts flag and images with a CTR."""
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
    columns = ["business", "source", "build_id", "received_at", "images", "features"]
    columns += ["ctr_set_id", "ctr_received_at", "has_counts"]
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=columns)
    frame["images_with_ctr"] = [images_with_ctr(conn, b, s) for b, s in zip(frame["build_id"], frame["ctr_set_id"])]
    return frame


def null_table_data(conn, key: str) -> bytes | None:
    """The stored bytes of the null table ``key``, or None."""
    return database.read_bytes(conn, null_tables.c.table_data, null_tables.c.key, key)


def has_null_table(conn, key: str) -> bool:
    """Whether a null table is stored under ``key``."""
    return conn.execute(select(null_tables.c.key).where(null_tables.c.key == key)).first() is not None


def save_null_table(conn, key: str, data: bytes, stored_at: str, keep: int) -> None:
    """Store a null table unless another writer already has (same key, same contents); keep the newest ``keep``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(null_tables).values(key=key, stored_at=stored_at, table_data=data).on_conflict_do_nothing())
    old = select(null_tables.c.key).order_by(null_tables.c.stored_at.desc(), null_tables.c.key).offset(keep)
    conn.execute(delete(null_tables).where(null_tables.c.key.in_(old.scalar_subquery())))
