"""Running totals on dated metrics, and each image's first and last stored days.

Revision 0008, after 0007. Each row of ``image_metrics_daily`` gains ``cum_clicks`` and
``cum_impressions``: its image's clicks and impressions summed over its stored days up to and
including the row's day. ``image_metrics_totals`` gains each image's ``first_day`` and
``last_day``. A window's sums per image are then read from the running totals on two days,
whatever the window's length (``data/metrics_windows.py``). Stored rows are filled in by a window
function (SQLite 3.25 and later, PostgreSQL) into copies of the two tables, which then take
their places. The downgrade copies them back without the four columns.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DAY = sa.Date().with_variant(sa.String(10), "sqlite")
DAILY, TOTALS = "image_metrics_daily", "image_metrics_totals"
IMAGE_DAYS = "OVER (PARTITION BY business, source, image ORDER BY day ROWS UNBOUNDED PRECEDING)"
RUNNING = f"SUM(clicks) {IMAGE_DAYS} AS cum_clicks, SUM(impressions) {IMAGE_DAYS} AS cum_impressions"
EXTENT = (
    f"SELECT business, source, image, MIN(day) AS first_day, MAX(day) AS last_day FROM {DAILY} "
    "GROUP BY business, source, image"
)
SAME_IMAGE = "x.business = {t}.business AND x.source = {t}.source AND x.image = {t}.image"


def _columns(table: str, added: bool, keyed: bool) -> list:
    key = ["business", "source", "day", "image"] if table == DAILY else ["business", "source", "image"]
    columns = [sa.Column(name, DAY if name == "day" else sa.Text(), primary_key=keyed, nullable=False) for name in key]
    columns += [sa.Column(name, sa.BigInteger(), nullable=False) for name in ("clicks", "impressions")]
    if added and table == DAILY:
        columns += [sa.Column(name, sa.BigInteger(), nullable=False) for name in ("cum_clicks", "cum_impressions")]
    if added and table == TOTALS:
        columns += [sa.Column(name, DAY, nullable=False) for name in ("first_day", "last_day")]
    return columns


def _rebuild(table: str, select: str, added: bool) -> None:
    """Copy ``table`` into a new one with (or without) the added columns, filled by ``select``,
    then put it in the old one's place. SQLite cannot make an added column NOT NULL; PostgreSQL
    updating every row in place left each one twice (the old version dead until a VACUUM) and
    the next reads 2-4 times slower, so both copy. PostgreSQL's key is added once the rows are
    in, under the name the table's key has on a database made at this revision."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(f"{table}_copy", *_columns(table, added, keyed=sqlite), sqlite_with_rowid=False)
    op.execute(f"INSERT INTO {table}_copy SELECT * FROM ({select}) AS copied")
    op.drop_table(table)
    op.rename_table(f"{table}_copy", table)
    if not sqlite:
        key = "business, source, day, image" if table == DAILY else "business, source, image"
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
        op.execute(f"ANALYZE {table}")


def upgrade() -> None:
    counts = "business, source, day, image, clicks, impressions"
    _rebuild(DAILY, f"SELECT {counts}, {RUNNING} FROM {DAILY} ORDER BY business, source, day, image", True)
    totals = "t.business, t.source, t.image, t.clicks, t.impressions, x.first_day, x.last_day"
    extent = f"SELECT {totals} FROM {TOTALS} t JOIN ({EXTENT}) x ON {SAME_IMAGE.format(t='t')}"
    _rebuild(TOTALS, f"{extent} ORDER BY t.business, t.source, t.image", True)


def downgrade() -> None:
    _rebuild(DAILY, f"SELECT business, source, day, image, clicks, impressions FROM {DAILY}", False)
    _rebuild(TOTALS, f"SELECT business, source, image, clicks, impressions FROM {TOTALS}", False)
