"""archive index

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_index",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("image", sa.String(512), nullable=False),
        sa.Column("image_digest", sa.String(200)),
        sa.Column("command", sa.Text()),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("reason", sa.String(64)),
        sa.Column("message", sa.Text()),
        sa.Column("worker", sa.String(200)),
        sa.Column("archive_path", sa.String(1024), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("output_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tags", sa.JSON()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_archive_index_state", "archive_index", ["state"])
    op.create_index("ix_archive_index_finished_at", "archive_index", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_archive_index_finished_at", "archive_index")
    op.drop_index("ix_archive_index_state", "archive_index")
    op.drop_table("archive_index")
