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

Remembered defaults: at each run's creation Prefect also checks every default of the pool's
base job template on its own against the whole schema (a new validator per default: ~12 ms
of CPU per run for SwarmSync's 30 defaults). The result depends on the template alone, so it
is remembered per template (not when a default refers to a block, which may change).

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

On PostgreSQL, `server start` also has Prefect's small tables (flow, deployment, pools, queues)
analyzed once they exist, and after every change (swarmsync/planner_stats.py): never analyzed, they
make the planner scan all flow runs for each page of a job listing.
"""

from __future__ import annotations

import sys

from swarmsync.prefect_internals import (
    cleanup_only_open_cancelled_runs,
    immediate_sqlite_transactions,
    remember_template_defaults,
    remember_valid_schemas,
)

remember_valid_schemas()
remember_template_defaults()
immediate_sqlite_transactions()
cleanup_only_open_cancelled_runs()


if __name__ == "__main__":
    from prefect.cli import app
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from swarmsync.connection import api_healthy
    from swarmsync.planner_stats import keep_small_tables_analyzed

    if sys.argv[1:3] == ["server", "start"]:  # PostgreSQL: listings read by index (swarmsync/planner_stats.py)
        args = sys.argv

        def option(name: str, default: str) -> str:
            return args[args.index(name) + 1] if name in args[:-1] else default

        here = f"http://{option('--host', '127.0.0.1')}:{option('--port', '4200')}/api"
        keep_small_tables_analyzed(PREFECT_API_DATABASE_CONNECTION_URL.value() or "", lambda: api_healthy(here))
    sys.exit(app())
