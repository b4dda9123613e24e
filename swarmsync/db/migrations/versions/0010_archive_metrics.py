"""archive index: each job's pool, when it was due and its archive's size, for GET /metrics

`swarmsync/metrics.py` counts jobs by state, pool and project and builds the duration, queue-wait and
archive-size series from these rows with one aggregate query each (GROUP BY on indexed columns), so a
scrape stays cheap with a long history and every API replica answers the same. Rows from before this
revision have no pool (the label `unknown`), no due time (no queue wait) and count only their output.txt.

Revision ID: 0010_archive_metrics
Revises: 0009_worker_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_archive_metrics"
down_revision = "0009_worker_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archive_index") as batch:
        batch.add_column(sa.Column("pool", sa.String(100)))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("archive_bytes", sa.BigInteger()))
    op.create_index("ix_archive_index_state_pool_project", "archive_index", ["state", "pool", "project"])


def downgrade() -> None:
    op.drop_index("ix_archive_index_state_pool_project", table_name="archive_index")
    with op.batch_alter_table("archive_index") as batch:
        batch.drop_column("archive_bytes")
        batch.drop_column("due_at")
        batch.drop_column("pool")
