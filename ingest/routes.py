"""Flask routes of the write path: PUT /api/features, PUT and PATCH /api/ctr."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from data.store import CtrFormConflict
from ingest.access import authorise_write, is_loopback, is_loopback_host
from ingest.framing import check_header_sizes, read_build_tag, read_json_body, read_target
from ingest.http import API_PREFIX, ApiError
from ingest.validation import validate_ctr, validate_features

__all__ = ["create_ingest_blueprint", "is_loopback", "is_loopback_host"]


def create_ingest_blueprint(store, settings) -> Blueprint:
    """The blueprint with PUT /api/features, PUT /api/ctr (replace) and PATCH /api/ctr (upsert)."""
    bp = Blueprint("ingest", __name__)

    @bp.before_app_request
    def _header_sizes():
        if request.path.startswith(API_PREFIX):
            check_header_sizes()

    @bp.before_request
    def _authorise():
        # The permission seam: a valid credential, and the target business within its scope.
        authorise_write(store, settings)

    def read_body():
        # One limit, the app's MAX_CONTENT_LENGTH (from MAX_BODY_MB): Werkzeug stops reading a
        # chunked body there, and the same number decides 413 here and caps a gzip body's output.
        return read_json_body(request.max_content_length)

    def accept(validate, what: str, write, status: int):
        business, source = read_target()
        result, problems = validate(read_body())
        if problems:
            raise ApiError(400, f"invalid {what}", problems)
        return then_prepare_nulls(jsonify(write(business, source, result)), business, source), status

    def then_prepare_nulls(response, business: str, source: str):
        """Once the answer is sent, draw and store the pair's permutation nulls (data/nulls.py).

        The writer does not wait for them, and the first summary after a build or CTR set lands
        reads them instead of drawing them. They are derived data: a failure here is logged and
        only means that a summary draws them itself.
        """
        logger = current_app.logger

        def prepare():
            try:
                store.prepare_nulls(business, source)
            except Exception:
                logger.exception("permutation nulls of %r / %r were not prepared", business, source)

        response.call_on_close(prepare)
        return response

    @bp.put("/api/features")
    def put_features():
        tag = read_build_tag()
        business, source = read_target()
        batch, problems = validate_features(read_body())
        if problems:
            raise ApiError(400, "invalid features", problems)
        build = store.add_build(business, source, batch, tag=tag)
        # A retry of a stored build (same Build-Tag) gets that build back, and nothing is stored.
        status = 201 if build.pop("created") else 200
        return then_prepare_nulls(jsonify(build), business, source), status

    @bp.put("/api/ctr")
    def put_ctr():
        return accept(validate_ctr, "CTR", store.replace_ctr, 200)

    @bp.patch("/api/ctr")
    def patch_ctr():
        try:
            return accept(validate_ctr, "CTR", store.merge_ctr, 200)
        except CtrFormConflict as exc:
            raise ApiError(409, "CTR form differs from the stored set", [str(exc)]) from None

    return bp
