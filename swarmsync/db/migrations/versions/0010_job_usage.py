"""Job usage: what each finished job's containers used, and a monthly CPU-hours budget per project.

`job_usage` gets one row per job, written with its archive index row (swarmsync/usage.py measures,
swarmsync/usage_report.py sums); `projects.cpu_hours_budget` caps a project's month (NULL: no cap).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0010_job_usage", "0009_worker_tokens"


def upgrade() -> None:
    op.create_table(
        "job_usage",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(64), index=True),
        sa.Column("project", sa.String(64), nullable=False, index=True),
        sa.Column("pool", sa.String(200)),
        sa.Column("image", sa.String(512), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("memory_peak_bytes", sa.BigInteger(), nullable=False),
        sa.Column("block_read_bytes", sa.BigInteger(), nullable=False),
        sa.Column("block_write_bytes", sa.BigInteger(), nullable=False),
        sa.Column("net_rx_bytes", sa.BigInteger(), nullable=False),
        sa.Column("net_tx_bytes", sa.BigInteger(), nullable=False),
        sa.Column("wall_seconds", sa.Float(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("cpu_hours_budget", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("cpu_hours_budget")
    op.drop_table("job_usage")
