"""The archive index: one row per archived job (where its archive is, how the job ended)."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0001", None


def upgrade() -> None:
    op.create_table(
        "archive_index",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("image", sa.String(512), nullable=False),
        sa.Column("image_digest", sa.String(200)),
        sa.Column("command", sa.Text()),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("reason", sa.String(64)),
        sa.Column("message", sa.Text()),
        sa.Column("worker", sa.String(200)),
        sa.Column("archive_path", sa.String(1024), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("output_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tags", sa.JSON()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("archive_index")  # its indexes go with it
