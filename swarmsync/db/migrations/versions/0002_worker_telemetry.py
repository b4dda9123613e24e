"""Worker telemetry: each worker's host, Docker engine and load, as of its last heartbeat."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0002", "0001"


def upgrade() -> None:
    op.create_table(
        "worker_telemetry",
        sa.Column("worker_name", sa.String(200), primary_key=True),
        sa.Column("pool", sa.String(200), nullable=False, index=True),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("docker_version", sa.String(64)),
        sa.Column("cpus", sa.Integer()),
        sa.Column("memory_bytes", sa.BigInteger()),
        sa.Column("running_jobs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("containers_running", sa.Integer()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("worker_telemetry")  # its indexes go with it
