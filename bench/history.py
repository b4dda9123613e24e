"""A long job history: how fast `swarmsync jobs`, `GET /jobs` (paged) and the dashboard's
Overview and Jobs pages stay with 10,000 jobs, compared with 100.

    python bench/history.py [--jobs 10000] [--small 100] [--repeat 3]

For each size, a fresh stack (`swarmsync up` on free ports, Prefect's and SwarmSync's databases
on fresh PostgreSQL databases, as the test suite makes them: SWARMSYNC_TEST_PG) is filled with
that many finished jobs: flow runs of the `container-job` deployment with their final state (80%
Completed, 15% Failed, 5% Cancelled), written in bulk into Prefect's tables with its ORM models
(see `fill_here`), plus their archive index rows (one bulk insert), then both databases vacuumed and analyzed (as
autovacuum would within a minute; see `fill`). No container runs. Then each measurement runs
`--repeat` times and the median is printed as soon as it is known:

- `swarmsync jobs` (a new CLI process, through the API, default 20 rows);
- `GET /jobs?limit=50` (the first page); walking every page at limit=200 by cursor (`X-Next-Cursor`; also
  checked: no gap, no duplicate), as the time per page, and per 100 rows listed (a 100-job history is one
  page of 100 rows, a long one pages of 200: the same for the dashboard's Jobs page, which shows the newest
  200, and Overview, whose charts read them); the deepest page at limit=50 by cursor (the
  cursor of the page before the last), and by `offset` N-50 (compatibility: offset paging costs what the
  pages before it cost);
- the dashboard's Overview and Jobs pages rendered by Streamlit's AppTest against the API (at least 7 times
  each: their runs spread most).

It ends with the table (each row: the small history, the large one, their ratio) and one line,
`worst ratio: R (WHAT)`, the largest ratio among the rows the target covers (issue 29: each within 1.5x),
which are all but the offset row and the walk's time per page (its pages hold 100 rows at 100 jobs and 200
at more: the walk is compared per 100 rows listed instead).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.conftest import running_stack  # noqa: E402 - the suite's own stack helper (fresh PG databases)

STATES = ["COMPLETED"] * 16 + ["FAILED"] * 3 + ["CANCELLED"]
OFFSET_ROW = "GET /jobs?limit=50, deepest page by offset"  # compatibility: not in the worst ratio
PER_ROWS_ROW = "every page, limit=200, per 100 rows"  # the walk's pages hold 100 rows at 100 jobs, 200 at more
PER_PAGE_ROW = "every page, limit=200, per page"  # not in the worst ratio: 100-row pages against 200-row ones


def fill(jobs: int) -> float:
    """`fill_here` in a new process (Prefect keeps its first database engine for the process's life,
    and each size has a stack and databases of its own), then both databases vacuumed and analyzed; returns
    seconds taken.

    The VACUUM ANALYZE is what PostgreSQL's autovacuum does on its own within a minute or so of a bulk load (it did,
    seen in `pg_stat_user_tables`); measured before it, a page was read with the statistics of an empty table,
    and whether a row was measured before or after autovacuum got to it (and while it ran) changed the first
    page's time by 3x from one run to the next. A history that grew job by job has been analyzed all along."""
    import psycopg
    from sqlalchemy.engine import make_url

    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--fill-only", str(jobs)], check=True)
    for variable in ("PREFECT_API_DATABASE_CONNECTION_URL", "SWARMSYNC_DATABASE_URL"):
        url = make_url(os.environ[variable]).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def fill_here(jobs: int) -> None:
    """`jobs` finished jobs (flow runs with their final state, and index rows) on the stack the
    environment names.

    Written in bulk into Prefect's own tables with its ORM models (a flow_run row per job with
    its deployment, work queue, tags, parameters, expected start time one second apart, then its
    final flow_run_state row, then the run pointed at it), 1,000 per statement: through the HTTP
    API one Prefect process makes 4-8 runs a second on 2 cores (10,000 took 27 minutes), and
    through `models.flow_runs.create_flow_run` about 15."""
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from sqlalchemy import insert

    from swarmsync.connection import api_url, prefect_api
    from swarmsync.db import ArchiveRecord, session_scope
    from swarmsync.jobs import _deployment_id, deployment_for_pool
    from swarmsync.owners import owner_tags

    spec = {"image": "busybox", "command": ["echo", "hi"]}
    with prefect_api():
        deployment_id = _deployment_id(deployment_for_pool(None), api_url())
    names = {"COMPLETED": "Completed", "FAILED": "Failed", "CANCELLED": "Cancelled"}

    async def create_all() -> list[tuple[str, str]]:
        db = provide_database_interface()
        async with db.session_context() as session:
            deployment = (await session.execute(
                sa.select(db.Deployment).where(db.Deployment.id == deployment_id))).scalar_one()
            queue = (await session.execute(
                sa.select(db.WorkQueue).where(db.WorkQueue.id == deployment.work_queue_id))).scalar_one()
        first = datetime.now(UTC) - timedelta(seconds=jobs + 60)
        made: list[tuple[str, str]] = []
        for batch in range(0, jobs, 1000):
            runs, states = [], []
            for i in range(batch, min(batch + 1000, jobs)):
                kind, at = STATES[i % len(STATES)], first + timedelta(seconds=i)
                run_id = uuid.uuid4()
                runs.append(dict(
                    id=run_id, name=f"busybox-echo-{i}", flow_id=deployment.flow_id, deployment_id=deployment.id,
                    work_queue_id=queue.id, work_queue_name=queue.name, parameters={"job": spec},
                    tags=owner_tags(f"user{i % 7}", None), expected_start_time=at, start_time=at,
                    end_time=at + timedelta(seconds=1), run_count=1, state_type=kind, state_name=names[kind],
                    state_timestamp=at + timedelta(seconds=1), created=at, updated=at))
                states.append(dict(flow_run_id=run_id, type=kind, name=names[kind], message=f"exit {i % 3}",
                                   timestamp=at + timedelta(seconds=1), state_details={"flow_run_id": str(run_id)}))
                made.append((str(run_id), kind))
            async with db.session_context(begin_transaction=True) as session:
                await session.execute(insert(db.FlowRun), runs)
                await session.execute(insert(db.FlowRunState), states)
                await session.execute(
                    sa.update(db.FlowRun)
                    .where(db.FlowRun.id == db.FlowRunState.flow_run_id, db.FlowRun.state_id.is_(None))
                    .values(state_id=db.FlowRunState.id))
        return made

    created = asyncio.run(create_all())
    now = datetime.now(UTC)
    rows = [dict(job_id=job_id, image="busybox", command='["echo", "hi"]', state=state, exit_code=0,
                 archive_path=f"/nowhere/{job_id}", manifest_sha256="0" * 64, output_bytes=3, tags=[],
                 started_at=now - timedelta(seconds=2), finished_at=now) for job_id, state in created]
    with session_scope() as session:
        for i in range(0, len(rows), 1000):
            session.execute(insert(ArchiveRecord), rows[i:i + 1000])


def median_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(jobs: int, repeat: int, env: dict[str, str]) -> dict[str, float]:
    import httpx
    from streamlit.testing.v1 import AppTest

    import swarmsync.dashboard

    DASHBOARD = Path(swarmsync.dashboard.__file__).parent  # noqa: N806 - the tree's own (PYTHONPATH: another tree)

    from swarmsync.auth import tokens, users
    from swarmsync.auth.roles import Principal

    name = f"bench-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, "correct horse battery staple", "viewer")
    token = tokens.create_token(Principal.local(), "bench", name).token
    url = f"http://127.0.0.1:{env['SWARMSYNC_API_PORT']}"
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    results: dict[str, float] = {}

    def show(key: str, seconds: float) -> None:
        results[key] = seconds
        print(f"  {jobs:>6} jobs  {key:<34} {seconds * 1000:8.0f} ms", flush=True)

    cli_env = {**os.environ, "SWARMSYNC_URL": url, "SWARMSYNC_TOKEN": token}
    show("swarmsync jobs (new process)", median_of(repeat, lambda: subprocess.run(
        [sys.executable, "-m", "swarmsync.cli.main", "jobs"], env=cli_env, check=True, capture_output=True)))
    show("GET /jobs?limit=50", median_of(repeat, lambda: http.get("/jobs", params={"limit": 50}).raise_for_status()))

    walked = {"rows": 0}

    def walk(limit: int) -> list[str]:
        """Every page by cursor; the cursors in order (the last: of the last full page)."""
        seen, cursors, after = [], [], None
        while True:
            response = http.get("/jobs", params={"limit": limit, **({"after": after} if after else {})})
            response.raise_for_status()
            seen += [row["id"] for row in response.json()]
            if "X-Next-Cursor" not in response.headers and "X-Next-Offset" in response.headers:
                return walk_by_offset(limit, seen)  # a tree before cursors (--compare, before/after runs)
            after = response.headers.get("X-Next-Cursor")
            if after is None:
                break
            cursors.append(after)
        assert len(seen) == len(set(seen)) >= jobs, f"{len(seen)} rows, {len(set(seen))} distinct, {jobs} made"
        walked["rows"] = len(seen)
        return cursors

    def walk_by_offset(limit: int, seen: list[str]) -> list[None]:
        """The rest of the pages by offset, for a tree that has no cursors: one None per page."""
        pages, offset = [None], limit
        while True:
            response = http.get("/jobs", params={"limit": limit, "offset": offset})
            response.raise_for_status()
            seen += [row["id"] for row in response.json()]
            if "X-Next-Offset" not in response.headers:
                break
            pages.append(None)
            offset = int(response.headers["X-Next-Offset"])
        assert len(seen) == len(set(seen)) >= jobs, f"{len(seen)} rows, {len(set(seen))} distinct, {jobs} made"
        walked["rows"] = len(seen)
        return pages

    started = time.perf_counter()
    pages = len(walk(200)) + 1
    took = time.perf_counter() - started
    show(f"{PER_PAGE_ROW} ({pages})", took / pages)
    # a 100-job history is one page of 100 rows, a long one pages of 200: the same walk per 100 rows listed
    show(f"{PER_ROWS_ROW} ({walked['rows']} rows)", took / walked["rows"] * 100)
    # a cursor is a position, whatever the limit: the deepest full page's (cursors[-1] leads past it), from a
    # walk at 50 for a short history, at 200 for a long one (2,000 pages at 50 would take minutes)
    cursors = walk(50) if jobs <= 1000 else walk(200)
    deepest = cursors[-2] if len(cursors) > 1 else None
    if deepest or len(cursors) <= 1:  # (a tree without cursors has no such row)
        show("GET /jobs?limit=50, deepest page (after=)", median_of(repeat, lambda: http.get(
            "/jobs", params={"limit": 50, **({"after": deepest} if deepest else {})}).raise_for_status()))
    show(f"{OFFSET_ROW} (offset={max(jobs - 50, 0)})", median_of(repeat, lambda: http.get(
        "/jobs", params={"limit": 50, "offset": max(jobs - 50, 0)}).raise_for_status()))

    jobs_page: list[float] = []

    def page(path: str | None) -> None:
        at = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=300)
        at.run()
        at.text_input(key="login_username").input(name)
        at.text_input(key="login_password").input("correct horse battery staple")
        at.button(key="FormSubmitter:login-Log in").click().run()
        if path:
            started = time.perf_counter()
            at.switch_page(path).run()
            jobs_page.append(time.perf_counter() - started)
        assert not at.exception, at.exception

    # the dashboard's rows spread most (a Streamlit run now and then takes twice the others): at least 7 each
    show("dashboard: log in + Overview", median_of(max(repeat, 7), lambda: page(None)))
    show("dashboard: log in + Overview + Jobs", median_of(max(repeat, 7), lambda: page("views/jobs.py")))
    show("dashboard: Jobs page (opened after log in)", statistics.median(jobs_page))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fill-only", type=int, help=argparse.SUPPRESS)  # fill()'s child process
    args = parser.parse_args()
    if args.fill_only is not None:
        fill_here(args.fill_only)
        return
    table: dict[int, dict[str, float]] = {}
    for jobs in (args.small, args.jobs):
        with tempfile.TemporaryDirectory(prefix="swarmsync-history-") as home, \
                running_stack(Path(home), name=f"history-{jobs}") as env:
            from swarmsync.settings import get_settings

            get_settings.cache_clear()
            print(f"{jobs} jobs: filled in {fill(jobs):.1f} s", flush=True)
            table[jobs] = measure(jobs, args.repeat, env)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print(f"\n| measurement | {args.small} jobs | {args.jobs} jobs | ratio |\n|---|---|---|---|")
    worst = (0.0, "")
    for key, large in table[args.jobs].items():
        small_key = next((k for k in table[args.small] if k.split(" (")[0] == key.split(" (")[0]), key)
        small = table[args.small].get(small_key)
        ratio = large / small if small else float("nan")
        print(f"| {key} | {small * 1000 if small else float('nan'):.0f} ms | {large * 1000:.0f} ms | {ratio:.2f}x |")
        if not key.startswith((OFFSET_ROW, PER_PAGE_ROW)) and ratio > worst[0]:
            worst = (ratio, key)
    print(f"\nworst ratio: {worst[0]:.2f} ({worst[1]})")

if __name__ == "__main__":
    main()
