"""data/demo_images.py: demo thumbnails drawn from each image's features, the same every time."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from data.demo import DEMO_BUSINESS, DEMO_SOURCE, REFERENCE_BUSINESS, REFERENCE_SOURCE, load_demo
from data.demo_images import HEIGHT, WIDTH, demo_thumbnails, draw_demo_image

HEADLINE_RED = np.array([200, 20, 40])
SMILEY_YELLOW = np.array([255, 214, 10])


def share_of(image: Image.Image, colour: np.ndarray, tolerance: int = 40) -> float:
    """The share of the picture's pixels close to ``colour``."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    return float((np.abs(pixels - colour).sum(axis=2) < tolerance).mean())


def test_draw_demo_image_marks_the_labels_it_carries():
    plain = {"white": 0.6, "navy": 0.3}
    with_text = draw_demo_image("a", {**plain, "text": 0.9})
    with_smile = draw_demo_image("a", {**plain, "smile": 0.9})
    without = draw_demo_image("a", plain)
    assert with_text.size == (WIDTH, HEIGHT)
    assert share_of(with_text, HEADLINE_RED) > 0.01 and share_of(without, HEADLINE_RED) == 0
    assert share_of(with_smile, SMILEY_YELLOW) > 0.03 and share_of(without, SMILEY_YELLOW) == 0
    # Below the presence threshold a label is not drawn.
    assert share_of(draw_demo_image("a", {**plain, "text": 0.4}), HEADLINE_RED) == 0


def test_draw_demo_image_paints_colour_features_in_proportion():
    picture = draw_demo_image("b", {"red": 0.7, "blue": 0.3})
    assert abs(share_of(picture, np.array([255, 0, 0])) - 0.7) < 0.02
    assert abs(share_of(picture, np.array([0, 0, 255])) - 0.3) < 0.02


def test_demo_thumbnails_are_deterministic(store):
    load_demo(store)
    first = store.thumbnail_tags(DEMO_BUSINESS, DEMO_SOURCE)
    for business, source in ((DEMO_BUSINESS, DEMO_SOURCE), (REFERENCE_BUSINESS, REFERENCE_SOURCE)):
        images = set(store.dataset(business, source).images)
        assert store.thumbnail_tags(business, source).keys() == images
    row = store.thumbnail(DEMO_BUSINESS, DEMO_SOURCE, next(iter(first)))
    assert Image.open(io.BytesIO(row.data)).format == "WEBP"
    from data.demo import demo_build

    batch, _ = demo_build()
    again = dict((image, t.etag) for image, t in demo_thumbnails(batch, images=list(first)[:20]))
    assert again == {image: first[image] for image in again}


def test_demo_thumbnails_are_stored_in_the_start_up_transaction(store):
    """A seed that fails after load_demo leaves no build and no thumbnail behind."""

    def failing_seed(writer):
        load_demo(writer)
        raise RuntimeError("disk on fire")

    try:
        store.initialise(seed=failing_seed)
    except RuntimeError:
        pass
    assert store.is_empty() and store.thumbnail_tags(DEMO_BUSINESS, DEMO_SOURCE) == {}
    store.initialise(seed=load_demo)
    assert len(store.thumbnail_tags(DEMO_BUSINESS, DEMO_SOURCE)) == len(
        store.dataset(DEMO_BUSINESS, DEMO_SOURCE).images
    )
