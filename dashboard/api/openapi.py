"""The OpenAPI 3.1 document of the HTTP API, served at GET /api/openapi.json.

Built from the same constants as the routes (field lists, parameter defaults, limits), and
checked against the Flask rules and real answers by tests/test_openapi.py, so it cannot drift
from the code unnoticed.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from dashboard.api.gallery import DEFAULT_GALLERY_LIMIT, MAX_GALLERY_LIMIT
from dashboard.api.params import PARAMS, Param
from dashboard.api.routes import BUILD_FIELDS, DATASET_FIELDS, SUMMARY_PARAMS, no_store
from dashboard.api.trend import TREND_OWN, TREND_PARAMS
from data import stats
from data.adjusted import ADJUSTED_COLUMNS
from data.analysis import POINT_COLUMNS, SUMMARY_COLUMNS
from data.drift import DRIFT_COLUMNS
from data.gallery import GALLERY_SIDES, GALLERY_SORTS
from data.names import MAX_NAME_BYTES
from data.thumbnails import CONTENT_TYPE, MAX_ARCHIVE_ENTRIES, MAX_PIXELS, MAX_SIDE
from ingest.framing import GZIP_ENCODINGS, MAX_HEADER_BYTES
from ingest.image_routes import IMMUTABLE_CACHE, PLAIN_CACHE
from ingest.validation import MAX_COUNT

REF = "#/components/schemas/"
_INT = {"type": "integer"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_TEXT = {"type": "string"}
# A name (business, source, image, feature): not blank, no NUL, at most MAX_NAME_BYTES bytes of
# UTF-8 (maxLength counts characters, so it bounds the ASCII case); stored in NFC, case kept.
_NAME_RULE = f"not blank, no NUL, at most {MAX_NAME_BYTES} bytes of UTF-8; stored in Unicode NFC; case matters"
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_BYTES,
    "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
    "description": _NAME_RULE,
}
# A dataset header or Build-Tag: a name that also holds no comma (a repeated header arrives joined by commas).
_HEADER_NAME = _NAME | {
    "pattern": "^[^,\\u0000]*[^,\\s\\u0000][^,\\u0000]*$",
    "description": _NAME_RULE + "; no commas",
}
MAX_REQUEST_LINE = 4094  # gunicorn's limit_request_line


def _ref(name: str) -> dict:
    return {"$ref": REF + name}


def _object(properties: dict, required=None) -> dict:
    return {"type": "object", "properties": properties, "required": list(required or properties)}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    """Responses in the error shape for the given statuses, plus any other error (404, 405, 431)."""
    meanings = {
        400: "malformed request: every problem is listed in details",
        401: "a token is needed (INGEST_TOKEN set, or ACCESS=tokens) and it is missing, or the one sent is not valid",
        403: "a read token or one of other businesses; or no token, no INGEST_TOKEN, and a client or Host not loopback",
        404: "unknown dataset or build",
        409: "PATCH in the other CTR form (rates or counts) than the stored set",
        413: "body, or its decompressed content, larger than MAX_BODY_MB",
        414: f"request line (method, path and query) over {MAX_REQUEST_LINE} bytes",
        415: "a Content-Encoding other than gzip",
        431: f"a header over {MAX_HEADER_BYTES} bytes",
        422: "the statistics asked for need more CPU time than REQUEST_BUDGET_SECONDS allows a request",
        503: "the storage failed or is not ready yet (error: database is read-only, disk full, database "
        "unreachable, database busy or database not ready); nothing was stored: retry after Retry-After seconds. On reads, also: the statistics did not finish "
        "within the request's time budget on a busy server",
    }
    answers = {str(s): _json(_ref("Error"), meanings[s]) for s in sorted({*statuses, 414, 431, 503})}
    answers["503"]["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    answers["default"] = _json(
        _ref("Error"),
        "any other error (401 without a valid token where ACCESS asks for one, with WWW-Authenticate: Bearer; "
        "404, 405)",
    )
    return answers


def _query(name: str, schema: dict, description: str, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _header(name: str, description: str, *, schema=None, required: bool = False) -> dict:
    return {"name": name, "in": "header", "required": required, "schema": schema or _TEXT, "description": description}


_DESCRIPTIONS = {
    "business": "dataset's business",
    "source": "dataset's image source",
    "confidence": "presence threshold (strictly above)",
    "min_pct": "lowest prevalence kept, %; must not exceed max_pct (400 otherwise)",
    "max_pct": "highest prevalence kept, %; must not be below min_pct (400 otherwise)",
    "build_id": "a stored build (default: the current one)",
    "min_n": "images needed on each side for statistics (default: MIN_GROUP_SIZE)",
    "weighting": "mean of images or impression-weighted",
    "adjusted": "1: add each feature's impact adjusted for its co-occurring features",
    "from": "first day (YYYY-MM-DD, inclusive) of the dated metrics summed into each image's CTR; "
    "must not be after to (400 otherwise); a window on a dataset without dated metrics: 400",
    "to": "last day (YYYY-MM-DD, inclusive) of the dated metrics summed into each image's CTR",
}


def param_schema(param: Param, default=None) -> dict:
    """The JSON Schema of one query parameter, from the spec the parsers read."""
    if param.kind == "text":
        schema = dict(_NAME)
    elif param.kind == "date":
        schema = dict(_DAY)
    elif param.kind == "choice":
        schema = {"type": "string", "enum": list(param.choices)}
    else:
        schema = {"type": param.kind, "minimum": param.low}
        if param.high is not None:
            schema["maximum"] = param.high
    default = param.default if default is None else default
    return schema | ({"default": default} if default is not None else {})


def summary_parameters(min_n: int) -> list[dict]:
    """The query parameters of /api/summary and its CSV twins (``min_n`` is the server's default)."""
    return [
        _query(
            name,
            param_schema(PARAMS[name], min_n if name == "min_n" else None),
            _DESCRIPTIONS[name],
            required=PARAMS[name].required,
        )
        for name in SUMMARY_PARAMS
    ]


def _pair_parameters() -> list[dict]:
    return summary_parameters(0)[:2]


def drift_parameters(min_n: int) -> list[dict]:
    """The query parameters of /api/drift: the summary's, with two builds instead of one."""
    builds = [
        _query(name, {"type": "integer", "minimum": 1}, f"the {side} build of the pair", required=True)
        for name, side in (("from_build", "earlier"), ("to_build", "later"))
    ]
    shared = summary_parameters(min_n)
    return shared[:2] + builds + [p for p in shared[2:] if p["name"] not in ("build_id", "adjusted")]


def _summary_types() -> dict:
    """The fields of /api/summary's answer."""
    summary_types = dict.fromkeys(SUMMARY_PARAMS, _TEXT)
    summary_types.update(
        confidence={"type": "number"},
        min_pct={"type": "number"},
        max_pct={"type": "number"},
        build_id=_INT,
        min_n=_INT,
        images=_INT,
        images_with_ctr=_INT,
        has_counts={"type": "boolean"},
        fcr_level=_NULLABLE_NUMBER,
        provisional={"type": "boolean"},
        features={"type": "array", "items": _ref("SummaryFeature")},
    )
    summary_types["adjusted"] = {"const": True}  # present with adjusted=1 only
    summary_types["adjusted_unavailable"] = _TEXT  # adjusted=1 under impression weighting
    summary_types["adjusted_fcr_level"] = _NULLABLE_NUMBER  # adjusted=1: level of the FCR intervals
    return summary_types


def _summary_schemas(summary_types: dict) -> dict:
    """SummaryFeature and Summary."""
    feature_types = {c: _NULLABLE_NUMBER for c in SUMMARY_COLUMNS}
    feature_types.update(feature=_TEXT, n_with=_INT, n_without=_INT, low_n={"type": "boolean"})
    feature_types["significant"] = {"type": "boolean"}
    feature_types["verdict"] = {"enum": list(stats.VERDICTS)}
    adjusted_types = dict.fromkeys(ADJUSTED_COLUMNS, _NULLABLE_NUMBER)
    adjusted_types["adjusted_controls"] = {"type": ["array", "null"], "items": _TEXT}
    adjusted_types["adjusted_verdict"] = {"type": ["string", "null"], "enum": [*stats.VERDICTS, None]}
    return {
        # adjusted=1 adds the adjusted_* fields to each feature.
        "SummaryFeature": _object(feature_types | adjusted_types, required=feature_types),
        "Summary": _object(summary_types, required=[k for k in summary_types if not k.startswith("adjusted")]),
    }


def _drift_schemas(summary_types: dict) -> dict:
    """DriftFeature and Drift (whose shared fields are typed as the summary's)."""
    drift_types = {c: _NULLABLE_NUMBER for c in DRIFT_COLUMNS}
    drift_types.update(feature=_TEXT, n_with_from=_INT, n_with_to=_INT, n_flipped=_INT)
    drift_types.update(low_n={"type": "boolean"}, significant={"type": "boolean"})
    drift_head = ["business", "source", "from_build", "to_build", "shared_images", "confidence", "min_pct"]
    drift_head += ["max_pct", "min_n", "weighting", "shared_images_with_ctr", "images_with_ctr_from"]
    drift_fields = {k: summary_types.get(k, _INT) for k in drift_head + ["images_with_ctr_to"]}
    drift_fields["features"] = {"type": "array", "items": _ref("DriftFeature")}
    return {"DriftFeature": _object(drift_types), "Drift": _object(drift_fields)}


def _write_schemas() -> dict:
    """The bodies of the writes and their answers."""
    count = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
    return {
        "FeaturesBody": {
            "type": "object",
            "minProperties": 1,
            "description": "image name -> feature name -> confidence; a missing feature means 0; "
            "names equal in NFC are duplicates",
            "propertyNames": _NAME,
            "additionalProperties": {
                "type": "object",
                "propertyNames": _NAME,
                "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "CtrBody": {
            "type": "object",
            "minProperties": 1,
            "description": "image name -> CTR, or image name -> clicks and impressions (one layout per body); "
            "counts are JSON integers written without a fraction or exponent, and clicks must not exceed impressions "
            "(400 otherwise)",
            "propertyNames": _NAME,
            "oneOf": [
                {"additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
                {
                    "additionalProperties": {
                        **_object({"clicks": count, "impressions": count | {"minimum": 1}}),
                        "additionalProperties": False,
                    }
                },
            ],
        },
        "BuildStored": _object(
            dict.fromkeys(("build_id", "images", "features", "values"), _INT)
            | {"business": _TEXT, "source": _TEXT, "received_at": _TEXT, "build_tag": {"type": ["string", "null"]}}
        ),
        "CtrStored": _object(
            {
                "business": _TEXT,
                "source": _TEXT,
                "received_at": _TEXT,
                "images": _INT,
                "has_counts": {"type": "boolean"},
            }
        ),
    }


def _schemas() -> dict:
    summary_types = _summary_types()
    dataset_types = dict.fromkeys(DATASET_FIELDS, _INT) | {"business": _TEXT, "source": _TEXT, "received_at": _TEXT}
    return (
        _drift_schemas(summary_types)
        | {
            "Error": _object(
                {
                    "error": {"type": "string", "description": "one-line summary"},
                    "details": {"type": "array", "items": _TEXT},
                }
            ),
        }
        | _write_schemas()
        | {
            "Dataset": _object(dataset_types),
            "Build": _object(dict.fromkeys(BUILD_FIELDS, _INT) | {"received_at": _TEXT}),
        }
        | _summary_schemas(summary_types)
    )


def dataset_headers() -> list[dict]:
    """Business and Image-Source, as every write and the thumbnail routes take them."""
    return [
        _header(
            name,
            f"the dataset's {name.lower()} (or its alias {alt}, with the same value if both are sent; once): "
            f"{_HEADER_NAME['description']}",
            schema=_HEADER_NAME,
            required=True,
        )
        for name, alt in {"Business": "X-Business", "Image-Source": "X-Image-Source"}.items()
    ]


def _write(summary: str, body: str, answer: dict, *errors: int, extra_headers=()) -> dict:
    # X-Business and X-Image-Source (aliases, equal if both are sent) and Content-Encoding: gzip
    # (the same JSON, compressed) are described in words: a schema cannot tie one header to
    # another, or a body to its encoding.
    headers = dataset_headers() + list(extra_headers)
    encodings = " or ".join(GZIP_ENCODINGS)
    return {
        "summary": summary,
        "parameters": headers,
        "security": [{}, {"bearer": []}],
        "requestBody": {
            "required": True,
            "description": f"JSON whatever the Content-Type; with Content-Encoding: {encodings}, the same JSON "
            "compressed (one or more gzip members, nothing after them); other encodings: 415",
            "content": {"application/json": {"schema": _ref(body)}},
        },
        "responses": answer | _errors(400, 401, 403, *errors, 413, 415, 503),
    }  # fmt: skip


def _csv(kind: str, columns: list[str], min_n: int) -> dict:
    return {
        "summary": f"the {kind} of /api/summary as a CSV download (columns: {', '.join(columns)})",
        # The page's files, which hold the summary's own columns: no adjusted impact.
        "parameters": [p for p in summary_parameters(min_n) if p["name"] != "adjusted"],
        "responses": {
            "200": {
                "description": "CSV (CRLF rows; cells that a spreadsheet would run as formulas are prefixed with ')",
                "headers": {
                    "Content-Disposition": {"schema": _TEXT, "description": "attachment; the page's file name"}
                },
                "content": {"text/csv": {"schema": _TEXT}},
            }
        }
        | _errors(400, 404),
    }


def _write_paths() -> dict:
    """PUT /api/features, PUT and PATCH /api/ctr."""
    get = _json
    return {
        "/api/features": {
            "put": _write(
                "store a new build of image features",
                "FeaturesBody",
                {
                    "201": get(_ref("BuildStored"), "build stored"),
                    "200": get(_ref("BuildStored"), "a build with this Build-Tag was already stored: that build, nothing stored"),
                },
                extra_headers=[
                    _header(
                        "Build-Tag",
                        "the client's name for the build (e.g. Jenkins' $BUILD_TAG; "
                        f"{_HEADER_NAME['description']}): a PUT whose tag a stored build of the dataset has stores nothing",
                        schema=_HEADER_NAME,
                    )
                ],
            )
        },
        "/api/ctr": {
            "put": _write("replace the dataset's CTR set", "CtrBody", {"200": get(_ref("CtrStored"), "CTR set stored")}),
            "patch": _write(
                "insert or overwrite the given images' CTRs, keeping the others",
                "CtrBody",
                {"200": get(_ref("CtrStored"), "merged set stored; images counts the whole set")},
                409,
            ),
        },
    }  # fmt: skip


def _dataset_paths() -> dict:
    """GET /api/datasets and /api/builds."""
    get = _json
    return {
        "/api/datasets": {
            "get": {
                "summary": "the current build of each dataset, most recently updated first",
                "responses": {"200": get(_object({"datasets": {"type": "array", "items": _ref("Dataset")}}), "datasets")} | _errors(),
            }
        },
        "/api/builds": {
            "get": {
                "summary": "a dataset's stored builds, newest first",
                "parameters": _pair_parameters(),
                "responses": {
                    "200": get(_object({"business": _TEXT, "source": _TEXT, "builds": {"type": "array", "items": _ref("Build")}}), "builds")
                }
                | _errors(400, 404),
            }
        },
    }  # fmt: skip


def _summary_paths(min_n: int) -> dict:
    """GET /api/summary, /api/drift and the CSV downloads."""
    get = _json
    return {
        "/api/summary": {
            "get": {
                "summary": "per-feature CTR with and without, impact, interval, p and q",
                "parameters": summary_parameters(min_n),
                "responses": {"200": get(_ref("Summary"), "the summary, ordered by impact")} | _errors(400, 404, 422, 503),
            }
        },
        "/api/drift": {
            "get": {
                "summary": "how each feature's impact changed between two builds of the pair",
                "parameters": drift_parameters(min_n),
                "responses": {"200": get(_ref("Drift"), "the change per feature, ordered by change")}
                | _errors(400, 404, 422, 503),
            }
        },
        "/api/summary.csv": {"get": _csv("summary", SUMMARY_COLUMNS, min_n)},
        "/api/points.csv": {"get": _csv("scatter points", POINT_COLUMNS, min_n)},
    }  # fmt: skip


def _service_paths() -> dict:
    """GET /api/version, /api/openapi.json and /healthz."""
    get = _json
    return {
        "/api/version": {
            "get": {
                "summary": "a token that changes whenever anything is written",
                "responses": {"200": get(_object({"version": _TEXT}), "the version token")} | _errors(),
            }
        },
        "/api/openapi.json": {
            "get": {"summary": "this document", "responses": {"200": get({"type": "object"}, "OpenAPI 3.1")} | _errors()}
        },
        "/healthz": {
            "get": {
                "summary": "whether the app and its database are usable",
                "responses": {
                    "200": get(_object({"status": {"const": "ok"}}), "usable"),
                    "503": get(
                        _object({"status": {"const": "error"}, "error": _TEXT, "details": {"type": "array", "items": _TEXT}}),
                        "database unusable now: error names the cause (database is read-only, disk full, "
                        "database unreachable, database not ready, ...), never the server's address",
                    )
                    | {"headers": {"Retry-After": {"schema": _TEXT, "description": "seconds"}}},
                },
            }
        },
    }  # fmt: skip


def openapi_document(min_n: int) -> dict:
    """The whole OpenAPI 3.1 document (``min_n`` is the server's default group size)."""
    paths = _write_paths() | _dataset_paths() | _summary_paths(min_n) | _service_paths()
    paths |= image_paths(min_n)
    paths = metrics_paths(paths, min_n)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Creative analytics API",
            "version": "1",
            "description": "Every 4xx/5xx answer under /api/ is JSON in the Error shape. A bearer token (made "
            "with python -m ingest token create, or INGEST_TOKEN for writes) reads or writes its businesses; a "
            "business outside its scope answers as an unknown one. Without a token: reads from loopback clients "
            "(ACCESS=local) or anyone (ACCESS=public), writes only from loopback clients under a loopback Host "
            "while INGEST_TOKEN is unset.",
        },
        "security": [{}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": with_windows(_schemas() | image_schemas() | metrics_schemas()),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an access token, or INGEST_TOKEN"}
            },
        },
    }


def create_openapi_blueprint(settings) -> Blueprint:
    """The blueprint serving the document at GET /api/openapi.json (it reads the routes' constants)."""
    bp = no_store(Blueprint("openapi", __name__))

    @bp.get("/api/openapi.json")
    def openapi():
        return jsonify(openapi_document(settings.min_group_size))

    return bp


# The image routes: thumbnails (PUT, DELETE, GET) and the gallery, built from the constants the routes use.
_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}
_IMAGE_NAME_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": _NAME,
    "description": "the image's name as in the features PUT, URL-encoded",
}
_UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "application/octet-stream")


def _upload(summary: str, parameters: list[dict], content: dict, answers: dict) -> dict:
    return {
        "summary": summary,
        "parameters": parameters,
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": content},
        "responses": answers | _errors(400, 401, 403, 413, 415, 503),
    }


def _served_headers() -> dict:
    """The headers of a served thumbnail."""
    return {
        "ETag": {"schema": _TEXT, "description": "a tag of the thumbnail's bytes"},
        "Cache-Control": {
            "schema": _TEXT,
            "description": f"{IMMUTABLE_CACHE} when v is the thumbnail's etag, else {PLAIN_CACHE}",
        },
        "X-Content-Type-Options": {"schema": {"const": "nosniff"}},
        "Content-Security-Policy": {"schema": {"const": "default-src 'none'"}},
    }


def _gallery_parameters() -> list[dict]:
    """The query parameters of GET /api/gallery."""
    return [
        _query("business", param_schema(PARAMS["business"]), "dataset's business", required=True),
        _query("source", param_schema(PARAMS["source"]), "dataset's image source", required=True),
        _query("feature", _NAME, "the feature whose images to list", required=True),
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


def _thumbnail_path() -> dict:
    """PUT, DELETE and GET /api/images/{name}."""
    image_body = {t: {"schema": _BINARY} for t in _UPLOAD_TYPES}
    served_headers = _served_headers()
    return {
        "put": _upload(
            f"store an image's thumbnail (JPEG, PNG, WebP or GIF of at most {MAX_PIXELS:,} pixels, re-encoded "
            f"as WebP of at most {MAX_SIDE} px on its long side)",
            [_IMAGE_NAME_PARAM] + dataset_headers(),
            image_body,
            {
                "201": _json(_ref("ImageStored"), "thumbnail stored"),
                "200": _json(_ref("ImageStored"), "thumbnail stored, replacing the image's previous one"),
            },
        ),
        "delete": {
            "summary": "delete an image's thumbnail",
            "parameters": [_IMAGE_NAME_PARAM] + dataset_headers(),
            "security": [{}, {"bearer": []}],
            "responses": {"200": _json(_object({"image": _TEXT, "deleted": {"const": True}}), "thumbnail deleted")}
            | _errors(400, 401, 403, 404, 503),
        },
        "get": {
            "summary": "an image's stored thumbnail",
            "parameters": [
                _IMAGE_NAME_PARAM,
                _query("business", param_schema(PARAMS["business"]), "dataset's business", required=True),
                _query("source", param_schema(PARAMS["source"]), "dataset's image source", required=True),
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
    }


def image_paths(min_n: int) -> dict:
    """The paths of PUT /api/images[/{name}], DELETE and GET /api/images/{name}, GET /api/gallery."""
    del min_n  # the gallery has no group-size parameter
    gallery_parameters = _gallery_parameters()
    return {
        "/api/images": {
            "put": _upload(
                f"store the thumbnails of a zip archive's images (each file's name without its extension is the "
                f"image name; at most {MAX_ARCHIVE_ENTRIES:,} files, MAX_BODY_MB uncompressed); each file is "
                "stored or refused by itself",
                dataset_headers(),
                {"application/zip": {"schema": _BINARY}},
                {"200": _json(_ref("ArchiveStored"), "the files stored and those refused, with why")},
            )
        },
        "/api/images/{name}": _thumbnail_path(),
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


# Dated metrics: PUT and PATCH /api/metrics (a dataset holds a CTR set or dated metrics, so a write
# of the other kind is a 409 both ways).
_DAY = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}


def metrics_paths(paths: dict, min_n: int) -> dict:
    """``paths`` with PUT and PATCH /api/metrics, GET /api/trend, the 409 a CTR write onto dated
    metrics gets, and the gallery's window."""
    paths = dict(paths)
    ctr = dict(paths["/api/ctr"])
    ctr["put"] = ctr["put"] | {"responses": ctr["put"]["responses"] | _errors(409)}
    paths["/api/ctr"] = ctr
    stored = {"200": _json(_ref("MetricsStored"), "dated metrics stored; images and rows count the whole set")}
    if "/api/gallery" in paths:  # the gallery takes the summary's window
        gallery = paths["/api/gallery"]["get"]
        window = [_query(name, param_schema(PARAMS[name]), _DESCRIPTIONS[name]) for name in ("from", "to")]
        paths["/api/gallery"] = {"get": gallery | {"parameters": gallery["parameters"] + window}}
    paths["/api/trend"] = {"get": trend_operation(min_n)}
    paths["/api/metrics"] = {
        "put": _write("replace the dataset's dated metrics ({} removes them)", "MetricsBody", stored, 409),
        "patch": _write(
            "insert or overwrite the given image-days, keeping every other day", "MetricsPatchBody", stored, 409
        ),
    }
    return paths


def trend_operation(min_n: int) -> dict:
    """GET /api/trend: its parameters (the summary's, a feature and a period) and answer."""
    own = {
        "feature": "the feature whose trend to draw",
        "period": "day, week (Monday to Sunday) or month; the first and last periods are clipped to the window",
    }
    parameters = []
    for name in TREND_PARAMS:
        param = TREND_OWN.get(name) or PARAMS[name]
        default = min_n if name == "min_n" else None
        description = own.get(name) or _DESCRIPTIONS.get(name, "dataset's " + name)
        if name in ("from", "to"):
            description += "; default: the first (last) stored day"
        parameters.append(_query(name, param_schema(param, default), description, required=param.required))
    return {
        "summary": "one feature's summary on each day, week or month of the dataset's dated metrics",
        "parameters": parameters,
        "responses": {"200": _json(_ref("Trend"), "a point per period, oldest first")} | _errors(400, 404, 422, 503),
    }


def with_windows(schemas: dict) -> dict:
    """``schemas`` with the ``window`` every windowed answer states (``{"from", "to"}``, null: open),
    in the place the answers put it; the summary's ``from``/``to`` parameters are stated there only."""
    window = _object({"from": {"type": ["string", "null"]}, "to": {"type": ["string", "null"]}})
    after = {"Summary": "has_counts", "Drift": "weighting", "Gallery": "sort"}
    schemas = dict(schemas)
    for name, previous in after.items():
        if name not in schemas:
            continue
        schema = schemas[name]
        properties = {}
        for key, value in schema["properties"].items():
            if key in ("from", "to"):
                continue
            properties[key] = value
            if key == previous:
                properties["window"] = window
        was_required = set(schema.get("required", [])) | {"window"}
        required = [k for k in properties if k in was_required]
        schemas[name] = schema | {"properties": properties, "required": required}
    return schemas


def metrics_schemas() -> dict:
    """The bodies and answer of PUT and PATCH /api/metrics."""
    count = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
    days = {
        "type": "object",
        "minProperties": 1,
        "propertyNames": _DAY,
        "additionalProperties": _object({"clicks": count, "impressions": count}) | {"additionalProperties": False},
    }
    body = {
        "type": "object",
        "description": "image name -> day (YYYY-MM-DD) -> clicks and impressions; counts are JSON integers, "
        "clicks must not exceed impressions (400 otherwise)",
        "propertyNames": _NAME,
        "additionalProperties": days,
    }
    point = {c: _NULLABLE_NUMBER for c in ("avg_ctr_with", "avg_ctr_without", "impact", "ci_low", "ci_high", "p_value")}
    point = {"from": _TEXT, "to": _TEXT, "n_with": _INT, "n_without": _INT} | point
    window = _object({"from": {"type": ["string", "null"]}, "to": {"type": ["string", "null"]}})
    trend = {"business": _TEXT, "source": _TEXT, "build_id": _INT, "feature": _TEXT, "period": _TEXT}
    trend |= {"window": window, "provisional": {"type": "boolean"}}
    trend |= {"points": {"type": "array", "items": _ref("TrendPoint")}}
    return {
        "Trend": _object(trend),
        "TrendPoint": _object(point),
        "MetricsBody": body | {"minProperties": 0},
        "MetricsPatchBody": body | {"minProperties": 1},
        "MetricsStored": _object(
            {
                "business": _TEXT,
                "source": _TEXT,
                "received_at": _TEXT,
                "images": _INT,
                "rows": _INT,
                "first_day": {"type": ["string", "null"], "format": "date"},
                "last_day": {"type": ["string", "null"], "format": "date"},
            }
        ),
    }
