"""SSH public keys for key-based login, and the SQL store of login challenges (nonces)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from swarmsync.db.migrations.columns import TS

revision, down_revision = "0006_ssh_keys", "0005_secrets"



def upgrade() -> None:
    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("key_type", sa.String(64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("comment", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("removed_at", TS),
        sa.UniqueConstraint("user_id", "fingerprint", name="uq_ssh_keys_user_fingerprint"),
    )
    op.create_table(
        "login_challenges",
        sa.Column("nonce_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False, index=True),
        sa.Column("used_at", TS),
    )


def downgrade() -> None:
    op.drop_table("login_challenges")  # and its indexes
    op.drop_table("ssh_keys")
