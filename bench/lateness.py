"""Start lateness of delayed jobs: actual start minus scheduled time, p50/p95 over N jobs,
SwarmSync vs stock Prefect (process worker), on this machine.

    python bench/lateness.py [--jobs 20] [--lead 30] [--spread 0.5] [--skip-stock] [--postgres URL]

Each system gets its own Prefect server (SQLite, the embedded default; with --postgres,
again each on a fresh PostgreSQL database) on free ports under a temp folder.
N delayed jobs (`echo hi` in the local busybox image) are submitted at once, scheduled
`lead` seconds ahead and `spread` seconds apart. "Start" is the flow run's start time
(its Running state, the same measure for both); for SwarmSync the container's own start
(from the job's manifest) is reported too. A job that starts early counts negative.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from run import pct, start_server, start_stock_worker, start_swarmsync, stop, sync_client  # noqa: E402 - bench/run.py helpers

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def schedule_times(jobs: int, lead: float, spread: float) -> list[datetime]:
    start = datetime.now(UTC) + timedelta(seconds=lead)
    return [start + timedelta(seconds=i * spread) for i in range(jobs)]


def create_all(create, times: list[datetime]) -> tuple[list, list[datetime]]:
    """Create the delayed runs one after another (concurrent creations only queue up on a
    Prefect server on SQLite). A run whose planned time is under 5 s away when its turn
    comes (a busy server can take seconds per request) is scheduled 5 s ahead instead.
    Returns the runs and the times they were scheduled at."""
    started = time.perf_counter()
    created, used = [], []
    for planned in times:
        at = max(planned, datetime.now(UTC) + timedelta(seconds=5))
        created.append(create(at))
        used.append(at)
    shifted = sum(a != p for a, p in zip(used, times, strict=True))
    print(f"created {len(times)} delayed runs in {time.perf_counter() - started:.1f} s"
          + (f" ({shifted} moved later: the server was slow)" if shifted else ""), file=sys.stderr)
    return created, used


def wait_all(client, ids: list, timeout: float = 300) -> dict:
    """Poll (one request per round) until every run has ended; returns the runs by id."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))
        if all(r.state and r.state.type.value in TERMINAL for r in runs) and len(runs) == len(ids):
            return {r.id: r for r in runs}
        if time.monotonic() > deadline:
            raise TimeoutError("delayed runs did not all end")
        time.sleep(1)


def summary(lateness: list[float]) -> dict:
    return {"p50": pct(lateness, 50), "p95": pct(lateness, 95), "max": max(lateness), "min": min(lateness)}


def bench_swarmsync(image: str, jobs: int, lead: float, spread: float, home: Path, port: int) -> dict:
    up = start_swarmsync(home, port)
    import swarmsync
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    try:
        client = sync_client(port)
        swarmsync.submit(image, ["echo", "warm-up"]).wait(120)  # first submission loads the client; not measured
        times = schedule_times(jobs, lead, spread)
        submitted, times = create_all(lambda at: swarmsync.submit(image, ["echo", "hi"], at=at), times)
        runs = wait_all(client, [j.flow_run().id for j in submitted])
        flow_late, container_late, failed = [], [], 0
        for job, at in zip(submitted, times, strict=True):
            run = runs[job.flow_run().id]
            failed += run.state.type.value != "COMPLETED"
            if run.start_time:
                flow_late.append((run.start_time - at).total_seconds())
            started = job.result().manifest.get("started_at")
            if started:
                container_late.append((datetime.fromisoformat(started) - at).total_seconds())
        return {**summary(flow_late), "container": summary(container_late), "failed": failed}
    finally:
        stop(up)


def bench_stock(image: str, jobs: int, lead: float, spread: float, home: Path, port: int) -> dict:
    from prefect.states import Scheduled

    server = start_server(home, port)
    worker = None
    try:
        client = sync_client(port)
        dep_id, worker = start_stock_worker(client, home, port)
        times = schedule_times(jobs, lead, spread)
        ids, times = create_all(lambda at: client.create_flow_run_from_deployment(
            dep_id, parameters={"image": image, "command": ["echo", "hi"]}, state=Scheduled(scheduled_time=at)).id,
            times)
        runs = wait_all(client, ids)
        late = [(runs[i].start_time - at).total_seconds() for i, at in zip(ids, times, strict=True)
                if runs[i].start_time]
        return {**summary(late), "failed": sum(r.state.type.value != "COMPLETED" for r in runs.values())}
    finally:
        stop(worker)  # killed after a grace if it hangs
        stop(server)


def run_lateness(image: str, tmp: Path, jobs: int = 20, lead: float = 30, spread: float = 0.5,
                 stock: bool = True, postgres: str | None = None) -> dict:
    """Both systems on Prefect with SQLite, and with `postgres` again on PostgreSQL;
    returns {system: {p50, p95, max, min, failed[, container]}}."""
    results, databases = {}, []

    def use_database(db: str) -> None:
        if db == "PostgreSQL":  # a fresh database per server
            databases.append(fresh_pg_database(postgres))
            os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = databases[-1].replace("+psycopg", "+asyncpg")

    try:
        for db in ("SQLite", "PostgreSQL") if postgres else ("SQLite",):
            use_database(db)
            results[f"SwarmSync, {db}"] = bench_swarmsync(image, jobs, lead, spread, tmp / f"ss-{db}", free_port())
            if stock:
                use_database(db)
                results[f"stock, {db}"] = bench_stock(image, jobs, lead, spread, tmp / f"stock-{db}", free_port())
    finally:
        os.environ.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        for url in databases:
            drop_database(postgres, url)
    return results


def fresh_pg_database(admin_url: str) -> str:
    from run import fresh_pg_database as create

    return create(admin_url)


def drop_database(admin_url: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u, name = make_url(admin_url), make_url(url).database
    conninfo = f"host={u.host} port={u.port or 5432} user={u.username} password={u.password} dbname={u.database}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_lateness(results: dict, jobs: int) -> None:
    print(f"\nstart lateness of {jobs} delayed jobs (actual start - scheduled time), seconds")
    print(f"{'system':<18}{'p50':>8}{'p95':>8}{'max':>8}{'failed':>8}   container start p50/p95")
    for name, r in results.items():
        extra = f"   {r['container']['p50']:.2f} / {r['container']['p95']:.2f}" if "container" in r else ""
        print(f"{name:<18}{r['p50']:>8.2f}{r['p95']:>8.2f}{r['max']:>8.2f}{r['failed']:>8}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--lead", type=float, default=30, help="seconds from submission to the first start time")
    parser.add_argument("--spread", type=float, default=0.5, help="seconds between the jobs' start times")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--postgres", default=None,
                        help="PostgreSQL admin URL (postgresql+psycopg://...): also both with Prefect on PostgreSQL")
    args = parser.parse_args()
    from swarmsync.images import ensure_busybox_image

    image = ensure_busybox_image(docker.from_env())
    tmp = Path(tempfile.mkdtemp(prefix="swarmsync-lateness-"))
    try:
        results = run_lateness(image, tmp, args.jobs, args.lead, args.spread, not args.skip_stock, args.postgres)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_lateness(results, args.jobs)


if __name__ == "__main__":
    main()
