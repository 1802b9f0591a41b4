"""GET /api/gallery: the images with (or without) a feature, sorted by CTR, a page at a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pandas as pd
from flask import Blueprint, jsonify, request

from dashboard.api.params import Param, parse_with_own
from dashboard.api.routes import no_store, not_found, parse_query
from data.filters import Filters
from data.gallery import GALLERY_SIDES, GALLERY_SORTS, UnknownFeature, feature_gallery
from ingest.http import ApiError

MAX_GALLERY_LIMIT = 200
DEFAULT_GALLERY_LIMIT = 48
# The gallery's own parameters; business, source, build_id, confidence, from and to are the summary's.
GALLERY_OWN = {
    p.name: p
    for p in (
        Param("feature", "text", required=True),
        Param("side", "choice", default="with", choices=GALLERY_SIDES),
        Param("sort", "choice", default="ctr_desc", choices=GALLERY_SORTS),
        Param("limit", "integer", default=DEFAULT_GALLERY_LIMIT, low=1, high=MAX_GALLERY_LIMIT),
        Param("offset", "integer", default=0, low=0),
    )
}
SHARED = ("business", "source", "build_id", "confidence", "from", "to")
GALLERY_PARAMS = SHARED + tuple(GALLERY_OWN)
IMAGE_FIELDS = ["image", "ctr", "clicks", "impressions", "confidence", "has_thumbnail", "thumbnail_url"]


def thumbnail_url(business: str, source: str, image: str, etag: str) -> str:
    """The URL of an image's stored thumbnail; ``v`` names its bytes, so the browser may keep it for a year."""
    query = urlencode({"business": business, "source": source, "v": etag})
    return f"/api/images/{quote(str(image), safe='')}?{query}"


@dataclass(frozen=True)
class GalleryQuery:
    """The parameters of GET /api/gallery."""

    business: str
    source: str
    feature: str
    build_id: int | None = None
    filters: Filters = Filters()  # of the summary's filters, the gallery reads the confidence threshold
    side: str = "with"
    sort: str = "ctr_desc"
    limit: int = DEFAULT_GALLERY_LIMIT
    offset: int = 0

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> GalleryQuery:
        """Parse a query string mapping; raises QueryError naming every problem."""
        values = parse_with_own(args, SHARED, GALLERY_OWN)
        return cls(**values)


def gallery_payload(dataset, query: GalleryQuery, build_id: int, thumbnail_tags) -> dict:
    """The JSON body of GET /api/gallery; ``thumbnail_tags(images)`` maps the page's images to their etags."""
    try:
        gallery = feature_gallery(dataset, query.feature, query.filters.confidence, query.side, query.sort)
    except UnknownFeature as exc:
        raise ApiError(404, "unknown feature", [str(exc)]) from None
    page = gallery.iloc[query.offset : query.offset + query.limit]
    names = [str(n) for n in page["image"]]
    tags = thumbnail_tags(names) if names else {}
    images = []
    for name, ctr, clicks, impressions, conf in zip(
        names,
        page["ctr"].tolist(),
        page["clicks"].tolist(),
        page["impressions"].tolist(),
        page["confidence"].tolist(),
    ):
        tag = tags.get(name)
        images.append(
            {
                "image": name,
                "ctr": ctr,
                "clicks": None if clicks is None or clicks is pd.NA else int(clicks),
                "impressions": None if impressions is None or impressions is pd.NA else int(impressions),
                "confidence": conf,
                "has_thumbnail": tag is not None,
                "thumbnail_url": None if tag is None else thumbnail_url(query.business, query.source, name, tag),
            }
        )
    return {
        "business": query.business,
        "source": query.source,
        "build_id": build_id,
        "feature": query.feature,
        "confidence": query.filters.confidence,
        "side": query.side,
        "sort": query.sort,
        "window": query.filters.window_fields(),
        "offset": query.offset,
        "limit": query.limit,
        "total": len(gallery),
        "images": images,
    }


def create_gallery_blueprint(store, settings) -> Blueprint:
    """The blueprint with GET /api/gallery."""
    bp = no_store(Blueprint("gallery_api", __name__))

    @bp.get("/api/gallery")
    def gallery():
        query = parse_query(GalleryQuery, request.args)
        with not_found():
            dataset, build_id, _ = store.load_build(
                query.business, query.source, query.build_id, window=query.filters.window
            )

        def tags(names):
            return store.thumbnail_tags(query.business, query.source, names)

        return jsonify(gallery_payload(dataset, query, build_id, tags))

    return bp
