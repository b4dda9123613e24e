"""worker telemetry: why the worker's Docker engine did not answer at its last heartbeat

The Docker check of `swarmsync doctor` and the dashboard reads the workers' heartbeats (each
worker probes its own engine), not a socket of the API's host: docker_version NULL with
docker_error set means the engine was down at that heartbeat.
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0008_worker_docker_error", "0007_projects"


def upgrade() -> None:
    op.add_column("worker_telemetry", sa.Column("docker_error", sa.String(300)))


def downgrade() -> None:
    op.drop_column("worker_telemetry", "docker_error")
