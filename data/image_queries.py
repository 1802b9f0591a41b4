"""The SQL of image thumbnails on one connection, composed by FeatureStore into its transactions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select

from data.schema import image_thumbnails


@dataclass(frozen=True)
class StoredThumbnail:
    """A thumbnail as the store returns it (its bytes re-encoded by data/thumbnails.py)."""

    content_type: str
    width: int
    height: int
    etag: str
    data: bytes


# Names per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 500
_t = image_thumbnails.c


def _pair(business: str, source: str):
    return (_t.business == business) & (_t.source == source)


def _dialect_insert(conn):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def stored_names(conn, business: str, source: str, images: Iterable[str]) -> set[str]:
    """Which of ``images`` have a stored thumbnail in the pair."""
    names = list(dict.fromkeys(images))
    found: set[str] = set()
    for start in range(0, len(names), _IN_CHUNK):
        chunk = names[start : start + _IN_CHUNK]
        found.update(conn.execute(select(_t.image).where(_pair(business, source), _t.image.in_(chunk))).scalars())
    return found


def upsert_thumbnails(conn, business: str, source: str, items, stored_at: str) -> list[bool]:
    """Insert or replace each ``(image, Thumbnail)``; returns, per item, whether it was new."""
    items = list(items)
    if not items:
        return []
    existing = stored_names(conn, business, source, (image for image, _ in items))
    insert = _dialect_insert(conn)
    statement = insert(image_thumbnails)
    statement = statement.on_conflict_do_update(
        index_elements=[_t.business, _t.source, _t.image],
        set_={
            name: statement.excluded[name]
            for name in ("content_type", "width", "height", "etag", "stored_at", "image_data")
        },
    )
    rows = [
        {
            "business": business,
            "source": source,
            "image": image,
            "content_type": thumb.content_type,
            "width": thumb.width,
            "height": thumb.height,
            "etag": thumb.etag,
            "stored_at": stored_at,
            "image_data": thumb.data,
        }
        for image, thumb in items
    ]
    conn.execute(statement, rows)
    return [image not in existing for image, _ in items]


def thumbnail(conn, business: str, source: str, image: str) -> StoredThumbnail | None:
    """The stored thumbnail of one image, or None."""
    query = select(_t.content_type, _t.width, _t.height, _t.etag, _t.image_data).where(
        _pair(business, source), _t.image == image
    )
    row = conn.execute(query).first()
    return None if row is None else StoredThumbnail(row[0], row[1], row[2], row[3], bytes(row[4]))


def thumbnail_tags(conn, business: str, source: str, images: Iterable[str] | None = None) -> dict[str, str]:
    """Image name -> etag of the pair's stored thumbnails (only of ``images`` when given)."""
    if images is None:
        query = select(_t.image, _t.etag).where(_pair(business, source))
        return {image: etag for image, etag in conn.execute(query)}
    names = list(dict.fromkeys(images))
    found: dict[str, str] = {}
    for start in range(0, len(names), _IN_CHUNK):
        chunk = names[start : start + _IN_CHUNK]
        query = select(_t.image, _t.etag).where(_pair(business, source), _t.image.in_(chunk))
        found.update((image, etag) for image, etag in conn.execute(query))
    return found


def delete_thumbnail(conn, business: str, source: str, image: str) -> bool:
    """Delete one image's thumbnail; returns whether there was one."""
    return conn.execute(delete(image_thumbnails).where(_pair(business, source), _t.image == image)).rowcount > 0
