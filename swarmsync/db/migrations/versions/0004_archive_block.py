"""A pool may archive to its own store: the index row names the block."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0004", "0003"


def upgrade() -> None:
    op.add_column("archive_index", sa.Column("archive_block", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archive_index") as batch:
        batch.drop_column("archive_block")
