"""Dated metrics: clicks and impressions per image and day, their all-days sums, and one row per pair.

Revision 0006, after 0005. A dataset holds either a CTR set or dated metrics; reads sum the
days of a chosen window per image. Days are DATE on PostgreSQL and ISO text on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DAY = sa.Date().with_variant(sa.String(10), "sqlite")


def upgrade() -> None:
    op.create_table(
        "metric_sets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("business", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("first_day", DAY, nullable=True),
        sa.Column("last_day", DAY, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ux_metric_sets_pair", "metric_sets", ["business", "source"], unique=True)
    op.create_table(
        "image_metrics_daily",
        sa.Column("business", sa.Text(), primary_key=True),
        sa.Column("source", sa.Text(), primary_key=True),
        sa.Column("day", DAY, primary_key=True),
        sa.Column("image", sa.Text(), primary_key=True),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "image_metrics_totals",
        sa.Column("business", sa.Text(), primary_key=True),
        sa.Column("source", sa.Text(), primary_key=True),
        sa.Column("image", sa.Text(), primary_key=True),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("image_metrics_totals")
    op.drop_table("image_metrics_daily")
    op.drop_index("ux_metric_sets_pair", table_name="metric_sets")
    op.drop_table("metric_sets")
