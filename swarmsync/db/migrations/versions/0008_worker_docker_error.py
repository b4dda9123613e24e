"""worker telemetry: why the worker's Docker engine did not answer at its last heartbeat

The Docker check of `swarmsync doctor` and the dashboard reads the workers' heartbeats (each
worker probes its own engine), not a socket of the API's host: docker_version NULL with
docker_error set means the engine was down at that heartbeat.

Revision ID: 0008_worker_docker_error
Revises: 0007_projects
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_worker_docker_error"
down_revision = "0007_projects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("worker_telemetry", sa.Column("docker_error", sa.String(300)))


def downgrade() -> None:
    op.drop_column("worker_telemetry", "docker_error")
