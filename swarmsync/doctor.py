"""Health checks of each part: Prefect API, Docker engine, database, Redis, workers, archive store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import httpx
from sqlalchemy import text

from swarmsync.connection import api_healthy, api_url, prefect_api
from swarmsync.settings import get_settings


@dataclass
class Check:
    part: str
    ok: bool
    detail: str
    required: bool = True


def check_prefect() -> Check:
    """The Prefect API answers, and accepts our credentials (its health probe needs none, so
    an authenticated read is tried too: a team-mode server without the auth string is down for us)."""
    url = api_url()
    if not api_healthy(url):
        return Check("Prefect API", False, f"no answer at {url}: start it with 'swarmsync up'")
    auth = get_settings().prefect_auth_string
    basic = tuple(auth.get_secret_value().split(":", 1)) if auth is not None else None
    try:
        status = httpx.get(f"{url}/admin/version", auth=basic, timeout=5).status_code  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return Check("Prefect API", False, f"{url}: {type(exc).__name__}: {exc}"[:300])
    if status == 401:
        return Check("Prefect API", False, f"{url} refused us (401): {prefect_auth_hint()}")
    if status >= 400:
        return Check("Prefect API", False, f"{url} answered {status}")
    return Check("Prefect API", True, url + (" (basic auth)" if basic else ""))


def prefect_auth_hint() -> str:
    """What to do about a 401 from the Prefect API (never shows the auth string itself)."""
    if get_settings().prefect_auth_string is None:
        return ("it requires its basic-auth string (team mode): on the server host set "
                "SWARMSYNC_PREFECT_AUTH_STRING=user:password; users go through the SwarmSync API "
                "instead ('swarmsync login URL' or SWARMSYNC_URL)")
    return "SWARMSYNC_PREFECT_AUTH_STRING does not match the server's auth string"


def check_docker() -> Check:
    from swarmsync.docker_runner import docker_client

    try:
        client = docker_client()
        info = client.info()
        return Check(
            "Docker engine", True,
            f"{info.get('ServerVersion')} · {info.get('NCPU')} cpus · "
            f"{info.get('MemTotal', 0) / 2**30:.1f} GiB · {info.get('ContainersRunning')} running",
        )
    except Exception as exc:  # noqa: BLE001 - every failure means "down"
        return Check("Docker engine", False, f"{exc}. Start dockerd (see README: Requirements)")


def check_worker_docker() -> Check:
    """Docker where it is used: on the workers. Each worker probes its own engine at every heartbeat
    (worker_telemetry); the engine counts as up when every worker heard from within
    SWARMSYNC_LOST_WORKER_SECONDS reached it. The host running this check needs no Docker socket
    (the API's container has none). With no worker heard from: embedded single-user mode (this
    host runs the worker) probes the local engine; team mode says to start a worker."""
    from datetime import timedelta

    from sqlalchemy import select

    from swarmsync.db import WorkerTelemetry, session_scope

    settings = get_settings()
    since = datetime.now(UTC) - timedelta(seconds=max(settings.lost_worker_seconds, 60))
    try:
        with session_scope() as session:
            rows = list(session.scalars(
                select(WorkerTelemetry).where(WorkerTelemetry.pool == settings.work_pool,
                                              WorkerTelemetry.heartbeat_at >= since)
                .order_by(WorkerTelemetry.worker_name)))
            session.expunge_all()
    except Exception as exc:  # noqa: BLE001 - the database check reports the database itself
        rows, error = [], f"{type(exc).__name__}: {exc}"[:200]
    else:
        error = ""
    if not rows:
        if settings.single_user:
            return check_docker()
        return Check("Docker engine", False, f"no worker of pool {settings.work_pool!r} reported its Docker engine "
                     f"recently{' (' + error + ')' if error else ''}: start a worker on a Docker host")
    parts, ok = [], True
    for row in rows:
        if row.docker_version:
            parts.append(f"{row.worker_name} on {row.hostname}: {row.docker_version} · {row.cpus} cpus · "
                         f"{(row.memory_bytes or 0) / 2**30:.1f} GiB · {row.containers_running} running")
        else:
            ok = False
            parts.append(f"{row.worker_name} on {row.hostname}: down ({row.docker_error or 'no answer'})")
    return Check("Docker engine", ok, "; ".join(parts)[:1000])


def check_database() -> Check:
    from swarmsync.db import get_engine

    url = get_settings().sql_url
    try:
        with get_engine().connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return Check("Database", True, f"{_redact(url)} (schema {version})")
    except Exception as exc:  # noqa: BLE001
        return Check("Database", False, f"{_redact(url)}: {type(exc).__name__}: {exc}"[:300])


def check_redis() -> Check:
    url = get_settings().redis_url
    if not url:
        return Check("Redis", True, "not configured (single-machine mode)", required=False)
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
        return Check("Redis", True, _redact(url))
    except Exception as exc:  # noqa: BLE001
        return Check("Redis", False, f"{_redact(url)}: {exc}")


def check_workers() -> Check:
    pool = get_settings().work_pool

    async def read():
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return await client.read_workers_for_work_pool(pool)

    try:
        with prefect_api():
            workers = anyio.run(read)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        why = prefect_auth_hint() if status == 401 else str(exc)
        return Check("Workers", False, f"pool {pool!r}: the Prefect API answered {status}: {why}"[:300])
    except Exception as exc:  # noqa: BLE001
        return Check("Workers", False, f"pool {pool!r}: {exc}"[:300])
    online = [w for w in workers if w.status and w.status.value == "ONLINE"]
    if not online:
        return Check("Workers", False, f"no live worker on pool {pool!r}: run 'swarmsync worker start'")
    now = datetime.now(UTC)
    telemetry = _telemetry({w.name for w in online})
    parts = []
    for w in online:
        line = f"{w.name} (heartbeat {(now - w.last_heartbeat_time).total_seconds():.0f} s ago"
        if row := telemetry.get(w.name):
            line += (f"; {row.hostname} pid {row.pid}, docker {row.docker_version}, {row.cpus} cpus, "
                     f"{(row.memory_bytes or 0) / 2**30:.1f} GiB, {row.running_jobs} jobs running")
        parts.append(line + ")")
    return Check("Workers", True, f"pool {pool!r}: " + "; ".join(parts))


def _telemetry(names: set[str]) -> dict:
    from sqlalchemy import select

    from swarmsync.db import WorkerTelemetry, session_scope

    try:
        with session_scope() as session:
            rows = session.scalars(select(WorkerTelemetry).where(WorkerTelemetry.worker_name.in_(names)))
            return {row.worker_name: row for row in rows}
    except Exception:  # noqa: BLE001 - telemetry is extra detail; the check stands without it
        return {}


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL (e.g. redis://)
        return url.split("@")[-1]


def check_archive_store() -> Check:
    """The installation's archive store (SWARMSYNC_ARCHIVE_BLOCK, else the local folder) takes a
    probe file from here: written, read back, deleted. Credentials never appear in the detail."""
    from swarmsync.archive import check_store, get_archive_store

    block = get_settings().archive_block
    try:
        return Check("Archive store", True, check_store(get_archive_store(block)))
    except Exception as exc:  # noqa: BLE001 - every failure means "cannot archive"
        return Check("Archive store", False, f"{block or 'local folder'}: {type(exc).__name__}: {exc}"[:400])


def run_checks() -> list[Check]:
    from swarmsync import core_link

    if (link := core_link.current()) is not None:  # a worker host with a token: Core and its own engine only
        return [check_core(link), check_docker()]
    return [check_prefect(), check_worker_docker(), check_database(), check_redis(), check_workers(),
            check_archive_store()]


def check_core(link) -> Check:
    """A worker host's one line to Core: reached over TLS as configured, and the token accepted."""
    from swarmsync.core_link import CoreRefused

    try:
        who = link.whoami()
    except CoreRefused as exc:
        return Check("Core", False, str(exc))
    except httpx.HTTPError as exc:
        return Check("Core", False, f"{link.server} does not answer: {type(exc).__name__}: {exc}"[:400])
    queue = f", queue {who['queue']}" if who.get("queue") else ""
    return Check("Core", True, f"{link.server}: worker token {who['name']!r}, pool {who['pool']!r}{queue}")


def remote_checks() -> list[Check]:
    """`swarmsync doctor` of a user pointed at a SwarmSync API: the API itself, then the
    server's own checks (`/health/checks`, which needs only `health:read`)."""
    from swarmsync.client import Client

    client = Client.from_settings()
    me = client.me()
    api = Check("SwarmSync API", True, f"{client.url} as {me['username']} ({me['role']})")
    return [api, *(Check(**row) for row in client.health_checks())]
