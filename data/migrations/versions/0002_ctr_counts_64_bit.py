"""CTR counts are 64-bit: clicks and impressions of a database that kept 32-bit columns become BIGINT.

Revision 0002, after 0001. Counts up to 2**53 - 1 are accepted, and releases since counts were
widened create BIGINT columns; a database created before that holds INTEGER ones, which
PostgreSQL caps at 2**31 - 1 (the store answered 500 above it). The columns are altered only
where they are narrower, keeping their values. SQLite stores any integer in 64 bits whatever
the column's declared type, so there is nothing to change there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COUNT_COLUMNS = ("clicks", "impressions")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    columns = {c["name"]: c["type"] for c in sa.inspect(bind).get_columns("ctr_values")}
    for name in COUNT_COLUMNS:
        if not isinstance(columns[name], sa.BigInteger):
            op.alter_column("ctr_values", name, type_=sa.BigInteger(), existing_type=columns[name])


def downgrade() -> None:
    pass  # narrowing could not hold every stored count; 0001's columns were BIGINT already
