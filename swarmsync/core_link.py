"""A worker host's line to Core (`worker start --server URL --token ssw_...`): one HTTPS endpoint, one token.

The worker's Prefect client goes to Core's gateway (`gateway_url`, the token as its Prefect auth string);
the rest (telemetry, a run's owner and archived outcome, archive uploads) to Core's `/worker/...` routes
through a `CoreLink`. A host set up this way holds no database URL, no store credentials, no Prefect auth
string of Core's and no Redis.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx

from swarmsync.errors import RefusedError

GATEWAY_PATH = "/worker/prefect/api"
WORKER_AUTH_USER = "worker"  # the token travels as Prefect's auth string `worker:ssw_...`
TRANSIENT = (408, 429, 500, 502, 503, 504)  # Core restarting or busy: a read is sent again
MAX_READ_DELAY = 10.0  # the longest wait between two tries of a read

log = logging.getLogger("swarmsync.core_link")


class CoreRefused(RefusedError, RuntimeError):
    """Core refused the worker's token (revoked, expired, unknown): the worker stops (`status` 401)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CoreLink:
    server: str
    token: str
    ca_file: str | None = None

    @property
    def gateway_url(self) -> str:
        return self.server.rstrip("/") + GATEWAY_PATH

    @property
    def prefect_auth_string(self) -> str:
        return f"{WORKER_AUTH_USER}:{self.token}"

    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    @property
    def client(self) -> httpx.Client:
        return _client(self)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call to Core's worker routes; CoreRefused on 401/403, httpx errors otherwise."""
        response = self.client.request(method, path, **kwargs)
        if response.status_code in (401, 403):
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise CoreRefused(response.status_code, f"Core refused this worker: {detail}")
        return response

    def read(self, path: str, patience: float | None = None) -> httpx.Response:
        """A GET of Core's worker routes that waits out a Core restarting (`swarmsync up` or the compose
        stack starting the API again): a connection that fails or an answer of TRANSIENT is tried again 1,
        2, 4 ... 10 s apart for up to `patience` s (the host's lease by default: a host that has not reached
        Core for that long fences its jobs anyway); then the last error is raised, or the last answer returned."""
        if patience is None:
            from swarmsync.settings import get_settings

            patience = get_settings().host_lease_seconds
        waiting = Patience(patience, f"GET {path}", max_delay=MAX_READ_DELAY)
        while True:
            try:
                response = self.request("GET", path)
                if response.status_code not in TRANSIENT or not waiting.wait(f"Core answered {response.status_code}"):
                    return response
            except httpx.TransportError as exc:
                if not waiting.wait(f"{type(exc).__name__}: {exc}"):
                    raise

    def whoami(self) -> dict[str, Any]:
        """The token's name, pool and queue."""
        response = self.request("GET", "/worker/whoami")
        response.raise_for_status()
        return response.json()

    def telemetry(self, facts: dict[str, Any]) -> None:
        self.request("POST", "/worker/telemetry", json={
            k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in facts.items()}).raise_for_status()

    def run_owner(self, run_id: str) -> dict[str, Any]:
        response = self.read(f"/worker/runs/{run_id}/owner")
        response.raise_for_status()
        return response.json()

    def run_outcome(self, run_id: str) -> tuple[str, str | None] | None:
        response = self.read(f"/worker/runs/{run_id}/outcome")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = response.json()
        return body["state"], body.get("message")


@lru_cache(maxsize=8)
def _client(link: CoreLink) -> httpx.Client:
    return httpx.Client(base_url=link.server.rstrip("/"), verify=link.verify(),
                        headers={"Authorization": f"Bearer {link.token}"}, timeout=httpx.Timeout(60.0, connect=10.0))


def current() -> CoreLink | None:
    """This process's link to Core, when it is a worker host with a token (SWARMSYNC_SERVER/_WORKER_TOKEN)."""
    from swarmsync.settings import get_settings

    settings = get_settings()
    if not settings.server or settings.worker_token is None:
        return None
    return CoreLink(settings.server, settings.worker_token.get_secret_value(),
                    str(settings.ca_file.expanduser()) if settings.ca_file else None)


def use(link: CoreLink) -> None:
    """Make this process a worker host of `link`: Prefect's client and SwarmSync's own settings point at
    Core's gateway with the token; nothing of Core's (database, store, auth string) is used."""
    from swarmsync.settings import get_settings

    os.environ.update({
        "SWARMSYNC_SERVER": link.server, "SWARMSYNC_WORKER_TOKEN": link.token,
        "SWARMSYNC_API_URL": link.gateway_url, "SWARMSYNC_PREFECT_AUTH_STRING": link.prefect_auth_string,
        "PREFECT_API_URL": link.gateway_url, "PREFECT_API_AUTH_STRING": link.prefect_auth_string,
    })
    if link.ca_file:
        os.environ["SWARMSYNC_CA_FILE"] = link.ca_file
        os.environ["PREFECT_API_SSL_CERT_FILE"] = link.ca_file
    # a cut-off link (up to a minute or more) is waited out: 7 retries back off 2, 4, ... 128 s (254 s in all)
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "7")
    for name in ("SWARMSYNC_DATABASE_URL", "SWARMSYNC_REDIS_URL", "PREFECT_API_KEY"):
        os.environ.pop(name, None)
    get_settings.cache_clear()
    # Prefect read its settings at import: threads without a settings context of their own (the events
    # worker's) use the global one, which must see the gateway too
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


class Patience:
    """Waits between failed calls to Core (1, 2, 4 ... `max_delay` s) while they have lasted less than
    `seconds` in a row; logs what failed at most once a minute."""

    def __init__(self, seconds: float, what: str, max_delay: float = 30.0) -> None:
        self.seconds, self.what, self.max_delay = seconds, what, max_delay
        self.reset()

    def reset(self) -> None:
        """A call went through: the next failure starts a new wait."""
        self.since: float | None = None
        self.delay = 1.0
        self.logged = 0.0

    def wait(self, problem: object) -> bool:
        """Sleep before the next try and True; False (no sleep) once the failures have lasted `seconds`."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if now - self.since >= self.seconds:
            return False
        if now - self.logged >= 60:
            log.warning("%s: %s; trying again (for up to %.0f s)", self.what, problem, self.seconds)
            self.logged = now
        time.sleep(min(self.delay, max(0.0, self.since + self.seconds - now)))
        self.delay = min(self.delay * 2, self.max_delay)
        return True
