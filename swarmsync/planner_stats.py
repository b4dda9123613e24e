"""Planner statistics for Prefect's small tables on PostgreSQL, so that job listings read by index.

Every job listing asks Prefect for flow runs of the job flow (`flow.name = 'container-job'`, an
`EXISTS` over the `flow` table) sorted by expected start time. That table holds a handful of rows
and is never analyzed: autovacuum analyzes a table after 50 changed rows plus 10% of it, which a table
of three flows never reaches. Never analyzed, PostgreSQL assumes it holds ~1,500 rows, so it guesses
that one flow's runs are 1/1,500 of `flow_run`, sorts "those few" and scans the whole table to find
them: with 100,000 jobs the first page of a viewer's listing took 340 ms and grew with the history,
0.3 ms once `flow` was analyzed (EXPLAIN ANALYZE in docs/benchmarks.md).

So, when the Prefect server starts on PostgreSQL (`swarmsync.prefect_server`), these tables are
analyzed once (once the server answers its health check: its migrations are done, so this never
contends with them; with a 2 s lock timeout besides), and autovacuum is told to analyze
them again after any change (`autovacuum_analyze_threshold = 0`, `..._scale_factor = 0`: a table of a
few rows costs nothing to analyze), so a flow or pool added later is known within a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

SMALL_TABLES = ("flow", "deployment", "work_pool", "work_queue")
logger = logging.getLogger(__name__)


def sync_url(url: str) -> str | None:
    """A synchronous SQLAlchemy URL for Prefect's database URL, or None when it is not PostgreSQL."""
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("postgresql"):
        return None
    return f"postgresql+psycopg://{rest}"


def analyze_small_tables(url: str) -> list[str]:
    """Analyze the SMALL_TABLES that exist and set them to be analyzed after any change; returns those done
    (empty: Prefect has not made them yet)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL lock_timeout = '2s'"))  # never hold up the server's own work
            present = set(connection.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename = ANY(:names)"), {"names": list(SMALL_TABLES)}).scalars())
            if "flow" not in present:
                return []
            done = [table for table in SMALL_TABLES if table in present]
            for table in done:  # names from SMALL_TABLES only
                connection.execute(sa.text(f'ALTER TABLE "{table}" SET (autovacuum_analyze_threshold = 0, '
                                           "autovacuum_analyze_scale_factor = 0)"))
                connection.execute(sa.text(f'ANALYZE "{table}"'))
        return done
    finally:
        engine.dispose()


def keep_small_tables_analyzed(database_url: str, ready: Callable[[], bool], tries: int = 120,
                               pause: float = 5.0) -> threading.Thread | None:
    """In the background (the server starts meanwhile and migrates the database): once `ready()` (the
    server answers), analyze the small tables (`analyze_small_tables`), retrying every `pause` s for `tries`
    times. None when the database is not PostgreSQL."""
    url = sync_url(database_url)
    if url is None:
        return None

    def run() -> None:
        for _ in range(tries):
            try:
                if ready() and (done := analyze_small_tables(url)):
                    logger.info("analyzed %s for the query planner", ", ".join(done))
                    return
            except DBAPIError as exc:  # not reachable or not migrated yet; a lock held by the migration
                logger.debug("tables not analyzed yet: %s", exc)
            time.sleep(pause)
        logger.warning("Prefect's tables %s were never analyzed: job listings may read the whole flow_run "
                       "table (run ANALYZE on them)", ", ".join(SMALL_TABLES))

    thread = threading.Thread(target=run, name="swarmsync-planner-stats", daemon=True)
    thread.start()
    return thread
