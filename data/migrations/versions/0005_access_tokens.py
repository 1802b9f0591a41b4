"""Access tokens (only their SHA-256) and the secrets every worker shares (the session key).

Revision 0005, after 0004. Token ids are never reused (AUTOINCREMENT on SQLite, a sequence on
PostgreSQL), so a session that names a revoked token's id can never come back to life.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("businesses", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("last_used_at", sa.String(32), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ux_access_tokens_name", "access_tokens", ["name"], unique=True)
    op.create_index("ux_access_tokens_hash", "access_tokens", ["token_hash"], unique=True)
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("app_secrets")
    op.drop_index("ux_access_tokens_hash", table_name="access_tokens")
    op.drop_index("ux_access_tokens_name", table_name="access_tokens")
    op.drop_table("access_tokens")
