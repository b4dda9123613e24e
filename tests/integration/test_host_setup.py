"""`make test`'s host set-up as a newcomer meets it: infra/host-setup.sh with the Docker engine,
PostgreSQL and Redis stopped brings all three up and says what it started and where the logs
are; a second run starts nothing and reports everything ready. All are running again
afterwards, even when the test fails. The Docker engine is stopped only when no container runs
on it (as when `make test` starts: these tests run first); on a busy engine it is left alone.

It changes the host, so it runs where CI does: as root on Debian/Ubuntu."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.services import PASSWORD_FILE, REDIS_HOST, REDIS_PORT
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.host_setup,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("apt-get") or not Path("/etc/debian_version").exists(),
        reason="changes the host: needs root on Debian/Ubuntu (as in CI)",
    ),
]

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "host-setup.sh"
REDIS_CONF = Path("/etc/swarmsync/redis.conf")


def setup(mode: str = "test") -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), mode], capture_output=True, text=True, timeout=600, cwd="/")


def pg_cluster() -> tuple[str, str]:
    for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.splitlines():
        ver, name, port, *_ = line.split()
        if port == "5432":
            return ver, name
    raise AssertionError("no PostgreSQL cluster on port 5432")


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0


def redis_ready() -> bool:
    try:
        return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password=PASSWORD_FILE.read_text().strip(),
                           socket_timeout=2).ping()
    except (redis.exceptions.RedisError, OSError):
        return False


DOCKER_PIDFILE = Path("/var/run/docker.pid")


def docker_ready() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


def docker_idle() -> bool:
    """The machine's engine answers and runs no container (stopping it then harms nothing)."""
    done = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and not done.stdout.strip()


def stop_docker() -> None:
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "stop", "docker.socket", "docker.service"], check=True, cwd="/")
        wait_until(lambda: not docker_ready(), timeout=60, what="the Docker engine stopped")
        return
    pid = int(DOCKER_PIDFILE.read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=60, what=f"dockerd (pid {pid}) gone")


def stop_services() -> None:
    ver, name = pg_cluster()
    subprocess.run(["pg_ctlcluster", ver, name, "stop", "-m", "fast"], check=True, cwd="/")
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password=PASSWORD_FILE.read_text().strip())
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # the server closes the connection as it goes
    wait_until(lambda: not pg_ready() and not redis_ready(), timeout=30, what="PostgreSQL and Redis stopped")


def restore_services() -> None:
    """Whatever happened, leave the Docker engine, PostgreSQL and Redis running for the rest of the
    machine."""
    if not docker_ready():
        setup()
    if not pg_ready():
        ver, name = pg_cluster()
        subprocess.run(["pg_ctlcluster", ver, name, "start"], cwd="/")
    if not redis_ready() and REDIS_CONF.exists():
        subprocess.run(["redis-server", str(REDIS_CONF)], cwd="/")
    wait_until(lambda: pg_ready() and redis_ready(), timeout=60, what="PostgreSQL and Redis back")


def test_setup_starts_stopped_services_and_a_second_run_does_nothing():
    first = setup()  # the machine as make test finds it: everything installed and ready
    assert first.returncode == 0, first.stdout + first.stderr
    stopping_docker = docker_idle()
    try:
        if stopping_docker:
            stop_docker()
        stop_services()
        started = setup()
        out = started.stdout + started.stderr
        assert started.returncode == 0, out
        assert pg_ready() and redis_ready(), out
        assert docker_ready(), out
        this_run = [line for line in started.stdout.splitlines() if "this run:" in line]
        pg_line = next((line for line in this_run if "PostgreSQL" in line and "log /" in line), None)
        redis_line = next((line for line in this_run if "Redis on 127.0.0.1:6379" in line and "log /" in line), None)
        docker_line = next((line for line in this_run if "dockerd" in line), None)
        assert pg_line and redis_line, f"the set-up does not report what it started and where its logs are:\n{out}"
        for line in (pg_line, redis_line, *([docker_line] if docker_line and "log /" in docker_line else [])):
            log = line.split("log ", 1)[1].rstrip(")")
            assert Path(log).exists(), f"reported log {log} does not exist"
        if stopping_docker:
            assert docker_line and ("log /" in docker_line or "journalctl" in docker_line), \
                f"the set-up does not report starting dockerd and where its log is:\n{out}"
        else:
            assert docker_line is None, out  # the engine was running: not started twice

        t0 = time.monotonic()
        again = setup()
        took = time.monotonic() - t0
        out = again.stdout + again.stderr
        assert again.returncode == 0, out
        assert "nothing to do: everything was ready" in again.stdout, out
        assert "this run:" not in again.stdout, out
        assert took < 30, f"a second run took {took:.1f} s"  # generous: it only checks
    finally:
        restore_services()


def test_a_port_taken_by_something_else_is_reported(tmp_path):
    """Redis's port held by a process that is not Redis: the set-up names the port and stops."""
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**os.environ, "SWARMSYNC_SETUP_REDIS_PORT": str(port), "SWARMSYNC_SETUP_ETC": str(tmp_path)}
        done = subprocess.run(["bash", str(SCRIPT), "test"], capture_output=True, text=True, timeout=600,
                              cwd="/", env=env)
    assert done.returncode != 0, done.stdout
    assert f"port {port} is taken by" in done.stderr and f"(pid {os.getpid()})" in done.stderr, done.stderr
