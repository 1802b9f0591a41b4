"""Image thumbnails over HTTP: PUT one image or a zip of many, DELETE one, GET one to show.

Writes take the same token, dataset headers, body limit and error shape as PUT /api/features;
the bytes are decoded and re-encoded by ``data.thumbnails`` (never stored as sent). A GET is a
read: a reader of the business (the read API's check, ``ScopedStore``) loads its thumbnails.
"""

from __future__ import annotations

from collections import Counter

from flask import Blueprint, Response, jsonify, request

from data.errors import UnknownDataset
from data.names import normal_name
from data.thumbnails import (
    MAX_ARCHIVE_PIXELS,
    ArchiveTooLarge,
    ImageTooLarge,
    InvalidArchive,
    InvalidImage,
    make_thumbnail,
    zip_entries,
)
from ingest.access import authorise_write
from ingest.framing import GZIP_ENCODINGS, IDENTITY_ENCODINGS, gunzip, read_raw_body, read_target
from ingest.http import ApiError
from ingest.scoped import ScopedStore
from ingest.validation import MAX_PROBLEMS, image_name_problem, target_names, validate_target

# A thumbnail's URL with ``v=<its etag>`` names those bytes for good, so it may be cached for a
# year; without ``v`` it may be replaced under the same URL, so caches keep it for a day.
IMMUTABLE_CACHE = "max-age=31536000, immutable"
PLAIN_CACHE = "max-age=86400"
# What a browser may do with a served thumbnail: show it, nothing else (no script, no sniffing).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"}
WRITE_METHODS = ("PUT", "DELETE", "PATCH", "POST")


def image_problem_status(exc: InvalidImage) -> int:
    """413 for an image past the pixel limits, 400 for any other refusal."""
    return 413 if isinstance(exc, ImageTooLarge) else 400


def read_image_body(limit: int) -> bytes:
    """The body's bytes (gunzipped when sent with Content-Encoding: gzip); raises 413, 415 or 400."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in IDENTITY_ENCODINGS + GZIP_ENCODINGS:
        raise ApiError(
            415,
            "unsupported content encoding",
            [f"Content-Encoding {encoding!r} is not supported: send the body as is, or with Content-Encoding: gzip"],
        )
    raw = read_raw_body(limit)
    return gunzip(raw, limit) if encoding in GZIP_ENCODINGS and raw else raw


def checked_name(name: str) -> str:
    """The image name from the URL in NFC (as the features PUT stores it); raises 400 when that PUT would refuse it."""
    problem = image_name_problem(name)
    if problem:
        raise ApiError(400, "invalid image name", [f"image {name!r}: {problem}"])
    return normal_name(name)


def thumbnail_response(row, version: str | None) -> Response:
    """The stored thumbnail as an answer, or 304 when the client's If-None-Match already holds it."""
    headers = {
        **SECURITY_HEADERS,
        "ETag": f'"{row.etag}"',
        "Cache-Control": IMMUTABLE_CACHE if version == row.etag else PLAIN_CACHE,
    }
    if request.if_none_match.contains_weak(row.etag):
        return Response(status=304, headers=headers)
    return Response(row.data, status=200, headers=headers, content_type=row.content_type)


def archive_report(raw: bytes, limit: int):
    """Thumbnails of a zip archive's images, decoded one at a time: ``(stored, refused)``.

    ``stored`` lists ``(path, image, Thumbnail)``, ``refused`` dicts naming each refused file and
    why; a name that two files share is refused for both. Raises 400/413 for the whole archive.
    """
    entries, refused = [], []
    budget = MAX_ARCHIVE_PIXELS
    try:
        for entry in zip_entries(raw, limit):
            problem = entry.problem or image_name_problem(entry.image)
            # Archives made on macOS name files in NFD: the image is the NFC name the features PUT stored.
            image = entry.image if problem else normal_name(entry.image)
            thumb = None
            if problem is None:
                try:
                    thumb = make_thumbnail(entry.data, pixel_budget=budget)
                    budget -= thumb.decoded_pixels
                except InvalidImage as exc:
                    problem = str(exc)
            if problem is None:
                entries.append((entry.path, image, thumb))
            else:
                refused.append({"path": entry.path, "image": image, "error": problem})
    except ArchiveTooLarge as exc:
        raise ApiError(413, "archive too large", [str(exc)]) from None
    except InvalidArchive as exc:
        raise ApiError(400, "invalid archive", [str(exc)]) from None
    counts = Counter(image for _, image, _ in entries)
    repeated = {name for name, count in counts.items() if count > 1}
    stored = []
    for path, image, thumb in entries:
        if image in repeated:
            refused.append(
                {"path": path, "image": image, "error": "another file of the archive has the same image name"}
            )
        else:
            stored.append((path, image, thumb))
    return stored, refused


def create_images_blueprint(store, settings) -> Blueprint:
    """The blueprint with PUT /api/images[/<name>], DELETE /api/images/<name> and GET /api/images/<name>."""
    bp = Blueprint("images", __name__)
    readable = ScopedStore(store, settings)

    @bp.before_request
    def _authorise_writes():
        # The same permission seam as every write: a credential whose scope holds the business.
        if request.method in WRITE_METHODS:
            authorise_write(store, settings)

    @bp.put("/api/images/<path:name>")
    def put_image(name: str):
        business, source = read_target()
        image = checked_name(name)
        try:
            thumb = make_thumbnail(read_image_body(request.max_content_length))
        except InvalidImage as exc:
            status = image_problem_status(exc)
            raise ApiError(status, "image too large" if status == 413 else "invalid image", [str(exc)]) from None
        (created,) = store.put_thumbnails(business, source, [(image, thumb)])
        body = {"image": image, "width": thumb.width, "height": thumb.height, "bytes": len(thumb.data)}
        return jsonify(body), 201 if created else 200

    @bp.put("/api/images")
    def put_archive():
        business, source = read_target()
        limit = request.max_content_length
        stored, refused = archive_report(read_image_body(limit), limit)
        if not stored:
            details = [f"{r['path']}: {r['error']}" for r in refused[:MAX_PROBLEMS]]
            if len(refused) > MAX_PROBLEMS:
                details.append(f"... and {len(refused) - MAX_PROBLEMS} more problems")
            raise ApiError(400, "no image of the archive could be stored", details)
        created = store.put_thumbnails(business, source, [(image, thumb) for _, image, thumb in stored])
        images = [
            {
                "path": path,
                "image": image,
                "width": thumb.width,
                "height": thumb.height,
                "bytes": len(thumb.data),
                "replaced": not new,
            }
            for (path, image, thumb), new in zip(stored, created)
        ]
        return jsonify({"business": business, "source": source, "stored": images, "refused": refused}), 200

    @bp.delete("/api/images/<path:name>")
    def delete_image(name: str):
        business, source = read_target()
        image = checked_name(name)
        if not store.delete_thumbnail(business, source, image):
            raise ApiError(404, "no thumbnail", [f"no thumbnail of image {image!r} in {business!r} / {source!r}"])
        return jsonify({"image": image, "deleted": True})

    @bp.get("/api/images/<path:name>")
    def get_image(name: str):
        business, source = request.args.get("business"), request.args.get("source")
        problems = validate_target(business, source, labels=("business parameter", "source parameter"))
        if problems:
            raise ApiError(400, "invalid query parameters", problems)
        business, source = target_names(business, source)
        image = checked_name(name)
        try:
            row = readable.thumbnail(business, source, image)
        except UnknownDataset:  # outside the reader's scope: as absent as a thumbnail never stored
            row = None
        if row is None:
            raise ApiError(404, "no thumbnail", [f"no thumbnail of image {image!r} in {business!r} / {source!r}"])
        return thumbnail_response(row, request.args.get("v"))

    return bp
