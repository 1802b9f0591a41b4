"""GET /api/trend: one feature's summary on each day, week or month of a dataset's dated metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, jsonify, request

from dashboard.api.gallery import GALLERY_OWN
from dashboard.api.params import Param, parse_with_own
from dashboard.api.routes import no_store, not_found, parse_query, records, weighting_available
from data.dataset import Dataset
from data.filters import DEFAULT_MIN_GROUP_SIZE, Filters
from data.trend import PERIODS, PROVISIONAL, TREND_COLUMNS, TrendTooLong, UnknownFeature, feature_trend
from ingest.http import ApiError

TREND_SHARED = (
    "business",
    "source",
    "build_id",
    "confidence",
    "min_pct",
    "max_pct",
    "min_n",
    "weighting",
    "from",
    "to",
)
TREND_OWN = {
    "feature": GALLERY_OWN["feature"],
    "period": Param("period", "choice", default="week", choices=PERIODS),
}
TREND_PARAMS = ("business", "source", "feature", "period") + TREND_SHARED[2:]


@dataclass(frozen=True)
class TrendQuery:
    """The parameters of GET /api/trend: a dataset, a feature, a period and the summary's filters."""

    business: str
    source: str
    feature: str
    period: str = "week"
    build_id: int | None = None
    filters: Filters = field(default_factory=Filters)

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, min_n: int = DEFAULT_MIN_GROUP_SIZE) -> TrendQuery:
        """Parse a query string mapping; raises QueryError naming every problem."""
        values = parse_with_own(args, TREND_SHARED, TREND_OWN, defaults={"min_n": min_n})
        return cls(**values)


def create_trend_blueprint(store, settings) -> Blueprint:
    """The blueprint with GET /api/trend."""
    bp = no_store(Blueprint("trend_api", __name__))

    @bp.get("/api/trend")
    def trend():
        query = parse_query(TrendQuery, request.args, min_n=settings.min_group_size)
        with not_found():
            base, build_id, _ = store.load_build(query.business, query.source, query.build_id)
            stored = store.metric_set(query.business, query.source)
        if stored is None:
            # No dated metrics, no trend to show: as missing as an unknown feature's.
            raise ApiError(
                404,
                "no dated metrics",
                [f"{query.business!r} / {query.source!r} has no dated metrics (PUT /api/metrics)"],
            )
        window = query.filters.window
        first = (window and window.start) or stored.first_day
        last = (window and window.end) or stored.last_day

        def dataset_for(period_window):
            # The build's matrix with each period's sums: not one cached dataset per period.
            ctr = store.metric_ctr(query.business, query.source, period_window)
            return Dataset.from_matrix(base.images, base.features, base.confidences, ctr)

        try:
            with not_found(), weighting_available():
                points = (
                    feature_trend(
                        dataset_for, query.feature, first, last, query.period, query.filters, cache=store.cache
                    )
                    if first <= last
                    else None
                )
        except UnknownFeature as exc:
            raise ApiError(404, "unknown feature", [str(exc)]) from None
        except TrendTooLong as exc:
            raise ApiError(400, "too many periods", [str(exc)]) from None
        return jsonify(
            {
                "business": query.business,
                "source": query.source,
                "build_id": build_id,
                "feature": query.feature,
                "period": query.period,
                "window": {"from": first, "to": last},
                "provisional": points is not None and bool(points.attrs.get(PROVISIONAL)),
                "points": [] if points is None else records(points, TREND_COLUMNS),
            }
        )

    return bp
