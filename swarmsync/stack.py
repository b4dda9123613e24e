"""The embedded stack behind `swarmsync up`: a Prefect server on SQLite under
SWARMSYNC_HOME, SwarmSync's database, the job work pool and deployment, and a worker.

Everything runs as child processes of `swarmsync up`, which stops them on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from swarmsync.connection import api_url, prefect_api
from swarmsync.db import migrate
from swarmsync.settings import SwarmSyncSettings, get_settings


class StackError(RuntimeError):
    """A part of the stack did not come up; the message says which and why."""


def prefect_env(settings: SwarmSyncSettings) -> dict[str, str]:
    """Environment for Prefect processes of the embedded stack (server, worker)."""
    home = settings.home_dir
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_URL": api_url(),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": settings.host,
        "PREFECT_SERVER_API_PORT": str(settings.port),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": os.environ.get(
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5"
        ),
        "SWARMSYNC_HOME": str(home),
    }
    if settings.prefect_auth_string is not None:  # team mode: Prefect's basic auth on server and clients
        auth = settings.prefect_auth_string.get_secret_value()
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
        env["PREFECT_API_AUTH_STRING"] = auth
    env.setdefault(
        "PREFECT_API_DATABASE_CONNECTION_URL",
        f"sqlite+aiosqlite:///{home / 'prefect' / 'prefect.db'}",
    )
    return env


def check_mode(settings: SwarmSyncSettings) -> None:
    """Embedded single-user mode (no Prefect auth string) only on a loopback address."""
    if settings.single_user and settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise StackError(
            f"SWARMSYNC_HOST={settings.host} exposes the Prefect API beyond this machine: set "
            "SWARMSYNC_PREFECT_AUTH_STRING=user:password to protect it with Prefect's basic auth "
            "(users then reach SwarmSync through its API with their own accounts)"
        )


def api_healthy(url: str | None = None, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url or api_url()}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check, what: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} before it was ready")
        time.sleep(0.25)
    raise StackError(f"{what} was not ready after {timeout:.0f} s")


@dataclass
class Stack:
    """The processes `swarmsync up` started, stopped together."""

    settings: SwarmSyncSettings = field(default_factory=get_settings)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        path = self.settings.home_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - child keeps it
        proc = subprocess.Popen(
            args, env=prefect_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def start_server(self) -> None:
        check_mode(self.settings)
        if api_healthy():
            return
        (self.settings.home_dir / "prefect").mkdir(parents=True, exist_ok=True)
        proc = self._spawn(
            "prefect-server",
            [sys.executable, "-m", "prefect", "server", "start",
             "--host", self.settings.host, "--port", str(self.settings.port)],
        )
        wait_for(api_healthy, f"Prefect server (log: {self.log_dir}/prefect-server.log)", 90, proc)

    def prepare(self) -> None:
        """Database migrations, block types, the work pool and the job deployment."""
        from swarmsync.pools import create_pool

        migrate()
        with prefect_api():
            anyio.run(_register_block_types)
        create_pool(self.settings.work_pool)

    def start_worker(self, limit: int = 50) -> None:
        self._spawn(
            "worker",
            [sys.executable, "-m", "swarmsync.cli.main", "worker", "start",
             "--pool", self.settings.work_pool, "--limit", str(limit)],
        )

    def start_api(self) -> None:
        """The SwarmSync API (accounts, tokens, jobs over HTTP) on SWARMSYNC_API_PORT."""
        url = f"http://{self.settings.api_bind_host}:{self.settings.api_port}/health"
        proc = self._spawn("api", [sys.executable, "-m", "swarmsync.cli.main", "api"])
        wait_for(lambda: api_healthy(url.removesuffix("/health")), f"SwarmSync API (log: {self.log_dir}/api.log)",
                 60, proc)

    def start_dashboard(self) -> None:
        """The Streamlit dashboard on SWARMSYNC_DASHBOARD_PORT (it talks to the SwarmSync API)."""
        url = f"http://{self.settings.dashboard_bind_host}:{self.settings.dashboard_port}/_stcore/health"
        proc = self._spawn("dashboard", dashboard_command(self.settings))
        wait_for(lambda: _answers(url), f"dashboard (log: {self.log_dir}/dashboard.log)", 90, proc)

    def up(self, worker: bool = True, api: bool = True, dashboard: bool = True) -> None:
        self.start_server()
        self.prepare()
        if api:
            self.start_api()
        if api and dashboard:
            self.start_dashboard()
        if worker:
            self.start_worker()
            with prefect_api():
                wait_for(lambda: anyio.run(_worker_online, self.settings.work_pool),
                         f"worker (log: {self.log_dir}/worker.log)", 60, self.processes["worker"])

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.processes.clear()

    def failed(self) -> str | None:
        """Supervise: a dead worker is restarted (its jobs are recovered); a dead server is fatal."""
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                continue
            if name == "worker":
                print(f"worker exited with code {proc.returncode}; restarting it", flush=True)
                self.start_worker()
                continue
            return f"{name} exited with code {proc.returncode} (log: {self.log_dir}/{name}.log)"
        return None


def dashboard_command(settings: SwarmSyncSettings) -> list[str]:
    """`streamlit run dashboard/app.py` bound to the dashboard's address, headless, no telemetry."""
    from importlib.util import find_spec

    found = find_spec("dashboard")
    if found is None or not found.submodule_search_locations:
        raise StackError("the dashboard package is not installed (pip install -e . in the SwarmSync checkout)")
    app = Path(next(iter(found.submodule_search_locations))) / "app.py"
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", settings.dashboard_bind_host, "--server.port", str(settings.dashboard_port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _register_block_types() -> None:
    from prefect.blocks.system import Secret
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem
    from prefect_docker import DockerHost, DockerRegistryCredentials

    from blocks.job_template import JobTemplate

    for block_cls in (Secret, LocalFileSystem, RemoteFileSystem, DockerHost, DockerRegistryCredentials, JobTemplate):
        await block_cls.aregister_type_and_schema()


async def _worker_online(pool: str) -> bool:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workers = await client.read_workers_for_work_pool(pool)
    return any(w.status.value == "ONLINE" for w in workers if w.status)
