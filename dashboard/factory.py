"""The application factory: one call builds the Flask server, the routes and the Dash app."""

from __future__ import annotations

import logging
from pathlib import Path

import dash
from flask import Flask, jsonify

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
    from dashboard.signin import install_access, with_sign_out
    from data import adjusted, permutation
    from data.demo import load_demo
    from ingest.routes import create_ingest_blueprint
    from ingest.scoped import ScopedStore

    settings = settings or Settings.from_env()
    store = store or open_store(settings)
    # The analysis caches are process-wide: the app sizes them from CACHE_MB, data/ reads no environment.
    permutation.set_cache_budget(settings.null_table_cache_bytes)
    adjusted.set_cache_budget(settings.adjusted_fit_cache_bytes)
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
    # Reads go through the permission seam: the API, the layout and every callback see only the actor's datasets.
    readable = ScopedStore(store, settings)
    server.register_blueprint(create_ingest_blueprint(store, settings))
    server.register_blueprint(create_api_blueprint(readable, settings))
    server.register_blueprint(create_drift_blueprint(readable, settings))
    server.register_blueprint(create_openapi_blueprint(settings))
    install_access(server, store, settings)

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
    app.layout = with_sign_out(build_layout(readable, settings))
    register_callbacks(app, readable, settings)
    return app
