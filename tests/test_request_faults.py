"""Read requests that used to end in a 500: ids past the id column, NUL in a name, a bare callback body.

Each must answer in the API's error shape with a 4xx, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "vision"}
PAIR = {"business": "Acme", "source": "vision"}
# Past SQLite's and PostgreSQL's BIGINT, past PostgreSQL's INTEGER, and far past either.
IDS_OUT_OF_RANGE = [str(2**63), str(2**64 + 7), str(2**31), str(2**63 - 1), "9" * 5000, "0" * 30 + "1" + "0" * 30]


@pytest.fixture
def one_build(client):
    answer = client.put("/api/features", data=json.dumps({"a": {"x": 0.5}, "b": {"y": 0.25}}), headers=HEADERS)
    assert answer.status_code == 201
    return answer.get_json()["build_id"]


def assert_error(answer, status: int, error: str | None = None) -> dict:
    body = answer.get_json()
    assert answer.status_code == status, body
    assert set(body) == {"error", "details"} and isinstance(body["details"], list)
    if error:
        assert body["error"] == error
    return body


@pytest.mark.parametrize("build_id", IDS_OUT_OF_RANGE)
def test_drift_build_id_out_of_range_is_an_unknown_build(client, one_build, build_id):
    """A drift build id past the id column (SQLite overflowed past 2^63, PostgreSQL past 2^31) is a 404."""
    for params in ({"from_build": build_id, "to_build": one_build}, {"from_build": one_build, "to_build": build_id}):
        assert_error(client.get("/api/drift", query_string={**PAIR, **params}), 404, "unknown build")


@pytest.mark.parametrize("build_id", IDS_OUT_OF_RANGE)
def test_summary_and_csv_build_id_out_of_range_is_an_unknown_build(client, one_build, build_id):
    for path in ("/api/summary", "/api/summary.csv", "/api/points.csv"):
        assert_error(client.get(path, query_string={**PAIR, "build_id": build_id}), 404)


@pytest.mark.parametrize(
    "path, params",
    [
        ("/api/summary", {**PAIR, "business": "Ac\x00me"}),
        ("/api/summary", {**PAIR, "source": "\x00"}),
        ("/api/summary.csv", {**PAIR, "business": "Acme\x00"}),
        ("/api/points.csv", {**PAIR, "source": "vi\x00sion"}),
        ("/api/builds", {**PAIR, "business": "\x00Acme"}),
        ("/api/drift", {**PAIR, "source": "vision\x00", "from_build": "1", "to_build": "1"}),
        ("/api/summary", {**PAIR, "weighting": "mean\x00"}),
        ("/api/summary", {**PAIR, "confidence": "0.5\x00"}),
        ("/api/images/one.png", {**PAIR, "business": "Ac\x00me"}),
        ("/api/images/one.png", {**PAIR, "source": "\x00"}),
        ("/api/gallery", {**PAIR, "business": "Ac\x00me", "feature": "text"}),
        ("/api/trend", {**PAIR, "source": "vi\x00sion", "feature": "text"}),
    ],
)
def test_nul_in_a_read_parameter_is_a_400(client, one_build, path, params):
    """PostgreSQL's text cannot hold NUL: a parameter with one is refused on every engine."""
    body = assert_error(client.get(path, query_string=params), 400)
    assert any("NUL" in d or "must be" in d for d in body["details"]), body


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "text",
        {"output": None},
        {"output": "no-such-output.children"},
        {"output": "..", "inputs": []},
    ],
)
def test_callback_route_refuses_a_body_that_is_no_callback_with_400(client, body):
    """POST /_dash-update-component with {} used to be an HTML 500 (KeyError 'output')."""
    assert_error(client.post("/_dash-update-component", json=body), 400, "invalid callback request")


def test_callback_route_refuses_malformed_dependencies_with_400(app, client):
    output = next(iter(app.callback_map))
    for body in (
        {"output": output, "inputs": {}},
        {"output": output, "inputs": [1]},
        {"output": output, "inputs": [{"id": "x"}]},
        {"output": output, "state": [[{"property": "value"}]]},
        {"output": output, "changedPropIds": [3]},
        {"output": output, "outputs": 3},
    ):
        assert_error(client.post("/_dash-update-component", json=body), 400, "invalid callback request")
    invalid_json = client.post("/_dash-update-component", data=b"{", content_type="application/json")
    assert_error(invalid_json, 400, "invalid callback request")
