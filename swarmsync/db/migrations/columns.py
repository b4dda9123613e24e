"""Column types the revisions share.

A revision is history: never change what a name here means (add a new name instead), or an old
revision would build another schema than the one it built."""

import sqlalchemy as sa

TS = sa.DateTime(timezone=True)
"""A point in time, with its time zone (SwarmSync writes UTC)."""
