"""StoreWriter: the store's writes (builds, CTR sets, dated metrics, thumbnails) on one connection in an open transaction.

FeatureStore runs each of these in a transaction of its own, or hands a StoreWriter to
``transaction``, ``write`` and ``initialise``'s seed, so several writes are stored as one.
"""

from __future__ import annotations

import pandas as pd

from data import database, image_queries, metrics_queries, queries
from data.batches import CTR_COLUMNS, FeatureBatch
from data.errors import CtrFormConflict


class StoreWriter:
    """The store's writes inside one open transaction (see FeatureStore.transaction)."""

    def __init__(self, conn, *, keep_builds: int, fresh_ctr_id: bool):
        self.conn = conn
        self.keep_builds = keep_builds
        # For engines that hand a deleted largest id out again (SQLite); see queries.write_ctr_set.
        self.fresh_ctr_id = fresh_ctr_id

    def add_build(self, business: str, source: str, batch: FeatureBatch, *, tag: str | None = None) -> dict:
        """As FeatureStore.add_build, in the enclosing transaction."""
        queries.check_batch(batch)
        return self.add_checked_build(business, source, batch, tag=tag)

    def add_checked_build(self, business: str, source: str, batch: FeatureBatch, *, tag: str | None = None) -> dict:
        """``add_build`` of a batch that ``queries.check_batch`` has passed already."""
        conn = self.conn
        database.lock_dataset(conn, business, source)
        if tag is not None:
            found = queries.tagged_build(conn, business, source, tag)
            if found is not None:
                return found
        received_at = queries.now()
        build_id = queries.insert_build(conn, business, source, batch, tag, received_at)
        queries.prune_builds(conn, business, source, self.keep_builds)
        queries.bump_version(conn)
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
        """As FeatureStore.replace_ctr, in the enclosing transaction."""
        database.lock_dataset(self.conn, business, source)
        metrics_queries.refuse_ctr(self.conn, business, source)
        return self._store_ctr_set(business, source, ctr.reindex(columns=CTR_COLUMNS))

    def merge_ctr(self, business: str, source: str, ctr: pd.DataFrame) -> dict:
        """As FeatureStore.merge_ctr, in the enclosing transaction."""
        given = ctr.reindex(columns=CTR_COLUMNS)
        given_counts = queries.has_counts(given)
        # Read inside the write transaction, after the pair's lock: a concurrent PUT or PATCH
        # either lands wholly before this read or waits for this transaction to end.
        database.lock_dataset(self.conn, business, source)
        metrics_queries.refuse_ctr(self.conn, business, source)
        stored = queries.ctr_frame(self.conn, queries.ctr_set_id(self.conn, business, source))
        if len(stored) and queries.has_counts(stored) != given_counts:
            have, sent = ("counts", "rates") if given_counts is False else ("rates", "counts")
            raise CtrFormConflict(
                f"the stored CTR set of {business!r} / {source!r} holds {have}, this body holds {sent}; "
                f"send {have}, or PUT the whole set to replace it"
            )
        kept = stored[~stored["image"].isin(given["image"])]
        merged = given if kept.empty else pd.concat([kept, given], ignore_index=True)
        return self._store_ctr_set(business, source, merged)

    def _store_ctr_set(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """Write ``frame`` as the pair's only CTR set."""
        received_at = queries.now()
        has_counts, n_images = queries.write_ctr_set(
            self.conn, business, source, frame, received_at, fresh_id=self.fresh_ctr_id
        )
        queries.bump_version(self.conn)
        return {
            "business": business,
            "source": source,
            "received_at": received_at,
            "images": n_images,
            "has_counts": has_counts,
        }

    def replace_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """As FeatureStore.replace_metrics, in the enclosing transaction."""
        return self._metrics_write(metrics_queries.replace_metrics, business, source, frame)

    def merge_metrics(self, business: str, source: str, frame: pd.DataFrame) -> dict:
        """As FeatureStore.merge_metrics, in the enclosing transaction."""
        return self._metrics_write(metrics_queries.merge_metrics, business, source, frame)

    def _metrics_write(self, write, business: str, source: str, frame: pd.DataFrame) -> dict:
        database.lock_dataset(self.conn, business, source)
        result = write(self.conn, business, source, frame, queries.now())
        queries.bump_version(self.conn)
        return result

    def put_thumbnails(self, business: str, source: str, items) -> list[bool]:
        """As FeatureStore.put_thumbnails, in the enclosing transaction."""
        database.lock_dataset(self.conn, business, source)
        created = image_queries.upsert_thumbnails(self.conn, business, source, items, queries.now())
        if created:
            queries.bump_version(self.conn)
        return created

    def delete_thumbnail(self, business: str, source: str, image: str) -> bool:
        """As FeatureStore.delete_thumbnail, in the enclosing transaction."""
        database.lock_dataset(self.conn, business, source)
        deleted = image_queries.delete_thumbnail(self.conn, business, source, image)
        if deleted:
            queries.bump_version(self.conn)
        return deleted
