"""Image and archive bodies for the thumbnail tests and benchmarks, generated, deterministic.

Among them the hostile ones: a PNG of a few kB declaring 900 megapixels (a decompression bomb)
and a zip whose one file inflates from ~100 kB to 100 MB (a zip bomb).
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

from PIL import Image


def picture(width: int, height: int, mode: str = "RGB", seed: int = 1) -> Image.Image:
    """A deterministic picture with some detail (gradients and blocks), not a flat colour."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert(mode if mode != "P" else "RGB")
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        colour = tuple(rng.randrange(256) for _ in range(len(image.getbands())))
        image.paste(colour, (x, y, min(width, x + width // 5 + 1), min(height, y + height // 5 + 1)))
    return image.convert("P") if mode == "P" else image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    """The image's bytes in ``fmt`` (JPEG, PNG, WEBP, GIF)."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg(width: int = 640, height: int = 480, **options) -> bytes:
    """A JPEG photo-like image."""
    return encoded(picture(width, height), "JPEG", quality=90, **options)


def png(width: int = 400, height: int = 300, mode: str = "RGB") -> bytes:
    """A PNG image."""
    return encoded(picture(width, height, mode), "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 30_000, height: int = 30_000, rows: int = 64) -> bytes:
    """A PNG declaring ``width`` x ``height`` grey pixels whose first ``rows`` rows are real zeros.

    30,000 x 30,000 is 900 megapixels in about 6 kB: decoding it would allocate 900 MB.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    data = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but whose pixel data is garbage.

    Refused for its size it proves the check comes before decoding: decoded, it would fail as corrupt.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"not zlib data") + _chunk(b"IEND", b"")


def zip_of(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of ``files`` (path -> bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return out.getvalue()


def zip_bomb(inflated_mb: int = 100) -> bytes:
    """A zip of one file of ``inflated_mb`` MiB of zeros, about a thousandth of that compressed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("bomb.png", "w", force_zip64=True) as member:
            block = b"\x00" * (1 << 20)
            for _ in range(inflated_mb):
                member.write(block)
    return out.getvalue()


def zip_of_many(count: int) -> bytes:
    """A zip of ``count`` empty files (more entries than an archive may hold, in a small body)."""
    return zip_of({f"f{i}.png": b"" for i in range(count)}, zipfile.ZIP_STORED)
