"""`swarmsync up` with its ports already taken: by a real Prefect server (a choice: use it with
--prefect-url, or another port), by any other program (the port and its setting named); never
a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, free_port


def up(home: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swarmsync.cli.main", "up", *args], capture_output=True,
                          text=True, timeout=timeout, env={**clean_env(), "SWARMSYNC_HOME": str(home), **env})


def test_a_port_taken_by_another_program_is_named_with_its_setting(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        done = up(tmp_path, {"SWARMSYNC_PORT": str(free_port()), "SWARMSYNC_API_PORT": str(taken),
                             "SWARMSYNC_DASHBOARD_PORT": str(free_port())})
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert f"Port {taken} on 127.0.0.1 (the SwarmSync API) is already in use" in said
    assert "SWARMSYNC_API_PORT=" in said and "Traceback" not in said


@pytest.fixture
def prefect_server(tmp_path):
    """A plain `prefect server start` (SQLite under tmp_path) on a free port."""
    port = free_port()
    env = {**clean_env(), "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    log = open(tmp_path / "prefect.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # generous: a fresh SQLite server migrating on a busy machine
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "prefect.log").read_text()
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


@pytest.mark.timeout(900)  # two Prefect-backed starts: minutes on a busy host
def test_a_prefect_server_on_the_port_is_offered_and_used_with_prefect_url(tmp_path, prefect_server):
    env = {"SWARMSYNC_PORT": str(prefect_server), "SWARMSYNC_API_PORT": str(free_port()),
           "SWARMSYNC_DASHBOARD_PORT": str(free_port())}
    done = up(tmp_path / "home", env)
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "Traceback" not in said
    assert "A Prefect server (API version " in said and f"127.0.0.1:{prefect_server}" in said
    use = f"--prefect-url http://127.0.0.1:{prefect_server}/api"
    assert use in said and "SWARMSYNC_PORT=" in said
    # the choice as printed: SwarmSync's pool and deployment on that server
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    with open(home / "up.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarmsync.cli.main", "up", *use.split(), "--no-api", "--no-worker"],
            env={**clean_env(), "SWARMSYNC_HOME": str(home), **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while b"SwarmSync is up" not in (home / "up.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, (home / "up.log").read_text()
            time.sleep(0.5)
        pools = httpx.post(f"http://127.0.0.1:{prefect_server}/api/work_pools/filter", json={}, timeout=10).json()
        assert "swarmsync" in [p["name"] for p in pools]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(60)
