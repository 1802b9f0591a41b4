"""Build ids are 64-bit on PostgreSQL: builds.id, every column naming a build, and the id sequence.

Revision 0003, after 0002. A build id is a request parameter, and PostgreSQL's INTEGER ended at
2**31 - 1: a larger id in a URL failed as "integer out of range" instead of naming no build, and
the sequence would stop at it after two billion builds. The columns become BIGINT and the
sequence an ``AS bigint`` one, keeping every id. SQLite's INTEGER PRIMARY KEY is its 64-bit rowid
already (and a BIGINT one would not be the rowid), so SQLite keeps its schema.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, column) of builds' id and of every column that holds one.
BUILD_ID_COLUMNS = (
    ("builds", "id"),
    ("build_images", "build_id"),
    ("build_features", "build_id"),
    ("feature_values", "build_id"),
    ("build_matrices", "build_id"),
)


def _retype(wide: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table, column in BUILD_ID_COLUMNS:
        current = {c["name"]: c["type"] for c in inspector.get_columns(table)}[column]
        if isinstance(current, sa.BigInteger) is not wide:
            to_type = sa.BigInteger() if wide else sa.Integer()
            op.alter_column(table, column, type_=to_type, existing_type=current, existing_nullable=False)
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('builds', 'id')")).scalar()
    if sequence is not None:  # the catalog's name of builds.id's sequence, quoted by PostgreSQL
        op.execute(f"ALTER SEQUENCE {sequence} AS {'bigint' if wide else 'integer'}")


def upgrade() -> None:
    _retype(wide=True)


def downgrade() -> None:
    _retype(wide=False)  # fails, changing nothing, once a build id is past 2**31 - 1
