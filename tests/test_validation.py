"""Pure payload validation: every accepted layout, every rejected value named by its place."""

from __future__ import annotations

import json
import math
import random

import pandas as pd
import pytest

from ingest.validation import (
    CTR_LAYOUT,
    FEATURES_LAYOUT,
    MAX_PROBLEMS,
    features_checked,
    parse_json_body,
    validate_ctr,
    validate_features,
    validate_target,
)


def parsed(text: str):
    """A body as the HTTP path sees it after parsing."""
    doc, problems = parse_json_body(text.encode())
    assert problems == []
    return doc


def random_doc(rng: random.Random, images: int = 40, features: int = 30) -> dict:
    """A sparse document with ints, floats, exact zeros and some images with nothing detected."""
    names = [f"label_{j}" for j in range(features)]
    doc = {}
    for i in range(images):
        row = {}
        for name in rng.sample(names, rng.randrange(0, features)):
            row[name] = rng.choice([0, 0.0, 1, round(rng.random(), 4), rng.random()])
        doc[f"img_{i}"] = row
    return doc


# -- parse_json_body -----------------------------------------------------------------------


def test_parse_json_body_reads_utf8_json_with_or_without_bom():
    body = '{"café ☕": {"x": 0.5}}'
    assert parse_json_body(body.encode()) == ({"café ☕": {"x": 0.5}}, [])
    assert parse_json_body(b"\xef\xbb\xbf" + body.encode()) == ({"café ☕": {"x": 0.5}}, [])


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"", "body is empty"),
        (b"  \n", "body is empty"),
        (b'{"a": {"x": 0.5}}\xff', "body is not valid UTF-8: byte 0xff at offset 17"),
        ('{"caf\u00e9": {}}'.encode("latin-1"), "body is not valid UTF-8"),
        (b'{"a": {"x": 0.5}', "body is not valid JSON"),
        (b"{'a': {}}", "body is not valid JSON"),
        (b'{"a": 1}{"b": 2}', "body is not valid JSON: Extra data"),
        (b"1" * 5000, "body is not valid JSON"),
        (b"[" * 100_000, "body is not valid JSON"),
    ],
)
def test_parse_json_body_rejects_what_is_not_json(raw, expected):
    doc, problems = parse_json_body(raw)
    assert doc is None
    assert len(problems) == 1 and problems[0].startswith(expected)


# -- validate_features ---------------------------------------------------------------------


def test_validate_features_keeps_union_of_features_in_first_seen_order():
    batch, problems = validate_features(parsed('{"a": {"y": 0.5, "x": 0.25}, "b": {"z": 1, "y": 0.75}}'))
    assert problems == []
    assert batch.images == ["a", "b"]
    assert batch.features == ["y", "x", "z"]
    assert batch.values == [(0, 0, 0.5), (0, 1, 0.25), (1, 2, 1), (1, 0, 0.75)]


def test_validate_features_drops_zeros_and_keeps_images_with_nothing_detected():
    batch, problems = validate_features(parsed('{"a": {}, "b": {"x": 0, "y": 0.0}, "c": {"x": 0.5}}'))
    assert problems == []
    assert batch.images == ["a", "b", "c"]
    assert batch.features == ["x", "y"]
    assert batch.values == [(2, 0, 0.5)]


def test_validate_features_accepts_bounds_and_integers():
    batch, problems = validate_features(parsed('{"a": {"zero": 0, "one": 1, "tiny": 5e-324, "top": 1.0}}'))
    assert problems == []
    assert batch.values == [(0, 1, 1), (0, 2, 5e-324), (0, 3, 1.0)]


def test_validate_features_fast_path_matches_checked_path():
    rng = random.Random(42)
    for _ in range(20):
        doc = random_doc(rng)
        fast, fast_problems = validate_features(doc)
        slow, slow_problems = features_checked(doc)
        assert fast_problems == slow_problems == []
        assert (fast.images, fast.features, fast.values) == (slow.images, slow.features, slow.values)


def test_validate_features_message_names_image_feature_and_value():
    batch, problems = validate_features(parsed('{"img_12": {"azure_x": "high"}}'))
    assert batch is None
    assert problems == ['image "img_12" feature "azure_x": value must be a number in [0, 1], got "high"']


BAD_FEATURES = [
    ("[]", f"body must be a JSON object {FEATURES_LAYOUT}, got a list of 0 items"),
    ('"text"', f'body must be a JSON object {FEATURES_LAYOUT}, got "text"'),
    ("null", f"body must be a JSON object {FEATURES_LAYOUT}, got null"),
    ("0.5", f"body must be a JSON object {FEATURES_LAYOUT}, got 0.5"),
    ("{}", f"body has no images: expected {FEATURES_LAYOUT}"),
    ('{"a": 0.5}', 'image "a": must be an object of feature -> confidence, got 0.5'),
    ('{"a": [0.5]}', 'image "a": must be an object of feature -> confidence, got a list of 1 item'),
    ('{"a": null}', 'image "a": must be an object of feature -> confidence, got null'),
    ('{"a": {"x": "0.5"}}', 'image "a" feature "x": value must be a number in [0, 1], got "0.5"'),
    ('{"a": {"x": true}}', 'image "a" feature "x": value must be a number in [0, 1], got true'),
    ('{"a": {"x": false}}', 'image "a" feature "x": value must be a number in [0, 1], got false'),
    ('{"a": {"x": null}}', 'image "a" feature "x": value must be a number in [0, 1], got null'),
    ('{"a": {"x": {}}}', 'image "a" feature "x": value must be a number in [0, 1], got an object with 0 keys'),
    ('{"a": {"x": NaN}}', 'image "a" feature "x": value must be a number in [0, 1], got NaN'),
    ('{"a": {"x": Infinity}}', 'image "a" feature "x": value must be a number in [0, 1], got Infinity'),
    ('{"a": {"x": -Infinity}}', 'image "a" feature "x": value must be a number in [0, 1], got -Infinity'),
    ('{"a": {"x": 1e999}}', 'image "a" feature "x": value must be a number in [0, 1], got Infinity'),
    ('{"a": {"x": -0.001}}', 'image "a" feature "x": value must be a number in [0, 1], got -0.001'),
    ('{"a": {"x": 1.0000001}}', 'image "a" feature "x": value must be a number in [0, 1], got 1.0000001'),
    ('{"a": {"x": 2}}', 'image "a" feature "x": value must be a number in [0, 1], got 2'),
    ('{"": {"x": 0.5}}', 'image "": name must not be empty'),
    ('{" \\t": {"x": 0.5}}', 'image " \\t": name must not be empty'),
    ('{"a": {"": 0.5}}', 'image "a" feature "": name must not be empty'),
    ('{"a": {"  ": 0.5}}', 'image "a" feature "  ": name must not be empty'),
    ('{"a": {"x": 0.5}, "a": {"y": 0.5}}', 'image "a": appears more than once'),
    ('{"a": {"x": 0.5, "x": 0.25}}', 'image "a" feature "x": appears more than once'),
]


@pytest.mark.parametrize("body, expected", BAD_FEATURES)
def test_validate_features_rejects_bad_documents(body, expected):
    batch, problems = validate_features(parsed(body))
    assert batch is None
    assert problems == [expected]


def test_validate_features_rejects_non_finite_python_floats():
    batch, problems = validate_features({"a": {"x": math.nan, "y": math.inf}, "b": {"x": 0.5, "y": math.nan}})
    assert batch is None
    assert problems == [
        'image "a" feature "x": value must be a number in [0, 1], got NaN',
        'image "a" feature "y": value must be a number in [0, 1], got Infinity',
        'image "b" feature "y": value must be a number in [0, 1], got NaN',
    ]


def test_validate_features_reports_every_problem_in_order_of_place():
    batch, problems = validate_features(parsed('{"a": {"x": 0.5, "y": "no"}, "": {"x": -1}, "c": 3}'))
    assert batch is None
    assert problems == [
        'image "a" feature "y": value must be a number in [0, 1], got "no"',
        'image "": name must not be empty',
        'image "" feature "x": value must be a number in [0, 1], got -1',
        'image "c": must be an object of feature -> confidence, got 3',
    ]


def test_validate_features_caps_problems_and_counts_the_rest():
    doc = {f"img_{i}": {"x": "bad"} for i in range(MAX_PROBLEMS + 70)}
    batch, problems = validate_features(doc)
    assert batch is None
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0] == 'image "img_0" feature "x": value must be a number in [0, 1], got "bad"'
    assert problems[-1] == "... and 70 more problems"


def test_validate_features_shows_long_values_shortened():
    batch, problems = validate_features({"a": {"x": "v" * 500}})
    assert problems == ['image "a" feature "x": value must be a number in [0, 1], got "' + "v" * 56 + "..."]


def test_validate_features_quotes_names_with_quotes_and_unicode():
    batch, problems = validate_features({'say "hi" ☕': {"x": "bad"}})
    assert problems == ['image "say \\"hi\\" ☕" feature "x": value must be a number in [0, 1], got "bad"']


# -- validate_ctr --------------------------------------------------------------------------


def test_validate_ctr_reads_plain_rates():
    frame, problems = validate_ctr(parsed('{"a": 0.25, "b": 0, "c": 1}'))
    assert problems == []
    assert frame["image"].tolist() == ["a", "b", "c"]
    assert frame["ctr"].tolist() == [0.25, 0.0, 1.0]
    assert frame["clicks"].isna().all() and frame["impressions"].isna().all()


def test_validate_ctr_reads_counts_and_divides():
    frame, problems = validate_ctr(
        parsed('{"a": {"clicks": 3, "impressions": 7}, "b": {"impressions": 5, "clicks": 0}}')
    )
    assert problems == []
    assert frame["image"].tolist() == ["a", "b"]
    assert frame["ctr"].tolist() == [3 / 7, 0.0]
    assert frame["clicks"].tolist() == [3, 0]
    assert frame["impressions"].tolist() == [7, 5]
    assert str(frame["clicks"].dtype) == "Int64"


def test_validate_ctr_rejects_mixed_layouts_with_a_clear_message():
    frame, problems = validate_ctr(parsed('{"a": 0.1, "b": {"clicks": 1, "impressions": 2}}'))
    assert frame is None
    assert problems == [
        'body mixes plain CTRs (e.g. image "a") with click and impression counts (e.g. image "b"): '
        "use one layout for every image"
    ]


BAD_CTR = [
    ("[0.1]", f"body must be a JSON object {CTR_LAYOUT}, got a list of 1 item"),
    ("{}", f"body has no images: expected {CTR_LAYOUT}"),
    ('{"a": "0.1"}', 'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got "0.1"'),
    ('{"a": true}', 'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got true'),
    ('{"a": null}', 'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got null'),
    ('{"a": NaN}', 'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got NaN'),
    ('{"a": Infinity}', 'image "a": expected a CTR in [0, 1] or {"clicks": <int>, "impressions": <int>}, got Infinity'),
    ('{"a": -0.1}', 'image "a": CTR must be a number in [0, 1], got -0.1'),
    ('{"a": 1.5}', 'image "a": CTR must be a number in [0, 1], got 1.5'),
    ('{"": 0.1}', 'image "": name must not be empty'),
    ('{"a": {"clicks": 3, "impressions": 2}}', 'image "a": clicks (3) must not exceed impressions (2)'),
    ('{"a": {"clicks": 0, "impressions": 0}}', 'image "a" "impressions": must be a whole number >= 1, got 0'),
    ('{"a": {"clicks": -1, "impressions": 5}}', 'image "a" "clicks": must be a whole number >= 0, got -1'),
    ('{"a": {"clicks": 1.0, "impressions": 5}}', 'image "a" "clicks": must be a whole number >= 0, got 1.0'),
    ('{"a": {"clicks": true, "impressions": 5}}', 'image "a" "clicks": must be a whole number >= 0, got true'),
    ('{"a": {"clicks": 1, "impressions": "5"}}', 'image "a" "impressions": must be a whole number >= 1, got "5"'),
    ('{"a": {"clicks": 1}}', 'image "a": "impressions" is missing'),
    (
        '{"a": {"clicks": 1, "impressions": 5, "ctr": 0.2}}',
        'image "a": unexpected key "ctr", expected only "clicks" and "impressions"',
    ),
    ('{"a": 0.1, "a": 0.2}', 'image "a": appears more than once'),
]


@pytest.mark.parametrize("body, expected", BAD_CTR)
def test_validate_ctr_rejects_bad_documents(body, expected):
    frame, problems = validate_ctr(parsed(body))
    assert frame is None
    assert problems == [expected]


def test_validate_ctr_caps_problems():
    frame, problems = validate_ctr({f"img_{i}": -1 for i in range(MAX_PROBLEMS + 5)})
    assert frame is None
    assert problems[-1] == "... and 5 more problems"


# -- validate_target -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "business, source, expected",
    [
        ("Acme", "vision", []),
        ("Robert'); DROP TABLE builds;--", 'Café ☕ "quoted"', []),
        (None, "vision", ["Business header is missing"]),
        ("Acme", None, ["Image-Source header is missing"]),
        ("", "vision", ["Business header must not be empty"]),
        ("Acme", "  ", ["Image-Source header must not be empty"]),
        (None, "", ["Business header is missing", "Image-Source header must not be empty"]),
    ],
)
def test_validate_target_requires_non_blank_names(business, source, expected):
    assert validate_target(business, source) == expected


def test_validate_target_uses_the_callers_labels():
    assert validate_target("", "s", labels=("--business", "--source")) == ["--business must not be empty"]


def test_validate_features_result_feeds_the_store(store):
    batch, _ = validate_features(parsed('{"a": {"x": 0.5}, "b": {}, "c": {"y": 1, "x": 0.25}}'))
    store.add_build("B", "S", batch)
    dataset = store.dataset("B", "S")
    assert list(dataset.images) == ["a", "b", "c"]
    assert list(dataset.features) == ["x", "y"]
    assert dataset.dense().tolist() == [[0.5, 0.0], [0.0, 0.0], [0.25, 1.0]]


def test_validate_ctr_result_feeds_the_store(store):
    frame, _ = validate_ctr(parsed('{"a": {"clicks": 1, "impressions": 4}}'))
    store.replace_ctr("B", "S", frame)
    stored = store.ctr("B", "S")
    pd.testing.assert_frame_equal(stored, frame, check_dtype=False)
    assert json.loads(json.dumps(stored["ctr"].tolist())) == [0.25]
