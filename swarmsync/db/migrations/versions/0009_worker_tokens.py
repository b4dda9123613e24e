"""Worker tokens: a worker host's own credential for one pool, and the runs each token claimed.

A worker host holds a `ssw_...` token (only its SHA-256 is stored here) instead of the database,
the archive store's key and Prefect's auth string; Core's gateway serves it its pool only.
"""

import sqlalchemy as sa
from alembic import op

from swarmsync.db.migrations.columns import TS

revision, down_revision = "0009_worker_tokens", "0008_worker_docker_error"



def upgrade() -> None:
    op.create_table(
        "worker_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("queue", sa.String(100)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("revoked_at", TS),
        sa.Column("last_seen_at", TS),
        sa.Column("last_address", sa.String(64)),
        sa.Column("last_worker", sa.String(200)),
    )
    op.create_table(
        "worker_claims",
        sa.Column("flow_run_id", sa.String(36), primary_key=True),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("worker_tokens.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("claimed_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_claims")
    op.drop_table("worker_tokens")
