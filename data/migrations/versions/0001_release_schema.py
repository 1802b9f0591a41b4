"""The schema as released before migrations: builds, their names, values and archives, CTR sets, nulls.

Revision 0001, the first. On an empty database it creates every table. A database written by a
release before migrations (no ``alembic_version`` table) already holds some or all of them: each
table found is kept as it is with its rows, and only what is missing is added (tables, the
``builds.tag`` column of Build-Tag and its unique index, the version row), so every dataset,
build, CTR set, build archive and null table survives. The types are written out here rather
than taken from ``data/schema.py``: a revision stays what it was when later ones change the schema.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[sa.Table]:
    meta = sa.MetaData()
    return [
        sa.Table(
            "builds",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("business", sa.Text, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("received_at", sa.String(32), nullable=False),
            sa.Column("n_images", sa.Integer, nullable=False),
            sa.Column("n_features", sa.Integer, nullable=False),
            sa.Column("n_values", sa.Integer, nullable=False),
            sa.Column("tag", sa.Text, nullable=True),
            sa.Index("ix_builds_pair", "business", "source", "id"),
            sa.Index("ux_builds_tag", "business", "source", "tag", unique=True),
        ),
        *(
            sa.Table(
                name,
                meta,
                sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True),
                sa.Column("idx", sa.Integer, primary_key=True),
                sa.Column("name", sa.Text, nullable=False),
            )
            for name in ("build_images", "build_features")
        ),
        sa.Table(
            "feature_values",
            meta,
            sa.Column("build_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("image_idx", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("feature_idx", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("confidence", sa.Float, nullable=False),
            sqlite_with_rowid=False,
        ),
        sa.Table(
            "build_matrices",
            meta,
            sa.Column("build_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("matrix_data", sa.LargeBinary, nullable=False),
        ),
        sa.Table(
            "ctr_sets",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("business", sa.Text, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("received_at", sa.String(32), nullable=False),
            sa.Column("n_images", sa.Integer, nullable=False),
            sa.Column("has_counts", sa.Integer, nullable=False),
            sa.Index("ux_ctr_sets_pair", "business", "source", unique=True),
        ),
        sa.Table(
            "ctr_values",
            meta,
            sa.Column("ctr_set_id", sa.Integer, sa.ForeignKey("ctr_sets.id", ondelete="CASCADE"), nullable=False),
            sa.Column("image", sa.Text, nullable=False),
            sa.Column("ctr", sa.Float, nullable=False),
            sa.Column("clicks", sa.BigInteger, nullable=True),
            sa.Column("impressions", sa.BigInteger, nullable=True),
            sa.Index("ix_ctr_values_set", "ctr_set_id"),
        ),
        sa.Table(
            "store_version",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("version", sa.Integer, nullable=False),
        ),
        sa.Table(
            "null_tables",
            meta,
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("stored_at", sa.String(32), nullable=False),
            sa.Column("table_data", sa.LargeBinary, nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    found = set(sa.inspect(bind).get_table_names())
    tables = _tables()
    for table in tables:
        if table.name not in found:
            table.create(bind)
    builds, store_version = tables[0], tables[-2]
    # Releases before Build-Tag stored builds without the column.
    if "tag" not in {c["name"] for c in sa.inspect(bind).get_columns("builds")}:
        op.add_column("builds", sa.Column("tag", sa.Text, nullable=True))
    for index in builds.indexes:
        index.create(bind, checkfirst=True)
    if bind.execute(sa.select(store_version.c.id)).first() is None:
        bind.execute(store_version.insert().values(id=1, version=0))


def downgrade() -> None:
    for table in reversed(_tables()):
        op.drop_table(table.name)
