"""Schema migrations on both engines: a fresh database, and one written by the release before them.

``tests/fixtures/release_store.db`` was written by the store of that release (its
``metadata.create_all`` and writes through ``FeatureStore``): two datasets with four builds, three
with a Build-Tag, one a later build with an extra feature, CTR sets with counts and with rates, a
CTR set without a build, every build's archive and three permutation null tables.
``tests/fixtures/release_schema_postgresql.sql`` is that release's DDL on PostgreSQL; the tests
load it into a fresh schema and copy the file's rows in, as that release would have stored them.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import unicodedata
import urllib.request
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from data import migrations, nulls, writes
from data.errors import UnknownBuild
from data.schema import metadata
from data.store import FeatureStore
from data.tokens import encode_businesses, new_token, token_hash
from tests.databases import fresh_database
from tests.servers import gunicorn
from tests.tables import snapshot
from tests.test_store import make_batch, make_ctr

pytestmark = pytest.mark.both_engines

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RELEASE_DB = FIXTURES / "release_store.db"
RELEASE_DDL = FIXTURES / "release_schema_postgresql.sql"
REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]
# (table, column) of every build id, 64-bit on PostgreSQL from revision 0003 on.
BUILD_ID_COLUMNS = [
    ("builds", "id"),
    ("build_images", "build_id"),
    ("build_features", "build_id"),
    ("feature_values", "build_id"),
    ("build_matrices", "build_id"),
]


def stored_data(store) -> dict:
    """The store's rows as tests.tables.snapshot reads them (the session key the app makes is not data)."""
    return snapshot(store)


def release_tables() -> set[str]:
    """The tables of the release's database file: those of data/schema.py that existed then."""
    with sqlite3.connect(f"file:{RELEASE_DB}?mode=ro", uri=True) as conn:
        present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return present & set(metadata.tables)


def release_rows() -> dict:
    """Every row of the release's database file, per table, sorted as tests.tables.snapshot sorts them."""
    present = release_tables()
    with sqlite3.connect(f"file:{RELEASE_DB}?mode=ro", uri=True) as conn:
        return {  # a table that later revisions add is empty after the upgrade
            table.name: sorted(
                conn.execute(f"SELECT {', '.join(table.c.keys())} FROM {table.name}").fetchall(), key=repr
            )
            if table.name in present
            else []
            for table in metadata.sorted_tables
            if table.name != "app_secrets"
        }


def write_release_database(engine_name: str, url: str, tmp_path: Path, *, ddl: str | None = None) -> str:
    """Make the database at ``url`` hold the release's schema and rows; returns the URL to open.

    SQLite: a copy of the release's file (the URL's own file is not used). PostgreSQL: the release's
    DDL (or ``ddl``) run in the fresh schema, the file's rows copied in, and the id sequences where
    the release left them.
    """
    if engine_name == "sqlite":
        copy = tmp_path / "release.db"
        shutil.copyfile(RELEASE_DB, copy)
        return f"sqlite:///{copy}"
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        sql = "\n".join(line for line in (ddl or RELEASE_DDL.read_text()).splitlines() if not line.startswith("--"))
        for statement in sql.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        for table, rows in release_rows().items():
            if rows:
                names = list(metadata.tables[table].c.keys())
                insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
                conn.execute(text(insert), [dict(zip(names, row)) for row in rows])
        for table in ("builds", "ctr_sets"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    engine.dispose()
    return url


@pytest.fixture
def release_url(engine_name, db_url, tmp_path) -> str:
    """The URL of a database written by the release before migrations, not yet opened by this one."""
    return write_release_database(engine_name, db_url, tmp_path)


def alembic_versions(store) -> list[str]:
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def test_migrations_make_the_schema_the_store_queries(store):
    """A fresh database migrated to the newest revision has exactly the tables, columns and indexes of data/schema.py."""
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert alembic_versions(store) == [migrations.head()] == [REVISIONS[-1]]


def test_a_release_database_opens_with_every_row_kept(release_url):
    """Every dataset, build, CTR set, Build-Tag, archive and null table of the release is read back as it was."""
    store = FeatureStore(release_url)
    try:
        assert stored_data(store) == release_rows()
        assert alembic_versions(store) == [REVISIONS[-1]]
        listed = store.datasets().set_index(["business", "source"])
        assert listed.loc[("Acme", "vision"), "build_id"] == 3
        assert listed.loc[("Café Ünïcode", "azure"), "build_id"] == 4
        assert store.builds("Acme", "vision")["build_id"].tolist() == [3, 2, 1]
        dataset = store.dataset("Acme", "vision")
        assert "sky" in dataset.features and len(dataset.images) == 12
        counts = store.ctr("Acme", "vision")
        assert counts["clicks"].notna().all() and counts["impressions"].notna().all()
        assert store.ctr("Zeta", "vision")["ctr"].tolist() == [0.02]
        # A retried PUT of a tagged release build finds it rather than storing it again.
        again = store.add_build("Acme", "vision", make_batch(9), tag="jenkins-acme-vision-42")
        assert (again["created"], again["build_id"]) == (False, 3)
        # The release's null tables are kept, but in an older table format than the current test
        # reads (nulls.FORMAT names it): the current ones are drawn once and then stored.
        stored = {row[0] for row in release_rows()["null_tables"]}
        assert stored and not any(nulls.FORMAT in key for key in stored)
        assert writes.prepare_nulls(store, "Acme", "vision") == 2
        assert writes.prepare_nulls(store, "Acme", "vision") == 0
        new = store.add_build("Acme", "vision", make_batch(10), tag="jenkins-acme-vision-43")
        assert new["build_id"] == 5 and store.resolve_build("Acme", "vision") == 5
    finally:
        store.close()


def test_a_release_database_opened_again_is_not_migrated_again(release_url, caplog):
    """The second start finds the newest revision stored and runs none."""
    FeatureStore(release_url).close()
    caplog.set_level(logging.INFO, logger="alembic")
    store = FeatureStore(release_url)
    try:
        assert "Running upgrade" not in caplog.text
        assert stored_data(store) == release_rows()
    finally:
        store.close()


@pytest.mark.parametrize("database", ["fresh", "release"])
def test_stores_starting_at_once_migrate_exactly_once(engine_name, db_url, tmp_path, caplog, database):
    """Six stores opening one database together: all start, and each revision runs once."""
    url = db_url if database == "fresh" else write_release_database(engine_name, db_url, tmp_path)
    caplog.set_level(logging.INFO, logger="alembic")
    barrier = threading.Barrier(6)
    errors = []

    def start():
        try:
            barrier.wait()
            FeatureStore(url).close()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ran = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running upgrade")]
    assert [message.split("-> ")[1].split(",")[0] for message in ran] == REVISIONS
    store = FeatureStore(url)
    try:
        assert alembic_versions(store) == [REVISIONS[-1]]
        if database == "release":
            assert stored_data(store) == release_rows()
    finally:
        store.close()


def test_a_failing_migration_leaves_the_release_database_as_it_was(engine_name, release_url, monkeypatch):
    """A start whose migration fails part way rolls back whole: the release's tables and rows, no revision."""
    real = migrations.upgrade

    def upgrade_then_crash(conn):
        real(conn)
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("crash during a migration")

    monkeypatch.setattr(migrations, "upgrade", upgrade_then_crash)
    with pytest.raises(RuntimeError, match="crash during a migration"):
        FeatureStore(release_url)
    engine = create_engine(release_url, poolclass=NullPool)
    try:
        assert set(inspect(engine).get_table_names()) == release_tables()
        if engine_name == "postgresql":
            assert inspect(engine).get_columns("builds")[0]["type"].python_type is int
            assert not any(isinstance(c["type"], BigInteger) for c in inspect(engine).get_columns("feature_values"))
    finally:
        engine.dispose()
    monkeypatch.undo()
    store = FeatureStore(release_url)
    try:
        assert stored_data(store) == release_rows()
    finally:
        store.close()


def test_a_build_id_past_32_bits_names_no_build(store):
    """Asking for build 2**40 is an unknown build on both engines (PostgreSQL's INTEGER failed on it)."""
    store.add_build("Acme", "vision", make_batch(1))
    with pytest.raises(UnknownBuild):
        store.resolve_build("Acme", "vision", 2**40)
    with pytest.raises(UnknownBuild):
        store.build_pair(2**40)


@pytest.fixture
def pg_url(tmp_path):
    """A fresh PostgreSQL schema (these tests are about PostgreSQL's column types)."""
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def test_release_build_ids_become_64_bit_on_postgresql(pg_url, tmp_path):
    """After the upgrade every build id column and the id sequence are BIGINT, and ids past 2**31 round-trip."""
    url = write_release_database("postgresql", pg_url, tmp_path)
    store = FeatureStore(url)
    try:
        inspector = inspect(store.engine)
        for table, column in BUILD_ID_COLUMNS:
            types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
            assert isinstance(types[column], BigInteger), (table, column, types[column])
        with store.engine.begin() as conn:
            sequence_type = conn.execute(
                text(
                    "SELECT data_type FROM information_schema.sequences WHERE sequence_name = 'builds_id_seq' AND sequence_schema = current_schema()"
                )
            ).scalar_one()
            assert sequence_type == "bigint"
            # Where two billion builds would have left the sequence.
            conn.execute(text("SELECT setval(pg_get_serial_sequence('builds', 'id'), 2147483657)"))
        batch = make_batch(7)
        stored = store.add_build("Acme", "vision", batch, tag="past-32-bits")
        assert stored["build_id"] == 2**31 + 10
        store.replace_ctr("Acme", "vision", make_ctr(batch.images, 7))
        assert store.resolve_build("Acme", "vision") == 2**31 + 10
        assert store.build_pair(2**31 + 10) == ("Acme", "vision")
        dataset, build_id, _ = store.load_build("Acme", "vision", 2**31 + 10)
        assert build_id == 2**31 + 10 and list(dataset.features) == batch.features
        assert store.add_build("Acme", "vision", batch, tag="past-32-bits")["created"] is False
        assert store.builds("Acme", "vision")["build_id"].tolist()[:2] == [2**31 + 10, 3]
    finally:
        store.close()


def test_release_counts_stored_as_32_bit_become_64_bit_on_postgresql(pg_url, tmp_path):
    """A database whose clicks and impressions were INTEGER keeps its counts and takes counts past 2**31."""
    narrow = (
        RELEASE_DDL.read_text()
        .replace("clicks BIGINT", "clicks INTEGER")
        .replace("impressions BIGINT", "impressions INTEGER")
    )
    assert narrow.count("INTEGER,") > RELEASE_DDL.read_text().count("INTEGER,")
    url = write_release_database("postgresql", pg_url, tmp_path, ddl=narrow)
    store = FeatureStore(url)
    try:
        assert stored_data(store) == release_rows()
        types = {c["name"]: c["type"] for c in inspect(store.engine).get_columns("ctr_values")}
        assert isinstance(types["clicks"], BigInteger) and isinstance(types["impressions"], BigInteger)
        big = make_ctr(["img_0", "img_1"], 3)
        big["impressions"] = [2**40, 2**52]
        big["clicks"] = [2**33, 7]
        big["ctr"] = big["clicks"] / big["impressions"]
        store.replace_ctr("Acme", "vision", big)
        read = store.ctr("Acme", "vision").sort_values("image")
        assert read["impressions"].tolist() == [2**40, 2**52] and read["clicks"].tolist() == [2**33, 7]
    finally:
        store.close()


def test_three_gunicorn_workers_starting_on_a_release_database_all_boot_and_keep_its_rows(release_url, tmp_path):
    """Three worker processes migrate the release's database once between them and serve its datasets."""
    with gunicorn(tmp_path, release_url, workers=3, threads=1, DEMO_DATA=1) as server:
        ready = server.wait_ready(3)
        output = server.output()
        assert ready, f"not every worker booted\n{output[-3000:]}"
        assert "Worker failed to boot" not in output and "Traceback" not in output, output[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/datasets", timeout=60) as answer:
            listed = json.loads(answer.read())["datasets"]
    assert sorted((d["business"], d["build_id"]) for d in listed) == [("Acme", 3), ("Café Ünïcode", 4)]
    store = FeatureStore(release_url)
    try:
        assert alembic_versions(store) == [REVISIONS[-1]]
        assert stored_data(store) == release_rows()  # and no demo: the database was not empty
    finally:
        store.close()


def test_the_newest_revisions_step_down_and_up_again_keeping_every_row(release_url):
    """Downgrading to 0001 and upgrading again (e.g. to roll a release back) changes no stored row."""
    FeatureStore(release_url).close()
    engine = create_engine(release_url, poolclass=NullPool)
    try:
        for target in ("0001", "head"):
            config = migrations.alembic_config()
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                (command.downgrade if target == "0001" else command.upgrade)(config, target)
            with engine.connect() as conn:
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert version == ("0001" if target == "0001" else REVISIONS[-1])
            if engine.dialect.name == "postgresql":
                id_type = {c["name"]: c["type"] for c in inspect(engine).get_columns("builds")}["id"]
                assert isinstance(id_type, BigInteger) is (target == "head")
    finally:
        engine.dispose()
    store = FeatureStore(release_url)
    try:
        assert stored_data(store) == release_rows()
    finally:
        store.close()


def test_a_database_of_the_release_before_tokens_gains_them_and_they_work(release_url, tmp_path, capsys):
    """At 0004 (no tokens), the next start adds revision 0005: a token made then reads, and its id is never reused."""
    from dashboard.factory import create_app
    from data.settings import Settings
    from ingest.cli import main as cli_main

    FeatureStore(release_url).close()
    engine = create_engine(release_url, poolclass=NullPool)
    try:
        config = migrations.alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0004")
        assert not {"access_tokens", "app_secrets"} & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert (
        cli_main(
            ["token", "create", "--database-url", release_url, "--name", "ci", "--role", "read"]
            + ["--business", "Acme"]
        )
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1].split()[-1]
    store = FeatureStore(release_url)
    try:
        assert alembic_versions(store) == [REVISIONS[-1]]
        assert stored_data(store)["access_tokens"] and {
            k: v for k, v in stored_data(store).items() if k != "access_tokens"
        } == {k: v for k, v in release_rows().items() if k != "access_tokens"}
        first_id = store.token_by_hash(token_hash(token))["id"]
        settings = Settings.from_env({}, database_url=release_url, demo_data=False, access="tokens")
        client = create_app(settings, store).server.test_client()
        answer = client.get("/api/datasets", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and [d["business"] for d in answer.get_json()["datasets"]] == ["Acme"]
        assert client.get("/api/datasets").status_code == 401
        assert store.revoke_token("ci")
        again = new_token()
        store.create_token("ci", "read", encode_businesses(["Acme"]), token_hash(again))
        assert store.token_by_hash(token_hash(again))["id"] > first_id  # a revoked id never comes back
        assert client.get("/api/datasets", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        store.close()


def _at_revision(url: str, revision: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        config = migrations.alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def _thumbnail_row(business: str, image: str, stored_at: str) -> dict:
    return {
        "business": business,
        "source": "vision",
        "image": image,
        "content_type": "image/png",
        "width": 1,
        "height": 1,
        "etag": stored_at,
        "stored_at": stored_at,
        "image_data": stored_at.encode(),
    }


def test_names_stored_decomposed_become_nfc_and_their_datasets_merge(db_url, caplog):
    """A database at 0006 holding names in NFD (written before names were normalised): after the
    upgrade every name reads back in NFC, two datasets that become one merge (one build history,
    the newer CTR upload, the newer thumbnail, the Build-Tag on the newer build), and two images of
    one build that become one name are left as stored, with a warning."""
    from data.batches import FeatureBatch
    from tests.metrics_data import make_metrics

    nfd = lambda name: unicodedata.normalize("NFD", name)  # noqa: E731
    cafe, images = "Café", [f"imagé_{i}" for i in range(6)]
    assert nfd(cafe) != cafe
    store = FeatureStore(db_url)  # the data layer keeps names as given, as every write did before
    try:
        decomposed = FeatureBatch([nfd(i) for i in images], [nfd("fûr"), "text"], [(i, i % 2, 0.75) for i in range(6)])
        older = store.add_build(nfd(cafe), "vision", decomposed, tag=nfd("jenkins-é-1"))["build_id"]
        store.replace_ctr(nfd(cafe), "vision", make_ctr(decomposed.images, 1))
        newer = store.add_build(cafe, "vision", make_batch(2, n_images=6, prefix="imagé"), tag="jenkins-é-1")[
            "build_id"
        ]
        store.replace_ctr(cafe, "vision", make_ctr(images, 2))
        clash = FeatureBatch(["e\u0301.png", "é.png"], ["feature"], [(0, 0, 0.25), (1, 0, 0.5)])
        clash_id = store.add_build("Acme", "vision", clash)["build_id"]
        store.write(lambda w: w.replace_metrics(nfd(cafe), "ads", make_metrics([nfd(i) for i in images], days=3)))
        store.create_token("reader", "read", json.dumps([nfd(cafe)]), "0" * 64)
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO image_thumbnails (business, source, image, content_type, width, height, etag, "
                    "stored_at, image_data) VALUES (:business, :source, :image, :content_type, :width, :height, "
                    ":etag, :stored_at, :image_data)"
                ),
                [_thumbnail_row(nfd(cafe), nfd("é.png"), "2026-01-02"), _thumbnail_row(cafe, "é.png", "2026-01-01")],
            )
        version = store.version()
        expected_ctr = store.ctr(cafe, "vision").sort_values("image").reset_index(drop=True)
    finally:
        store.close()
    _at_revision(db_url, "0006")

    with caplog.at_level(logging.WARNING):
        store = FeatureStore(db_url)
    try:
        assert alembic_versions(store) == [REVISIONS[-1]]
        assert store.version() != version
        listed = store.datasets()
        assert sorted(zip(listed["business"], listed["source"])) == [("Acme", "vision"), (cafe, "vision")]
        assert store.builds(cafe, "vision")["build_id"].tolist() == [newer, older]
        assert store.resolve_build(cafe, "vision") == newer
        old_build = store.dataset(cafe, "vision", older)
        assert list(old_build.images) == images and list(old_build.features) == ["fûr", "text"]
        read_ctr = store.ctr(cafe, "vision").sort_values("image").reset_index(drop=True)
        assert read_ctr.equals(expected_ctr)  # the newer upload stays
        with store.engine.connect() as conn:
            tags = dict(conn.execute(text("SELECT id, tag FROM builds")).all())
            thumbs = conn.execute(text("SELECT business, image, stored_at FROM image_thumbnails")).all()
            metric_names = conn.execute(text("SELECT DISTINCT business, image FROM image_metrics_daily")).all()
            scope = conn.execute(text("SELECT businesses FROM access_tokens")).scalar_one()
        assert tags[newer] == "jenkins-é-1" and tags[older] is None
        assert [tuple(row) for row in thumbs] == [(cafe, "é.png", "2026-01-02")]
        assert sorted(tuple(row) for row in metric_names) == [(cafe, image) for image in images]
        assert json.loads(scope) == [cafe]
        assert list(store.dataset("Acme", "vision", clash_id).images) == clash.images  # kept as stored
        assert "are one name in Unicode NFC; kept as stored" in caplog.text
    finally:
        store.close()


def test_nfc_revision_on_a_database_already_in_nfc_changes_nothing(release_url):
    """The release's names (NFC already, "Café Ünïcode" among them) and the store's version stay as they were."""
    store = FeatureStore(release_url)
    try:
        version = store.version()
    finally:
        store.close()
    _at_revision(release_url, "0006")
    store = FeatureStore(release_url)
    try:
        assert stored_data(store) == release_rows() and store.version() == version
    finally:
        store.close()


def test_dated_metrics_stored_at_0007_gain_running_totals_that_sum_every_window(db_url):
    """A database at 0007 holding dated metrics (written before the running totals): after the
    upgrade each row's running totals are its image's rows summed through its day, the schema is
    the store's, and every window's sums equal the raw rows' sums."""
    from tests.metrics_data import make_metrics
    from tests.test_metrics_store import check_windows

    store = FeatureStore(db_url)
    try:
        frame = make_metrics([f"img_{i}" for i in range(7)], days=20)
        store.replace_metrics("Acme", "vision", frame)
        store.merge_metrics("Acme", "vision", make_metrics(["img_2", "img_9"], days=40, seed=3, skip=0.5))
        store.replace_metrics("Acme", "other", make_metrics(["img_0", "img_1"], days=5, seed=4))
        rows = {pair: store.metrics(*pair) for pair in (("Acme", "vision"), ("Acme", "other"))}
    finally:
        store.close()
    _at_revision(db_url, "0007")
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("image_metrics_daily")}
        assert "cum_clicks" not in columns and "cum_impressions" not in columns
    finally:
        engine.dispose()

    store = FeatureStore(db_url)
    try:
        assert alembic_versions(store) == [REVISIONS[-1]]
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        for pair, stored in rows.items():
            assert store.metrics(*pair).equals(stored)
        check_windows(store)  # ("Acme", "vision")
    finally:
        store.close()
