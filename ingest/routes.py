"""Flask routes of the write path: PUT /api/features, PUT and PATCH /api/ctr, PUT and PATCH /api/metrics."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Blueprint, jsonify, request

from data import writes
from data.store import CtrFormConflict, DatasetKindConflict
from ingest.access import authorise_write, is_loopback, is_loopback_host
from ingest.framing import check_header_sizes, read_build_tag, read_json_body, read_target
from ingest.http import API_PREFIX, ApiError
from ingest.validation import validate_ctr, validate_features, validate_metrics

__all__ = ["create_ingest_blueprint", "is_loopback", "is_loopback_host"]


@contextmanager
def other_kind_conflicts():
    """A write of CTRs onto dated metrics, or the reverse, as a 409 saying which the dataset holds."""
    try:
        yield
    except DatasetKindConflict as exc:
        raise ApiError(409, "the dataset holds the other kind of CTR data", [str(exc)]) from None


def create_ingest_blueprint(store, settings) -> Blueprint:
    """The blueprint with PUT /api/features, PUT /api/ctr and /api/metrics (replace), PATCH /api/ctr and /api/metrics (upsert)."""
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

    def written(work, status: int):
        """Store ``work(writer)`` through the write seam; its post-write work runs once the answer is sent."""
        jobs = []
        result = writes.write(store, work, schedule=jobs.append)
        if status == 201 and not result.pop("created", True):
            status = 200  # a retry of a stored build (same Build-Tag) gets that build back, and nothing is stored
        response = jsonify(result)
        for job in jobs:
            response.call_on_close(job)
        return response, status

    def accept(validate, what: str, write, status: int):
        business, source = read_target()
        result, problems = validate(read_body())
        if problems:
            raise ApiError(400, f"invalid {what}", problems)
        return written(lambda writer: getattr(writer, write)(business, source, result), status)

    @bp.put("/api/features")
    def put_features():
        tag = read_build_tag()
        business, source = read_target()
        batch, problems = validate_features(read_body())
        if problems:
            raise ApiError(400, "invalid features", problems)
        return written(lambda writer: writer.add_build(business, source, batch, tag=tag), 201)

    @bp.put("/api/ctr")
    def put_ctr():
        with other_kind_conflicts():
            return accept(validate_ctr, "CTR", "replace_ctr", 200)

    @bp.patch("/api/ctr")
    def patch_ctr():
        try:
            with other_kind_conflicts():
                return accept(validate_ctr, "CTR", "merge_ctr", 200)
        except CtrFormConflict as exc:
            raise ApiError(409, "CTR form differs from the stored set", [str(exc)]) from None

    def validate_all_metrics(doc):
        return validate_metrics(doc, allow_empty=True)

    @bp.put("/api/metrics")
    def put_metrics():
        with other_kind_conflicts():
            return accept(validate_all_metrics, "dated metrics", "replace_metrics", 200)

    @bp.patch("/api/metrics")
    def patch_metrics():
        with other_kind_conflicts():
            return accept(validate_metrics, "dated metrics", "merge_metrics", 200)

    return bp
