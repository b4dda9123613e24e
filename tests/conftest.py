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
from collections.abc import Iterator
from pathlib import Path

import docker
import psycopg
import pytest
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "SWARMSYNC_TEST_PG", "postgresql+psycopg://swarmsync:swarmsync@127.0.0.1:5432/postgres"
)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


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


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    from swarmsync.db.session import get_engine
    from swarmsync.jobs import _deployment_id
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()
    _deployment_id.cache_clear()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, busybox) -> Iterator[dict[str, str]]:
    """`swarmsync up` in a child process; yields the SWARMSYNC_* env that points at it."""
    home = tmp_path_factory.mktemp("swarmsync-home")
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
    }
    _configure(env)
    log = open(home / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmsync.cli.main", "up"], env={**os.environ, **env},
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240  # generous: a loaded machine starts Prefect, the API and the dashboard slowly
    while b"SwarmSync is up" not in (home / "up.log").read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"swarmsync up failed:\n{(home / 'up.log').read_text()}")
        time.sleep(0.5)
    yield env
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ("up.log", "logs/worker.log", "logs/prefect-server.log", "logs/api.log", "logs/dashboard.log"):
        src = home / name
        if src.exists():
            (ARTIFACTS / f"stack-{Path(name).name}").write_bytes(src.read_bytes())
    drop_pg_database(db_url)
    drop_pg_database(prefect_db_url)


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
