"""The store as the request's actor sees it: only the datasets ``data.tokens.may`` lets it read.

The read API, the page's layout and every Dash callback read through ``ScopedStore``; a dataset
outside the actor's scope answers exactly as one that does not exist.
"""

from __future__ import annotations

import hashlib

from flask import g, has_request_context

from data.errors import UnknownBuild, UnknownDataset
from data.tokens import READ, Actor, may
from ingest.access import log_refusal, resolve


class ScopedStore:
    """The store's reads limited to what the request's actor may read.

    A dataset outside the scope answers exactly as one that does not exist (the store's own
    UnknownDataset / UnknownBuild with the same wording), so a token cannot learn which other
    businesses exist. Without an actor (outside a request, or no credential) nothing is readable.
    Only the reads listed here exist: a new read of the store must be added, and scoped, here.
    """

    def __init__(self, store, settings):
        self._store = store
        self._settings = settings

    def __repr__(self) -> str:
        return f"ScopedStore({self._store!r})"

    @property
    def cache(self):
        """The store's analysis cache (it holds computed statistics, read only through the scoped reads)."""
        return self._store.cache

    def _actor(self) -> Actor | None:
        # Normally resolved by the gate before the route; resolved here too, so that nothing read
        # through this store escapes the check (a layout or callback run by other means).
        if not has_request_context():
            return None
        resolve(self._store, self._settings)
        return g.actor

    def _check(self, business: str, source: str) -> None:
        actor = self._actor()
        if not may(actor, READ, business, source):
            if business is not None:
                log_refusal(404, actor, business, "outside the actor's scope")
            raise UnknownDataset(f"no build for business {business!r} and source {source!r}")

    def datasets(self):
        """The current build of each pair the actor may read."""
        frame = self._store.datasets()
        actor = self._actor()
        keep = [i for i, (b, s) in enumerate(zip(frame["business"], frame["source"])) if may(actor, READ, b, s)]
        return frame.iloc[keep].reset_index(drop=True)

    def builds(self, business: str, source: str):
        """As FeatureStore.builds, within the scope."""
        self._check(business, source)
        return self._store.builds(business, source)

    def ctr(self, business: str, source: str):
        """As FeatureStore.ctr, within the scope."""
        self._check(business, source)
        return self._store.ctr(business, source)

    def resolve_build(self, business: str, source: str, build_id: int | None = None) -> int:
        """As FeatureStore.resolve_build, within the scope."""
        self._check(business, source)
        return self._store.resolve_build(business, source, build_id)

    def dataset(self, business: str, source: str, build_id: int | None = None, *, window=None):
        """As FeatureStore.dataset, within the scope."""
        self._check(business, source)
        return self._store.dataset(business, source, build_id, window=window)

    def load_build(
        self, business: str, source: str, build_id: int | None = None, *, fall_back: bool = False, window=None
    ):
        """As FeatureStore.load_build, within the scope."""
        self._check(business, source)
        return self._store.load_build(business, source, build_id, fall_back=fall_back, window=window)

    def metric_set(self, business: str, source: str):
        """As FeatureStore.metric_set, within the scope."""
        self._check(business, source)
        return self._store.metric_set(business, source)

    def metric_ctr(self, business: str, source: str, window=None):
        """As FeatureStore.metric_ctr, within the scope."""
        self._check(business, source)
        return self._store.metric_ctr(business, source, window)

    def metrics(self, business: str, source: str, window=None):
        """As FeatureStore.metrics, within the scope."""
        self._check(business, source)
        return self._store.metrics(business, source, window)

    def build_pair(self, build_id: int) -> tuple[str, str]:
        """As FeatureStore.build_pair; a build outside the scope is as unknown as one never stored."""
        business, source = self._store.build_pair(build_id)
        actor = self._actor()
        if not may(actor, READ, business, source):
            log_refusal(404, actor, business, f"build {build_id} is outside the actor's scope")
            raise UnknownBuild(f"build {build_id} is not a stored build")
        return business, source

    def thumbnail(self, business: str, source: str, image: str):
        """As FeatureStore.thumbnail, within the scope."""
        self._check(business, source)
        return self._store.thumbnail(business, source, image)

    def thumbnail_tags(self, business: str, source: str, images=None) -> dict[str, str]:
        """As FeatureStore.thumbnail_tags, within the scope."""
        self._check(business, source)
        return self._store.thumbnail_tags(business, source, images)

    def has_null_table(self, key: str) -> bool:
        """Whether a permutation null is stored under ``key`` (data/refine.py), for any actor: the
        name is a digest of CTR values, and says nothing of whose they are."""
        return self._actor() is not None and self._store.has_null_table(key)

    def version(self) -> str:
        """A token that changes whenever anything the actor may read is written ("0" without an actor).

        An actor of every business gets the store's own version; a scoped one a digest of its
        datasets' current builds and CTR upload times, so it cannot watch other businesses' writes.
        """
        actor = self._actor()
        if actor is None:
            return "0"
        if actor.businesses is None:
            return self._store.version()
        mine = self.datasets()[["business", "source", "build_id", "updated_at"]]
        digest = hashlib.sha256(mine.to_json(orient="values").encode()).hexdigest()
        return "s" + digest[:24]
