"""Schemathesis against the OpenAPI document, with valid credentials: no answer breaks the contract.

A short derandomized run (a bounded number of examples per operation), so CI gets the same cases
each time; each case goes through the app (WSGI) on a database holding one dataset.
"""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.api.openapi import openapi_document
from dashboard.factory import create_app
from data.settings import Settings
from tests.databases import ENGINES, fresh_database
from tests.image_samples import encoded, picture, png, zip_of

# Images and archives of them are bytes JSON Schema cannot describe: send real small ones (the
# refusals of broken ones are tested in tests/test_image_routes.py).
_SMALL = picture(40, 30)
for _type, _bodies in {
    "application/zip": [
        zip_of({"img_1.png": png(40, 30)}),
        zip_of({"img_2.png": png(30, 40), "img_3.gif": encoded(_SMALL, "GIF")}),
    ],
    "image/jpeg": [encoded(_SMALL, "JPEG")],
    "image/png": [png(40, 30)],
    "image/webp": [encoded(_SMALL, "WEBP")],
    "image/gif": [encoded(_SMALL, "GIF")],
    "application/octet-stream": [png(30, 40)],
}.items():
    schemathesis.openapi.media_type(_type, st.sampled_from(_bodies))

TOKEN = "schemathesis-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 12


@pytest.fixture(scope="module", params=ENGINES)
def api_app(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("schemathesis")
    with fresh_database(request.param, folder) as url:
        yield from _seeded_app(url)


def _seeded_app(url: str):
    app = create_app(Settings.from_env({}, database_url=url, demo_data=False, ingest_token=TOKEN))
    client = app.server.test_client()
    headers = {**AUTH, "Business": "Acme", "Image-Source": "vision"}
    doc = {f"img_{i}": {"text": (i % 10) / 10, "logo": ((i * 7) % 10) / 10} for i in range(40)}
    assert client.put("/api/features", data=json.dumps(doc), headers=headers).status_code == 201
    ctr = {f"img_{i}": {"clicks": i % 7, "impressions": 100 + i} for i in range(40)}
    assert client.put("/api/ctr", data=json.dumps(ctr), headers=headers).status_code == 200
    yield app.server
    app.server.extensions["feature_store"].close()


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", api_app)


# One test per operation, named from the document the app serves (the pytest plugin of this
# schemathesis release does not load under this pytest).
OPERATIONS = [(method.upper(), path) for path, methods in openapi_document(2)["paths"].items() for method in methods]


def within_documented_range(case) -> bool:
    """min_pct <= max_pct, from <= to and clicks <= impressions: stated in the document's descriptions, as JSON
    Schema cannot relate two values."""
    query = case.query or {}
    try:
        if float(query.get("min_pct", 0)) > float(query.get("max_pct", 100)):
            return False
    except (TypeError, ValueError):
        pass
    body = case.body if isinstance(case.body, dict) else {}
    counts = [v for v in body.values() if isinstance(v, dict) and {"clicks", "impressions"} <= v.keys()]
    # Dated metrics hold their counts one level down, per day.
    days = [d for v in body.values() if isinstance(v, dict) for d in v.values() if isinstance(d, dict)]
    counts += [d for d in days if {"clicks", "impressions"} <= d.keys()]
    if str(query.get("from") or "") > str(query.get("to") or "9999-99-99"):
        return False  # from <= to: stated in the document, as min_pct <= max_pct
    # Counts are written as JSON integers (no fraction, no exponent); JSON Schema's integer also takes 5.0.
    return all(type(v["clicks"]) is int and type(v["impressions"]) is int for v in counts) and all(
        v["clicks"] <= v["impressions"] for v in counts
    )


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_openapi_document(api_schema, method, path):
    strategy = api_schema[path][method].as_strategy().filter(within_documented_range)

    @given(data=st.data())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(data):
        case = data.draw(strategy)
        case.call_and_validate(headers=AUTH)

    run()


def test_document_states_limits_headers_and_answers():
    """The rules a client cannot see in a schema alone are stated: 414/431/503 answers, header rules, min_pct <= max_pct."""
    doc = openapi_document(2)
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            if path == "/healthz":
                continue
            answers = operation["responses"]
            assert {"414", "431", "503"} <= answers.keys(), (method, path)
            assert "Retry-After" in answers["503"]["headers"]
    put = doc["paths"]["/api/features"]["put"]
    headers = {p["name"]: p for p in put["parameters"]}
    assert headers["Business"]["required"] and headers["Image-Source"]["required"]
    for name in ("Business", "Image-Source", "Build-Tag"):
        schema = headers[name]["schema"]
        assert schema["minLength"] == 1 and schema["maxLength"] == 255
        pattern = re.compile(schema["pattern"])
        assert pattern.search("jenkins-job-42") and not pattern.search("   ") and not pattern.search("a,b")
    summary = {p["name"]: p for p in doc["paths"]["/api/summary"]["get"]["parameters"]}
    assert "must not exceed max_pct" in summary["min_pct"]["description"]
