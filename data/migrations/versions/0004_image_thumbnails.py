"""Thumbnails of the ad images, keyed by business, source and image name.

Revision 0004, after 0003. Images recur across builds, so a thumbnail belongs to the dataset's
image name, not to a build: no foreign key, and pruning builds keeps it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_thumbnails",
        sa.Column("business", sa.Text(), primary_key=True),
        sa.Column("source", sa.Text(), primary_key=True),
        sa.Column("image", sa.Text(), primary_key=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("stored_at", sa.String(32), nullable=False),
        sa.Column("image_data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("image_thumbnails")
