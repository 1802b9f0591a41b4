"""Thumbnails of uploaded images: decoded with limits, re-encoded small, never the bytes as sent.

Pure byte work with Pillow, no web framework and no SQL. ``make_thumbnail`` takes the bytes of a
JPEG, PNG, WebP or GIF and returns a WebP of at most ``MAX_SIDE`` pixels on its long side; the
original bytes are never kept, so nothing a client sent (markup hidden in a comment, metadata,
a polyglot file) is ever served back. ``zip_entries`` reads a zip archive one entry at a time
within size and count limits. Refusals raise ``InvalidImage`` / ``InvalidArchive``, with their
``TooLarge`` kinds for what exceeds a limit.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps

MAX_SIDE = 320  # pixels on the long side of a stored thumbnail
# Pixels an uploaded image may declare (width x height). A 48-megapixel phone photo passes; a
# "decompression bomb" (a few kB of PNG declaring 30,000 x 30,000) is refused from its header,
# before any pixel is decoded: decoding it would take 900 MP x 4 bytes of memory.
MAX_PIXELS = 50_000_000
# Decoded pixels one archive may cost in all: bounds the CPU time of one request. Entries past
# it are refused (each says so) and can be sent in another archive. JPEGs are decoded at a
# reduced scale, so a thousand full-size photos cost a fraction of it.
MAX_ARCHIVE_PIXELS = 2_000_000_000
MAX_ARCHIVE_ENTRIES = 10_000  # files in one zip archive
# Records of an archive's directory (files, folders, macOS's "._" companions), counted before
# Python's zipfile parses them: it builds every record before the files can be counted, and
# 600,000 empty files in a 49 MB body took 9 s and 300 MB to parse only to be refused.
ARCHIVE_RECORDS_PER_FILE = 3
_DIRECTORY_RECORD = b"PK\x01\x02"  # the signature each central directory record starts with
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")  # what Pillow may identify an upload as; nothing else is tried
EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif")  # stripped from a zip entry's name
CONTENT_TYPE = "image/webp"
WEBP_QUALITY = 80
# libwebp effort 0-6: 2 encodes a 320 px thumbnail in half the time of 4 for 1-2 % more bytes.
WEBP_METHOD = 2
_READ_CHUNK = 64 * 1024
# Byte order marks a text file (SVG, HTML, XML) may start with, and their encodings.
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


class InvalidImage(ValueError):
    """Bytes that are not an acceptable image; the message says why."""


class ImageTooLarge(InvalidImage):
    """An image declaring more pixels than ``MAX_PIXELS`` (or past an archive's pixel budget)."""


class InvalidArchive(ValueError):
    """A body that is not a readable zip archive."""


class ArchiveTooLarge(InvalidArchive):
    """An archive whose entries or uncompressed bytes exceed the limits (a "zip bomb")."""


@dataclass(frozen=True)
class Thumbnail:
    """A re-encoded thumbnail: its bytes, content type, size, a tag of its bytes and what decoding cost."""

    data: bytes
    content_type: str
    width: int
    height: int
    etag: str
    decoded_pixels: int = 0

    @classmethod
    def from_image(cls, image: Image.Image, decoded_pixels: int = 0, *, lossless: bool = False) -> Thumbnail:
        """Encode a Pillow image (already at most MAX_SIDE on its long side) as the stored WebP.

        ``lossless`` suits flat drawings: smaller and about four times faster to encode than lossy.
        """
        out = io.BytesIO()
        if lossless:
            image.save(out, "WEBP", lossless=True, method=0)
        else:
            image.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
        data = out.getvalue()
        return cls(data, CONTENT_TYPE, image.width, image.height, content_tag(data), decoded_pixels)


def content_tag(data: bytes) -> str:
    """A short tag of a thumbnail's bytes: its ETag, and the version in its long-cached URL."""
    return hashlib.sha256(data).hexdigest()[:20]


def _looks_like_markup(raw: bytes) -> bool:
    """True when the bytes start, after any byte order mark and white space, with ``<``."""
    head = raw[:1024]
    for bom, codec in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :].decode(codec, "ignore").encode("utf-8")
            break
    return head.lstrip(b" \t\r\n\f").startswith(b"<")


def _open(raw: bytes) -> ImageFile.ImageFile:
    if not raw:
        raise InvalidImage("the image is empty (0 bytes)")
    if _looks_like_markup(raw):
        raise InvalidImage("markup (SVG, HTML or XML) is not accepted: send a JPEG, PNG, WebP or GIF image")
    try:
        return Image.open(io.BytesIO(raw), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise ImageTooLarge(
            f"the image declares more than {limit:,} pixels; at most {MAX_PIXELS:,} are accepted"
        ) from exc
    except Image.UnidentifiedImageError:
        raise InvalidImage("not a JPEG, PNG, WebP or GIF image") from None
    except Exception as exc:  # a header Pillow recognised but cannot read
        raise InvalidImage(f"not a readable image: {exc}") from None


def check_pixels(width: int, height: int, limit: int = MAX_PIXELS) -> None:
    """Raise ImageTooLarge when ``width`` x ``height`` exceeds ``limit`` pixels."""
    if width * height > limit:
        raise ImageTooLarge(
            f"the image is {width:,} x {height:,} = {width * height:,} pixels; at most {limit:,} are accepted"
        )


_ORIENTATION_TAG = 0x0112


def make_thumbnail(raw: bytes, *, pixel_budget: int | None = None) -> Thumbnail:
    """Decode ``raw`` (JPEG, PNG, WebP or GIF; the first frame) and re-encode it as a WebP thumbnail.

    The pixel count is checked from the header, before decoding; a JPEG is decoded at the
    smallest scale that still covers MAX_SIDE. ``pixel_budget``: the decoded pixels this image
    may still cost (an archive's remainder). Raises InvalidImage (ImageTooLarge for the limits).
    """
    with _open(raw) as image:
        check_pixels(*image.size)
        if image.format == "JPEG":
            # DCT scaling: a 12-megapixel photo decodes at 1/8 scale, ~60x less work and memory.
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))
        decoded = image.size[0] * image.size[1]
        if pixel_budget is not None and decoded > pixel_budget:
            raise ImageTooLarge(
                f"the archive's pixel budget ({MAX_ARCHIVE_PIXELS:,} decoded pixels) is spent: "
                "send the remaining images in another archive"
            )
        # Decoded before anything else reads it: getexif() of a PNG decodes it too, and would
        # swallow the error that a corrupt one must be refused for.
        try:
            image.load()
        except OSError as exc:
            raise InvalidImage(f"the image is truncated or corrupt: {exc}") from None
        except Exception as exc:
            raise InvalidImage(f"the image cannot be decoded: {exc}") from None
        try:
            orientation = image.getexif().get(_ORIENTATION_TAG)
        except Exception:  # a broken EXIF block only loses the rotation
            orientation = None
        small = _displayable(image)
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if orientation and orientation != 1:
        small.getexif()[_ORIENTATION_TAG] = orientation
        small = ImageOps.exif_transpose(small)
    return Thumbnail.from_image(small, decoded)


def _displayable(image: Image.Image) -> Image.Image:
    """The image in RGB, or RGBA where it has transparency."""
    if image.mode in ("RGB", "RGBA"):
        return image.copy()
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float greys: scale to 8 bits (a plain convert would clip most of them white).
        gray = image.convert("F")
        low, high = gray.getextrema()
        span = (high - low) or 1.0
        return gray.point(lambda v: (v - low) * 255.0 / span).convert("L").convert("RGB")
    alpha = image.mode in ("LA", "La", "PA", "RGBa") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if alpha else "RGB")


# -- zip archives ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of an archive: its path inside, the image name it stands for, its bytes (None when refused)."""

    path: str
    image: str
    data: bytes | None
    problem: str | None = None


def image_name_of(path: str) -> str:
    """The image name a file stands for: its base name without one image extension (.png, .jpg, ...)."""
    base = posixpath.basename(path.replace("\\", "/"))
    stem, ext = posixpath.splitext(base)
    return stem if ext.lower() in EXTENSIONS and stem else base


def _is_skipped(info: zipfile.ZipInfo) -> bool:
    """Folders, and the resource forks macOS adds to the archives it makes."""
    name = info.filename.replace("\\", "/")
    return info.is_dir() or name.startswith("__MACOSX/") or posixpath.basename(name).startswith("._")


def open_archive(raw: bytes, max_bytes: int, max_entries: int = MAX_ARCHIVE_ENTRIES) -> list[zipfile.ZipInfo]:
    """The files of a zip archive after checking its declared sizes; raises InvalidArchive / ArchiveTooLarge.

    ``max_bytes`` bounds the sum of the files' uncompressed sizes, ``max_entries`` their number;
    both are checked from the archive's directory, before anything is decompressed, and the
    directory's records are counted from the raw bytes before it is parsed.
    """
    if not raw:
        raise InvalidArchive("the body is empty: expected a zip archive")
    # Every record zipfile would parse starts with the signature, so this count bounds them
    # (bytes of a name or of compressed data can only add to it), in a pass over the bytes.
    records = raw.count(_DIRECTORY_RECORD)
    if records > ARCHIVE_RECORDS_PER_FILE * max_entries:
        raise ArchiveTooLarge(
            f"the archive's directory lists {records:,} entries; at most {max_entries:,} files "
            f"(and {ARCHIVE_RECORDS_PER_FILE * max_entries:,} entries with folders) are accepted"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        infos = [i for i in archive.infolist() if not _is_skipped(i)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise InvalidArchive(f"the body is not a readable zip archive: {exc}") from None
    if len(infos) > max_entries:
        raise ArchiveTooLarge(f"the archive holds {len(infos):,} files; at most {max_entries:,} are accepted")
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise ArchiveTooLarge(
            f"the archive's files declare {declared:,} bytes uncompressed; at most {max_bytes:,} are accepted (MAX_BODY_MB)"
        )
    if not infos:
        raise InvalidArchive("the archive holds no files")
    return infos


def zip_entries(raw: bytes, max_bytes: int, max_entries: int = MAX_ARCHIVE_ENTRIES) -> Iterator[ArchiveEntry]:
    """Each file of a zip archive in turn, its bytes read in chunks (one file in memory at a time).

    Raises ArchiveTooLarge as soon as the bytes actually decompressed exceed ``max_bytes`` in all
    (whatever the directory declared), InvalidArchive for an unreadable archive. A file that cannot
    be read by itself (encrypted, an unsupported compression, a bad checksum) comes with a ``problem``.
    """
    infos = open_archive(raw, max_bytes, max_entries)
    archive = zipfile.ZipFile(io.BytesIO(raw))
    total = 0
    for info in infos:
        image = image_name_of(info.filename)
        chunks = []
        try:
            with archive.open(info) as member:
                while chunk := member.read(_READ_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ArchiveTooLarge(
                            f"the archive's files hold more than {max_bytes:,} bytes uncompressed (MAX_BODY_MB)"
                        )
                    chunks.append(chunk)
        except ArchiveTooLarge:
            raise
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError, EOFError) as exc:
            yield ArchiveEntry(info.filename, image, None, f"cannot be read from the archive: {exc}")
            continue
        yield ArchiveEntry(info.filename, image, b"".join(chunks))
