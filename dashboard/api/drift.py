"""GET /api/drift: how each feature's impact changed between two builds of one dataset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from flask import Blueprint, jsonify, request

from dashboard.api.params import parse_strict
from dashboard.api.routes import no_store, not_found, parse_query, records, weighting_available
from data.drift import DRIFT_COLUMNS, feature_drift, image_overlap
from data.filters import DEFAULT_MIN_GROUP_SIZE, Filters
from data.store import UnknownBuild
from ingest.http import ApiError

DRIFT_PARAMS = (
    "business",
    "source",
    "from_build",
    "to_build",
    "confidence",
    "min_pct",
    "max_pct",
    "min_n",
    "weighting",
    "from",
    "to",
)


@dataclass(frozen=True)
class DriftQuery:
    """The parameters of GET /api/drift: two builds of a pair and the summary's filters."""

    business: str
    source: str
    from_build: int
    to_build: int
    filters: Filters = field(default_factory=Filters)

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, min_n: int = DEFAULT_MIN_GROUP_SIZE) -> DriftQuery:
        """Parse a query string mapping (``min_n`` is the default group size); raises QueryError naming every problem."""
        return cls(**parse_strict(args, DRIFT_PARAMS, defaults={"min_n": min_n}))


def drift_payload(before, after, query: DriftQuery) -> dict:
    """The JSON body of GET /api/drift for two loaded builds."""
    with weighting_available():
        drift = feature_drift(before, after, query.filters)
    shared, shared_with_ctr = image_overlap(before, after)
    return {
        "business": query.business,
        "source": query.source,
        "from_build": query.from_build,
        "to_build": query.to_build,
        "shared_images": shared,
        **{k: v for k, v in asdict(query.filters).items() if k not in ("date_from", "date_to")},
        "window": query.filters.window_fields(),
        "shared_images_with_ctr": shared_with_ctr,
        "images_with_ctr_from": before.images_with_ctr,
        "images_with_ctr_to": after.images_with_ctr,
        "features": records(drift, DRIFT_COLUMNS),
    }


def check_same_pair(store, query: DriftQuery) -> None:
    """404 for a build that does not exist, 400 for one of another (business, source)."""
    strangers = []
    for name in ("from_build", "to_build"):
        build_id = getattr(query, name)
        try:
            pair = store.build_pair(build_id)
        except UnknownBuild:
            raise ApiError(404, "unknown build", [f"{name}: build {build_id} is not a stored build"]) from None
        if pair != (query.business, query.source):
            strangers.append(
                f"{name}: build {build_id} belongs to {pair[0]!r} / {pair[1]!r}, "
                f"not {query.business!r} / {query.source!r}"
            )
    if strangers:
        raise ApiError(400, "builds of different datasets cannot be compared", strangers)


def create_drift_blueprint(store, settings) -> Blueprint:
    """The blueprint with GET /api/drift."""
    bp = no_store(Blueprint("drift_api", __name__))

    @bp.get("/api/drift")
    def drift():
        query = parse_query(DriftQuery, request.args, min_n=settings.min_group_size)
        with not_found():
            store.builds(query.business, query.source)  # an unknown dataset is a 404 first
        check_same_pair(store, query)
        with not_found():
            window = query.filters.window
            before = store.dataset(query.business, query.source, query.from_build, window=window)
            after = store.dataset(query.business, query.source, query.to_build, window=window)
        return jsonify(drift_payload(before, after, query))

    return bp
