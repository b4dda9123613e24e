"""SwarmSync settings: every knob is a typed field read from `SWARMSYNC_*` env vars.

Modelled on Prefect's own settings: nothing deeper in the code reads
`os.environ` for SwarmSync options; it calls `get_settings()`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SwarmSyncSettings(BaseSettings):
    """Settings for the embedded stack, the job flow, the CLI and the Python API."""

    model_config = SettingsConfigDict(env_prefix="SWARMSYNC_", extra="ignore")

    home: Path = Field(
        default=Path("~/.swarmsync"),
        description="Folder for the embedded stack: Prefect's SQLite database, the "
        "SwarmSync database and the local archive.",
    )
    host: str = Field(default="127.0.0.1", description="Address the Prefect API/UI binds to.")
    port: int = Field(default=4200, description="Port of the Prefect API and UI.")
    api_url: str | None = Field(
        default=None,
        description="Prefect API URL to talk to; defaults to http://HOST:PORT/api.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of SwarmSync's own database (archive index). "
        "Default: SQLite under HOME. Example: postgresql+psycopg://user:pw@host/db",
    )
    redis_url: str | None = Field(default=None, description="Redis URL, e.g. redis://localhost:6379/0")
    prefect_redis_url: str | None = Field(
        default=None,
        description="Redis URL (own database number, e.g. redis://localhost:6379/2) for Prefect's own "
        "messaging. Set with Prefect on PostgreSQL, `swarmsync up` runs Prefect as separate API and "
        "background-services processes (Prefect's multi-server mode) instead of one process.",
    )
    prefect_api_workers: int = Field(
        default=1, ge=1, le=16,
        description="API processes of the Prefect server (`prefect server start --workers`); "
        "more than one needs SWARMSYNC_PREFECT_REDIS_URL.",
    )
    prefect_api_processes: int = Field(
        default=1, ge=1, le=16,
        description="Prefect API processes behind a load balancer (Prefect's high-availability shape, "
        "`swarmsync up --ha N`): N > 1 starts N `prefect server start --no-services` processes on PORT+1..PORT+N "
        "(loopback) behind HAProxy on HOST:PORT, health-checking /api/health; needs SWARMSYNC_PREFECT_REDIS_URL "
        "and Prefect on PostgreSQL.",
    )
    alert_private_urls: bool = Field(
        default=False,
        description="Whether non-admins may point an alert's webhook at a private, loopback or link-local address "
        "(Prefect's server posts to it: off, an alert cannot probe the server's own network). Admins always may.",
    )
    lost_worker_seconds: float = Field(
        default=90, ge=10,
        description="The lost-host bound: Core (the SwarmSync API) crashes the Running and Pending runs of a "
        "worker host it has not heard of for this long (a host with a token: its last call; without one: its "
        "Prefect heartbeat) and retries them elsewhere. Keep it well above PREFECT_WORKER_HEARTBEAT_SECONDS "
        "(hosts without a token) and above HOST_LEASE_SECONDS + 10.",
    )
    host_lease_seconds: float = Field(
        default=75, ge=5,
        description="A worker host with a token that has not reached Core for this long stops its jobs' "
        "containers (fencing): shorter than LOST_WORKER_SECONDS - 10, so a job is stopped before Core retries "
        "it elsewhere.",
    )
    lost_host_check: bool = Field(
        default=True,
        description="Whether the SwarmSync API runs Core's lost-host check (run it in exactly one API process).",
    )
    server: str | None = Field(
        default=None,
        description="Core's URL for a worker host with a worker token (`worker start --server`): the worker "
        "reaches Prefect, telemetry and the archive only through it (docs/deployment.md).",
    )
    worker_token: SecretStr | None = Field(
        default=None,
        description="The worker host's token (`ssw_...`, from `swarmsync worker token create`; "
        "`worker start --token`).",
    )
    worker_labels: str = Field(
        default="",
        description="Host labels of a worker started on this host, comma-separated (e.g. 'gpu,region=eu'; "
        "`swarmsync worker start --label` adds to them): the worker also runs jobs that require them "
        "(queues `host:...`, see docs/deployment.md).",
    )
    work_pool: str = Field(default="swarmsync", description="Work pool that runs job flow runs.")
    deployment: str = Field(
        default="container-job/default", description="Deployment that submissions run."
    )
    archive_block: str | None = Field(
        default=None,
        description="Slug of a Prefect filesystem block (e.g. 'remote-file-system/archive') "
        "holding the archive. Default: a local folder HOME/archive.",
    )
    start_timeout_seconds: float = Field(
        default=180, gt=0,
        description="How long `swarmsync up` waits for the Prefect server and the dashboard to answer "
        "(a first start migrates Prefect's database; a loaded machine may need more).",
    )
    archive_write_attempts: int = Field(
        default=3, ge=1, le=20,
        description="Tries to write a job's archive to its store (with 2, 4, ... s between them) before the "
        "job ends with its outcome indexed and its files kept on the worker host (docs/archives.md).",
    )
    core_upload_patience_seconds: float = Field(
        default=1800, gt=0,
        description="On a worker host with a token: how long an archive upload to Core keeps retrying (1, 2, "
        "4 ... 30 s apart, resuming at Core's size) while Core is unreachable or answers 5xx, before the job "
        "ends with its files kept on the host (docs/archives.md). Any answer from Core starts it anew.",
    )
    log_cap_bytes: int = Field(
        default=1_000_000,
        description="Bytes of a job's output copied into the Prefect run log; the rest "
        "is kept whole in the archive only.",
    )
    pull_policy: str = Field(
        default="if-not-present", description="Default image pull policy: always, if-not-present, never."
    )
    docker_host: str | None = Field(
        default=None, description="Docker engine URL; default: the environment (DOCKER_HOST)."
    )
    cancel_poll_seconds: float = Field(
        default=1.0, description="How often a running job checks whether it was cancelled."
    )
    usage_sample_seconds: float = Field(
        default=0.1, gt=0, le=10, description="How often a job's cgroup is read for its usage (its last "
        "interval's CPU may be missed: the cgroup is gone once the container exits)."
    )

    # --- accounts and the SwarmSync API -------------------------------------------------
    api_host: str | None = Field(default=None, description="Address the SwarmSync API binds to (default: HOST).")
    api_port: int = Field(default=4280, description="Port of the SwarmSync API (`swarmsync api`, `swarmsync up`).")
    url: str | None = Field(
        default=None,
        description="URL of a SwarmSync API (e.g. http://host:4280). When set (or after `swarmsync login`), "
        "the CLI's job commands and `swarmsync.Client()` go through it.",
    )
    token: SecretStr | None = Field(default=None, description="Token for SWARMSYNC_URL (else the stored login).")
    project: str | None = Field(
        default=None,
        description="The project the CLI and `swarmsync.Client.from_settings()` work in when a command names "
        "none (`--project`): new jobs, schedules and templates go there and listings show only its. Default: "
        "the project chosen with `swarmsync project use`, else the default project (listings: all of yours).",
    )
    config_dir: Path = Field(
        default=Path("~/.config/swarmsync"),
        description="Where `swarmsync login` keeps its token (credentials.json, mode 0600).",
    )
    prefect_auth_string: SecretStr | None = Field(
        default=None,
        description="user:password of Prefect's basic auth. Set, the Prefect server requires it "
        "(PREFECT_SERVER_API_AUTH_STRING) and SwarmSync's clients and workers send it "
        "(PREFECT_API_AUTH_STRING). Unset, SwarmSync runs in embedded single-user mode, which "
        "only `swarmsync up` on a loopback HOST allows.",
    )
    redis_prefix: str = Field(default="swarmsync:", description="Prefix of every Redis key SwarmSync writes.")
    session_ttl_seconds: int = Field(default=8 * 3600, description="Lifetime of a login session token.")
    login_challenge_ttl_seconds: int = Field(
        default=60, ge=5, le=3600,
        description="Lifetime of a key-login challenge (the nonce of POST /auth/challenge) in seconds; it can be "
        "used once, within this time.",
    )
    login_link_ttl_seconds: int = Field(
        default=600, ge=10, le=86400,
        description="Lifetime of a one-time dashboard login link (`swarmsync up`, `swarmsync login-link`).",
    )
    login_max_failures: int = Field(
        default=5, description="Failed logins of one user within the window before it is locked out."
    )
    login_max_failures_per_address: int = Field(
        default=20, description="Failed logins from one address within the window before it is locked out."
    )
    trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        description="Comma-separated addresses or networks (CIDR) whose X-Forwarded-For the API believes: the "
        "dashboard's host (it forwards each browser's address) and any reverse proxy in front of the API or the "
        "dashboard. A request from anywhere else is taken to come from its direct peer; its X-Forwarded-For is "
        "ignored. Empty: trust no one.",
    )
    login_window_seconds: int = Field(
        default=900, description="Window (and lockout time) of the login rate limit, in seconds."
    )
    audit_refusal_window_seconds: int = Field(
        default=60, description="Refused anonymous requests (401, logins while locked out) are audited as one "
        "row per source address and window of this many seconds, plus one summary row with the count.",
    )
    audit_refusal_max_addresses: int = Field(
        default=100, description="Addresses per window that get audit rows of their own; refusals from "
        "further addresses share one summary row.",
    )
    max_body_bytes: int = Field(default=8 * 2**20, description="Largest request body the API accepts.")
    admin_user: str | None = Field(
        default=None, description="First admin's name, created at start when there is no user yet."
    )
    admin_password: SecretStr | None = Field(
        default=None, description="First admin's password (with ADMIN_USER); there is never a default."
    )

    # --- TLS of the SwarmSync API (docs/security.md, "TLS") --------------------------------------
    tls: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="HTTPS on the SwarmSync API: `auto` = on in team mode (a Prefect auth string), off in embedded "
        "mode (loopback only); `on`; `off` only behind a TLS-terminating proxy on the same host or a trusted "
        "network: tokens and passwords then cross the wire between the proxy and the API in the clear.",
    )
    tls_cert: Path | None = Field(
        default=None,
        description="The admin's own certificate for the API (PEM: the server certificate, then its intermediates); "
        "with SWARMSYNC_TLS_KEY. Set, SwarmSync makes no CA and GET /tls/ca.pem answers 404.",
    )
    tls_key: Path | None = Field(default=None, description="The private key (PEM) of SWARMSYNC_TLS_CERT.")
    tls_names: str = Field(
        default="",
        description="More DNS names or IP addresses for the certificate SwarmSync makes itself (comma-separated), "
        "besides HOST, API_HOST, the host of PUBLIC_URL, this machine's host names, localhost, 127.0.0.1 and ::1; "
        "e.g. the name workers and users reach the API by. A change re-issues the certificate at the next start.",
    )
    ca_file: Path | None = Field(
        default=None,
        description="CA certificate (PEM) clients verify the SwarmSync API with (the CLI, `swarmsync.Client`, the "
        "dashboard, workers); only that CA is then trusted. Default: the CA `swarmsync login --ca` stored, else the "
        "system's trust plus HOME/tls/ca.pem when it exists.",
    )

    # --- the Streamlit dashboard -------------------------------------------------------------
    dashboard_host: str | None = Field(default=None, description="Address the dashboard binds to (default: HOST).")
    dashboard_port: int = Field(default=4290, description="Port of the Streamlit dashboard (`swarmsync dashboard`).")
    dashboard_api_url: str | None = Field(
        default=None,
        description="SwarmSync API the dashboard talks to; default SWARMSYNC_URL, else the local API "
        "(https://API_HOST:API_PORT in team mode, else http).",
    )

    # --- public addresses (links shown to people; never a bind address or a service name) ---------------
    public_url: str | None = Field(
        default=None,
        description="The SwarmSync API as people reach it (e.g. https://swarmsync.example.org): shown on the "
        "dashboard's Settings page and in messages. Default: https://API_HOST:API_PORT (http in embedded mode), "
        "with 127.0.0.1 for 0.0.0.0.",
    )
    dashboard_public_url: str | None = Field(
        default=None,
        description="The dashboard as people reach it (e.g. https://dashboard.example.org): login links and the "
        "Settings page. Default: http://DASHBOARD_HOST:DASHBOARD_PORT, with 127.0.0.1 for 0.0.0.0.",
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="The Prefect UI as a browser reaches it (e.g. https://prefect.example.org): the dashboard's "
        "links to runs. Default: the Prefect API URL without /api (0.0.0.0 shown as 127.0.0.1).",
    )

    @property
    def api_bind_host(self) -> str:
        return self.api_host or self.host

    @property
    def dashboard_bind_host(self) -> str:
        return self.dashboard_host or self.host

    @property
    def single_user(self) -> bool:
        """Embedded single-user mode: no Prefect auth string, so the Prefect API is open to the host."""
        return self.prefect_auth_string is None

    @property
    def serves_tls(self) -> bool:
        """The SwarmSync API serves HTTPS: SWARMSYNC_TLS=on, or `auto` in team mode."""
        return self.tls == "on" or (self.tls == "auto" and not self.single_user)

    @property
    def local_api_url(self) -> str:
        """The SwarmSync API this host serves, as a client on this host reaches it (0.0.0.0 as 127.0.0.1)."""
        host = self.api_bind_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.serves_tls else 'http'}://{host}:{self.api_port}"

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def prefect_api_url(self) -> str:
        return self.api_url or f"http://{self.host}:{self.port}/api"

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'swarmsync.db'}"

    @property
    def archive_dir(self) -> Path:
        return self.home_dir / "archive"


@lru_cache(maxsize=1)
def get_settings() -> SwarmSyncSettings:
    """The process-wide settings, read once. Tests call `get_settings.cache_clear()`."""
    return SwarmSyncSettings()
