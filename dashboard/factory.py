"""The application factory: one call builds the Flask server, the routes and the Dash app."""

from __future__ import annotations

import logging
from pathlib import Path

import dash
from flask import Flask, jsonify, request

from dashboard.api.errors import RETRY_AFTER, error_response, public_detail, register_error_handlers
from dashboard.callback_requests import CALLBACK_PATH, callback_request_problems
from dashboard.startup import Startup
from data.cache import AnalysisCache
from data.refine import Refiner
from data.settings import Settings, open_store
from data.store import FeatureStore, StorageUnavailable

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "page" / "assets"


def create_app(settings: Settings | None = None, store: FeatureStore | None = None) -> dash.Dash:
    """Build the whole app: Flask server, ingest and read API, Dash layout and callbacks."""
    from dashboard.page.callbacks import register_callbacks
    from ingest.scoped import ScopedStore

    settings = settings or Settings.from_env()
    # Opening the store touches no database: the start-up work below does, and may have to wait.
    # The app's analysis cache (datasets, null tables, adjusted fits), sized from CACHE_MB, lives
    # with its store: whatever reads a dataset has the store, and passes ``store.cache`` on. A
    # store handed in brings its own.
    store = store or open_store(settings, AnalysisCache(settings.cache_mb), initialise=False)
    if settings.provisional_windows and store.cache.refiner is None:
        # A new window's first summary answers from a smaller null; the full one is drawn and stored behind it.
        store.cache.refiner = Refiner(store.save_null_table)
    startup = _start_in_background(store, settings)
    if not settings.ingest_token:
        log.warning("INGEST_TOKEN is not set: writes are accepted only from loopback addresses")
    server = _create_server(store, startup, settings)
    # Reads go through the permission seam: the API, the layout and every callback see only the actor's datasets.
    readable = ScopedStore(store, settings)
    _register_routes(server, store, readable, startup, settings)
    app = _mount_dash(server, readable, startup, settings)
    register_callbacks(app, readable, settings)
    return app


def _start_in_background(store: FeatureStore, settings: Settings) -> Startup:
    """The store's start-up (migrations, the demo data when asked and the database is empty), retried
    in the background while the database is down."""
    from data.demo import load_demo

    def start_up():
        # Once for all workers and hosts: under the store's start-up lock, in one transaction.
        loaded = store.initialise(seed=load_demo if settings.demo_data else None)
        if loaded:
            log.info("empty database: loaded the demo data (%s)", loaded)
        return loaded

    return Startup(start_up).start()


def _create_server(store: FeatureStore, startup: Startup, settings: Settings) -> Flask:
    """The Flask server: body limit, JSON error shape, 503 until start-up is done, each request's budget."""
    from dashboard.budget import register_request_budget

    server = Flask(__name__)
    server.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Keep fields in the documented order (feature first) rather than alphabetical.
    server.json.sort_keys = False
    server.extensions["feature_store"] = store
    server.extensions["dashboard_startup"] = startup
    register_error_handlers(server)

    @server.before_request
    def _wait_for_startup():
        if not startup.ready and needs_database(request.path):
            raise startup.unavailable()

    register_request_budget(server, settings.request_budget_seconds)

    @server.teardown_request
    def _refine_after_answer(_error):
        # Full null tables behind this request's provisional answers (data/refine.py): drawn now it is answered.
        if store.cache.refiner is not None:
            store.cache.refiner.start()

    return server


def _register_routes(server: Flask, store: FeatureStore, readable, startup: Startup, settings: Settings) -> None:
    """The write routes (on ``store``), the read API (on ``readable``), access and sign-in, /healthz."""
    from dashboard.api.drift import create_drift_blueprint
    from dashboard.api.gallery import create_gallery_blueprint
    from dashboard.api.openapi import create_openapi_blueprint
    from dashboard.api.routes import create_api_blueprint
    from dashboard.api.trend import create_trend_blueprint
    from dashboard.signin import install_access
    from ingest.image_routes import create_images_blueprint
    from ingest.routes import create_ingest_blueprint

    server.register_blueprint(create_ingest_blueprint(store, settings))
    server.register_blueprint(create_images_blueprint(store, settings))
    server.register_blueprint(create_api_blueprint(readable, settings))
    server.register_blueprint(create_drift_blueprint(readable, settings))
    server.register_blueprint(create_openapi_blueprint(settings))
    server.register_blueprint(create_gallery_blueprint(readable, settings))
    server.register_blueprint(create_trend_blueprint(readable, settings))
    install_access(server, store, settings)

    @server.get("/healthz")
    def healthz():
        try:
            if not startup.ready:
                raise startup.unavailable()
            store.ping()
        except StorageUnavailable as exc:
            log.warning("health check failed: %s", exc)
            return unhealthy(exc.cause)
        except Exception:  # any other database failure also means "not usable"
            log.exception("health check failed")
            return unhealthy("database error")
        return jsonify({"status": "ok"})


def _mount_dash(server: Flask, readable, startup: Startup, settings: Settings) -> dash.Dash:
    """The Dash app on ``server``: its layout (or the outage page) and the check of callback requests."""
    from dashboard.budget import page_callback_error
    from dashboard.page.layout import build_layout, outage_page
    from dashboard.signin import with_sign_out

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
        # A view over the request's time budget says so in the page's notice, not in a silent 503.
        on_error=page_callback_error,
    )
    serve_layout = with_sign_out(build_layout(readable, settings))

    def serve_layout_or_outage():
        # The page says in words that the data is unavailable, rather than Dash's "Error loading layout".
        try:
            if not startup.ready:
                raise startup.unavailable()
            return serve_layout()
        except StorageUnavailable as exc:
            log.warning("page served without data: %s", exc)
            return outage_page(exc.cause)

    app.layout = serve_layout_or_outage

    @server.before_request
    def _check_callback_request():
        if request.path == CALLBACK_PATH and request.method == "POST":
            problems = callback_request_problems(request.get_json(force=True, silent=True), app.callback_map)
            if problems:
                return error_response(400, "invalid callback request", problems)
        return None

    return app


# Routes that serve stored data: until start-up has succeeded they answer 503 with Retry-After.
_OPEN_PATHS = ("/api/openapi.json",)
_DATA_PREFIXES = ("/api/", "/_dash-update-component")


def needs_database(path: str) -> bool:
    """True for the routes that read or write the store (the API, except its document, and callbacks)."""
    return path.startswith(_DATA_PREFIXES) and path not in _OPEN_PATHS


def unhealthy(cause: str):
    """/healthz's 503: the cause in a few words, never the server's address (that goes to the log)."""
    details = [public_detail(cause)]
    return jsonify({"status": "error", "error": cause, "details": details}), 503, {"Retry-After": RETRY_AFTER}
