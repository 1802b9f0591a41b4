"""The write seam: each write one transaction, then one after_write hook, for HTTP and the command line alike."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from data import queries, writes
from data.demo import demo_build
from data.errors import CtrFormConflict
from ingest.cli import load_csv
from tests.tables import snapshot
from tests.test_store import make_batch, make_ctr

pytestmark = pytest.mark.both_engines

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CSV = ROOT / "data" / "samples" / "seed_images_287.csv"
STORE_WRITES = {"add_build", "replace_ctr", "merge_ctr", "transaction", "write", "save_null_table"}


def test_write_schedules_the_post_write_work_once_per_dataset_after_commit(store):
    """Two writes of one pair and one of another: two jobs, run only when the caller runs them."""
    jobs = []
    batch = make_batch(1)

    def work(writer):
        writer.add_build("Acme", "vision", batch)
        writer.replace_ctr("Acme", "vision", make_ctr(batch.images, 1))
        return writer.add_build("Beta", "vision", make_batch(2))["build_id"]

    assert writes.write(store, work, schedule=jobs.append) == 2
    assert len(jobs) == 2
    assert snapshot(store)["null_tables"] == []
    for job in jobs:
        job()
    assert len(snapshot(store)["null_tables"]) == 2  # Acme's two weightings; Beta has no CTRs to test
    assert writes.prepare_nulls(store, "Acme", "vision") == 0


def test_a_write_that_fails_stores_nothing_and_schedules_nothing(store):
    batch = make_batch(1)
    store.add_build("Acme", "vision", batch)
    store.replace_ctr("Acme", "vision", make_ctr(batch.images, 1, counts=True))
    before = snapshot(store)
    jobs = []

    def work(writer):
        writer.add_build("Acme", "vision", make_batch(2))
        writer.merge_ctr("Acme", "vision", make_ctr(batch.images[:2], 2, counts=False))  # rates into counts

    with pytest.raises(CtrFormConflict):
        writes.write(store, work, schedule=jobs.append)
    assert jobs == [] and snapshot(store) == before


def test_a_failing_post_write_job_is_logged_and_the_write_stands(store, monkeypatch, caplog):
    batch = make_batch(1)

    def broken(*args):
        raise RuntimeError("no room for the table")

    monkeypatch.setattr(store, "save_null_table", broken)
    writes.write(
        store,
        lambda w: (w.add_build("Acme", "vision", batch), w.replace_ctr("Acme", "vision", make_ctr(batch.images, 1))),
    )
    assert "permutation nulls of 'Acme' / 'vision' were not prepared" in caplog.text
    assert store.builds("Acme", "vision")["build_id"].tolist() == [1]


def test_the_cli_stores_a_build_and_its_ctrs_in_one_transaction(store, monkeypatch, tmp_path):
    """A CSV load whose CTR write fails leaves no build behind (it used to store the build alone)."""
    before = snapshot(store)

    def failing(*args, **kwargs):
        raise RuntimeError("crash while writing the CTRs")

    monkeypatch.setattr(queries, "write_ctr_set", failing)
    with pytest.raises(RuntimeError, match="crash while writing the CTRs"):
        load_csv(store, REFERENCE_CSV, "Ref", "vision")
    assert snapshot(store) == before
    monkeypatch.undo()
    line = load_csv(store, REFERENCE_CSV, "Ref", "vision")
    assert line.endswith("; CTR for 287 images")
    assert len(store.builds("Ref", "vision")) == 1 and len(store.ctr("Ref", "vision")) == 287
    assert len(snapshot(store)["null_tables"]) == 1  # drawn by the after_write hook, before the CLI returns


def test_an_http_write_is_answered_before_its_post_write_work_runs(client, store):
    batch, ctr = demo_build(n_images=120, n_features=20)
    doc = {image: {} for image in batch.images}
    for i, j, value in batch.values:
        doc[batch.images[i]][batch.features[j]] = value
    headers = {"Business": "Acme", "Image-Source": "vision"}
    with client.put("/api/ctr", data=json.dumps(dict(zip(ctr["image"], ctr["ctr"]))), headers=headers) as answer:
        assert answer.status_code == 200
    answer = client.put("/api/features", data=json.dumps(doc), headers=headers | {"Build-Tag": "jenkins-1"})
    assert answer.status_code == 201 and "created" not in answer.get_json()
    assert snapshot(store)["null_tables"] == []
    answer.close()
    assert len(snapshot(store)["null_tables"]) == 1
    with client.put("/api/features", data=json.dumps(doc), headers=headers | {"Build-Tag": "jenkins-1"}) as again:
        assert again.status_code == 200 and again.get_json()["build_id"] == 1


def store_write_calls(source: str) -> list[str]:
    """``store.<write>(...)`` calls in ``source``: writes that would bypass the seam."""
    return [
        f"line {node.lineno}: store.{node.func.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in STORE_WRITES
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "store"
    ]


def test_store_write_calls_finds_a_write_that_bypasses_the_seam():
    """The check below is only as good as this."""
    source = "writes.write(store, work)\nstore.add_build('a', 'b', batch)\nstore.dataset('a', 'b')\n"
    assert store_write_calls(source) == ["line 2: store.add_build"]


def test_every_write_of_the_ingest_layer_goes_through_the_seam():
    calls = {
        path.relative_to(ROOT).as_posix(): found
        for path in sorted((ROOT / "ingest").rglob("*.py"))
        if (found := store_write_calls(path.read_text(encoding="utf-8")))
    }
    assert calls == {}
