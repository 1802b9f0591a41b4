"""data/thumbnails.py: decoding within limits, re-encoding, and reading zip archives, with no server."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image

from data import thumbnails
from data.thumbnails import (
    ArchiveTooLarge,
    ImageTooLarge,
    InvalidArchive,
    InvalidImage,
    image_name_of,
    make_thumbnail,
    zip_entries,
)
from tests import image_samples as samples


def test_make_thumbnail_reencodes_within_320_px_as_webp():
    thumb = make_thumbnail(samples.jpeg(2000, 1000))
    assert (thumb.width, thumb.height) == (320, 160) and thumb.content_type == "image/webp"
    image = Image.open(io.BytesIO(thumb.data))
    assert image.format == "WEBP" and image.size == (320, 160)
    assert thumb.etag == thumbnails.content_tag(thumb.data)
    small = make_thumbnail(samples.png(100, 50))
    assert (small.width, small.height) == (100, 50)  # never enlarged


def test_make_thumbnail_decodes_a_large_jpeg_at_a_reduced_scale():
    thumb = make_thumbnail(samples.jpeg(4000, 3000))
    assert thumb.decoded_pixels == 500 * 375  # 1/8 scale: the smallest that still covers 320 px
    assert make_thumbnail(samples.png(4000, 3000)).decoded_pixels == 4000 * 3000


def test_make_thumbnail_keeps_transparency_and_drops_metadata():
    rgba = samples.picture(200, 200, "RGBA")
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    thumb = make_thumbnail(samples.encoded(rgba, "PNG", pnginfo=None))
    assert Image.open(io.BytesIO(thumb.data)).mode == "RGBA"
    tagged = samples.encoded(samples.picture(50, 50), "JPEG", comment=b"<script>alert(1)</script>")
    assert b"<script>" not in make_thumbnail(tagged).data


def test_make_thumbnail_scales_16_bit_greys_instead_of_clipping_them():
    grey = Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 200)
    thumb = Image.open(io.BytesIO(make_thumbnail(samples.encoded(grey.convert("I;16"), "PNG")).data)).convert("L")
    low, high = thumb.getextrema()
    assert low < 30 and high > 220


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "empty"),
        (b"  \n<svg/>", "markup"),
        (b"<html>", "markup"),
        (b"\x00\x01\x02", "not a JPEG, PNG, WebP or GIF"),
        (samples.png()[:200], "truncated or corrupt"),
    ],
)
def test_make_thumbnail_refuses_with_a_reason(raw, message):
    with pytest.raises(InvalidImage, match=message) as caught:
        make_thumbnail(raw)
    assert not isinstance(caught.value, ImageTooLarge)


def test_make_thumbnail_refuses_a_decompression_bomb_from_its_header():
    bomb = samples.png_bomb()
    assert len(bomb) < 10_000
    images_made = Image.core.get_stats()["new_count"]  # Pillow's count of image buffers allocated
    start = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="at most 50,000,000"):
        make_thumbnail(bomb)
    assert time.perf_counter() - start < 0.5  # a header read (milliseconds), never 900 MP decoded
    assert Image.core.get_stats()["new_count"] == images_made  # not one pixel buffer allocated
    make_thumbnail(samples.png(40, 30))
    assert Image.core.get_stats()["new_count"] > images_made  # the count does see a decoded image


def test_make_thumbnail_checks_the_pixel_count_before_decoding():
    # Its pixel data is garbage: were it decoded, the refusal would be "corrupt", not its size.
    with pytest.raises(ImageTooLarge, match="10,000 x 5,001"):
        make_thumbnail(samples.png_declaring(10_000, 5_001))
    with pytest.raises(InvalidImage, match="corrupt"):
        make_thumbnail(samples.png_declaring(100, 100))


def test_make_thumbnail_stops_at_the_pixel_budget():
    with pytest.raises(ImageTooLarge, match="pixel budget"):
        make_thumbnail(samples.png(400, 300), pixel_budget=400 * 300 - 1)
    assert make_thumbnail(samples.png(400, 300), pixel_budget=400 * 300).decoded_pixels == 120_000


@pytest.mark.parametrize(
    "path, image",
    [
        ("a.png", "a"),
        ("dir/b.JPEG", "b"),
        ("dir\\c.webp", "c"),
        ("imgcontent.x_imgtemp.achalf", "imgcontent.x_imgtemp.achalf"),
        ("img_001.png.png", "img_001.png"),
        (".png", ".png"),
    ],
)
def test_image_name_of_strips_one_image_extension(path, image):
    assert image_name_of(path) == image


def test_zip_entries_reads_each_file_and_flags_unreadable_ones():
    raw = samples.zip_of({"a.png": b"A" * 10, "sub/": b"", "__MACOSX/._a.png": b"x", "b.gif": b"B"})
    entries = list(zip_entries(raw, max_bytes=1000))
    assert [(e.path, e.image, e.data) for e in entries] == [("a.png", "a", b"A" * 10), ("b.gif", "b", b"B")]
    corrupt = bytearray(samples.zip_of({"c.png": b"C" * 1000}, zipfile.ZIP_STORED))
    corrupt[corrupt.index(b"C" * 100) + 5] = ord("D")  # a bad checksum
    (entry,) = zip_entries(bytes(corrupt), max_bytes=10_000)
    assert entry.data is None and "cannot be read" in entry.problem


def test_zip_entries_checks_declared_sizes_and_counts_before_reading():
    with pytest.raises(ArchiveTooLarge, match="declare 104,857,600 bytes"):
        next(zip_entries(samples.zip_bomb(100), max_bytes=1 << 20))
    with pytest.raises(ArchiveTooLarge, match="holds 11 files"):
        next(zip_entries(samples.zip_of_many(11), max_bytes=1000, max_entries=10))
    with pytest.raises(InvalidArchive, match="not a readable zip"):
        next(zip_entries(b"PK\x03\x04 not really", max_bytes=1000))


def test_zip_entries_counts_directory_records_before_parsing_them(monkeypatch):
    """Too many records is refused from a count of their signatures: zipfile never parses them."""
    raw = samples.zip_of_many(31)
    monkeypatch.setattr(thumbnails.zipfile, "ZipFile", lambda *a, **k: pytest.fail("the directory was parsed"))
    with pytest.raises(ArchiveTooLarge, match="directory lists 31 entries; at most 10 files"):
        next(zip_entries(raw, max_bytes=1000, max_entries=10))
    monkeypatch.undo()
    folders = samples.zip_of({**{f"d{i}/": b"" for i in range(20)}, "a.png": b"A"})  # 21 records, 1 file
    assert [e.image for e in zip_entries(folders, max_bytes=1000, max_entries=10)] == ["a"]


def test_zip_entries_counts_the_bytes_it_inflates_whatever_the_directory_says(monkeypatch):
    """A directory understating sizes passes the declared check; counting while reading stops it."""
    raw = samples.zip_of({"a.png": b"\x00" * 3000, "b.png": b"\x00" * 3000})
    real = thumbnails.open_archive

    def lying(data, max_bytes, max_entries=thumbnails.MAX_ARCHIVE_ENTRIES):
        infos = real(data, 10**9, max_entries)
        assert sum(i.file_size for i in infos) > max_bytes  # the truth would have been refused
        return infos

    monkeypatch.setattr(thumbnails, "open_archive", lying)
    read = zip_entries(raw, max_bytes=4000)
    assert next(read).data == b"\x00" * 3000
    with pytest.raises(ArchiveTooLarge, match="more than 4,000 bytes"):
        next(read)
