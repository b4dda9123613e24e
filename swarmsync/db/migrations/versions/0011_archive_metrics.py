"""archive index: each job's pool, run time, queue wait and archive size, for GET /metrics

`swarmsync/metrics.py` counts jobs by state, pool and project and builds the duration, queue-wait and
archive-size series from these rows with one aggregate query each (GROUP BY), so a scrape stays cheap with
a long history and every API replica answers the same. The seconds are stored as numbers when a job is
indexed: a scrape compares plain columns instead of working out timestamp differences for every row.
Rows from before this revision get their run time here; they have no pool (the label `unknown`), no queue
wait (when they were due was not kept) and count only their output.txt's bytes.
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0011_archive_metrics", "0010_job_usage"


def upgrade() -> None:
    with op.batch_alter_table("archive_index") as batch:
        batch.add_column(sa.Column("pool", sa.String(100)))
        batch.add_column(sa.Column("archive_bytes", sa.BigInteger()))
        batch.add_column(sa.Column("duration_seconds", sa.Float()))
        batch.add_column(sa.Column("queue_wait_seconds", sa.Float()))
    seconds = ("(julianday(finished_at) - julianday(started_at)) * 86400.0" if op.get_bind().dialect.name == "sqlite"
               else "date_part('epoch', finished_at - started_at)")
    op.execute(f"UPDATE archive_index SET duration_seconds = {seconds} WHERE started_at IS NOT NULL")
    op.create_index("ix_archive_index_state_pool_project", "archive_index", ["state", "pool", "project"])


def downgrade() -> None:
    op.drop_index("ix_archive_index_state_pool_project", table_name="archive_index")
    with op.batch_alter_table("archive_index") as batch:
        batch.drop_column("queue_wait_seconds")
        batch.drop_column("duration_seconds")
        batch.drop_column("archive_bytes")
        batch.drop_column("pool")
