"""The read API (placeholder until the read routes land)."""

from flask import Blueprint


def create_api_blueprint(store, settings) -> Blueprint:
    """The blueprint with the GET /api/... routes."""
    return Blueprint("api", __name__)
