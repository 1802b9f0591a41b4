"""Flask routes of the write path (placeholder until the ingest routes land)."""

from flask import Blueprint


def create_ingest_blueprint(store, settings) -> Blueprint:
    """The blueprint with PUT /api/features and PUT /api/ctr."""
    return Blueprint("ingest", __name__)
