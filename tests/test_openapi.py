"""GET /api/openapi.json: in step with the Flask rules and the parsers, and true of real answers.

The property-based part draws requests from the document itself (parameters within and outside
their schemas, bodies of both layouts and arbitrary JSON) and checks that no answer is a 500 and
every answer matches what the document promises for its status.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from dashboard.api.drift import DRIFT_PARAMS, DriftQuery
from dashboard.api.params import FILTER_ALIASES
from dashboard.api.routes import SUMMARY_PARAMS, PairQuery, SummaryQuery
from data.analysis import DEFAULT_MIN_GROUP_SIZE, SUMMARY_COLUMNS
from data.filters import Filters

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Bounded by example count, not time; derandomized so that a run is reproducible.
PROPERTY_RUNS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def doc(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture
def filled(client):
    """The app's client with two builds and counted CTRs of a small dataset."""
    features = {f"img_{i}": {"x": (i % 3) / 2, "y": (i % 2) * 0.75, "<b>z</b>": 0.5} for i in range(12)}
    assert client.put("/api/features", json=features, headers=HEADERS).status_code == 201
    assert client.put("/api/features", json=features, headers=HEADERS).status_code == 201
    ctr = {f"img_{i}": {"clicks": i, "impressions": 40 + i} for i in range(12)}
    assert client.put("/api/ctr", json=ctr, headers=HEADERS).status_code == 200
    return client


def validator(doc: dict, schema: dict) -> Draft202012Validator:
    """A JSON Schema validator of ``schema`` whose $refs resolve inside the OpenAPI document."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def operation_of(doc: dict, path: str, method: str) -> dict:
    return doc["paths"][path][method.lower()]


def assert_documented(doc: dict, path: str, method: str, response) -> None:
    """The status is below 500, documented (or a documented default error), and the body matches."""
    assert response.status_code < 500, (path, response.status_code, response.get_data(as_text=True)[:300])
    responses = operation_of(doc, path, method)["responses"]
    promised = responses.get(str(response.status_code)) or (
        responses["default"] if response.status_code >= 400 else None
    )
    assert promised is not None, (path, method, response.status_code)
    content = promised.get("content", {})
    if "application/json" in content:
        assert response.mimetype == "application/json"
        errors = list(validator(doc, content["application/json"]["schema"]).iter_errors(response.get_json()))
        assert not errors, (path, response.status_code, [e.message for e in errors[:3]])
    else:
        assert response.mimetype in content


def test_openapi_document_is_openapi_3_1_with_valid_schemas(doc):
    assert doc["openapi"] == "3.1.0"
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (path, method)
            for parameter in operation.get("parameters", []):
                Draft202012Validator.check_schema(parameter["schema"])


def test_openapi_lists_every_api_route_and_nothing_else(app, doc):
    served = {}
    for rule in app.server.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule == "/healthz":
            # Flask's <converter:name> is OpenAPI's {name}.
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            served.setdefault(path, set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    documented = {path: set(operations) for path, operations in doc["paths"].items()}
    assert documented == served


def test_openapi_parameters_match_the_query_parsers(doc, settings):
    # What a query without parameters parses to, with the server's MIN_GROUP_SIZE.
    parsed = SummaryQuery.from_args({"business": "B", "source": "S"}, min_n=settings.min_group_size)
    for path in ("/api/summary", "/api/summary.csv", "/api/points.csv"):
        parameters = operation_of(doc, path, "get")["parameters"]
        # The CSVs are the page's downloads: the summary's own columns, without adjusted impact.
        expected = [n for n in SUMMARY_PARAMS if path == "/api/summary" or n != "adjusted"]
        assert [p["name"] for p in parameters] == expected
        defaults = {p["name"]: p["schema"].get("default") for p in parameters}
        param_of = {field: param for param, field in FILTER_ALIASES.items()}  # from/to are date_from/date_to
        assert {name: defaults[param_of.get(name, name)] for name in Filters.names()} == dataclasses.asdict(
            parsed.filters
        )
        assert defaults["min_n"] == settings.min_group_size == DEFAULT_MIN_GROUP_SIZE
        assert defaults.get("adjusted", "0") == "0" and parsed.adjusted is False and parsed.build_id is None
        assert {p["name"] for p in parameters if p["required"]} == {"business", "source"}
    drift = operation_of(doc, "/api/drift", "get")["parameters"]
    assert [p["name"] for p in drift] == list(DRIFT_PARAMS)
    fields = [f.name for f in dataclasses.fields(DriftQuery)]
    assert fields == ["business", "source", "from_build", "to_build", "filters"]
    assert {p["name"] for p in drift if p["required"]} == {"business", "source", "from_build", "to_build"}
    pair = [p["name"] for p in operation_of(doc, "/api/builds", "get")["parameters"]]
    assert pair == [f.name for f in dataclasses.fields(PairQuery)]


def test_openapi_parameter_bounds_are_the_parsers_bounds(doc, filled):
    """Each documented bound and choice is where /api/summary starts or stops refusing."""
    base = {"business": "Acme", "source": "vision"}
    for parameter in operation_of(doc, "/api/summary", "get")["parameters"]:
        name, schema = parameter["name"], parameter["schema"]
        accepted, refused = [], ["not-a-value"] if name not in ("business", "source") else []
        if "enum" in schema:
            accepted += schema["enum"]
        step = 1 if schema.get("type") == "integer" else 1e-9
        if "minimum" in schema:
            accepted.append(str(schema["minimum"]))
            refused.append(str(schema["minimum"] - step))
        if "maximum" in schema:
            accepted.append(str(schema["maximum"]))
            refused.append(str(schema["maximum"] + step))
        for value in accepted:
            query = {**base, name: value} | ({"min_pct": "0"} if name == "max_pct" else {})
            response = filled.get("/api/summary", query_string=query)
            assert response.status_code in (200, 404), (name, value, response.get_json())
        for value in refused:
            response = filled.get("/api/summary", query_string={**base, name: value})
            assert response.status_code == 400, (name, value)
            assert any(d.startswith(name) for d in response.get_json()["details"]), (name, value)


def test_openapi_summary_fields_are_the_answer_fields(doc, filled):
    answer = filled.get("/api/summary", query_string={"business": "Acme", "source": "vision"}).get_json()
    schemas = doc["components"]["schemas"]
    assert schemas["Summary"]["required"] == list(answer)
    assert schemas["SummaryFeature"]["required"] == SUMMARY_COLUMNS == list(answer["features"][0])
    query = {"business": "Acme", "source": "vision", "adjusted": "1"}
    adjusted = filled.get("/api/summary", query_string=query).get_json()
    assert set(schemas["Summary"]["properties"]) == set(adjusted) | {"adjusted_unavailable"}
    assert list(schemas["SummaryFeature"]["properties"]) == list(adjusted["features"][0])


@pytest.mark.parametrize(
    "method, path, query",
    [
        ("GET", "/api/datasets", {}),
        ("GET", "/api/builds", {"business": "Acme", "source": "vision"}),
        ("GET", "/api/builds", {"business": "Acme"}),
        ("GET", "/api/builds", {"business": "Nobody", "source": "vision"}),
        ("GET", "/api/summary", {"business": "Acme", "source": "vision", "weighting": "impressions"}),
        ("GET", "/api/summary", {"business": "Acme", "source": "vision", "adjusted": "1"}),
        ("GET", "/api/summary", {"business": "Acme", "source": "vision", "adjusted": "1", "weighting": "impressions"}),
        ("GET", "/api/summary", {"business": "Acme", "source": "vision", "build_id": "1", "min_n": "2"}),
        ("GET", "/api/summary", {"business": "Acme", "source": "vision", "confidence": "2"}),
        ("GET", "/api/summary", {"business": "Acme", "source": "vision", "build_id": "99999999999999999999"}),
        ("GET", "/api/drift", {"business": "Acme", "source": "vision", "from_build": "1", "to_build": "2"}),
        ("GET", "/api/drift", {"business": "Acme", "source": "vision", "from_build": "1", "to_build": "9"}),
        ("GET", "/api/drift", {"business": "Acme", "source": "vision", "from_build": "1"}),
        ("GET", "/api/summary.csv", {"business": "Acme", "source": "vision"}),
        ("GET", "/api/points.csv", {"business": "Acme", "source": "vision", "confidence": "0.4"}),
        ("GET", "/api/points.csv", {"business": "Acme", "source": "nothing"}),
        ("GET", "/api/version", {}),
        ("GET", "/api/openapi.json", {}),
        ("GET", "/healthz", {}),
    ],
)
def test_openapi_describes_real_answers(doc, filled, method, path, query):
    assert_documented(doc, path, method, filled.open(path, method=method, query_string=query))


def test_openapi_describes_write_answers(doc, client, store):
    cases = [
        ("/api/features", b'{"a": {"x": 0.5}}', HEADERS),
        ("/api/ctr", b'{"a": {"clicks": 1, "impressions": 2}}', HEADERS),
        ("/api/ctr", gzip.compress(b'{"a": 0.5}'), {**HEADERS, "Content-Encoding": "gzip"}),
        ("/api/features", b'{"a": {"x": 2}}', HEADERS),
        ("/api/features", b"{}", {"Business": "a,b", "Image-Source": "v"}),
        ("/api/ctr", b"{}", {**HEADERS, "Content-Encoding": "br"}),
        ("/api/ctr", b"{}", {**HEADERS, "Host": "evil.example"}),
    ]
    for path, body, headers in cases:
        assert_documented(doc, path, "PUT", client.put(path, data=body, headers=headers))
    for body, status in ((b'{"c": 0.5}', 200), (b'{"b": {"clicks": 2, "impressions": 3}}', 409)):
        response = client.patch("/api/ctr", data=body, headers=HEADERS)
        assert response.status_code == status
        assert_documented(doc, "/api/ctr", "PATCH", response)


# -- property-based: requests drawn from the document -------------------------------------

_SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_HOSTILE = st.one_of(
    _SAFE_TEXT,
    st.sampled_from(["", " ", "nan", "inf", "-1", "1e308", "99999999999999999999", "0x10", "1_0", "٣", "=1+1"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _value_of(schema: dict):
    """Values inside a parameter schema, and often outside it."""
    if "enum" in schema:
        inside = st.sampled_from(schema["enum"])
    elif schema.get("type") == "integer":
        inside = st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)).map(str)
    elif schema.get("type") == "number":
        inside = st.floats(schema.get("minimum", -1e9), schema.get("maximum", 1e9)).map(repr)
    else:
        inside = st.sampled_from(["Acme", "vision"])
    return st.one_of(inside, inside, _HOSTILE)


@st.composite
def _query(draw, parameters: list[dict]) -> dict:
    query = {}
    for parameter in parameters:
        if parameter["in"] == "query" and (parameter["required"] or draw(st.booleans())):
            if draw(st.integers(0, 9)) or not parameter["required"]:
                query[parameter["name"]] = draw(_value_of(parameter["schema"]))
    return query


def test_property_no_read_answers_500_or_strays_from_the_document(doc, filled):
    reads = [(path, op) for path, ops in doc["paths"].items() for method, op in ops.items() if method == "get"]

    @PROPERTY_RUNS
    @given(data=st.data())
    def run(data):
        path, operation = data.draw(st.sampled_from(reads))
        query = data.draw(_query(operation.get("parameters", [])))
        assert_documented(doc, path, "GET", filled.get(path, query_string=query))

    run()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | _SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_SAFE_TEXT, inner, max_size=4),
    max_leaves=12,
)
_NAMES = st.one_of(st.sampled_from(["a", "b", "", " ", "\ud800", "=cmd", "<a href='x'>y</a>"]), _SAFE_TEXT)
_FEATURES = st.dictionaries(_NAMES, st.dictionaries(_NAMES, st.floats(-0.5, 1.5) | _JSON, max_size=4), max_size=4)
_COUNTS = st.fixed_dictionaries(
    {"clicks": st.integers(-5, 2**64), "impressions": st.integers(-5, 2**64)},
    optional={"views": _JSON},
)
_CTR = st.dictionaries(_NAMES, st.floats(-0.5, 1.5) | _COUNTS | _JSON, max_size=4)
_HEADER_VALUE = st.one_of(st.sampled_from(["Acme", "vision", "a,b", "", " "]), st.text("abc ,;é", max_size=8))


def test_property_no_write_answers_500_or_changes_data_when_refused(doc, filled, store):
    @PROPERTY_RUNS
    @given(
        method_path=st.sampled_from([("PUT", "/api/features"), ("PUT", "/api/ctr"), ("PATCH", "/api/ctr")]),
        body=st.one_of(_FEATURES, _CTR, _JSON),
        headers=st.dictionaries(
            st.sampled_from(["Business", "Image-Source", "X-Business", "X-Image-Source", "Content-Encoding"]),
            _HEADER_VALUE,
        ),
        compress=st.booleans(),
    )
    def run(method_path, body, headers, compress):
        method, path = method_path
        data = json.dumps(body).encode()
        if compress:
            data, headers = gzip.compress(data), {**headers, "Content-Encoding": "gzip"}
        version = store.version()
        response = filled.open(path, method=method, data=data, headers=headers)
        assert_documented(doc, path, method, response)
        if response.status_code >= 400:
            assert store.version() == version

    run()


def test_openapi_describes_the_image_and_gallery_answers(doc, filled):
    from tests import image_samples as samples

    png = samples.png()
    archive = samples.zip_of({"img_1.png": png, "bad.png": b"<svg/>"})
    cases = [
        ("PUT", "/api/images/img_0", png, HEADERS),
        ("PUT", "/api/images/img_0", png, HEADERS),
        ("PUT", "/api/images/img_0", b"<html>", HEADERS),
        ("PUT", "/api/images/img_0", samples.png_bomb(), HEADERS),
        ("PUT", "/api/images/img_0", png, {"Business": "Acme"}),
        ("PUT", "/api/images", archive, HEADERS),
        ("PUT", "/api/images", png, HEADERS),
        ("DELETE", "/api/images/img_1", None, HEADERS),
        ("DELETE", "/api/images/img_1", None, HEADERS),
    ]
    for method, path, body, headers in cases:
        route = "/api/images/{name}" if path != "/api/images" else path
        assert_documented(doc, route, method, filled.open(path, method=method, data=body, headers=headers))
    pair = {"business": "Acme", "source": "vision"}
    for query in (pair, {"business": "Acme"}, {**pair, "source": "other"}):
        assert_documented(doc, "/api/images/{name}", "GET", filled.get("/api/images/img_0", query_string=query))
    for query in ({"feature": "x", "side": "without"}, {"feature": "nope"}, {"feature": "x", "limit": "999"}):
        assert_documented(doc, "/api/gallery", "GET", filled.get("/api/gallery", query_string={**pair, **query}))
