"""The store's errors: lookups that find nothing, batches it refuses, and storage faults."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's errors."""


class UnknownDataset(StoreError, LookupError):
    """No build has been stored for that (business, source)."""


class UnknownBuild(StoreError, LookupError):
    """That build id does not exist for that (business, source)."""


class CtrFormConflict(StoreError, ValueError):
    """A CTR upsert in the other form (rates or counts) than the stored set."""


class DatasetKindConflict(StoreError, ValueError):
    """A write of dated metrics to a dataset holding a CTR set, or of CTRs to one holding dated metrics."""


class WindowUnavailable(StoreError, ValueError):
    """A time window was asked of a dataset without dated metrics."""


class InvalidBatch(StoreError, ValueError):
    """A batch that repeats a name or whose values point outside its own images or features."""


class StorageUnavailable(StoreError):
    """The database cannot serve the request now; ``cause`` says why in a few words.

    Causes: "database is read-only", "disk full", "database unreachable", "database busy".
    The store drops its connections when raising it, so the next call reconnects and works
    again as soon as the fault is gone.
    """

    def __init__(self, cause: str, detail: str = ""):
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause
        self.detail = detail


class TokenExists(StoreError, ValueError):
    """An access token of that name is already stored."""
