"""Worker processes for tests: `swarmsync worker start` in its own session, waited for until
Prefect lists it ONLINE, stopped (TERM, then KILL) at the end; a worker host with a token
(`start_token_host`) and a SwarmSync API process of its own (`start_api`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import httpx
from prefect.client.orchestration import get_client

from swarmsync.connection import prefect_api
from tests.conftest import clean_env
from tests.waiting import wait_until


def read_flow_run(run_id: str):
    """The flow run as Prefect's API has it now."""

    async def read():
        async with get_client() as client:
            return await client.read_flow_run(uuid.UUID(str(run_id)))

    with prefect_api():
        return anyio.run(read)


def online_workers(pool: str) -> list[str]:
    """Names of the pool's workers Prefect lists as ONLINE."""
    async def read():
        async with get_client() as client:
            return await client.read_workers_for_work_pool(pool)

    with prefect_api():
        return [w.name for w in anyio.run(read) if w.status and w.status.value == "ONLINE"]


class WorkerProcesses:
    """The worker processes one test started, with their logs under `logs`."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, pool: str, *extra: str, env: dict | None = None,
              command: list[str] | None = None) -> subprocess.Popen:
        """A worker on `pool` (`extra` CLI options, `env` over this process's environment), once it
        is ONLINE; `command` replaces `swarmsync worker start` (then any online worker of the pool counts)."""
        name = f"w-{uuid.uuid4().hex[:6]}"
        log_path = self.logs / f"{name}.log"
        args = command or [sys.executable, "-m", "swarmsync.cli.main", "worker", "start", "--pool", pool,
                           "--name", name, *extra]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log_path
        proc.worker_name = name
        self.procs.append(proc)
        wait_until(lambda: proc.poll() is not None or any(w == name or command for w in online_workers(pool)),
                   "worker online", timeout=60)
        assert proc.poll() is None, log_path.read_text()
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def start_token_host(server: str, token: str, name: str, home: Path, *extra: str,
                     env: dict[str, str] | None = None) -> subprocess.Popen:
    """`swarmsync worker start --server SERVER --token TOKEN --name NAME` with nothing of the test's stack in
    its environment (HOME and its settings under `home`), once it says it started; its log is home/worker.log
    (`proc.log_path`)."""
    home.mkdir(parents=True, exist_ok=True)
    full_env = {**clean_env(), "HOME": str(home), "SWARMSYNC_HOME": str(home / "swarmsync"),
                "PREFECT_HOME": str(home / "prefect"), **(env or {})}
    log_path = home / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarmsync.cli.main", "worker", "start", "--server", server, "--token", token,
             "--name", name, *extra], env=full_env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path
    wait_until(lambda: b"started!" in log_path.read_bytes() or proc.poll() is not None, "the worker host started", 60)
    assert proc.poll() is None, log_path.read_text()
    return proc


def start_api(port: int, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`swarmsync api --port PORT` with this process's environment (`env` over it), once /health answers."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "swarmsync.cli.main", "api", "--port", str(port)],
                                env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)

    def up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(up, "the API process answers", timeout=90)
    return proc
