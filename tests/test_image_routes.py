"""PUT, DELETE and GET /api/images through the app from the factory, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from PIL import Image

from dashboard.factory import create_app
from data.thumbnails import MAX_ARCHIVE_ENTRIES, MAX_SIDE
from tests import image_samples as samples
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
TOKEN = "s3cret-token"
ZIP = {**HEADERS, "Content-Type": "application/zip"}


def served(client, name: str, **query):
    return client.get(f"/api/images/{name}", query_string={"business": "Acme", "source": "vision", **query})


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def seeded(client, store):
    """The store with one thumbnail in it, so "unchanged" means something."""
    assert client.put("/api/images/kept.png", data=samples.png(), headers=HEADERS).status_code == 201
    return store


@pytest.fixture
def small_client(settings, store):
    """A client of an app whose body limit is 1 MiB."""
    return create_app(settings.with_overrides(max_body_mb=1), store).server.test_client()


def assert_refused(client, store, before, response, status, error_start):
    """The answer is the API's error shape with that status; nothing changed; the server still works."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "details"} and body["error"].startswith(error_start), body
    assert body["details"] and all(isinstance(d, str) for d in body["details"])
    assert snapshot(store) == before
    assert client.get("/healthz").status_code == 200
    assert served(client, "kept.png").status_code == 200


# -- storing one image ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, size",
    [
        (samples.jpeg(1600, 1200), (320, 240)),
        (samples.png(300, 900, "RGBA"), (107, 320)),
        (samples.encoded(samples.picture(200, 100, "P"), "GIF"), (200, 100)),
        (samples.encoded(samples.picture(640, 640), "WEBP"), (320, 320)),
    ],
    ids=["jpeg", "png-alpha", "gif", "webp"],
)
def test_put_image_stores_a_reencoded_thumbnail_at_most_320_px(client, store, body, size):
    response = client.put("/api/images/img_001.png", data=body, headers=HEADERS)
    assert response.status_code == 201
    answer = response.get_json()
    assert answer["image"] == "img_001.png" and (answer["width"], answer["height"]) == size
    got = served(client, "img_001.png")
    assert got.status_code == 200 and got.mimetype == "image/webp"
    assert got.data != body and len(got.data) == answer["bytes"]
    image = decoded(got.data)
    assert image.format == "WEBP" and image.size == size and max(image.size) <= MAX_SIDE


def test_put_image_again_replaces_it_with_200_and_a_new_etag(client, store):
    first = client.put("/api/images/a", data=samples.png(400, 300), headers=HEADERS)
    etag = served(client, "a").headers["ETag"]
    second = client.put("/api/images/a", data=samples.jpeg(400, 300), headers=HEADERS)
    assert (first.status_code, second.status_code) == (201, 200)
    assert served(client, "a").headers["ETag"] != etag
    assert list(store.thumbnail_tags("Acme", "vision")) == ["a"]


def test_put_image_keeps_exif_orientation(client):
    image = Image.new("RGB", (400, 200), "red")
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 200 wide, 400 high
    body = samples.encoded(image, "JPEG", exif=exif)
    assert client.put("/api/images/turned", data=body, headers=HEADERS).get_json()["width"] == 160


def test_put_image_accepts_gzip_and_needs_the_dataset_headers(client, store):
    body = gzip.compress(samples.png())
    response = client.put("/api/images/z", data=body, headers={**HEADERS, "Content-Encoding": "gzip"})
    assert response.status_code == 201
    missing = client.put("/api/images/y", data=samples.png(), headers={"Business": "Acme"})
    assert missing.status_code == 400 and "Image-Source header is missing" in missing.get_json()["details"]


def test_image_names_are_url_decoded_and_kept_per_dataset(client, store):
    name = "imgcontent.a b/c?d#é.png"
    quoted = "imgcontent.a%20b%2Fc%3Fd%23%C3%A9.png"
    assert client.put(f"/api/images/{quoted}", data=samples.png(), headers=HEADERS).status_code == 201
    assert store.thumbnail_tags("Acme", "vision").keys() == {name}
    assert served(client, quoted).status_code == 200
    other = client.get(f"/api/images/{quoted}", query_string={"business": "Acme", "source": "web"})
    assert other.status_code == 404


def test_image_and_dataset_names_are_nfc_on_every_image_route(client, store):
    """A name sent decomposed (as macOS names files) is the NFC name the features PUT stores."""
    import unicodedata
    from urllib.parse import quote

    nfc, nfd = "café", unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    assert client.put(f"/api/images/{quote(nfd)}.png", data=samples.png(), headers=HEADERS).status_code == 201
    assert store.thumbnail_tags("Acme", "vision").keys() == {nfc + ".png"}
    assert served(client, quote(nfc) + ".png").status_code == 200
    assert served(client, quote(nfd) + ".png").status_code == 200
    business = {"Business": unicodedata.normalize("NFD", "Crème"), "Image-Source": "vision"}
    assert client.put("/api/images/x.png", data=samples.png(), headers=business).status_code == 201
    query = {"business": unicodedata.normalize("NFD", "Crème"), "source": "vision"}
    assert client.get("/api/images/x.png", query_string=query).status_code == 200
    assert store.thumbnail_tags("Crème", "vision").keys() == {"x.png"}
    archive = samples.zip_of({f"{nfd}2.png": samples.png(), f"{nfd}3.png": samples.png(), "café3.jpg": samples.jpeg()})
    answer = client.put("/api/images", data=archive, headers=ZIP).get_json()
    assert [s["image"] for s in answer["stored"]] == [nfc + "2"]
    assert {r["image"] for r in answer["refused"]} == {nfc + "3"}  # one name in NFC: refused for both files
    assert client.delete(f"/api/images/{quote(nfd)}2", headers=HEADERS).status_code == 200
    assert store.thumbnail_tags("Acme", "vision").keys() == {nfc + ".png"}


# -- serving -------------------------------------------------------------------------------------


def test_get_image_headers_etag_304_and_long_cache(client, seeded):
    response = served(client, "kept.png")
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'"
    assert headers["Content-Type"] == "image/webp"
    etag = headers["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    assert "max-age=86400" in headers["Cache-Control"]
    versioned = served(client, "kept.png", v=etag.strip('"'))
    assert versioned.headers["Cache-Control"] == "max-age=31536000, immutable"
    again = client.get(
        "/api/images/kept.png",
        query_string={"business": "Acme", "source": "vision"},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    stale = client.get(
        "/api/images/kept.png", query_string={"business": "Acme", "source": "vision"}, headers={"If-None-Match": '"x"'}
    )
    assert stale.status_code == 200 and stale.data == response.data


def test_get_image_is_404_without_a_thumbnail_and_400_without_the_dataset(client, seeded):
    missing = served(client, "nothing.png")
    assert missing.status_code == 404 and missing.get_json()["error"] == "no thumbnail"
    response = client.get("/api/images/kept.png", query_string={"business": "Acme"})
    assert response.status_code == 400 and response.get_json()["details"] == ["source parameter is missing"]


def test_delete_image_removes_it_and_then_is_404(client, seeded):
    response = client.delete("/api/images/kept.png", headers=HEADERS)
    assert response.status_code == 200 and response.get_json() == {"image": "kept.png", "deleted": True}
    assert served(client, "kept.png").status_code == 404
    assert client.delete("/api/images/kept.png", headers=HEADERS).status_code == 404


def test_writes_need_the_token_but_reads_do_not(settings, store, seeded):
    client = create_app(settings.with_overrides(ingest_token=TOKEN), store).server.test_client()
    before = snapshot(store)
    assert client.put("/api/images/b", data=samples.png(), headers=HEADERS).status_code == 401
    assert client.put("/api/images", data=samples.zip_of({"b.png": samples.png()}), headers=ZIP).status_code == 401
    assert client.delete("/api/images/kept.png", headers=HEADERS).status_code == 401
    assert snapshot(store) == before
    assert served(client, "kept.png").status_code == 200
    auth = {**HEADERS, "Authorization": f"Bearer {TOKEN}"}
    assert client.put("/api/images/b", data=samples.png(), headers=auth).status_code == 201


def test_thumbnails_are_kept_across_builds(client, store, seeded):
    for _ in range(2):
        assert client.put("/api/features", json={"kept.png": {"x": 0.5}}, headers=HEADERS).status_code == 201
    assert served(client, "kept.png").status_code == 200


# -- refusals ------------------------------------------------------------------------------------

TRUNCATED_PNG = samples.png()[:-400]
REFUSED_IMAGES = [
    ("empty", b"", 400, "invalid image", "empty"),
    ("svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 400, "invalid image", "markup"),
    ("svg-bom", b'\xef\xbb\xbf  <svg xmlns="http://www.w3.org/2000/svg"/>', 400, "invalid image", "markup"),
    ("svg-utf16", "\ufeff<svg/>".encode("utf-16-le"), 400, "invalid image", "markup"),
    ("html", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", 400, "invalid image", "markup"),
    ("text", b"GIF89 is not enough", 400, "invalid image", "not a JPEG, PNG, WebP or GIF"),
    ("bmp", samples.encoded(samples.picture(20, 20), "BMP"), 400, "invalid image", "not a JPEG, PNG, WebP or GIF"),
    ("truncated-png", TRUNCATED_PNG, 400, "invalid image", "the image is truncated or corrupt"),
    ("corrupt-png", samples.png_declaring(100, 100), 400, "invalid image", "the image is truncated or corrupt"),
    ("truncated-jpeg", samples.jpeg()[:3000], 400, "invalid image", "the image is truncated or corrupt"),
    ("bomb-900-megapixels", samples.png_bomb(), 413, "image too large", "the image declares more than"),
    ("over-the-limit", samples.png_declaring(10_000, 5_001), 413, "image too large", "the image is 10,000 x 5,001"),
]  # fmt: skip


@pytest.mark.parametrize(
    "body, status, error, detail", [r[1:] for r in REFUSED_IMAGES], ids=[r[0] for r in REFUSED_IMAGES]
)
def test_put_image_refuses_what_is_not_an_acceptable_image(client, seeded, body, status, error, detail):
    before = snapshot(seeded)
    response = client.put("/api/images/new.png", data=body, headers=HEADERS)
    assert_refused(client, seeded, before, response, status, error)
    assert detail in response.get_json()["details"][0]


@pytest.mark.parametrize("quoted", ["%20", "%00", "a%00b"], ids=["blank", "nul", "inner-nul"])
def test_put_image_refuses_an_invalid_name(client, seeded, quoted):
    before = snapshot(seeded)
    response = client.put(f"/api/images/{quoted}", data=samples.png(), headers=HEADERS)
    assert_refused(client, seeded, before, response, 400, "invalid image name")


def test_put_image_refuses_a_body_over_the_limit(small_client, seeded):
    before = snapshot(seeded)
    response = small_client.put("/api/images/big", data=b"\xff\xd8" + b"\x00" * (1 << 20), headers=HEADERS)
    assert_refused(small_client, seeded, before, response, 413, "request body too large")


# -- zip archives --------------------------------------------------------------------------------


def test_put_zip_stores_each_good_file_and_lists_each_refused_one(client, store):
    archive = samples.zip_of(
        {
            "photos/one.jpg": samples.jpeg(),
            "two.PNG": samples.png(),
            "imgcontent.x_imgtemp.achalf": samples.png(),  # no image extension: the whole name
            "bad.png": b"<svg/>",
            "dup/three.png": samples.png(),
            "three.jpg": samples.jpeg(),
            "__MACOSX/._one.jpg": b"\x00\x05",
            "folder/": b"",
        }
    )
    response = client.put("/api/images", data=archive, headers=ZIP)
    assert response.status_code == 200
    answer = response.get_json()
    assert [s["image"] for s in answer["stored"]] == ["one", "two", "imgcontent.x_imgtemp.achalf"]
    assert all(s["replaced"] is False and max(s["width"], s["height"]) <= MAX_SIDE for s in answer["stored"])
    refused = {r["path"]: r["error"] for r in answer["refused"]}
    assert set(refused) == {"bad.png", "dup/three.png", "three.jpg"}
    assert "markup" in refused["bad.png"] and "same image name" in refused["three.jpg"]
    assert store.thumbnail_tags("Acme", "vision").keys() == {"one", "two", "imgcontent.x_imgtemp.achalf"}
    again = client.put("/api/images", data=samples.zip_of({"one.jpg": samples.jpeg()}), headers=ZIP)
    assert again.get_json()["stored"][0]["replaced"] is True


def test_put_zip_needs_no_content_type(client, store):
    response = client.put("/api/images", data=samples.zip_of({"a.gif": samples.png()}), headers=HEADERS)
    assert response.status_code == 200 and store.thumbnail_tags("Acme", "vision").keys() == {"a"}


REFUSED_ARCHIVES = [
    ("not-a-zip", samples.png(), 400, "invalid archive"),
    ("empty", b"", 400, "invalid archive"),
    ("truncated", samples.zip_of({"a.png": samples.png()})[:-30], 400, "invalid archive"),
    ("no-files", samples.zip_of({}), 400, "invalid archive"),
    ("every-file-refused", samples.zip_of({"a.png": b"<html></html>", "b.png": samples.png_bomb()}), 400, "no image of the archive"),
    ("zip-bomb", samples.zip_bomb(100), 413, "archive too large"),
    ("too-many-files", samples.zip_of_many(MAX_ARCHIVE_ENTRIES + 1), 413, "archive too large"),
]  # fmt: skip


@pytest.mark.parametrize("body, status, error", [r[1:] for r in REFUSED_ARCHIVES], ids=[r[0] for r in REFUSED_ARCHIVES])
def test_put_zip_refuses_a_bad_archive_whole(small_client, seeded, body, status, error):
    before = snapshot(seeded)
    response = small_client.put("/api/images", data=body, headers=ZIP)
    assert_refused(small_client, seeded, before, response, status, error)


def test_put_zip_refuses_a_directory_of_too_many_records_before_parsing_it(client, seeded):
    body = samples.zip_of_many(3 * MAX_ARCHIVE_ENTRIES + 1)  # 2.6 MB: over small_client's body limit
    before = snapshot(seeded)
    response = client.put("/api/images", data=body, headers=ZIP)
    assert_refused(client, seeded, before, response, 413, "archive too large")
    assert "directory lists 30,001 entries" in response.get_json()["details"][0]


def test_put_zip_refuses_an_archive_over_the_limit_with_good_files_first(small_client, seeded):
    """Uncompressed bytes over MAX_BODY_MB: nothing is stored, not even the files before them."""
    good = {f"g{i}.png": samples.png() for i in range(3)}
    bomb = zipfile.ZipFile(io.BytesIO(samples.zip_bomb(2)))
    body = samples.zip_of({**good, "z.png": bomb.read("bomb.png")})
    before = snapshot(seeded)
    response = small_client.put("/api/images", data=body, headers=ZIP)
    assert_refused(small_client, seeded, before, response, 413, "archive too large")
    assert "MAX_BODY_MB" in response.get_json()["details"][0]
