"""``python -m ingest``: CSV, JSON and demo loads into real SQLite files, and refusals that write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.analysis import Dataset
from data.batches import FeatureBatch
from data.store import FeatureStore
from ingest.cli import main
from tests.tables import snapshot

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CSV = ROOT / "data" / "samples" / "seed_images_287.csv"


@pytest.fixture
def run(db_url, capsys, monkeypatch):
    """Call main() against the test's database; returns (status, stdout, stderr)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def _run(*argv):
        status = main([*argv, "--database-url", db_url])
        out, err = capsys.readouterr()
        return status, out, err

    return _run


def write(tmp_path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_cli_csv_loads_the_original_layout(run, store, reference_frame):
    status, out, err = run("csv", str(REFERENCE_CSV), "--business", "Ref", "--source", "vision")
    assert (status, err) == (0, "")
    assert out.count("\n") == 1
    assert out.startswith("stored build 1 of 'Ref' / 'vision': 287 images, 7 features, ")
    assert out.rstrip().endswith("; CTR for 287 images")
    loaded = store.dataset("Ref", "vision")
    expected = Dataset.from_wide(reference_frame)
    assert loaded.images.tolist() == expected.images.tolist()
    assert loaded.features.tolist() == expected.features.tolist()
    assert np.array_equal(loaded.dense(), expected.dense())
    assert np.array_equal(loaded.ctr, expected.ctr)


def test_cli_load_stores_the_permutation_nulls_for_the_first_summary(run, store):
    status, _, _ = run("csv", str(REFERENCE_CSV), "--business", "Ref", "--source", "vision")
    assert status == 0
    keys = [row[0] for row in snapshot(store)["null_tables"]]
    assert len(keys) == 1 and keys[0].startswith("mean:")  # rates: the mean weighting only


def test_cli_csv_skips_empty_ctr_and_treats_empty_cells_as_zero(run, store, tmp_path):
    path = write(tmp_path, "f.csv", "image_name,ctr,a,b\nx,0.25,0.5,\ny,,,1\nz,0.5,0,0.75\n")
    status, out, _ = run("csv", str(path), "--business", "B", "--source", "S")
    assert status == 0 and "CTR for 2 images" in out
    dataset = store.dataset("B", "S")
    assert dataset.dense().tolist() == [[0.5, 0], [0, 1], [0, 0.75]]
    assert np.array_equal(dataset.ctr, [0.25, np.nan, 0.5], equal_nan=True)


def test_cli_csv_uses_clicks_and_impressions_when_present(run, store, tmp_path):
    path = write(tmp_path, "f.csv", "image_name,ctr,clicks,impressions,a\nx,0.25,1,4,0.5\ny,0.5,3,6,0\n")
    status, out, _ = run("csv", str(path), "--business", "B", "--source", "S")
    assert status == 0 and out.rstrip().endswith("CTR for 2 images with clicks and impressions")
    stored = store.ctr("B", "S")
    assert stored["clicks"].tolist() == [1, 3] and stored["impressions"].tolist() == [4, 6]
    assert stored["ctr"].tolist() == [0.25, 0.5]
    assert store.dataset("B", "S").features.tolist() == ["a"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            "image_name,ctr,a\nx,0.1,high\ny,0.2,2\n",
            [
                'image "x" feature "a": value must be a number in [0, 1], got "high"',
                'image "y" feature "a": value must be a number in [0, 1], got 2',
            ],
        ),
        ("image_name,ctr,a\nx,0.1,nan\n", ['image "x" feature "a": value must be a number in [0, 1], got NaN']),
        ("image_name,ctr,a\nx,1.5,0.5\n", ['image "x": CTR must be a number in [0, 1], got 1.5']),
        ("image_name,ctr,a\nx,0.1,0.5\nx,0.2,0.5\n", ["line 3: image 'x' appears more than once"]),
        ("image_name,ctr,a\nx,0.1\n", ["line 2: 2 cells, the header has 3"]),
        ("name,ctr,a\nx,0.1,0.5\n", ['the header has no "image_name" column']),
        ("image_name,a,a\nx,0.1,0.5\n", ["columns appear more than once: a"]),
        ("", ["the file has no header row"]),
        ("image_name,clicks,impressions,a\nx,5,4,0.5\n", ['image "x": clicks (5) must not exceed impressions (4)']),
        (b"image_name,a\ncaf\xe9,0.5\n", ["not valid UTF-8 at byte offset 16"]),
    ],
)
def test_cli_csv_bad_input_exits_nonzero_and_writes_nothing(run, store, tmp_path, content, expected):
    store.add_build("B", "S", FeatureBatch(["keep"], ["f"], [(0, 0, 0.5)]))
    before = snapshot(store)
    status, out, err = run("csv", str(write(tmp_path, "bad.csv", content)), "--business", "B", "--source", "S")
    assert status == 1 and out == ""
    assert err.startswith("error: ")
    assert [line.strip() for line in err.splitlines()[1:]] == expected
    assert snapshot(store) == before


def test_cli_json_loads_features_and_ctr(run, store, tmp_path):
    features = write(tmp_path, "f.json", json.dumps({"a": {"x": 0.5}, "b": {}, "c": {"y": 1}}))
    ctr = write(
        tmp_path, "c.json", json.dumps({"a": {"clicks": 1, "impressions": 10}, "c": {"clicks": 0, "impressions": 3}})
    )
    status, out, err = run("json", str(features), "--ctr", str(ctr), "--business", "B", "--source", "S")
    assert (status, err) == (0, "")
    assert (
        out
        == "stored build 1 of 'B' / 'S': 3 images, 2 features, 2 non-zero values; CTR for 2 images with clicks and impressions\n"
    )
    dataset = store.dataset("B", "S")
    assert dataset.dense().tolist() == [[0.5, 0], [0, 0], [0, 1]]
    assert np.array_equal(dataset.ctr, [0.1, np.nan, 0.0], equal_nan=True)


def test_cli_json_without_ctr_stores_only_the_build(run, store, tmp_path):
    status, out, _ = run(
        "json", str(write(tmp_path, "f.json", '{"a": {"x": 0.5}}')), "--business", "B", "--source", "S"
    )
    assert status == 0 and "CTR" not in out
    assert store.ctr("B", "S").empty


@pytest.mark.parametrize(
    "features, ctr, expected",
    [
        ('{"a": {"x": NaN}}', None, 'image "a" feature "x": value must be a number in [0, 1], got NaN'),
        ('{"a": {"x": 0.5}', None, "body is not valid JSON: Expecting ',' delimiter at line 1 column 17"),
        (b'{"a": {"x": 0.5}}\xff', None, "body is not valid UTF-8: byte 0xff at offset 17"),
        (
            "[]",
            None,
            'body must be a JSON object {"<image>": {"<feature>": <confidence in [0, 1]>, ...}, ...}, got a list of 0 items',
        ),
        (
            '{"a": {"x": 0.5}}',
            '{"a": 0.1, "b": {"clicks": 1, "impressions": 2}}',
            'body mixes plain CTRs (e.g. image "a") with click and impression counts (e.g. image "b"): use one layout for every image',
        ),
        ('{"a": {"x": 0.5}}', "not json", "body is not valid JSON: Expecting value at line 1 column 1"),
    ],
)
def test_cli_json_bad_input_writes_neither_file(run, store, tmp_path, features, ctr, expected):
    before = snapshot(store)
    argv = ["json", str(write(tmp_path, "f.json", features)), "--business", "B", "--source", "S"]
    if ctr is not None:
        argv += ["--ctr", str(write(tmp_path, "c.json", ctr))]
    status, out, err = run(*argv)
    assert status == 1 and out == ""
    assert err.splitlines()[1].strip() == expected
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "business, source, expected", [("", "S", "--business must not be empty"), ("B", " ", "--source must not be empty")]
)
def test_cli_blank_business_or_source_is_refused(run, store, tmp_path, business, source, expected):
    status, _, err = run(
        "json", str(write(tmp_path, "f.json", '{"a": {"x": 0.5}}')), "--business", business, "--source", source
    )
    assert status == 1 and expected in err
    assert store.is_empty()


def test_cli_missing_file_is_reported(run, tmp_path):
    status, _, err = run("csv", str(tmp_path / "absent.csv"), "--business", "B", "--source", "S")
    assert status == 1
    assert err.splitlines()[0] == f"error: cannot read {tmp_path / 'absent.csv'}"


def test_cli_keeps_header_like_values_as_data(run, store, tmp_path):
    business, source = "Robert'); DROP TABLE builds;--", 'Café ☕ "quoted"'
    status, _, _ = run(
        "json", str(write(tmp_path, "f.json", '{"a": {"x": 0.5}}')), "--business", business, "--source", source
    )
    assert status == 0
    assert store.datasets()[["business", "source"]].values.tolist() == [[business, source]]


def test_cli_demo_loads_the_demo_datasets(run, store):
    status, out, err = run("demo")
    assert (status, err) == (0, "")
    assert out.startswith("loaded the demo data: ") and out.count("\n") == 1
    listed = store.datasets()
    assert len(listed) >= 1
    for business, source, build_id in zip(listed["business"], listed["source"], listed["build_id"]):
        assert f"build {build_id} of {business!r} / {source!r}" in out


def test_cli_database_url_overrides_the_environment(run, store, tmp_path, monkeypatch):
    other = tmp_path / "other.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    status, _, _ = run("json", str(write(tmp_path, "f.json", '{"a": {"x": 0.5}}')), "--business", "B", "--source", "S")
    assert status == 0
    assert store.builds("B", "S")["images"].tolist() == [1]
    assert not other.exists()


def test_cli_reads_database_url_from_the_environment(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["json", str(write(tmp_path, "f.json", '{"a": {"x": 0.5}}')), "--business", "B", "--source", "S"]) == 0
    reopened = FeatureStore(url)
    try:
        assert reopened.builds("B", "S")["values"].tolist() == [1]
    finally:
        reopened.close()


def test_cli_bad_settings_exit_nonzero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEEP_BUILDS", "many")
    assert main(["demo", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]) == 1
    assert capsys.readouterr().err.startswith("error: KEEP_BUILDS='many'")


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["csv", "file.csv"])
    assert caught.value.code == 2
    assert "--business" in capsys.readouterr().err


def test_cli_runs_as_python_dash_m_ingest(tmp_path, db_url):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    good = write(tmp_path, "f.json", '{"a": {"x": 0.5}}')
    bad = write(tmp_path, "bad.json", '{"a": {"x": "high"}}')
    command = [sys.executable, "-m", "ingest", "json", "--business", "B", "--source", "S", "--database-url", db_url]
    ok = subprocess.run([*command, str(good)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("stored build 1 of 'B' / 'S'")
    refused = subprocess.run([*command, str(bad)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and refused.stdout == ""
    assert 'image "a" feature "x": value must be a number in [0, 1], got "high"' in refused.stderr


def test_cli_images_stores_each_good_file_and_names_each_refused_one(run, db_url, tmp_path):
    from tests import image_samples as samples

    folder = tmp_path / "pictures"
    folder.mkdir()
    write(folder, "img_001.png", samples.png())
    write(folder, "imgcontent.x_imgtemp.achalf.jpg", samples.jpeg())
    write(folder, "bad.svg", "<svg/>")
    write(folder, "bomb.png", samples.png_bomb())
    write(folder, ".DS_Store", b"\x00")
    (folder / "sub").mkdir()
    status, out, err = run("images", str(folder), "--business", "acme", "--source", "vision")
    assert status == 1
    assert "stored 2 thumbnails of 'acme' / 'vision'; refused 2" in out
    assert "bad.svg: markup" in err and "bomb.png: the image declares more than" in err
    store = FeatureStore(db_url)
    assert store.thumbnail_tags("acme", "vision").keys() == {"img_001", "imgcontent.x_imgtemp.achalf"}
    store.close()


def test_cli_images_refuses_a_missing_folder_and_writes_nothing(run, db_url, tmp_path):
    status, _, err = run("images", str(tmp_path / "nowhere"), "--business", "acme", "--source", "vision")
    assert status == 1 and "not a folder" in err
    store = FeatureStore(db_url)
    assert store.thumbnail_tags("acme", "vision") == {}
    store.close()
