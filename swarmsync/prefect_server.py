"""Prefect's server as `swarmsync up` runs it: `python -m swarmsync.prefect_server server start ...`
is Prefect's own CLI (same arguments, same server) with two speedups applied first.

Remembered schemas: each flow run created from a deployment has its job variables validated
against the work pool's variables schema, and Prefect checks that *schema* against JSON
Schema's 2020-12 metaschema twice per run (`is_valid_schema`, then `jsonschema.validate`).
For SwarmSync's pool (20 documented host-policy variables) one check costs ~45 ms of CPU
on a 2-core machine, so ~90 ms of every job submission went to re-proving that an
unchanged schema is a valid schema. A schema that passed the check once is remembered
(by its canonical JSON) and not checked again; a schema that fails is checked, and
refused, every time. The job variables themselves are still validated on every run.

SQLite writers queue instead of failing: on the embedded SQLite database Prefect begins most
transactions DEFERRED (IMMEDIATE only where it orchestrates a state). A deferred transaction
reads first and asks for the write lock later; if another connection wrote in between, SQLite
refuses it at once ("database is locked": its snapshot is stale, the busy timeout does not
apply), the server answers 503 and Prefect's client retries 2, 4, 8... s later. Under a burst of
submissions most of the time went to those retries (100 jobs at ~30/min). Begun IMMEDIATE, a
transaction takes the write lock first and waits its turn under SQLite's busy timeout (60 s):
same burst, ~100 jobs/min, no 503s. Reads outside transactions are unaffected; PostgreSQL is
not touched.

Both are applied at import, so they also hold in the API processes uvicorn spawns for
`--workers N` (a spawned process imports the parent's main module again).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from cachetools import LRUCache

_PASSED: LRUCache[str, bool] = LRUCache(maxsize=256)


def remember_valid_schemas() -> None:
    """Make Prefect's schema validator check each distinct schema against the metaschema once."""
    from prefect.utilities.schema_tools import validation

    validator = validation._VALIDATOR
    if getattr(validator.check_schema, "remembers_valid_schemas", False):
        return
    check = validator.check_schema  # a classmethod, bound to the validator class

    def check_schema(schema: Any, *args: Any, **kwargs: Any) -> None:
        key = json.dumps(schema, sort_keys=True, default=str)
        if key in _PASSED:
            return
        check(schema, *args, **kwargs)  # raises SchemaError for an invalid schema: not remembered
        _PASSED[key] = True

    check_schema.remembers_valid_schemas = True  # type: ignore[attr-defined]
    check_schema.unremembered = check  # type: ignore[attr-defined]
    validator.check_schema = staticmethod(check_schema)


def immediate_sqlite_transactions() -> None:
    """Begin every transaction of Prefect's server on SQLite as IMMEDIATE (take the write lock first)."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    begin_transaction = AioSqliteConfiguration.begin_transaction
    if getattr(begin_transaction, "immediate", False):
        return

    @asynccontextmanager
    async def begin_immediate(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AsyncGenerator[Any, None]:
        async with begin_transaction(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_immediate.immediate = True  # type: ignore[attr-defined]
    begin_immediate.deferred = begin_transaction  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_immediate  # type: ignore[method-assign]


remember_valid_schemas()
immediate_sqlite_transactions()


if __name__ == "__main__":
    from prefect.cli import app

    sys.exit(app())
