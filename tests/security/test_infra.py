"""The host's own services and the embedded stack's addresses: what an attacker on the same
network or the same machine could reach without an account.

- `swarmsync up` in embedded mode (no SWARMSYNC_PREFECT_AUTH_STRING) refuses to bind the
  SwarmSync API or the dashboard beyond loopback, before it starts anything.
- The Redis that infra/host-setup.sh starts refuses a client without its password.
- The PostgreSQL role the tests use (host-setup.sh creates it) is not a superuser.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg
import pytest
import redis

from tests.conftest import PG_ADMIN_URL, _pg_conninfo, free_port
from tests.services import REDIS_HOST, REDIS_PORT


@pytest.mark.parametrize("setting", ["SWARMSYNC_API_HOST", "SWARMSYNC_DASHBOARD_HOST"])
def test_embedded_up_refuses_a_non_loopback_api_or_dashboard(tmp_path, setting):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}
    env.update({
        "SWARMSYNC_HOME": str(tmp_path / "home"),
        "SWARMSYNC_PORT": str(free_port()),  # never the session stack's Prefect server
        "SWARMSYNC_API_PORT": str(free_port()),
        "SWARMSYNC_DASHBOARD_PORT": str(free_port()),
        setting: "0.0.0.0",
    })
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmsync.cli.main", "up", "--no-worker"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=60)  # a refusal comes before any part starts
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"`swarmsync up` with {setting}=0.0.0.0 in embedded mode did not refuse: it kept running")
    assert proc.returncode != 0, out
    flat = " ".join(out.split())
    assert setting in flat and "SWARMSYNC_PREFECT_AUTH_STRING" in flat, out
    assert not (tmp_path / "home" / "logs" / "prefect-server.log").exists(), "a Prefect server was started"


def test_redis_refuses_a_client_without_the_password(redis_client):
    redis_client.ping()  # the tests' URL carries the password host-setup.sh generated
    anonymous = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.set("swarmsync-test-anonymous-write", "x")
    wrong = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password="not-the-password", socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()


def test_the_test_postgres_role_is_not_a_superuser():
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    superuser, createdb, createrole, replication, bypassrls = row
    assert not superuser, "the tests' PostgreSQL role is a superuser"
    assert not (createrole or replication or bypassrls), row
    assert createdb, "the tests' role needs CREATEDB (a database per test session)"
