"""PUT and PATCH /api/metrics and ``python -m ingest metrics``: dated clicks and impressions, all or nothing."""

from __future__ import annotations

import json

import pytest

from data.metrics_queries import METRIC_COLUMNS
from ingest.cli import main
from ingest.validation import validate_metrics
from tests.tables import snapshot

pytestmark = pytest.mark.both_engines

HEADERS = {"Business": "Acme", "Image-Source": "vision"}


def send(client, method, body, path="/api/metrics", headers=HEADERS):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.open(path, method=method, data=data, headers=headers)


def rows(store) -> list[tuple]:
    frame = store.metrics("Acme", "vision")
    return sorted(map(tuple, frame[METRIC_COLUMNS].itertuples(index=False, name=None)))


BODY = {
    "img_1": {"2026-03-01": {"clicks": 3, "impressions": 100}, "2026-03-02": {"clicks": 0, "impressions": 0}},
    "img_2": {"2026-03-02": {"clicks": 7, "impressions": 70}},
}


def test_put_metrics_stores_every_image_day(client, store):
    response = send(client, "PUT", BODY)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert {k: body[k] for k in ("images", "rows", "first_day", "last_day")} == {
        "images": 2,
        "rows": 3,
        "first_day": "2026-03-01",
        "last_day": "2026-03-02",
    }
    assert rows(store) == [
        ("img_1", "2026-03-01", 3, 100),
        ("img_1", "2026-03-02", 0, 0),
        ("img_2", "2026-03-02", 7, 70),
    ]
    # A PUT replaces every stored day.
    assert send(client, "PUT", {"img_3": {"2026-04-01": {"clicks": 1, "impressions": 2}}}).status_code == 200
    assert rows(store) == [("img_3", "2026-04-01", 1, 2)]


def test_patch_metrics_merges_day_by_day_and_a_retry_changes_nothing(client, store):
    assert send(client, "PUT", BODY).status_code == 200
    patch = {"img_1": {"2026-03-02": {"clicks": 5, "impressions": 50}, "2026-03-03": {"clicks": 1, "impressions": 9}}}
    assert send(client, "PATCH", patch).status_code == 200
    expected = [
        ("img_1", "2026-03-01", 3, 100),
        ("img_1", "2026-03-02", 5, 50),
        ("img_1", "2026-03-03", 1, 9),
        ("img_2", "2026-03-02", 7, 70),
    ]
    assert rows(store) == expected
    before = snapshot(store)
    again = send(client, "PATCH", patch)
    assert again.status_code == 200 and again.get_json()["rows"] == 4
    after = snapshot(store)
    for table in ("image_metrics_daily", "image_metrics_totals"):
        assert after[table] == before[table]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"img_1": {"2026-02-30": {"clicks": 1, "impressions": 2}}},
            ['image "img_1" day "2026-02-30": must be a date'],
        ),
        ({"img_1": {"03/01/2026": {"clicks": 1, "impressions": 2}}}, ['day "03/01/2026": must be a date']),
        ({"img_1": {"2026-03-01": {"clicks": 5, "impressions": 2}}}, ["clicks (5) must not exceed impressions (2)"]),
        ({"img_1": {"2026-03-01": {"clicks": -1, "impressions": 2}}}, ['"clicks": must be a whole number >= 0']),
        ({"img_1": {"2026-03-01": {"clicks": 1.5, "impressions": 2}}}, ['"clicks": must be a whole number >= 0']),
        ({"img_1": {"2026-03-01": {"clicks": 1}}}, ['"impressions" is missing']),
        ({"img_1": {"2026-03-01": {"clicks": 1, "impressions": 2, "spend": 3}}}, ['unexpected key "spend"']),
        ({"img_1": {"2026-03-01": 0.1}}, ['expected {"clicks": <int>, "impressions": <int>}']),
        ({"img_1": []}, ["must be an object of day"]),
        ({"img_1": {}}, ['image "img_1": has no days']),
        ([1, 2], ["body must be a JSON object"]),
        (
            {
                "a": {"2026-13-01": {"clicks": 1, "impressions": 2}},
                "b": {"2026-03-01": {"clicks": True, "impressions": 2}},
            },
            ['image "a" day "2026-13-01"', 'image "b" day "2026-03-01" "clicks"'],
        ),
    ],
)
def test_invalid_metrics_are_refused_naming_each_problem_and_nothing_changes(client, store, body, expected):
    assert send(client, "PUT", BODY).status_code == 200
    before = snapshot(store)
    for method in ("PUT", "PATCH"):
        response = send(client, method, body)
        assert response.status_code == 400, response.get_json()
        answer = response.get_json()
        assert answer["error"] == "invalid dated metrics"
        assert len(answer["details"]) == len(expected)
        for detail, wanted in zip(answer["details"], expected):
            assert wanted in detail
        assert snapshot(store) == before


def test_put_of_an_empty_object_removes_the_dated_metrics_and_patch_refuses_it(client, store):
    assert send(client, "PUT", BODY).status_code == 200
    refused = send(client, "PATCH", {})
    assert refused.status_code == 400
    assert send(client, "PUT", {}).status_code == 200
    assert rows(store) == [] and store.metric_set("Acme", "vision") is None


def test_ctr_and_dated_metrics_exclude_each_other_with_409(client, store):
    assert send(client, "PUT", {"img_1": 0.1}, path="/api/ctr").status_code == 200
    before = snapshot(store)
    for method in ("PUT", "PATCH"):
        response = send(client, method, BODY)
        assert response.status_code == 409
        assert "holds a CTR set" in response.get_json()["details"][0]
    assert snapshot(store) == before

    other = {"Business": "Acme", "Image-Source": "daily"}
    assert send(client, "PUT", BODY, headers=other).status_code == 200
    before = snapshot(store)
    for method, body in (
        ("PUT", {"img_1": 0.2}),
        ("PATCH", {"img_1": 0.2}),
        ("PATCH", {"img_1": {"clicks": 1, "impressions": 4}}),
    ):
        response = send(client, method, body, path="/api/ctr", headers=other)
        assert response.status_code == 409
        assert "holds dated metrics" in response.get_json()["details"][0]
    assert snapshot(store) == before


def test_metrics_writes_need_a_write_token(app, store, settings):
    from dashboard.factory import create_app
    from data.settings import Settings

    guarded = create_app(
        Settings.from_env({}, database_url=settings.database_url, demo_data=False, ingest_token="t0ken"), store
    )
    client = guarded.server.test_client()
    before = snapshot(store)
    assert send(client, "PUT", BODY).status_code == 401
    assert snapshot(store) == before
    ok = send(client, "PUT", BODY, headers={**HEADERS, "Authorization": "Bearer t0ken"})
    assert ok.status_code == 200


def test_gzip_body_is_accepted(client, store):
    import gzip

    data = gzip.compress(json.dumps(BODY).encode())
    response = client.put("/api/metrics", data=data, headers={**HEADERS, "Content-Encoding": "gzip"})
    assert response.status_code == 200 and len(rows(store)) == 3


def test_validate_metrics_is_pure_and_reports_up_to_the_limit():
    body = {f"img_{i}": {"2026-03-0x": {"clicks": 1, "impressions": 1}} for i in range(80)}
    frame, problems = validate_metrics(body)
    assert frame is None and len(problems) == 51 and problems[-1] == "... and 30 more problems"


def test_cli_metrics_loads_a_csv_and_merges_with_merge(db_url, store, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    path = tmp_path / "metrics.csv"
    path.write_text(
        "image,date,clicks,impressions\nimg_1,2026-03-01,3,100\nimg_1,2026-03-02,0,0\nimg_2,2026-03-02,7,70\n"
    )
    assert main(["metrics", str(path), "--business", "Acme", "--source", "vision", "--database-url", db_url]) == 0
    assert "3 image-days of 2 images, 2026-03-01 to 2026-03-02" in capsys.readouterr().out
    assert rows(store) == [
        ("img_1", "2026-03-01", 3, 100),
        ("img_1", "2026-03-02", 0, 0),
        ("img_2", "2026-03-02", 7, 70),
    ]
    path.write_text("image,date,clicks,impressions\nimg_2,2026-03-02,8,80\n")
    argv = ["metrics", str(path), "--business", "Acme", "--source", "vision", "--merge", "--database-url", db_url]
    assert main(argv) == 0
    assert rows(store)[-1] == ("img_2", "2026-03-02", 8, 80) and len(rows(store)) == 3
    # A bad row: nothing stored, every problem on stderr, exit 1.
    before = snapshot(store)
    path.write_text("image,date,clicks,impressions\nimg_2,2026-03-40,8,80\nimg_3,2026-03-02,9,x\n")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "2026-03-40" in err and '"impressions": must be a whole number' in err
    assert snapshot(store) == before
