"""Thumbnails and the gallery: upload time, archive time, gallery latency and the demo's start-up cost.

Each measure is printed against a baseline run in the same process on the same data:

- PUT /api/images/<name> of a ~4 MB photo (a 12-megapixel JPEG, and a PNG photo that Pillow
  cannot decode at a reduced scale) through the app, against ``make_thumbnail`` of the same
  bytes alone (what the route adds: reading the body, one transaction).
- PUT /api/images of a zip of 1,000 small images (400 x 300 JPEGs), against ``make_thumbnail``
  of the same 1,000 files in a loop.
- GET /api/gallery on a 10,000 x 1,000 demo build (the feature and side changing between
  requests), against GET /api/version through the same app (the cost of any request).
- The first start's demo load with its drawn thumbnails against the same load without them.
- A 900-megapixel PNG bomb: the time to refuse it.

    .venv/bin/python bench/bench_images.py [--rounds 5] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import zipfile
from pathlib import Path

from common import BUSINESS, ENGINES, HEADERS, SOURCE, fresh_app, fresh_database, latency_line, median, timed

from data import demo_images, writes
from data.demo import demo_build, load_demo
from data.store import FeatureStore
from data.thumbnails import make_thumbnail
from tests import image_samples as samples

PUT_TARGET_S = 0.3
ZIP_TARGET_S = 30.0
GALLERY_TARGET_MS = 50.0


def photo_jpeg(target_bytes: int = 4_000_000) -> bytes:
    """A 4000 x 3000 JPEG of about ``target_bytes``: a picture with grain, as a camera's photo."""
    from PIL import Image, ImageFilter

    base = samples.picture(4000, 3000).filter(ImageFilter.GaussianBlur(3))
    noise = Image.effect_noise((4000, 3000), 40).convert("RGB")
    image = Image.blend(base, noise, 0.25)
    for quality in (95, 90, 85, 80, 75, 70):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= target_bytes * 1.15:
            return out.getvalue()
    return out.getvalue()


def photo_png(target_bytes: int = 4_000_000) -> bytes:
    """A PNG photo of about ``target_bytes`` (PNG has no reduced-scale decoding: the worst case)."""
    from PIL import Image

    side = 1800
    noise = Image.effect_noise((side, side), 20).convert("RGB")
    image = Image.blend(samples.picture(side, side), noise, 0.3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def put_photo(client, body: bytes) -> None:
    response = client.put("/api/images/photo.jpg", data=body, headers=HEADERS)
    if response.status_code not in (200, 201):
        raise SystemExit(f"PUT answered {response.status_code}: {response.get_data(as_text=True)[:300]}")


def small_images(count: int) -> list[bytes]:
    rng = random.Random(42)
    return [
        samples.encoded(samples.picture(400, 300, seed=rng.randrange(10**6)), "JPEG", quality=85) for _ in range(count)
    ]


def bench_uploads(url: str, engine: str, rounds: int, images: list[bytes], archive: bytes) -> None:
    app, store = fresh_app(url=url)
    client = app.server.test_client()
    for label, body in (("JPEG", photo_jpeg()), ("PNG", photo_png())):
        put_photo(client, body)  # warm
        put = median([timed(lambda b=body: put_photo(client, b)) for _ in range(rounds)])
        alone = median([timed(lambda b=body: make_thumbnail(b)) for _ in range(rounds)])
        verdict = "ok" if put <= PUT_TARGET_S else "MISSED"
        print(
            f"[{engine}] PUT /api/images/<name>, {len(body) / 1e6:.1f} MB {label} photo: {put:.3f} s "
            f"(target <= {PUT_TARGET_S} s) {verdict}; make_thumbnail alone {alone:.3f} s; ratio {put / alone:.2f}"
        )

    def put_zip():
        response = client.put("/api/images", data=archive, headers={**HEADERS, "Content-Type": "application/zip"})
        body = response.get_json()
        if response.status_code != 200 or body["refused"]:
            raise SystemExit(f"zip PUT answered {response.status_code}: {str(body)[:300]}")

    whole = timed(put_zip)
    alone = timed(lambda: [make_thumbnail(b) for b in images])
    verdict = "ok" if whole <= ZIP_TARGET_S else "MISSED"
    print(
        f"[{engine}] PUT /api/images, zip of {len(images):,} images ({len(archive) / 1e6:.1f} MB): {whole:.2f} s "
        f"(target <= {ZIP_TARGET_S:g} s) {verdict}; make_thumbnail of each alone {alone:.2f} s; ratio {whole / alone:.2f}"
    )
    store.close()


def bench_gallery(url: str, engine: str, requests: int) -> None:
    app, store = fresh_app(url=url)
    client = app.server.test_client()
    batch, ctr = demo_build(n_images=10_000, n_features=1_000)
    store.add_build(BUSINESS, SOURCE, batch)
    store.replace_ctr(BUSINESS, SOURCE, ctr)
    writes.prepare_nulls(store, BUSINESS, SOURCE)  # as the PUT routes do once their answer is sent
    # Thumbnails for a third of the images, so has_thumbnail is looked up for real.
    thumb = make_thumbnail(samples.png(64, 48))
    store.put_thumbnails(BUSINESS, SOURCE, [(image, thumb) for image in batch.images[::3]])
    features = ["text", "smile", "poster", "headwear", "girl", "fun", "product", "sky"]
    queries = [
        {"feature": features[k % len(features)], "side": ("with", "without")[k % 2], "confidence": 0.5, "limit": 48}
        for k in range(requests)
    ]
    base = {"business": BUSINESS, "source": SOURCE}

    def gallery(query):
        response = client.get("/api/gallery", query_string={**base, **query})
        if response.status_code != 200:
            raise SystemExit(
                f"GET /api/gallery answered {response.status_code}: {response.get_data(as_text=True)[:300]}"
            )

    gallery(queries[0])  # loads the build into the cache, as the page's first request does
    latency = median([timed(lambda q=q: gallery(q)) for q in queries])
    version = median([timed(lambda: client.get("/api/version")) for _ in range(requests)])
    print(latency_line(f"[{engine}] GET /api/gallery at 10,000 x 1,000, 48 a page", latency, GALLERY_TARGET_MS))
    print(
        f"[{engine}]   GET /api/version through the same app: median {version * 1000:.1f} ms; ratio {latency / version:.1f}"
    )
    store.close()


def bench_demo_start(folder: Path, rounds: int) -> None:
    drawn = demo_images.demo_thumbnails

    def start(draw: bool, k: int) -> float:
        store = FeatureStore(f"sqlite:///{folder / f'demo-{draw}-{k}.db'}")
        demo_images.demo_thumbnails = drawn if draw else (lambda *a, **kw: [])
        try:
            return timed(lambda: store.initialise(seed=load_demo))
        finally:
            demo_images.demo_thumbnails = drawn
            store.close()

    with_thumbs = median([start(True, k) for k in range(rounds)])
    without = median([start(False, k) for k in range(rounds)])
    print(
        f"[sqlite] first start's demo load: {with_thumbs:.2f} s with 946 drawn thumbnails, {without:.2f} s without; "
        f"ratio {with_thumbs / without:.1f} (the thumbnails add {with_thumbs - without:.2f} s, once per database)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    bomb = samples.png_bomb()
    refused = median([timed(lambda: _refuse(bomb)) for _ in range(args.rounds)])
    print(f"900-megapixel PNG bomb ({len(bomb):,} bytes): refused in {refused * 1000:.2f} ms")
    images = small_images(1_000)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, data in enumerate(images):
            zf.writestr(f"img_{k:04d}.jpg", data)
    archive = out.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for engine in args.engines.split(","):
            with fresh_database(engine, folder, f"uploads-{engine}.db") as url:
                bench_uploads(url, engine, args.rounds, images, archive)
            with fresh_database(engine, folder, f"gallery-{engine}.db") as url:
                bench_gallery(url, engine, args.requests)
        bench_demo_start(folder, max(1, args.rounds // 2))


def _refuse(bomb: bytes) -> None:
    from data.thumbnails import ImageTooLarge

    try:
        make_thumbnail(bomb)
    except ImageTooLarge:
        return
    raise SystemExit("the bomb was not refused")


if __name__ == "__main__":
    main()
