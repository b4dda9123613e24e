"""Shared fixtures: a real SwarmSync stack (Prefect server, worker) on a free port, with
Prefect's and SwarmSync's databases on real PostgreSQL, and the offline busybox image.

Environment: SWARMSYNC_TEST_PG (default postgresql+psycopg://swarmsync:swarmsync@127.0.0.1:5432/postgres)
names a PostgreSQL server where each test session creates its own database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import psycopg
import pytest
from sqlalchemy.engine import make_url

# No Prefect telemetry from the test process or any server it starts: Prefect starts a temporary server of its own
# for a call made outside every stack's context (seen once per suite: "Stopping temporary server"), and that
# server would try to reach Prefect's telemetry endpoint; the tests' traffic stays on this machine.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

PG_ADMIN_URL = os.environ.get(
    "SWARMSYNC_TEST_PG", "postgresql+psycopg://swarmsync:swarmsync@127.0.0.1:5432/postgres"
)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TESTS = Path(__file__).resolve().parent
STACK_FOLDERS = ("integration", "accounts", "dashboard", "security")  # every test there runs against real services
DOCKER_FIXTURES = {"docker_client", "busybox", "stack", "run_job", "no_leftover_containers"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with what it needs (`-m unit` runs without Docker or servers), and keep
    unit tests honest: one that asks for Docker or a stack is an error, not a slow unit test."""
    for item in items:
        folder = Path(str(item.path)).relative_to(TESTS).parts[0]
        needs_docker = bool(DOCKER_FIXTURES & set(getattr(item, "fixturenames", ())))
        if folder == "unit":
            if needs_docker:
                raise pytest.UsageError(f"{item.nodeid} is a unit test but uses Docker: move it to tests/integration")
            item.add_marker(pytest.mark.unit)
            continue
        if folder in STACK_FOLDERS:
            item.add_marker(pytest.mark.stack)
        if needs_docker or folder in STACK_FOLDERS:
            item.add_marker(pytest.mark.docker)
    # the host set-up tests restart PostgreSQL and Redis: run them first, before any stack holds connections
    items.sort(key=lambda item: 0 if item.get_closest_marker("host_setup") else 1)


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port or 5432} user={u.username} password={u.password} dbname={u.database}"


def create_pg_database() -> str:
    """A fresh, empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"swarmsync_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str, attempts: int = 10) -> None:
    """Drop a test database and end its connections. PostgreSQL 15 refuses FORCE while a backend
    this role may not end is on the database (seen once at the end of a full run; likely an
    autovacuum worker, whose role is none): retried for `attempts` s, then the database is left
    with a warning naming who holds it (a leftover test database is harmless)."""
    name = make_url(url).database
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        for attempt in range(attempts):
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == attempts - 1:
                    holders = conn.execute(
                        "SELECT usename, application_name, backend_type, state FROM pg_stat_activity "
                        "WHERE datname = %s", (name,)).fetchall()
                    warnings.warn(f"test database {name} left in place: held by {holders}", stacklevel=2)
                    return
                time.sleep(1)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = docker.from_env()
    client.ping()
    return client


@pytest.fixture(scope="session")
def busybox(docker_client) -> str:
    from swarmsync.images import ensure_busybox_image

    return ensure_busybox_image(docker_client)


def _configure(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.pop("PREFECT_API_URL", None)
    from swarmsync.jobs import _deployment_id
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    _deployment_id.cache_clear()


def clean_env() -> dict[str, str]:
    """This process's environment without any SwarmSync or Prefect setting (the session's
    own stack sets some of them in os.environ)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}


@contextmanager
def running_stack(home: Path, extra_env: dict[str, str] | None = None, name: str = "stack",
                  configure: bool = True) -> Iterator[dict[str, str]]:
    """`swarmsync up` in a child process, on free ports and fresh PostgreSQL databases; yields
    the SWARMSYNC_*/PREFECT_* env that points at it. `configure`: this test process uses it too
    (set in os.environ); else the stack inherits no SWARMSYNC_/PREFECT_ setting of this process
    and the test talks to it only through subprocesses or URLs. Logs go to test-artifacts/NAME-*.log."""
    db_url = create_pg_database()
    prefect_db_url = create_pg_database()
    env = {
        "SWARMSYNC_HOME": str(home),
        "SWARMSYNC_PORT": str(free_port()),
        "SWARMSYNC_API_PORT": str(free_port()),
        "SWARMSYNC_DASHBOARD_PORT": str(free_port()),
        "SWARMSYNC_DATABASE_URL": db_url,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db_url.replace("+psycopg", "+asyncpg"),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "SWARMSYNC_LOG_CAP_BYTES": "100000",
        **(extra_env or {}),
    }
    if configure:
        _configure(env)
    base = os.environ if configure else clean_env()
    log = open(home / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmsync.cli.main", "up"], env={**base, **env},
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        # generous: a loaded machine starts Prefect, the API and dashboard slowly (SWARMSYNC_TEST_STACK_START_S)
        deadline = time.monotonic() + float(os.environ.get("SWARMSYNC_TEST_STACK_START_S", 240))
        while b"SwarmSync is up" not in (home / "up.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"swarmsync up failed:\n{(home / 'up.log').read_text()}")
            time.sleep(0.5)
        yield env
    finally:
        stop_process(proc)
        ARTIFACTS.mkdir(exist_ok=True)
        for path in [home / "up.log", *sorted((home / "logs").glob("*.log"))]:
            (ARTIFACTS / f"{name}-{path.name}").write_bytes(path.read_bytes())
        drop_pg_database(db_url)
        drop_pg_database(prefect_db_url)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, busybox) -> Iterator[dict[str, str]]:
    """The test session's stack (`swarmsync up`, Prefect and SwarmSync on PostgreSQL)."""
    with running_stack(tmp_path_factory.mktemp("swarmsync-home")) as env:
        yield env


@pytest.fixture
def no_leftover_containers(docker_client, stack) -> Iterator[None]:
    """Fails the test if one of this stack's containers outlives its job (containers of
    other stacks sharing the Docker engine, e.g. a parallel test run, are not ours)."""
    from swarmsync.connection import api_url

    label = {"label": ["io.swarmsync.job", f"io.swarmsync.instance={api_url()}"]}
    before = {c.id for c in docker_client.containers.list(all=True, filters=label)}
    yield
    left = [c for c in docker_client.containers.list(all=True, filters=label) if c.id not in before]
    assert not left, f"containers left behind: {[c.name for c in left]}"


@pytest.fixture
def run_job(stack, no_leftover_containers):
    """Submit a job through the Python API and wait for it to end."""
    import swarmsync

    def run(image: str, command=None, wait_s: float = 120, **options):
        return swarmsync.submit(image, command, **options).wait(wait_s)

    return run
