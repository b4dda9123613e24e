"""Who owns each Secret block SwarmSync makes (job, template and schedule secrets)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0005_secrets", "0004"


def upgrade() -> None:
    op.create_table(
        "secret_owners",
        sa.Column("block_name", sa.String(255), primary_key=True),
        sa.Column("owner", sa.String(64)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_secret_owners_kind_ref", "secret_owners", ["kind", "ref"])


def downgrade() -> None:
    op.drop_index("ix_secret_owners_kind_ref", table_name="secret_owners")
    op.drop_table("secret_owners")
