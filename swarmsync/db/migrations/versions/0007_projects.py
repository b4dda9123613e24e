"""Projects and their members; the project and owner of archived jobs and Secret blocks.

Every existing user joins the default project as an operator there (their global role caps it:
a viewer only reads; admins are admins everywhere); rows from before projects have
project NULL, which reads as the default project.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from swarmsync.db.migrations.columns import TS

revision, down_revision = "0007_projects", "0006_ssh_keys"

DEFAULT_PROJECT = "default"  # swarmsync.auth.projects.DEFAULT_PROJECT at the time of writing


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "project_members",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.UniqueConstraint("project_id", "user_id", name="uq_project_members_project_user"),
    )
    with op.batch_alter_table("archive_index") as batch:
        batch.add_column(sa.Column("project", sa.String(64)))
        batch.add_column(sa.Column("owner", sa.String(64)))
        batch.create_index("ix_archive_index_project", ["project"])
    with op.batch_alter_table("secret_owners") as batch:
        batch.add_column(sa.Column("project", sa.String(64)))
    now = datetime.now(UTC)
    op.bulk_insert(projects, [{"name": DEFAULT_PROJECT, "description": "Every user's, unless an admin says "
                               "otherwise", "created_at": now}])
    bind = op.get_bind()
    project_id = bind.execute(sa.text("SELECT id FROM projects WHERE name = :n"), {"n": DEFAULT_PROJECT}).scalar()
    bind.execute(sa.text(
        "INSERT INTO project_members (project_id, user_id, role, added_at) "
        "SELECT :p, id, 'operator', :now FROM users"), {"p": project_id, "now": now})


def downgrade() -> None:
    with op.batch_alter_table("secret_owners") as batch:
        batch.drop_column("project")
    with op.batch_alter_table("archive_index") as batch:
        batch.drop_index("ix_archive_index_project")
        batch.drop_column("owner")
        batch.drop_column("project")
    op.drop_table("project_members")  # and its indexes
    op.drop_table("projects")
