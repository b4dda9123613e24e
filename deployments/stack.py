"""The embedded stack behind `swarmsync up`: a Prefect server on SQLite under
SWARMSYNC_HOME, SwarmSync's database, the job work pool and deployment, and a worker.

Everything runs as child processes of `swarmsync up`, which stops them on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import anyio
import httpx

from swarmsync.connection import api_healthy, api_url, prefect_api
from swarmsync.db import migrate
from swarmsync.deployments.ports import PortTaken, check_ports
from swarmsync.errors import Error
from swarmsync.settings import SwarmSyncSettings, get_settings


class StackError(Error, RuntimeError):
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
        # events stored (Prefect's event feed, /api/events/filter) and Automations run (alerts: swarmsync.alerts)
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
        "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",
    }
    if settings.prefect_auth_string is not None:  # team mode: Prefect's basic auth on server and clients
        auth = settings.prefect_auth_string.get_secret_value()
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
        env["PREFECT_API_AUTH_STRING"] = auth
    env.setdefault(
        "PREFECT_API_DATABASE_CONNECTION_URL",
        f"sqlite+aiosqlite:///{home / 'prefect' / 'prefect.db'}",
    )
    if settings.prefect_redis_url:
        env.update(prefect_redis_env(settings.prefect_redis_url))
    return env


def prefect_redis_env(url: str) -> dict[str, str]:
    """Prefect's messaging, event ordering, lease storage and Docket on Redis (prefect-redis),
    as Prefect's guide to scaling a self-hosted server sets them. Everything Prefect keeps
    there lives in the URL's database number, so give each installation its own."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise StackError(f"SWARMSYNC_PREFECT_REDIS_URL={url!r} is not a redis:// URL")
    db = (parts.path or "/0").strip("/") or "0"
    if not db.isdigit():
        raise StackError(f"SWARMSYNC_PREFECT_REDIS_URL: database {db!r} is not a number")
    env = {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": parts.hostname,
        "PREFECT_REDIS_MESSAGING_PORT": str(parts.port or 6379),
        "PREFECT_REDIS_MESSAGING_DB": db,
        "PREFECT_REDIS_MESSAGING_SSL": "true" if parts.scheme == "rediss" else "false",
        "PREFECT_SERVER_DOCKET_URL": url,
    }
    if parts.username:
        env["PREFECT_REDIS_MESSAGING_USERNAME"] = parts.username
    if parts.password:
        env["PREFECT_REDIS_MESSAGING_PASSWORD"] = parts.password
    return env


async def prepare_prefect_database() -> None:
    """Migrate Prefect's database and register its block types (run in a process with the
    stack's Prefect environment)."""
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    db = provide_database_interface()
    await db.create_db()
    async with await db.session() as session:  # as Prefect's server does at start
        await run_block_auto_registration(session=session)


def split_server(settings: SwarmSyncSettings) -> bool:
    """Prefect as separate API and services processes (its multi-server mode): needs Prefect on
    PostgreSQL and SWARMSYNC_PREFECT_REDIS_URL; refused with a reason otherwise."""
    db = prefect_env(settings)["PREFECT_API_DATABASE_CONNECTION_URL"]
    if not settings.prefect_redis_url:
        if settings.prefect_api_processes > 1:
            raise StackError("SWARMSYNC_PREFECT_API_PROCESSES > 1 (--ha) needs SWARMSYNC_PREFECT_REDIS_URL "
                             "(Prefect's processes share events, leases and Docket through Redis)")
        if settings.prefect_api_workers > 1:
            raise StackError("SWARMSYNC_PREFECT_API_WORKERS > 1 needs SWARMSYNC_PREFECT_REDIS_URL "
                             "(Prefect's processes share events through Redis)")
        return False
    if not db.startswith("postgresql"):
        raise StackError("SWARMSYNC_PREFECT_REDIS_URL (Prefect's multi-process server) needs Prefect on "
                         "PostgreSQL: set PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...")
    return True


def ha_backend_ports(settings: SwarmSyncSettings) -> list[int]:
    """Loopback ports of the Prefect API processes behind HAProxy: PORT+1 .. PORT+N."""
    return [settings.port + i for i in range(1, settings.prefect_api_processes + 1)]


def haproxy_binary() -> str:
    import shutil

    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise StackError("SWARMSYNC_PREFECT_API_PROCESSES > 1 needs HAProxy: apt-get install haproxy "
                         "(infra/host-setup.sh test installs it)")
    return found


def haproxy_config(settings: SwarmSyncSettings) -> str:
    """HAProxy in front of the Prefect API processes: round robin over those whose /api/health
    answers (checked every second with 5 s to answer, out after 3 failures, back after 2 successes); a request whose
    process died before answering is sent again to another one (`retry-on`; job submissions carry
    idempotency keys, so a replayed POST never makes a second job). Websockets (events, logs)
    pass through (`timeout tunnel`)."""
    servers = "\n".join(f"    server api{i} 127.0.0.1:{port} check"
                        for i, port in enumerate(ha_backend_ports(settings), start=1))
    return f"""# written by `swarmsync up` (SWARMSYNC_PREFECT_API_PROCESSES={settings.prefect_api_processes})
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout tunnel 3600s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504

frontend prefect
    bind {settings.host}:{settings.port}
    default_backend prefect_api

backend prefect_api
    balance roundrobin
    option httpchk GET /api/health
    http-check expect status 200
    timeout check 5s
    default-server inter 1s fall 3 rise 2
{servers}
"""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`: reachable from this machine only."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_mode(settings: SwarmSyncSettings) -> None:
    """Embedded single-user mode (no Prefect auth string) only on loopback addresses: the
    Prefect API (SWARMSYNC_HOST), the SwarmSync API (SWARMSYNC_API_HOST) and the dashboard
    (SWARMSYNC_DASHBOARD_HOST). Checked before `up` starts anything."""
    if not settings.single_user:
        return
    binds = [("SWARMSYNC_HOST", settings.host, "the Prefect API"),
             ("SWARMSYNC_API_HOST", settings.api_bind_host, "the SwarmSync API"),
             ("SWARMSYNC_DASHBOARD_HOST", settings.dashboard_bind_host, "the dashboard")]
    for name, host, what in binds:
        if not is_loopback(host):
            raise StackError(
                f"{name}={host} exposes {what} beyond this machine, and embedded mode trusts everyone who "
                "can reach it: bind it to 127.0.0.1, or turn on team mode with "
                "SWARMSYNC_PREFECT_AUTH_STRING=user:password (Prefect's basic auth; users then reach SwarmSync "
                "through its API with their own accounts)"
            )


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

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - child keeps it
        proc = subprocess.Popen(
            args, env={**prefect_env(self.settings), **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        run_dir = self.settings.home_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / f"{name}.pid").write_text(str(proc.pid))  # for operators and the multi-host tests
        return proc

    def check_ports(self, api: bool = True, dashboard: bool = True) -> None:
        """Every port this `up` will listen on is free (StackError naming the port and its setting
        otherwise); the Prefect port only when SwarmSync starts its own server (no SWARMSYNC_API_URL)."""
        s = self.settings
        ports = [] if s.api_url else [("SWARMSYNC_PORT", s.host, s.port, "the Prefect server")]
        if api:
            ports.append(("SWARMSYNC_API_PORT", s.api_bind_host, s.api_port, "the SwarmSync API"))
        if api and dashboard:
            ports.append(("SWARMSYNC_DASHBOARD_PORT", s.dashboard_bind_host, s.dashboard_port, "the dashboard"))
        try:
            check_ports(ports)
        except PortTaken as exc:
            raise StackError(str(exc)) from None

    def start_server(self) -> None:
        check_mode(self.settings)
        if self.settings.api_url:  # an existing Prefect server (SWARMSYNC_API_URL, `up --prefect-url`)
            wait_for(api_healthy, f"the Prefect server at {self.settings.api_url}", 30)
            return
        (self.settings.home_dir / "prefect").mkdir(parents=True, exist_ok=True)
        split = split_server(self.settings)
        no_migrations: dict[str, str] = {}
        if split:  # migrate and register blocks once; API processes started together would race to
            self._prepare_prefect_database()
            no_migrations = {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
                             "PREFECT_API_BLOCKS_REGISTER_ON_START": "false"}
        if split and self.settings.prefect_api_processes > 1:
            self._start_ha_api(no_migrations)
        else:
            args = self._prefect_server_args(self.settings.host, self.settings.port)
            if split:
                args += ["--no-services", "--workers", str(self.settings.prefect_api_workers)]
            proc = self._spawn("prefect-server", args, extra_env=no_migrations)
            wait_for(api_healthy, f"Prefect server (log: {self.log_dir}/prefect-server.log)", 90, proc)
        if split:
            self._spawn("prefect-services", PREFECT_SERVICES, extra_env=no_migrations)

    @staticmethod
    def _prefect_server_args(host: str, port: int) -> list[str]:
        # Prefect's own CLI and server, with SwarmSync's speedup (see swarmsync/prefect_server.py)
        return [sys.executable, "-m", "swarmsync.prefect_server", "server", "start",
                "--host", host, "--port", str(port)]

    def _start_ha_api(self, no_migrations: dict[str, str]) -> None:
        """Prefect's high-availability shape: N API processes (`--no-services`, loopback ports
        PORT+1..PORT+N) behind HAProxy on HOST:PORT, which health-checks /api/health and sends
        requests only to the processes that answer it."""
        for index, port in enumerate(ha_backend_ports(self.settings), start=1):
            self._start_api_process(index, port, no_migrations)
        for index, port in enumerate(ha_backend_ports(self.settings), start=1):
            wait_for(lambda port=port: api_healthy(f"http://127.0.0.1:{port}/api"),
                     f"Prefect API process {index} (log: {self.log_dir}/prefect-api-{index}.log)",
                     self.settings.start_timeout_seconds,
                     self.processes[f"prefect-api-{index}"])
        config = self.settings.home_dir / "haproxy.cfg"
        config.write_text(haproxy_config(self.settings))
        proc = self._spawn("haproxy", self._command_of("haproxy"))
        wait_for(api_healthy, f"HAProxy in front of Prefect (log: {self.log_dir}/haproxy.log)", 30, proc)

    def _start_api_process(self, index: int, port: int, no_migrations: dict[str, str] | None = None) -> None:
        no_migrations = no_migrations or {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
                                          "PREFECT_API_BLOCKS_REGISTER_ON_START": "false"}
        public = f"http://{self.settings.host}:{self.settings.port}/api"  # the UI's browser talks to HAProxy
        self._spawn(f"prefect-api-{index}", [*self._prefect_server_args("127.0.0.1", port), "--no-services"],
                    extra_env={**no_migrations, "PREFECT_UI_API_URL": public})

    def _prepare_prefect_database(self) -> None:
        """What one Prefect server process does at start (migrations, block types), done once."""
        with open(self.log_dir / "prefect-migrate.log", "ab") as log:
            done = subprocess.run(
                [sys.executable, "-c",
                 "import anyio, swarmsync.deployments.stack as s; anyio.run(s.prepare_prefect_database)"],
                env=prefect_env(self.settings), stdout=log, stderr=subprocess.STDOUT, timeout=600,
            )
        if done.returncode != 0:
            raise StackError(f"Prefect database migration failed (log: {self.log_dir}/prefect-migrate.log)")

    def prepare(self) -> None:
        """Database migrations, block types, the work pool and the job deployment."""
        from swarmsync.deployments.pools import create_pool

        migrate()
        with prefect_api():
            anyio.run(register_block_types)
        create_pool(self.settings.work_pool)
        with prefect_api():
            anyio.run(pipeline_deployment)

    def start_worker(self, limit: int = 50) -> None:
        self._spawn(
            "worker",
            [sys.executable, "-m", "swarmsync.cli.main", "worker", "start",
             "--pool", self.settings.work_pool, "--limit", str(limit)],
        )

    def start_pipelines(self) -> None:
        """Prefect's process worker for the pipeline pool, on Core (pipelines create flow runs: never on a
        worker host; deployments/pipeline_deployment.py). Orphaned pipeline runs are picked up again."""
        from swarmsync.deployments.pipeline_deployment import recover_pipelines
        from swarmsync.pipelines import PIPELINE_POOL

        with prefect_api():
            if recovered := anyio.run(recover_pipelines):
                print(f"{recovered} pipeline(s) left running by a previous start: picking them up", flush=True)
        self._spawn(
            "pipelines",
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", PIPELINE_POOL, "--type", "process",
             "--name", f"pipelines-{os.uname().nodename}"],
            extra_env={"PREFECT_WORKER_QUERY_SECONDS": "2"},
        )

    def _command_of(self, name: str) -> list[str]:
        """How `up` starts the SwarmSync API, the dashboard and HAProxy (again, when one died)."""
        if name == "api":
            return [sys.executable, "-m", "swarmsync.cli.main", "api"]
        if name == "dashboard":
            return dashboard_command(self.settings)
        return [haproxy_binary(), "-db", "-f", str(self.settings.home_dir / "haproxy.cfg")]

    def start_api(self) -> None:
        """The SwarmSync API (accounts, tokens, jobs over HTTP) on SWARMSYNC_API_PORT; HTTPS in team mode, with
        its certificate made here first (its CA once, in $SWARMSYNC_HOME/tls) unless the admin gave one."""
        from swarmsync.tls import TLSError, probe_context, server_files

        verify: ssl.SSLContext | bool = True
        if self.settings.serves_tls:
            try:
                server_files(self.settings)
                verify = probe_context(self.settings)
            except TLSError as exc:
                raise StackError(f"the SwarmSync API's certificate: {exc}") from None
        url = f"{self.settings.local_api_url}/health"
        proc = self._spawn("api", self._command_of("api"))
        wait_for(lambda: _answers(url, verify), f"SwarmSync API (log: {self.log_dir}/api.log)",
                 self.settings.start_timeout_seconds, proc)

    def start_dashboard(self) -> None:
        """The Streamlit dashboard on SWARMSYNC_DASHBOARD_PORT (it talks to the SwarmSync API)."""
        url = f"http://{self.settings.dashboard_bind_host}:{self.settings.dashboard_port}/_stcore/health"
        proc = self._spawn("dashboard", self._command_of("dashboard"))
        wait_for(lambda: _answers(url), f"dashboard (log: {self.log_dir}/dashboard.log)",
                 self.settings.start_timeout_seconds, proc)

    def up(self, worker: bool = True, api: bool = True, dashboard: bool = True) -> None:
        check_mode(self.settings)
        self.check_ports(api, dashboard)
        self.start_server()
        self.prepare()
        if api:
            self.start_api()
        if api and dashboard:
            self.start_dashboard()
        self.start_pipelines()  # on Core even without a job worker here (team mode's server host)
        if worker:
            self.start_worker()
            with prefect_api():
                wait_for(lambda: anyio.run(_worker_online, self.settings.work_pool),
                         f"worker (log: {self.log_dir}/worker.log)", self.settings.start_timeout_seconds,
                         self.processes["worker"])

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
        """Supervise: a dead worker, SwarmSync API, dashboard, HAProxy, Prefect API process (HA) or services
        process is started again (jobs in flight run on: their state is in Prefect's database, their containers
        on the workers' engines); only a dead one-process Prefect server is fatal."""
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                continue
            if name == "worker":
                print(f"worker exited with code {proc.returncode}; restarting it", flush=True)
                self.start_worker()
                continue
            if name == "pipelines":  # its flow processes: still running, they go on; gone, they are picked up
                print(f"pipeline worker exited with code {proc.returncode}; restarting it", flush=True)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.start_pipelines()
                continue
            if name in RESTARTED:
                print(f"{name} exited with code {proc.returncode}; restarting it", flush=True)
                self._spawn(name, self._command_of(name))
                continue
            if name.startswith("prefect-api-") or name == "prefect-services":
                # HA shape: HAProxy routes around a dead API process meanwhile; the services process
                # resumes from PostgreSQL and Redis (schedules, delayed runs, leases are stored there)
                print(f"{name} exited with code {proc.returncode}; restarting it", flush=True)
                if name == "prefect-services":
                    self._spawn(name, PREFECT_SERVICES,
                                extra_env={"PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
                                           "PREFECT_API_BLOCKS_REGISTER_ON_START": "false"})
                else:
                    index = int(name.rsplit("-", 1)[1])
                    self._start_api_process(index, ha_backend_ports(self.settings)[index - 1])
                continue
            return f"{name} exited with code {proc.returncode} (log: {self.log_dir}/{name}.log)"
        return None


# Prefect's background services process (split and HA shapes): Prefect's CLI with SwarmSync's server patches
# (swarmsync/prefect_server.py), as the API processes run it
PREFECT_SERVICES = [sys.executable, "-m", "swarmsync.prefect_server", "server", "services", "start"]
RESTARTED = ("api", "dashboard", "haproxy")  # besides the worker and the HA Prefect processes


def dashboard_command(settings: SwarmSyncSettings) -> list[str]:
    """`streamlit run <swarmsync.dashboard>/app.py` bound to the dashboard's address, headless, no telemetry."""
    found = find_spec("swarmsync.dashboard")
    if found is None or not found.submodule_search_locations:
        raise StackError("swarmsync.dashboard is not installed (pip install -e . in the SwarmSync checkout)")
    app = Path(next(iter(found.submodule_search_locations))) / "app.py"
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", settings.dashboard_bind_host, "--server.port", str(settings.dashboard_port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]


def _answers(url: str, verify: ssl.SSLContext | bool = True) -> bool:
    try:
        return httpx.get(url, timeout=2, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


async def register_block_types() -> None:
    """Register with the server the block types SwarmSync's pools and jobs use: Prefect's
    Secret and filesystems, and every block class the installed integrations brought in
    (SwarmSync's own and prefect-docker's), found through Prefect's collection registry."""
    from prefect.blocks.core import Block
    from prefect.blocks.system import Secret
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem
    from prefect.plugins import load_prefect_collections
    from prefect.utilities.dispatch import get_registry_for_type

    load_prefect_collections()  # imports swarmsync.plugin (and prefect_docker): their blocks register themselves
    integrations = [cls for cls in (get_registry_for_type(Block) or {}).values()
                    if cls.__module__.startswith(("swarmsync.", "prefect_docker."))]
    for block_cls in (Secret, LocalFileSystem, RemoteFileSystem, *integrations):
        await block_cls.aregister_type_and_schema()


async def pipeline_deployment() -> None:
    """Core's pipeline pool and `pipeline/default` (deployments/pipeline_deployment.py)."""
    from prefect.client.orchestration import get_client

    from swarmsync.deployments.pipeline_deployment import ensure_pipeline_deployment

    async with get_client() as client:
        await ensure_pipeline_deployment(client)


async def _worker_online(pool: str) -> bool:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workers = await client.read_workers_for_work_pool(pool)
    return any(w.status.value == "ONLINE" for w in workers if w.status)


async def _worker_names_online(pool: str) -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workers = await client.read_workers_for_work_pool(pool)
    return [w.name for w in workers if w.status and w.status.value == "ONLINE"]
