"""Pictures for the demo datasets, drawn from each image's own features, the same every time.

A demo image has no real picture, so one is drawn from what its features say: bands of its
colour features in proportion to their pixel fractions, and a mark for each label it carries
(``text`` a headline, ``smile`` a smiley, ``headwear`` a hat, ``poster`` a frame, ...). The
planted effects are then visible in a gallery: the images with ``text`` show text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from PIL import Image, ImageColor, ImageDraw, ImageFont

from data.batches import FeatureBatch
from data.thumbnails import Thumbnail

WIDTH, HEIGHT = 200, 150
PRESENT = 0.5  # a label is drawn when its confidence is above this (the page's default threshold)
_HEADLINES = ("SALE", "NEW", "-50%", "SHOP", "TODAY", "FREE", "NOW", "DROP")
_INK = (25, 25, 35)


# Pillow's own font at the two sizes drawn (loaded once, when the demo first draws).
_HEADLINE_FONT = ImageFont.load_default(size=30)
_BANNER_FONT = ImageFont.load_default(size=13)


def _colour(name: str) -> tuple[int, int, int] | None:
    try:
        return ImageColor.getrgb(name.removesuffix("_x"))[:3]
    except ValueError:
        return None


def _seed(image: str) -> int:
    return int.from_bytes(hashlib.blake2b(image.encode("utf-8"), digest_size=4).digest(), "big")


def _background(draw: ImageDraw.ImageDraw, colours: list[tuple[float, tuple[int, int, int]]], seed: int) -> None:
    """Vertical bands of the image's colours, widths in proportion to their pixel fractions."""
    if not colours:
        grey = 200 + seed % 40
        draw.rectangle((0, 0, WIDTH, HEIGHT), fill=(grey, grey, grey - 10))
        return
    # Pixels no colour feature accounts for show as a light neutral band.
    colours = colours + [(max(0.0, 1.0 - sum(f for f, _ in colours)), (236, 236, 230))]
    total = sum(f for f, _ in colours)
    x = 0.0
    for fraction, rgb in colours:
        right = x + WIDTH * fraction / total
        draw.rectangle((round(x), 0, round(right), HEIGHT), fill=rgb)
        x = right


def _smiley(draw: ImageDraw.ImageDraw, cx: int, cy: int, r: int) -> None:
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 214, 10), outline=_INK, width=2)
    eye = max(2, r // 7)
    for dx in (-r // 3, r // 3):
        draw.ellipse((cx + dx - eye, cy - r // 3 - eye, cx + dx + eye, cy - r // 3 + eye), fill=_INK)
    draw.arc((cx - r // 2, cy - r // 4, cx + r // 2, cy + r // 2), start=20, end=160, fill=_INK, width=3)


def _face(draw: ImageDraw.ImageDraw, cx: int, cy: int, r: int) -> None:
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(236, 200, 170), outline=_INK, width=2)
    eye = max(2, r // 8)
    for dx in (-r // 3, r // 3):
        draw.ellipse((cx + dx - eye, cy - r // 4 - eye, cx + dx + eye, cy - r // 4 + eye), fill=_INK)
    draw.line((cx - r // 3, cy + r // 3, cx + r // 3, cy + r // 3), fill=_INK, width=2)


def _hat(draw: ImageDraw.ImageDraw, cx: int, top: int, r: int) -> None:
    draw.rectangle((cx - r - 8, top - 4, cx + r + 8, top + 4), fill=(120, 30, 30), outline=_INK)
    draw.polygon(
        [(cx - r + 6, top - 4), (cx - r // 2, top - r), (cx + r // 2, top - r), (cx + r - 6, top - 4)],
        fill=(160, 40, 40),
        outline=_INK,
    )


def draw_demo_image(image: str, features: dict[str, float]) -> Image.Image:
    """A WIDTH x HEIGHT picture of one image, drawn from its features (name -> confidence)."""
    seed = _seed(image)
    colours = sorted(
        (
            (v, rgb)
            for name, v in features.items()
            if v > 0 and (rgb := _colour(name)) is not None and name not in _LABEL_MARKS
        ),
        key=lambda item: -item[0],
    )[:6]
    picture = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(picture)
    _background(draw, colours, seed)
    has = {name for name, v in features.items() if v > PRESENT}
    if "sky" in has:
        draw.rectangle((0, 0, WIDTH, HEIGHT // 3), fill=(135, 190, 235))
        draw.ellipse((WIDTH - 40, 8, WIDTH - 16, 32), fill=(255, 230, 120))
    if "fun" in has:
        for k in range(14):
            x, y = (seed >> k) % WIDTH, (seed // (k + 3)) % HEIGHT
            draw.ellipse((x, y, x + 5, y + 5), fill=((k * 67) % 256, (k * 131) % 256, (k * 29 + 90) % 256))
    if "product" in has:
        draw.rectangle((WIDTH - 62, HEIGHT - 58, WIDTH - 16, HEIGHT - 16), fill=(240, 240, 240), outline=_INK, width=2)
        draw.line((WIDTH - 62, HEIGHT - 44, WIDTH - 16, HEIGHT - 44), fill=_INK, width=2)
    cx, cy, r = (WIDTH // 3, HEIGHT // 2 + 10, 26)
    if "smile" in has:
        _smiley(draw, cx, cy, r)
    elif has & {"girl", "people", "headwear"}:
        _face(draw, cx, cy, r)
    if "headwear" in has:
        _hat(draw, cx, cy - r + 2, r)
    if "font" in has:
        for k in range(3):
            draw.rectangle((WIDTH // 2 + 6, 70 + 12 * k, WIDTH - 12 - 18 * k, 75 + 12 * k), fill=_INK)
    if "text" in has:
        headline = _HEADLINES[seed % len(_HEADLINES)]
        draw.rectangle((0, 8, WIDTH, 50), fill=(255, 255, 255))
        draw.text((WIDTH // 2, 29), headline, font=_HEADLINE_FONT, fill=(200, 20, 40), anchor="mm")
    if "poster" in has:
        draw.rectangle((2, 2, WIDTH - 3, HEIGHT - 3), outline=_INK, width=6)
        draw.rectangle((0, HEIGHT - 22, WIDTH, HEIGHT), fill=_INK)
        draw.text((WIDTH // 2, HEIGHT - 11), "POSTER", font=_BANNER_FONT, fill=(255, 255, 255), anchor="mm")
    return picture


# Labels drawn as marks, never as colours (``orange`` the fruit, ``sky`` the label).
_LABEL_MARKS = frozenset({"text", "poster", "smile", "headwear", "girl", "people", "fun", "font", "product", "sky"})


def image_features(batch: FeatureBatch) -> list[dict[str, float]]:
    """Each image's non-zero features, name -> confidence, in the batch's image order."""
    rows: list[dict[str, float]] = [{} for _ in batch.images]
    for i, j, value in batch.values:
        rows[i][batch.features[j]] = value
    return rows


def demo_thumbnails(batch: FeatureBatch, images: Iterable[str] | None = None) -> list[tuple[str, Thumbnail]]:
    """A drawn thumbnail per image of ``batch`` (or of ``images`` only), as the store takes them."""
    wanted = None if images is None else set(images)
    return [
        (image, Thumbnail.from_image(draw_demo_image(image, features), lossless=True))
        for image, features in zip(batch.images, image_features(batch))
        if wanted is None or image in wanted
    ]
