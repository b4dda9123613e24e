"""worker telemetry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_telemetry",
        sa.Column("worker_name", sa.String(200), primary_key=True),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("docker_version", sa.String(64)),
        sa.Column("cpus", sa.Integer()),
        sa.Column("memory_bytes", sa.BigInteger()),
        sa.Column("running_jobs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("containers_running", sa.Integer()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_worker_telemetry_pool", "worker_telemetry", ["pool"])
    op.create_index("ix_worker_telemetry_heartbeat_at", "worker_telemetry", ["heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_telemetry_heartbeat_at", "worker_telemetry")
    op.drop_index("ix_worker_telemetry_pool", "worker_telemetry")
    op.drop_table("worker_telemetry")
