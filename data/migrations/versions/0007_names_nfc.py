"""Stored names in Unicode NFC: businesses, sources, images, features, Build-Tags, token scopes.

Revision 0007, after 0006. Names arriving over HTTP are put in NFC before they are stored or
looked up (data/names.py); a name stored earlier in another form (an accent sent decomposed,
NFD) could be listed but never named by a read. This revision rewrites every stored name in
NFC. Where two stored spellings become one name:

- two datasets (business, source) merge, as if both had been sent under the one name: their
  builds join one history (the newest stays current; a Build-Tag both used stays on the newer
  build), and the newer CTR upload, dated metrics and thumbnail of an image replace the older,
  as a later upload would have;
- two images or features of one build, one CTR upload or one dataset's dated metrics are not
  merged (their values differ, and the write path refuses such a body): both keep their names
  as stored, and a warning names them.

The downgrade changes nothing: names in NFC are valid names at every earlier revision.
"""

import json
import logging
import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("data.migrations")

# Tables keyed by dataset, and (tables, container columns, name column) of the names inside one.
DATASET_TABLES = (
    "builds",
    "ctr_sets",
    "metric_sets",
    "image_thumbnails",
    "image_metrics_totals",
    "image_metrics_daily",
)
MEMBER_NAMES = (
    (("build_images",), ("build_id",), "name"),
    (("build_features",), ("build_id",), "name"),
    (("ctr_values",), ("ctr_set_id",), "image"),
    (("image_metrics_totals", "image_metrics_daily"), ("business", "source"), "image"),
)
SAME_DATASET = "business = :b AND source = :s"


def nfc(name):
    """``name`` in NFC (None and names already in NFC as they are)."""
    if name is None or name.isascii() or unicodedata.is_normalized("NFC", name):
        return name
    return unicodedata.normalize("NFC", name)


def _rows(bind, sql: str, **params) -> list:
    return bind.execute(sa.text(sql), params).all()


def _run(bind, sql: str, **params) -> None:
    bind.execute(sa.text(sql), params)


def upgrade() -> None:
    bind = op.get_bind()
    changed = _merge_datasets(bind) + _retag_builds(bind) + _rename_thumbnails(bind)
    for tables, container, column in MEMBER_NAMES:
        changed += _rename_members(bind, tables, container, column)
    changed += _rescope_tokens(bind)
    if changed:  # the pages and caches of running workers see the new names at their next poll
        _run(bind, "UPDATE store_version SET version = version + 1")


def downgrade() -> None:
    pass


def _merge_datasets(bind) -> int:
    pairs = set()
    for table in DATASET_TABLES:
        pairs.update(tuple(row) for row in _rows(bind, f"SELECT DISTINCT business, source FROM {table}"))
    moved = [(pair, (nfc(pair[0]), nfc(pair[1]))) for pair in sorted(pairs)]
    moved = [(old, new) for old, new in moved if old != new]
    for old, new in moved:
        _move_dataset(bind, old, new)
    return len(moved)


def _move_dataset(bind, old: tuple, new: tuple) -> None:
    """Rename dataset ``old`` to ``new``, merging it into ``new`` when that is stored too."""
    at = {"b": old[0], "s": old[1]}
    to = {"b": new[0], "s": new[1]}
    for sets in ("ctr_sets", "metric_sets"):  # one per dataset: the newer (larger id) stays
        ids = [_rows(bind, f"SELECT id FROM {sets} WHERE {SAME_DATASET}", **pair) for pair in (at, to)]
        if ids[0] and ids[1]:
            loser = at if ids[0][0][0] < ids[1][0][0] else to
            _drop_upload(bind, sets, min(ids[0][0][0], ids[1][0][0]), loser)
    for ours, theirs in _shared_tags(bind, at, to):
        _run(bind, "UPDATE builds SET tag = NULL WHERE id = :i", i=min(ours, theirs))
    newer = {image: stored for image, stored in _thumbnail_times(bind, to)}
    for image, stored in _thumbnail_times(bind, at):
        if image in newer:
            older_pair = at if stored < newer[image] else to
            _run(bind, f"DELETE FROM image_thumbnails WHERE {SAME_DATASET} AND image = :i", i=image, **older_pair)
    for table in DATASET_TABLES:
        _run(
            bind,
            f"UPDATE {table} SET business = :nb, source = :ns WHERE {SAME_DATASET}",
            nb=new[0],
            ns=new[1],
            **at,
        )


def _drop_upload(bind, sets: str, set_id: int, pair: dict) -> None:
    if sets == "ctr_sets":
        _run(bind, "DELETE FROM ctr_values WHERE ctr_set_id = :i", i=set_id)
    else:
        for table in ("image_metrics_daily", "image_metrics_totals"):
            _run(bind, f"DELETE FROM {table} WHERE {SAME_DATASET}", **pair)
    _run(bind, f"DELETE FROM {sets} WHERE id = :i", i=set_id)


def _shared_tags(bind, at: dict, to: dict) -> list:
    """(build in ``at``, build in ``to``) for each Build-Tag both datasets used."""
    theirs = dict(_rows(bind, f"SELECT tag, id FROM builds WHERE {SAME_DATASET} AND tag IS NOT NULL", **to))
    ours = _rows(bind, f"SELECT tag, id FROM builds WHERE {SAME_DATASET} AND tag IS NOT NULL", **at)
    return [(build, theirs[tag]) for tag, build in ours if tag in theirs]


def _thumbnail_times(bind, pair: dict) -> list:
    return _rows(bind, f"SELECT image, stored_at FROM image_thumbnails WHERE {SAME_DATASET}", **pair)


def _retag_builds(bind) -> int:
    """Build-Tags in NFC; where that makes two of a dataset's tags one, the newer build keeps it."""
    changed = 0
    for build, business, source, tag in _rows(
        bind, "SELECT id, business, source, tag FROM builds WHERE tag IS NOT NULL"
    ):
        if nfc(tag) == tag:
            continue
        other = _rows(
            bind, f"SELECT id FROM builds WHERE {SAME_DATASET} AND tag = :t", b=business, s=source, t=nfc(tag)
        )
        if other and other[0][0] > build:
            _run(bind, "UPDATE builds SET tag = NULL WHERE id = :i", i=build)
        else:
            if other:
                _run(bind, "UPDATE builds SET tag = NULL WHERE id = :i", i=other[0][0])
            _run(bind, "UPDATE builds SET tag = :t WHERE id = :i", t=nfc(tag), i=build)
        changed += 1
    return changed


def _rename_thumbnails(bind) -> int:
    """Thumbnails' image names in NFC; of two that become one, the newer stays."""
    by_name = defaultdict(list)
    for business, source, image, stored in _rows(
        bind, "SELECT business, source, image, stored_at FROM image_thumbnails"
    ):
        by_name[(business, source, nfc(image))].append((stored, image))
    changed = 0
    for (business, source, name), spellings in by_name.items():
        if [image for _, image in spellings] == [name]:
            continue
        spellings.sort(key=lambda kept: (kept[0], kept[1] == name))
        pair = {"b": business, "s": source}
        for _, image in spellings[:-1]:
            _run(bind, f"DELETE FROM image_thumbnails WHERE {SAME_DATASET} AND image = :i", i=image, **pair)
        sql = f"UPDATE image_thumbnails SET image = :n WHERE {SAME_DATASET} AND image = :i"
        _run(bind, sql, n=name, i=spellings[-1][1], **pair)
        changed += 1
    return changed


def _rename_members(bind, tables: tuple, container: tuple, column: str) -> int:
    """Names inside each container (a build, a CTR upload, a dataset's metrics) in NFC, except
    two spellings of one name in the same container, which stay as they are."""
    names = defaultdict(set)
    for table in tables:
        for *where, name in _rows(bind, f"SELECT DISTINCT {', '.join(container)}, {column} FROM {table}"):
            names[tuple(where)].add(name)
    changed = 0
    for where, present in names.items():
        spellings = defaultdict(list)
        for name in present:
            spellings[nfc(name)].append(name)
        for name, found in spellings.items():
            if found == [name]:
                continue
            if len(found) > 1:
                log.warning(
                    "%s %s: names %s are one name in Unicode NFC; kept as stored",
                    tables[0],
                    dict(zip(container, where)),
                    sorted(found),
                )
                continue
            keys = " AND ".join(f"{c} = :k{i}" for i, c in enumerate(container))
            params = {f"k{i}": value for i, value in enumerate(where)}
            for table in tables:
                _run(
                    bind,
                    f"UPDATE {table} SET {column} = :n WHERE {keys} AND {column} = :o",
                    n=name,
                    o=found[0],
                    **params,
                )
            changed += 1
    return changed


def _rescope_tokens(bind) -> int:
    """The business names of each access token's scope (a JSON list) in NFC."""
    changed = 0
    for token_id, stored in _rows(bind, "SELECT id, businesses FROM access_tokens"):
        names = json.loads(stored)
        normal = sorted({nfc(name) for name in names})
        if normal != names:
            _run(bind, "UPDATE access_tokens SET businesses = :v WHERE id = :i", v=json.dumps(normal), i=token_id)
            changed += 1
    return changed
