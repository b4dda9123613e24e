"""Insert a row or, when its primary key exists, replace its given columns: one statement
(`INSERT ... ON CONFLICT DO UPDATE`, which SQLite and PostgreSQL both have), where the ORM's
`Session.merge` reads the row first and then writes it (a SELECT, an INSERT or UPDATE, and the
ORM's bookkeeping: 5.8% of a worker's CPU samples per job went to indexing its archive that way,
docs/benchmarks.md, the worker's fifth round)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from swarmsync.db.models import Base

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert(session: Session, model: type[Base], **values: Any) -> None:
    """Write `values` as `model`'s row: inserted, or the row with the same primary key updated
    (columns not given keep their values; on insert they get their defaults)."""
    table = model.__table__
    dialect = session.get_bind().dialect.name
    try:
        insert = _INSERTS[dialect]
    except KeyError:
        raise ValueError(f"SwarmSync's database must be SQLite or PostgreSQL, not {dialect}") from None
    keys = [column.name for column in table.primary_key.columns]
    missing = [key for key in keys if key not in values]
    if missing:
        raise ValueError(f"{table.name}: a row needs its primary key ({', '.join(missing)})")
    statement = insert(table).values(**values)
    changes = {name: statement.excluded[name] for name in values if name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes) if changes
                    else statement.on_conflict_do_nothing(index_elements=keys))
