"""The OpenAPI description of the image routes: thumbnails (PUT, DELETE, GET) and the gallery.

Merged into the document by ``dashboard.openapi.openapi_document``; built from the constants
the routes use (limits, choices, field names) so that the two cannot drift apart.
"""

from __future__ import annotations

from dashboard.gallery_api import DEFAULT_GALLERY_LIMIT, MAX_GALLERY_LIMIT
from dashboard.openapi import _INT, _TEXT, _errors, _header, _json, _object, _query, _ref, param_schema
from dashboard.params import PARAMS
from data.gallery import GALLERY_SIDES, GALLERY_SORTS
from data.thumbnails import CONTENT_TYPE, MAX_ARCHIVE_ENTRIES, MAX_PIXELS, MAX_SIDE
from ingest.framing import GZIP_ENCODINGS
from ingest.image_routes import IMMUTABLE_CACHE, PLAIN_CACHE

_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "the image's name as in the features PUT, URL-encoded",
}
_UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "application/octet-stream")


def _dataset_headers() -> list[dict]:
    alternatives = {"Business": "X-Business", "Image-Source": "X-Image-Source"}
    headers = [
        _header(name, f"the dataset's {name.lower()} (required, or {alt}; once, without commas)")
        for name, alt in alternatives.items()
    ]
    headers += [_header(alt, f"same as {name}") for name, alt in alternatives.items()]
    headers.append(
        _header(
            "Content-Encoding", "gzip to send a compressed body", schema={"enum": list(GZIP_ENCODINGS) + ["identity"]}
        )
    )
    return headers


def _upload(summary: str, parameters: list[dict], content: dict, answers: dict) -> dict:
    return {
        "summary": summary,
        "parameters": parameters,
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": content},
        "responses": answers | _errors(400, 401, 403, 413, 415, 503),
    }


def image_paths(min_n: int) -> dict:
    """The paths of PUT /api/images[/{name}], DELETE and GET /api/images/{name}, GET /api/gallery."""
    del min_n  # the gallery has no group-size parameter
    image_body = {t: {"schema": _BINARY} for t in _UPLOAD_TYPES}
    served_headers = {
        "ETag": {"schema": _TEXT, "description": "a tag of the thumbnail's bytes"},
        "Cache-Control": {
            "schema": _TEXT,
            "description": f"{IMMUTABLE_CACHE} when v is the thumbnail's etag, else {PLAIN_CACHE}",
        },
        "X-Content-Type-Options": {"schema": {"const": "nosniff"}},
        "Content-Security-Policy": {"schema": {"const": "default-src 'none'"}},
    }
    gallery_parameters = [
        _query("business", param_schema(PARAMS["business"]), "dataset's business", required=True),
        _query("source", param_schema(PARAMS["source"]), "dataset's image source", required=True),
        _query("feature", {"type": "string", "minLength": 1}, "the feature whose images to list", required=True),
        _query("build_id", param_schema(PARAMS["build_id"]), "a stored build (default: the current one)"),
        _query("confidence", param_schema(PARAMS["confidence"]), "presence threshold (strictly above)"),
        _query("side", {"type": "string", "enum": list(GALLERY_SIDES), "default": "with"}, "images with or without it"),
        _query("sort", {"type": "string", "enum": list(GALLERY_SORTS), "default": "ctr_desc"}, "by CTR, ties by name"),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_GALLERY_LIMIT, "default": DEFAULT_GALLERY_LIMIT},
            "images per page",
        ),
        _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "images skipped"),
    ]
    return {
        "/api/images": {
            "put": _upload(
                f"store the thumbnails of a zip archive's images (each file's name without its extension is the "
                f"image name; at most {MAX_ARCHIVE_ENTRIES:,} files, MAX_BODY_MB uncompressed); each file is "
                "stored or refused by itself",
                _dataset_headers(),
                {"application/zip": {"schema": _BINARY}},
                {"200": _json(_ref("ArchiveStored"), "the files stored and those refused, with why")},
            )
        },
        "/api/images/{name}": {
            "put": _upload(
                f"store an image's thumbnail (JPEG, PNG, WebP or GIF of at most {MAX_PIXELS:,} pixels, re-encoded "
                f"as WebP of at most {MAX_SIDE} px on its long side)",
                [_NAME] + _dataset_headers(),
                image_body,
                {
                    "201": _json(_ref("ImageStored"), "thumbnail stored"),
                    "200": _json(_ref("ImageStored"), "thumbnail stored, replacing the image's previous one"),
                },
            ),
            "delete": {
                "summary": "delete an image's thumbnail",
                "parameters": [_NAME] + _dataset_headers()[:4],
                "security": [{}, {"bearer": []}],
                "responses": {"200": _json(_object({"image": _TEXT, "deleted": {"const": True}}), "thumbnail deleted")}
                | _errors(400, 401, 403, 404, 503),
            },
            "get": {
                "summary": "an image's stored thumbnail",
                "parameters": [
                    _NAME,
                    _query("business", {"type": "string", "minLength": 1}, "dataset's business", required=True),
                    _query("source", {"type": "string", "minLength": 1}, "dataset's image source", required=True),
                    _query("v", _TEXT, "the thumbnail's etag (as in a gallery's thumbnail_url): cached for a year"),
                ],
                "responses": {
                    "200": {
                        "description": "the thumbnail",
                        "headers": served_headers,
                        "content": {CONTENT_TYPE: {"schema": _BINARY}},
                    },
                    "304": {"description": "If-None-Match holds the thumbnail's ETag", "headers": served_headers},
                }
                | _errors(400, 404),
            },
        },
        "/api/gallery": {
            "get": {
                "summary": "the images with (or without) a feature that the summary counts in n_with "
                "(n_without), sorted by CTR",
                "parameters": gallery_parameters,
                "responses": {"200": _json(_ref("Gallery"), "a page of the images")} | _errors(400, 404),
            }
        },
    }


def image_schemas() -> dict:
    """The schemas the image routes answer with."""
    number = {"type": "number"}
    nullable_int = {"type": ["integer", "null"]}
    image_types = {
        "image": _TEXT,
        "ctr": number,
        "clicks": nullable_int,
        "impressions": nullable_int,
        "confidence": number,
        "has_thumbnail": {"type": "boolean"},
        "thumbnail_url": {"type": ["string", "null"]},
    }
    stored = dict.fromkeys(("width", "height", "bytes"), _INT)
    return {
        "ImageStored": _object({"image": _TEXT} | stored),
        "ArchiveStored": _object(
            {
                "business": _TEXT,
                "source": _TEXT,
                "stored": {
                    "type": "array",
                    "items": _object({"path": _TEXT, "image": _TEXT} | stored | {"replaced": {"type": "boolean"}}),
                },
                "refused": {
                    "type": "array",
                    "items": _object({"path": _TEXT, "image": _TEXT, "error": _TEXT}),
                },
            }
        ),
        "GalleryImage": _object(image_types),
        "Gallery": _object(
            {
                "business": _TEXT,
                "source": _TEXT,
                "build_id": _INT,
                "feature": _TEXT,
                "confidence": number,
                "side": {"enum": list(GALLERY_SIDES)},
                "sort": {"enum": list(GALLERY_SORTS)},
                "offset": _INT,
                "limit": _INT,
                "total": _INT,
                "images": {"type": "array", "items": _ref("GalleryImage")},
            }
        ),
    }
