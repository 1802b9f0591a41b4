"""The read API: GET /api/datasets, /api/builds, /api/summary (also as CSV), /api/version and /api/openapi.json."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import pandas as pd
from flask import Blueprint, jsonify, request, send_file

from dashboard.api import downloads
from dashboard.api.params import QueryError, parse_strict
from data import refine, stats
from data.adjusted import ADJUSTED_UNAVAILABLE, adjusted_columns
from data.analysis import feature_summary
from data.filters import DEFAULT_MIN_GROUP_SIZE, Filters, WeightingUnavailable
from data.store import UnknownBuild, UnknownDataset, WindowUnavailable
from ingest.http import ApiError

DATASET_FIELDS = ["business", "source", "build_id", "received_at", "images", "features", "images_with_ctr"]
BUILD_FIELDS = ["build_id", "received_at", "images", "features", "values"]
SUMMARY_PARAMS = (
    "business",
    "source",
    "confidence",
    "min_pct",
    "max_pct",
    "build_id",
    "min_n",
    "weighting",
    "from",
    "to",
    "adjusted",
)


@dataclass(frozen=True)
class PairQuery:
    """The (business, source) a request is about."""

    business: str
    source: str

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> PairQuery:
        """Parse ``business`` and ``source``; raises QueryError naming every problem."""
        return cls(**parse_strict(args, ("business", "source")))


@dataclass(frozen=True)
class SummaryQuery:
    """The parameters of GET /api/summary (and its CSV twins): a dataset's build and the filters."""

    business: str
    source: str
    filters: Filters = field(default_factory=Filters)
    build_id: int | None = None
    adjusted: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, min_n: int = DEFAULT_MIN_GROUP_SIZE) -> SummaryQuery:
        """Parse a query string mapping (``min_n`` is the default group size); raises QueryError."""
        values = parse_strict(args, SUMMARY_PARAMS, defaults={"min_n": min_n})
        return cls(**{**values, "adjusted": values["adjusted"] == "1"})


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as dicts of plain Python values (exact floats), NaN and missing values as None."""
    if frame.empty:
        return []
    lists = [_plain_column(frame[c]) for c in columns]
    return [dict(zip(columns, row)) for row in zip(*lists)]


def _plain_column(column: pd.Series) -> list:
    # tolist() of a numeric column already gives Python floats, ints and bools; only NaN needs a look.
    if column.dtype.kind == "f":
        return [None if v != v else v for v in column.tolist()]
    if column.dtype.kind in "iub":
        return column.tolist()
    return [_plain(v) for v in column.tolist()]


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


@contextmanager
def weighting_available():
    """Turn the analysis' refusal to weight by impressions into a 400 saying what to do."""
    try:
        yield
    except WeightingUnavailable as exc:
        raise ApiError(
            400,
            "impression weighting is not available for this dataset",
            [f'{exc}; upload CTRs as {{"clicks": ..., "impressions": ...}} or use weighting=mean'],
        ) from None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def summary_payload(dataset, query: SummaryQuery, build_id: int, cache=None) -> dict:
    """The JSON body of GET /api/summary for one dataset (``cache``: the app's AnalysisCache)."""
    with weighting_available():
        summary = feature_summary(dataset, query.filters, cache=cache)
    # A new window's first answer may come from a smaller null, the full one drawn behind it (data/refine.py).
    provisional = refine.pending(summary) is not None
    fields = {"business": query.business, "source": query.source, "build_id": build_id, **asdict(query.filters)}
    extra = {}
    # Without adjusted=1 the answer stays exactly what it was before the option existed.
    if query.adjusted:
        summary = adjusted_columns(summary, dataset, query.filters, cache=cache)
        fields["adjusted"] = True
        if query.filters.weighting != "mean":
            extra["adjusted_unavailable"] = ADJUSTED_UNAVAILABLE
        else:
            level = stats.fcr_level(summary["adjusted_q_value"].to_numpy(dtype=float))
            extra["adjusted_fcr_level"] = None if math.isnan(level) else level
    return {
        **{name: fields[name] for name in SUMMARY_PARAMS if name in fields},  # in the parameters' order
        "images": len(dataset.images),
        "images_with_ctr": dataset.images_with_ctr,
        "has_counts": dataset.has_counts,
        "window": query.filters.window_fields(),
        "fcr_level": _finite(stats.fcr_level(summary["q_value"])),
        "provisional": provisional,
        **extra,
        "features": records(summary, list(summary.columns)),
    }


def create_api_blueprint(store, settings) -> Blueprint:
    """The blueprint with the GET /api/... routes."""
    bp = no_store(Blueprint("api", __name__))

    @bp.get("/api/datasets")
    def datasets():
        return jsonify({"datasets": records(store.datasets(), DATASET_FIELDS)})

    @bp.get("/api/builds")
    def build_history():
        pair = parse_query(PairQuery, request.args)
        with not_found():
            history = store.builds(pair.business, pair.source)
        return jsonify({**asdict(pair), "builds": records(history, BUILD_FIELDS)})

    @bp.get("/api/summary")
    def summary():
        query = parse_query(SummaryQuery, request.args, min_n=settings.min_group_size)
        with not_found():
            dataset, build_id, _ = store.load_build(
                query.business, query.source, query.build_id, window=query.filters.window
            )
        return jsonify(summary_payload(dataset, query, build_id, store.cache))

    def summary_csv_file(kind: str):
        query = parse_query(SummaryQuery, request.args, min_n=settings.min_group_size)
        with not_found():
            build_id = store.resolve_build(query.business, query.source, query.build_id)
            dataset = store.dataset(query.business, query.source, build_id, window=query.filters.window)
        with weighting_available():
            # The page's files: the summary's own columns, so ``adjusted`` is not read here.
            name, content = downloads.csv_download(
                dataset,
                business=query.business,
                source=query.source,
                build_id=build_id,
                filters=query.filters,
                kind=kind,
                cache=store.cache,
            )
        data = io.BytesIO(content.encode("utf-8"))
        return send_file(data, mimetype="text/csv", as_attachment=True, download_name=name, max_age=0)

    @bp.get("/api/summary.csv")
    def summary_csv():
        return summary_csv_file("summary")

    @bp.get("/api/points.csv")
    def points_csv():
        return summary_csv_file("points")

    @bp.get("/api/version")
    def version():
        return jsonify({"version": store.version()})

    return bp


def no_store(bp: Blueprint) -> Blueprint:
    """The blueprint, its answers marked not to be cached."""

    @bp.after_request
    def _no_store(response):
        # The page polls these; a cached answer would hide new builds.
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp


def parse_query(query_class, args, **defaults):
    """``query_class.from_args(args, **defaults)``, its QueryError as a 400 naming every problem."""
    try:
        return query_class.from_args(args, **defaults)
    except QueryError as exc:
        raise ApiError(400, "invalid query parameters", exc.problems) from None


@contextmanager
def not_found():
    """Turn the store's lookup errors into a 404 in the API's error shape (a window on a dataset
    without dated metrics into a 400)."""
    try:
        yield
    except UnknownBuild as exc:
        raise ApiError(404, "unknown build", [str(exc)]) from None
    except UnknownDataset as exc:
        raise ApiError(404, "unknown dataset", [str(exc)]) from None
    except WindowUnavailable as exc:
        raise ApiError(400, "a time window needs dated metrics", [str(exc)]) from None
