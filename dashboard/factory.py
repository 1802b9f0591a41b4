"""The application factory: one call builds the Flask server, the routes and the Dash app."""

from __future__ import annotations

import logging
from pathlib import Path

import dash
from flask import Flask, jsonify

from data.cache import AnalysisCache
from data.settings import Settings, open_store
from data.store import FeatureStore, StorageUnavailable

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "page" / "assets"


def create_app(settings: Settings | None = None, store: FeatureStore | None = None) -> dash.Dash:
    """Build the whole app: Flask server, ingest and read API, Dash layout and callbacks."""
    from dashboard.api.drift import create_drift_blueprint
    from dashboard.api.errors import register_error_handlers
    from dashboard.api.openapi import create_openapi_blueprint
    from dashboard.api.routes import create_api_blueprint
    from dashboard.page.callbacks import register_callbacks
    from dashboard.page.layout import build_layout
    from data.demo import load_demo
    from ingest.routes import create_ingest_blueprint

    settings = settings or Settings.from_env()
    # The app's analysis cache (datasets, null tables, adjusted fits), sized from CACHE_MB, lives
    # with its store: whatever reads a dataset has the store, and passes ``store.cache`` on. A
    # store handed in brings its own.
    store = store or open_store(settings, AnalysisCache(settings.cache_mb))
    if settings.demo_data:
        # Once for all workers and hosts: under the store's start-up lock, in one transaction.
        loaded = store.initialise(seed=load_demo)
        if loaded:
            log.info("empty database: loaded the demo data (%s)", loaded)
    if not settings.ingest_token:
        log.warning("INGEST_TOKEN is not set: writes are accepted only from loopback addresses")

    server = Flask(__name__)
    server.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Keep fields in the documented order (feature first) rather than alphabetical.
    server.json.sort_keys = False
    server.extensions["feature_store"] = store
    register_error_handlers(server)
    server.register_blueprint(create_ingest_blueprint(store, settings))
    server.register_blueprint(create_api_blueprint(store, settings))
    server.register_blueprint(create_drift_blueprint(store, settings))
    server.register_blueprint(create_openapi_blueprint(settings))

    @server.get("/healthz")
    def healthz():
        try:
            store.ping()
        except StorageUnavailable as exc:
            log.warning("health check failed: %s", exc)
            return jsonify({"status": "error", "error": exc.cause, "details": [exc.detail]}), 503
        except Exception as exc:  # any other database failure also means "not usable"
            log.exception("health check failed")
            return jsonify({"status": "error", "error": str(exc)}), 503
        return jsonify({"status": "ok"})

    app = dash.Dash(
        __name__,
        server=server,
        title="Creative analytics",
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        # The layout request carries the page's URL (its view) as the referrer: keep it whole
        # for same-origin requests even behind a proxy that sets a stricter Referrer-Policy.
        meta_tags=[{"name": "referrer", "content": "same-origin"}],
    )
    app.layout = build_layout(store, settings)
    register_callbacks(app, store, settings)
    return app
