"""`swarmsync.Client`: the Python API over HTTP, through a SwarmSync API server.

    client = swarmsync.Client("http://swarmsync.example:4280", token)   # or Client.login(url, user, pw)
    job = client.submit("busybox", ["echo", "hi"], memory="64m")
    print(job.wait(60).result().output)

    data = swarmsync.Client(url, token, project="data-team")   # jobs, schedules, templates of one project
    data.submit("busybox", ["echo", "hi"])                    # lands in data-team
    data.list_jobs(project=ALL_PROJECTS)                      # every project of yours, this once

Jobs returned here are `RemoteJob`s with the same methods as local `Job`s (status,
wait, logs, follow_logs, result, cancel, rerun, delete); they ask the API, never Prefect.

Projects: every method that submits, lists or names a job, schedule or template takes
`project=`; without it the client's own `project` (given to `Client(...)`, or
`SWARMSYNC_PROJECT` / the stored login's for `from_settings()`) is used, and without that the
server's default: new objects go to the default project, listings show all the caller's projects.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from swarmsync.client_settings import client_settings
from swarmsync.errors import Error, InvalidError, NotFoundError, RefusedError
from swarmsync.job_errors import JobNotFound
from swarmsync.lazy_names import loader
from swarmsync.log_follow import LOG_BATCH, LogEntry, LogFollower  # noqa: F401 - LogFollower: the dashboard's live tail
from swarmsync.owners import DEFAULT_PROJECT, stored_name

if TYPE_CHECKING:
    import ssl

    import httpx

    from swarmsync.job_handle import Submission
    from swarmsync.job_rows import JobPage, JobSummary, RemoteJobResult
    from swarmsync.remote_jobs import RemoteJob
    from swarmsync.settings import SwarmSyncSettings
    from swarmsync.spec import JobSpec

# Commands that only talk to the API must start without importing Prefect (docs/benchmarks.md, CLI start):
# the job handles and rows, which carry a Prefect FlowRun, load on first use (the CLI reads `JobSummary`s).
_LAZY = {"RemoteJob": "swarmsync.remote_jobs", "JobResult": "swarmsync.job_rows",
         **dict.fromkeys(("Job", "JobRow", "build_spec"), "swarmsync.jobs"), "Submission": "swarmsync.job_handle",
         **dict.fromkeys(("ArchiveCorrupt", "ArchiveNotFound", "ArchiveStoreError", "checked_chunks"),
                         "swarmsync.archive"),
         "FlowRun": "prefect.client.schemas.objects",
         # `--help` and the commands that only read the API start without these (docs/benchmarks.md, CLI
         # start): httpx loads when a Client is made, the models when a call reads or builds one, and the
         # dashboard's names (the field catalogue, compose files, the pool form) when it asks
         **dict.fromkeys(("JobPage", "JobSummary", "RemoteJobResult"), "swarmsync.job_rows"),
         "JobSpec": "swarmsync.spec", "get_settings": "swarmsync.settings", "httpx": "httpx",
         "catalogue": "swarmsync.catalogue", "load_compose": "swarmsync.compose", "HostPolicy": "swarmsync.policy",
         "queue_for": "swarmsync.routing"}


__getattr__ = loader(__name__, _LAZY, globals())  # `from swarmsync.client import RemoteJob`, as it always was


def import_httpx() -> Any:
    """httpx and httpcore (the transport httpx loads when a client is made), imported without the parts a
    SwarmSync client never uses, when nothing has imported them yet (~60 ms of every CLI command that talks to
    the API; docs/benchmarks.md, CLI start):

    - `httpx._main`, the `httpx` command (Click, Rich's syntax highlighting, Pygments): `import httpx` runs
      `from ._main import main` inside `try/except ImportError` and puts a stub in its place;
    - `h2`, HTTP/2: httpcore's package imports its HTTP/2 connection inside `try/except ImportError`, and its
      connections import it again, for real, only when HTTP/2 is negotiated (`http2=True`, never here).

    Each is marked missing (None in `sys.modules`) for these imports only, and importable again after them."""
    if "httpx" in sys.modules and "httpcore" in sys.modules:
        return sys.modules["httpx"]
    missing = [name for name in ("httpx._main", "h2") if name not in sys.modules]
    for name in missing:
        sys.modules[name] = None  # type: ignore[assignment] - None: "cannot be imported"
    try:
        import httpcore  # noqa: F401
        import httpx  # noqa: F401
    finally:
        for name in missing:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return sys.modules["httpx"]


def _remote_job(client: Client, body: dict[str, Any]) -> RemoteJob:
    from swarmsync.remote_jobs import RemoteJob

    return RemoteJob(client, body)

CREDENTIALS_FILE = "credentials.json"
ALL_PROJECTS = "*"  # `project=ALL_PROJECTS` on a listing: every project of the caller's, whatever the default


class APIError(Error, RuntimeError):
    """The API refused a request; `status` is the HTTP status, the message its reason.

    `detail` is the error body's `detail` as the API returned it (a string, or FastAPI's list of
    errors for a 422); `errors` lists the fields the API named as wrong, each `{"loc": [...], "msg": ...}`
    (`loc` as FastAPI gives it, e.g. `["body", "max_memory"]`): empty when it named none.
    """

    def __init__(self, status: int, message: str, detail: Any = None, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.detail = message if detail is None else detail
        self.errors = list(errors or [])


class APIInputError(APIError, InvalidError):
    """The API refused the request's content (400/422): a bad name, schedule or job."""


class APINotFound(APIError, NotFoundError):
    """No such schedule or template on the server (404)."""


class CertificateRefused(APIError, RefusedError):
    """The API's certificate did not verify with the CA this client trusts (status 0: no answer was read)."""


CA_HINT = ("trust the server's CA: 'swarmsync login URL --ca ca.pem' (or '--fingerprint sha256:...' as the admin "
           "prints it with 'swarmsync tls show'), SWARMSYNC_CA_FILE=ca.pem, or Client(url, ca='ca.pem')")


class Client:
    """A session with a SwarmSync API: a URL and a bearer token (never put in a URL), and the project
    its calls name when they name none (`project`; None: the server's default).

    An https URL is verified (never not): with `ca` (a CA file, or its PEM as bytes: only that CA), else
    SWARMSYNC_CA_FILE, else the system's trust plus $SWARMSYNC_HOME/tls/ca.pem when it exists
    (`swarmsync.tls.client_context`)."""

    def __init__(self, url: str, token: str | None = None, project: str | None = None, *, timeout: float = 60,
                 transport=None, ca: str | Path | bytes | None = None):
        httpx = import_httpx()
        self.url = url.rstrip("/")
        self.project = project
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.url.lower().startswith("https:"):  # swarmsync.tls loads `cryptography`: only for https
            from swarmsync.tls import client_context

            verify = client_context(_settings(), ca)
        else:
            verify = _unused_tls_context()
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport,
                                 verify=verify)

    def __repr__(self) -> str:
        return f"Client({self.url!r}, project={self.project!r})"  # never the token

    @classmethod
    def from_settings(cls) -> Client:
        """SWARMSYNC_URL/SWARMSYNC_TOKEN, else the login stored by `swarmsync login`; the project
        SWARMSYNC_PROJECT, else the one `swarmsync project use` stored."""
        settings = client_settings()
        stored = load_credentials()
        url = settings.url or stored.get("url")
        if not url:
            raise APIError(0, "no SwarmSync URL: run 'swarmsync login URL' or set SWARMSYNC_URL")
        token = settings.token
        same = stored.get("url", "").rstrip("/") == url.rstrip("/")
        if token is None and same:
            token = stored.get("token")
        ca = stored["ca"].encode() if same and stored.get("ca") and not settings.ca_file else None
        return cls(url, token, settings.project or stored.get("project") or None, ca=ca)

    def _project(self, project: str | None) -> str | None:
        """The project a call names: its own, else the client's (None: the server's default)."""
        return project or self.project

    def _scope(self, project: str | None) -> dict[str, str]:
        """The `?project=` of a call: its own or the client's project; none for ALL_PROJECTS (a listing: every
        project of the caller's; a name: the server's default project)."""
        project = self._project(project)
        return {"project": project} if project and project != ALL_PROJECTS else {}

    @classmethod
    def login(cls, url: str, username: str, password: str, forwarded_for: str | None = None,
              transport=None, ca: str | Path | bytes | None = None) -> Client:
        """Open a session. `forwarded_for`: the address of the person logging in, when this process
        logs in on their behalf (the dashboard: the browser's, optionally after the X-Forwarded-For
        chain of a reverse proxy before it); the API believes it only from SWARMSYNC_TRUSTED_PROXIES."""
        client = cls(url, transport=transport, ca=ca)
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        body = client.request("POST", "/auth/login", json={"username": username, "password": password},
                              headers=headers).json()
        client.http.headers["Authorization"] = f"Bearer {body['token']}"
        client.session = body
        return client

    @classmethod
    def login_with_key(cls, url: str, username: str, key: str | Path, transport=None,
                       ca: str | Path | bytes | None = None) -> Client:
        """Open a session with an SSH key: sign the server's single-use nonce with `ssh-keygen -Y sign`
        (`key`: the private key file, or its `.pub` whose private half is in ssh-agent)."""
        from swarmsync.sshsign import sign

        client = cls(url, transport=transport, ca=ca)
        issued = client.request("POST", "/auth/challenge", json={"user": username}).json()
        signature = sign(key, issued["nonce"], issued["namespace"])
        return client.verify_key_login(username, issued["nonce"], signature)

    def challenge(self, username: str) -> dict[str, Any]:
        """A key-login nonce for `username` (`nonce`, `expires_at`, `namespace`): sign it, then `verify_key_login`."""
        return self.request("POST", "/auth/challenge", json={"user": username}).json()

    def verify_key_login(self, username: str, nonce: str, signature: str) -> Client:
        """Send the signed nonce; on success this client carries the new session."""
        body = self.request("POST", "/auth/verify",
                            json={"user": username, "nonce": nonce, "signature": signature}).json()
        self.http.headers["Authorization"] = f"Bearer {body['token']}"
        self.session = body
        return self

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(self.http.build_request(method, path, **kwargs))
        if response.status_code >= 400:
            self._raise_for(response, path)
        return response

    def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        """Send; a certificate that does not verify becomes `CertificateRefused` saying how to trust the CA."""
        import httpx

        try:
            return self.http.send(request, stream=stream)
        except httpx.ConnectError as exc:
            from swarmsync.tls import is_verify_error

            if is_verify_error(exc):
                raise CertificateRefused(0, f"{self.url}: the server's certificate did not verify "
                                            f"(certificate verify failed): {CA_HINT}") from exc
            raise

    def _raise_for(self, response: httpx.Response, path: str) -> None:
        """The error a refused request (status >= 400) stands for."""
        if response.status_code >= 400:
            detail, errors = _error_body(response)
            from swarmsync.archive.errors import ArchiveCorrupt, ArchiveNotFound, ArchiveStoreError

            if response.status_code == 404 and path.startswith("/jobs/"):
                downloads = ("/result", "/result.txt", "/files")
                raise (ArchiveNotFound if path.endswith(downloads) else JobNotFound)(str(detail))
            if response.status_code in (502, 503) and path.startswith("/jobs/") and \
                    path.endswith(("/result", "/result.txt", "/files")):
                raise (ArchiveCorrupt if response.status_code == 502 else ArchiveStoreError)(str(detail))
            error = {400: APIInputError, 422: APIInputError, 404: APINotFound}.get(response.status_code, APIError)
            raise error(response.status_code, f"{response.status_code}: {_reason(detail)}", detail, errors)

    # --- accounts -------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return self.request("GET", "/me").json()

    @classmethod
    def from_login_link(cls, url: str, token: str, forwarded_for: str | None = None,
                        ca: str | Path | bytes | None = None) -> Client:
        """Open a session with a one-time login link's secret (`POST /auth/link`); it works once."""
        client = cls(url, ca=ca)
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        body = client.request("POST", "/auth/link", json={"token": token}, headers=headers).json()
        client.http.headers["Authorization"] = f"Bearer {body['token']}"
        client.session = body
        return client

    def logout(self) -> None:
        self.request("POST", "/auth/logout")

    def users(self) -> list[dict[str, Any]]:
        return self.request("GET", "/users").json()

    def add_user(self, username: str, password: str, role: str = "viewer") -> dict[str, Any]:
        return self.request("POST", "/users", json={"username": username, "password": password, "role": role}).json()

    def update_user(self, username: str, **changes: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/users/{username}", json=changes).json()

    def tokens(self, everyone: bool = False) -> list[dict[str, Any]]:
        return self.request("GET", "/tokens", params={"all": everyone}).json()

    def create_token(self, name: str, owner: str | None = None, scopes: list[str] | None = None,
                     expires_in_days: float | None = None) -> dict[str, Any]:
        body = {"name": name, "owner": owner, "scopes": scopes or [], "expires_in_days": expires_in_days}
        return self.request("POST", "/tokens", json=body).json()

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        return self.request("DELETE", f"/tokens/{token_id}").json()

    def keys(self, user: str | None = None) -> list[dict[str, Any]]:
        """One's own SSH login keys, or (admins) `user`'s."""
        return self.request("GET", f"/users/{user}/keys" if user else "/me/keys").json()

    def add_key(self, public_key: str, user: str | None = None) -> dict[str, Any]:
        """Register an OpenSSH public key line (`ssh-ed25519 AAAA... comment`) for oneself, or (admins) `user`."""
        return self.request("POST", f"/users/{user}/keys" if user else "/me/keys",
                            json={"public_key": public_key}).json()

    def remove_key(self, fingerprint: str, user: str | None = None) -> dict[str, Any]:
        """Remove a key by its fingerprint (SHA256:...); admins: anyone's with `user`."""
        return self.request("DELETE", f"/users/{user}/keys/{fingerprint}" if user else f"/me/keys/{fingerprint}").json()

    def audit(self, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """The newest audit events; `before`: older than this id (the last id of the previous page)."""
        params = {"limit": limit, **({"before": before} if before else {})}
        return self.request("GET", "/audit", params=params).json()

    # --- health ---------------------------------------------------------------------
    def health_checks(self) -> list[dict[str, Any]]:
        """`swarmsync doctor` on the server: [{part, ok, detail, required}]."""
        return self.request("GET", "/health/checks").json()

    def workers(self) -> dict[str, Any]:
        return self.request("GET", "/workers").json()

    def pools(self) -> list[dict[str, Any]]:
        """Work pools with policy, queues and workers."""
        return self.request("GET", "/pools").json()

    def worker_tokens(self) -> list[dict[str, Any]]:
        """Worker hosts' tokens (admins): pool, queue, last seen, from where, as which worker."""
        return self.request("GET", "/worker-tokens").json()

    def create_worker_token(self, name: str, pool: str | None = None, queue: str | None = None,
                            expires: str | None = None) -> dict[str, Any]:
        """A worker host's token (admins): the secret (`token`) and the host's `command`, shown once."""
        return self.request("POST", "/worker-tokens", json={"name": name, "pool": pool, "queue": queue,
                                                              "expires": expires}).json()

    def revoke_worker_token(self, name: str) -> dict[str, Any]:
        """Revoke a worker token; its running jobs are stopped on its host and handed back (`handed_back`)."""
        return self.request("DELETE", f"/worker-tokens/{name}").json()

    # --- schedules and templates (the Hibernator) ----------------------------------------
    def schedules(self, project: str | None = None) -> list[dict[str, Any]]:
        """Named schedules (of `project`; without one, of every project of yours) with their job, project,
        owner, overlap policy and next run times."""
        return self.request("GET", "/schedules", params=self._scope(project)).json()

    def create_schedule(self, name: str, spec: JobSpec | None = None, *, project: str | None = None,
                        **when: Any) -> dict[str, Any]:
        """`when`: cron / every / rrule, timezone, start, overlap, pool, queue, paused, template, secret_env;
        the schedule (and its template, when `template` names one) is `project`'s."""
        body = {"name": name, **_jsonable(when), **_jsonable({"project": self._project(project)})}
        if spec is not None:
            body["spec"] = spec.model_dump(mode="json", exclude_defaults=True)
        return self.request("POST", "/schedules", json=body).json()

    def schedule(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/schedules/{name}", params=self._scope(project)).json()

    def add_schedule(self, name: str, *, project: str | None = None, **when: Any) -> dict[str, Any]:
        """Another schedule for NAME: cron / every / rrule, timezone, start, active; its own command / env."""
        return self.request("POST", f"/schedules/{name}/add", json=_jsonable(when),
                            params=self._scope(project)).json()

    def change_schedule(self, name: str, action: str, project: str | None = None) -> None:
        """`action`: pause, resume or delete."""
        if action == "delete":
            self.request("DELETE", f"/schedules/{name}", params=self._scope(project))
        else:
            self.request("POST", f"/schedules/{name}/{action}", params=self._scope(project))

    def run_schedule(self, name: str, project: str | None = None) -> RemoteJob:
        return _remote_job(self, self.request("POST", f"/schedules/{name}/run", params=self._scope(project)).json())

    def templates(self, project: str | None = None) -> dict[str, dict[str, Any]]:
        """Saved templates (of `project`; without one, of every project of yours) by stored name
        (`<project>--<name>`, the default project's by bare name); each has its `name`, `project`, `owner`."""
        return self.request("GET", "/templates", params=self._scope(project)).json()

    def save_template(self, name: str, spec: JobSpec, secret_env: dict[str, str] | None = None, *,
                      project: str | None = None) -> dict[str, Any]:
        """Save (or replace) a named job template of `project`; `secret_env` values go to Secret blocks on the
        server."""
        body = {"name": name, "spec": spec.model_dump(mode="json", exclude_defaults=True),
                "secret_env": secret_env or {}, **_jsonable({"project": self._project(project)})}
        return self.request("POST", "/templates", json=body).json()

    def delete_template(self, name: str, project: str | None = None) -> None:
        self.request("DELETE", f"/templates/{name}", params=self._scope(project))

    # --- alerts ---------------------------------------------------------------------------
    def alerts(self, project: str | None = None) -> list[dict[str, Any]]:
        """Alerts (of `project`; without one, of every project of yours), each with its masked `webhook` and
        `last_delivery` (`status` ok or failed, `reason`, `at`) (docs/alerts-and-monitoring.md)."""
        return self.request("GET", "/alerts", params=self._scope(project)).json()

    def add_alert(self, name: str, on: str, webhook: str, *, project: str | None = None,
                  pool: str | None = None) -> dict[str, Any]:
        """Alert on `on` (failed, timed-out, oom, host-lost, any-final) of the jobs of `project` (and `pool`)."""
        body = {"name": name, "on": on, "webhook": webhook, **_jsonable({"project": self._project(project),
                                                                          "pool": pool})}
        return self.request("POST", "/alerts", json=body).json()

    def remove_alert(self, name: str, project: str | None = None) -> None:
        self.request("DELETE", f"/alerts/{name}", params=self._scope(project))

    # --- projects -------------------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        """The projects you are a member of (admins: all), each with `name`, `description`, `role` (yours
        there), `members`."""
        return self.request("GET", "/projects").json()

    def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        """A new project (admins); add its members with `set_member`."""
        return self.request("POST", "/projects", json={"name": name, "description": description}).json()

    def delete_project(self, name: str) -> None:
        """Delete a project and its memberships (admins); its jobs, schedules and templates stay."""
        self.request("DELETE", f"/projects/{name}")

    def members(self, project: str) -> list[dict[str, Any]]:
        """A project's members: `username`, `role` (viewer, operator or maintainer)."""
        return self.request("GET", f"/projects/{project}/members").json()

    def set_member(self, project: str, username: str, role: str) -> dict[str, Any]:
        """Add `username` to `project` with `role`, or change their role there (its maintainers, admins)."""
        return self.request("PUT", f"/projects/{project}/members/{username}", json={"role": role}).json()

    def remove_member(self, project: str, username: str) -> None:
        self.request("DELETE", f"/projects/{project}/members/{username}")

    # --- usage and budgets ------------------------------------------------------------------
    def usage(self, by: str = "project", project: str | None = None, user: str | None = None,
              since: str | None = None) -> list[dict[str, Any]]:
        """Finished jobs' measured use summed `by` user, project, pool or image (`GET /usage`): `key`, `jobs`,
        `cpu_seconds`, `memory_peak_bytes` (the largest job's), block and network bytes, `wall_seconds`;
        `since` a duration back from now ("7d"); `project` None: the client's project, if it has one."""
        params = {k: v for k, v in {"by": by, "user": user, "since": since}.items() if v}
        return self.request("GET", "/usage", params={**params, **self._scope(project)}).json()

    def budget(self, project: str) -> dict[str, Any]:
        """The project's monthly CPU-hours budget (`cpu_hours`, null: none), `used_cpu_hours`, `resets`."""
        return self.request("GET", f"/usage/budgets/{project}").json()

    def set_budget(self, project: str, cpu_hours: float | None) -> dict[str, Any]:
        """Set (None: remove) the project's monthly CPU-hours budget (admins)."""
        return self.request("PUT", f"/usage/budgets/{project}", json={"cpu_hours": cpu_hours}).json()

    # --- jobs: the same names as swarmsync.jobs ----------------------------------------
    def submit(self, image: str | JobSpec, command: list[str] | str | None = None, *,
               secret_env: dict[str, str] | None = None, pool: str | None = None, queue: str | None = None,
               at: datetime | str | None = None, delay: str | float | timedelta | None = None,
               template: str | None = None, project: str | None = None, **options: Any) -> RemoteJob:
        """As `swarmsync.submit`: `at`/`delay` for a delayed job, `template` for a saved one (of `project`),
        `project` the project the job belongs to (default: the client's).

        An image and options are sent as given, and the server validates them (the JobSpec of its own version):
        a wrong one raises `APIInputError` (422), its `errors` naming each field. A `JobSpec`, and a template
        with its overrides, are validated here first (pydantic's `ValidationError`)."""
        from swarmsync.timing import start_time

        at = start_time(at, delay)
        if template or not isinstance(image, str):
            spec: JobSpec | dict[str, Any] = self.job_spec(image, command, template, project=project, **options)
        else:  # the submission path of `swarmsync submit IMAGE`: no JobSpec models (docs/benchmarks.md, CLI start)
            spec = spec_fields(image, command, options)
        return self._submit_spec(spec, pool, queue, secret_env, template, at, project=project)

    def _submit_spec(self, spec: JobSpec | dict[str, Any], pool: str | None, queue: str | None,
                     secret_env: dict[str, str] | None, template: str | None, at: datetime | None = None, *,
                     project: str | None = None) -> RemoteJob:
        fields = spec if isinstance(spec, dict) else spec.model_dump(mode="json", exclude_defaults=True)
        body = {"spec": fields, "secret_env": secret_env or {},
                "pool": pool, "queue": queue, **({"at": at.isoformat()} if at else {}),
                **_jsonable({"project": self._project(project)}),
                **({"template": template} if template else {})}  # the server fills in its hidden secrets
        return _remote_job(self, self.request("POST", "/jobs", json=body).json())

    def job_spec(self, image: str | JobSpec | None, command: list[str] | str | None = None,
                 template: str | None = None, *, project: str | None = None, **options: Any) -> JobSpec:
        """The JobSpec of a submission: given, built from options, or a saved template of `project` (read
        through the API) with `command` and options overriding it, its env and secrets
        extended (`swarmsync.templates.apply_overrides`, as locally)."""
        from swarmsync.spec import JobSpec

        if not template:
            return image if isinstance(image, JobSpec) else self.build_spec(image, command, **options)
        from swarmsync.templates import apply_overrides

        project = self._project(project) or DEFAULT_PROJECT
        saved = self.templates(project).get(stored_name(project, template))
        if saved is None:
            raise APINotFound(404, f"no job template named {template!r} in project {project}")
        fields = {k: v for k, v in saved.items() if k in JobSpec.model_fields}  # not its name, project, owner
        return apply_overrides(fields, command, **options)

    def submit_many(self, specs: list[JobSpec], *, pool: str | None = None, queue: str | None = None,
                    secret_env: dict[str, str] | None = None, template: str | None = None,
                    project: str | None = None, **_ignored: Any) -> list[Submission]:
        """`template`: the saved template the specs were made from (the server fills in its hidden secrets);
        `project`: the jobs' project (default: the client's)."""
        from swarmsync.job_handle import Submission

        results = []
        for index, spec in enumerate(specs):
            try:
                results.append(Submission(index, self._submit_spec(spec, pool, queue, secret_env, template,
                                                                   project=project)))
            except APIError as exc:
                results.append(Submission(index, None, str(exc)))
        return results

    # --- pipelines: as swarmsync.pipelines, as dicts in the shape of `GET /pipelines/{id}` ----------
    def submit_pipeline(self, pipeline: dict[str, Any], *, project: str | None = None,
                        at: datetime | None = None) -> dict[str, Any]:
        """Submit a pipeline (the file's JSON form); refused whole (422 naming each field, 403) before anything
        runs."""
        body = {"pipeline": pipeline, **_jsonable({"project": self._project(project)}),
                **({"at": at.isoformat()} if at else {})}
        return self.request("POST", "/pipelines", json=body).json()

    def pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return self.request("GET", f"/pipelines/{pipeline_id}").json()

    def pipelines(self, limit: int = 50, project: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "/pipelines", params={"limit": limit, **self._scope(project)}).json()

    def pipeline_logs(self, pipeline_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/pipelines/{pipeline_id}/logs").json()

    def change_pipeline(self, pipeline_id: str, action: str) -> dict[str, Any]:
        """`action`: cancel or resume."""
        return self.request("POST", f"/pipelines/{pipeline_id}/{action}").json()

    def schedule_pipeline(self, name: str, pipeline: dict[str, Any], *, every: str | None = None,
                          cron: str | None = None, timezone: str | None = None, paused: bool = False,
                          project: str | None = None) -> dict[str, Any]:
        """Run the pipeline (the file's JSON form) on a schedule NAME of `project`, as you: every step admitted
        first (403), a bad pipeline refused naming each field (422), the name taken (409)."""
        body = {"name": name, "pipeline": pipeline, "paused": paused,
                **_jsonable({"every": every, "cron": cron, "timezone": timezone, "project": self._project(project)})}
        return self.request("POST", "/pipelines/schedules", json=body).json()

    def pipeline_schedules(self, project: str | None = None) -> list[dict[str, Any]]:
        """Pipeline schedules (of `project`; without one, of every project of yours)."""
        return self.request("GET", "/pipelines/schedules", params=self._scope(project)).json()

    def pipeline_schedule(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/pipelines/schedules/{name}", params=self._scope(project)).json()

    def change_pipeline_schedule(self, name: str, action: str, project: str | None = None) -> None:
        """`action`: pause, resume or delete."""
        if action == "delete":
            self.request("DELETE", f"/pipelines/schedules/{name}", params=self._scope(project))
        else:
            self.request("POST", f"/pipelines/schedules/{name}/{action}", params=self._scope(project))

    def list_jobs(self, limit: int = 50, state: str | None = None, user: str | None = None,
                  offset: int = 0, project: str | None = None, after: str | None = None) -> JobPage:
        """The newest created jobs first: a `JobPage`, the list of rows with the next page's cursor in
        `next_cursor` (None: the last page); `after`: that cursor (the next page, as fast deep in a long history
        as on the first); `offset` skips that many (kept for compatibility: slower the deeper it goes);
        `project`: only that project's (default: the client's; `ALL_PROJECTS` or neither: every project of
        yours)."""
        from swarmsync.jobs import JobRow

        return self._job_page(JobRow, limit, state, user, offset, project, after)

    def list_job_summaries(self, limit: int = 50, state: str | None = None, user: str | None = None,
                           offset: int = 0, project: str | None = None, after: str | None = None) -> JobPage:
        """`list_jobs` with `JobSummary` rows: the same fields but the Prefect flow run (read without Prefect)."""
        from swarmsync.job_rows import JobSummary

        return self._job_page(JobSummary, limit, state, user, offset, project, after)

    def _job_page(self, row: type[JobSummary], limit: int, state: str | None, user: str | None, offset: int,
                  project: str | None, after: str | None) -> JobPage:
        """`GET /jobs` as a page of `row`s."""
        from swarmsync.job_rows import JobPage

        params = {"limit": limit, **({"offset": offset} if offset else {}), **({"after": after} if after else {}),
                  **({"state": state} if state else {}), **({"user": user} if user else {}), **self._scope(project)}
        response = self.request("GET", "/jobs", params=params)
        return JobPage([row.from_api(j) for j in response.json()], response.headers.get("X-Next-Cursor"))

    def get_job(self, job_id: str) -> RemoteJob:
        return _remote_job(self, self.request("GET", f"/jobs/{job_id}").json())

    def get_job_summary(self, job_id: str) -> JobSummary:
        """The job now, as `GET /jobs/{id}` gives it, without its Prefect flow run (`JobNotFound` if none)."""
        from swarmsync.job_rows import JobSummary

        return JobSummary.from_api(self.request("GET", f"/jobs/{job_id}").json())

    def get_job_logs(self, job_id: str, after: datetime | None = None) -> list[tuple[datetime, str, str]]:
        """(timestamp, logger name, message) of the job's log lines, oldest first; `after`: only those at or after
        that time (`JobNotFound` if there is no such job)."""
        params = {"after": after.isoformat()} if after else {}
        lines = self.request("GET", f"/jobs/{job_id}/logs", params=params).json()
        return [(datetime.fromisoformat(x["timestamp"]), x["name"], x["message"]) for x in lines]

    def get_job_result(self, job_id: str) -> RemoteJobResult:
        """A finished job's result (its manifest); `ArchiveNotFound` before it ends."""
        from swarmsync.job_rows import RemoteJobResult

        manifest = self.request("GET", f"/jobs/{job_id}/result").json()
        return RemoteJobResult(
            job_id=job_id, state=manifest["state"], exit_code=manifest.get("exit_code"),
            reason=manifest.get("reason"), message=manifest.get("message"), manifest=manifest,
            archive_location=f"{self.url}/jobs/{job_id}/result", client=self,
        )

    def cancel_job(self, job_id: str) -> None:
        """Cancel the job: its container is stopped, partial output archived (`JobNotFound` if none)."""
        self.request("POST", f"/jobs/{job_id}/cancel")

    def delete_job(self, job_id: str) -> None:
        """Delete a finished job: its run, its archive and its Secret blocks (`JobNotFound` if none)."""
        self.request("DELETE", f"/jobs/{job_id}")

    @staticmethod
    def build_spec(image: str, command: list[str] | str | None = None, **options: Any) -> JobSpec:
        """A validated JobSpec from keyword options (`swarmsync.jobs.build_spec`)."""
        from swarmsync.spec import JobSpec

        return JobSpec(image=image, command=command, **options)

    JobNotFound = JobNotFound

    def read_archive_file(self, job_id: str, name: str) -> bytes:
        """One archived file, whole in memory (`iter_archive_file` streams it)."""
        return b"".join(self.iter_archive_file(job_id, name))

    def iter_archive_file(self, job_id: str, name: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """One archived file in chunks as the API streams it (`output.txt`, `stdout.txt`,
        `stderr.txt` or `files.tar.gz`). The request is made at once, so a refusal
        (`ArchiveNotFound`, `APIError`) is raised here, before the first chunk. The bytes are
        checked against the manifest's SHA-256 (`X-Archive-SHA256`) as they arrive; the last chunk
        is held back until they match, else `ArchiveCorrupt` is raised."""
        if name.startswith("services/") and name.count("/") == 2:  # a service's stdout/stderr
            _, service, file = name.split("/")
            path, params = f"/jobs/{job_id}/result.txt", {"stream": file.removesuffix(".txt"), "service": service}
        elif name.endswith(".txt"):
            path, params = f"/jobs/{job_id}/result.txt", {"stream": name.removesuffix(".txt")}
        elif name == "files.tar.gz":
            path, params = f"/jobs/{job_id}/files", {}
        else:
            raise ValueError(f"{name!r} cannot be downloaded")
        response = self._send(self.http.build_request("GET", path, params=params), stream=True)
        if response.status_code >= 400:
            response.read()
            response.close()
            self._raise_for(response, path)

        expected = response.headers.get("X-Archive-SHA256")
        size = response.headers.get("Content-Length")

        def chunks() -> Iterator[bytes]:
            import httpx

            from swarmsync.archive import ArchiveCorrupt, checked_chunks

            try:
                if expected is None or size is None:  # an older server: nothing to check against
                    yield from response.iter_bytes(chunk_size)
                    return
                yield from checked_chunks(response.iter_bytes(chunk_size), {"sha256": expected, "size": int(size)},
                                          f"{name} of job {job_id}")
            except httpx.RemoteProtocolError as exc:  # the server aborted: its own check failed
                raise ArchiveCorrupt(f"{name} of job {job_id}: the download was cut short by the server "
                                     f"(does not match its manifest, or the store failed): {exc}") from None
            finally:
                response.close()

        return chunks()

    # --- pool policy (the dashboard's Workers page) -------------------------------------
    def update_pool(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change some of a pool's policy settings (admins); returns the whole policy."""
        return self.request("PATCH", f"/pools/{name}", json=changes).json()


def spec_fields(image: str, command: list[str] | str | None, options: dict[str, Any]) -> dict[str, Any]:
    """A JobSpec's fields as the API's JSON takes them, unvalidated (`_jsonable`)."""
    return _jsonable({"image": image, "command": command, **options})


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments as a JSON body: None left out, times as ISO strings, models (input files) as their JSON."""
    return {k: _json_value(v) for k, v in fields.items() if v is not None}


def _json_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _error_body(response: httpx.Response) -> tuple[Any, list[dict[str, Any]]]:
    """A refusal's `detail` and the fields it names: FastAPI's 422 list, or SwarmSync's `errors`."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500], []
    if not isinstance(body, dict):
        return body, []
    detail = body.get("detail")
    items = detail if isinstance(detail, list) else body.get("errors")
    errors = [{"loc": list(e.get("loc") or []), "msg": str(e.get("msg", ""))}
              for e in items or [] if isinstance(e, dict)]
    return detail, errors


def _reason(detail: Any) -> str:
    """FastAPI's 422 detail is a list of errors: say where and what, not a Python repr."""
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(x) for x in e.get('loc', [])[1:])}: {e.get('msg')}"
                         if isinstance(e, dict) else str(e) for e in detail)
    return str(detail)


# --- what the dashboard needs of the settings ---------------------------------------------
@dataclass(frozen=True)
class DashboardSettings:
    """The settings the dashboard uses (it reads them here, not from `swarmsync.settings`)."""

    api_url: str  # the SwarmSync API it talks to (may be a service name, e.g. http://api:4280 in compose)
    prefect_ui_url: str  # the Prefect UI for run links by default: SWARMSYNC_PREFECT_UI_URL, else the API URL - /api
    home_dir: Path  # where the dashboard keeps its options (dashboard.json)
    work_pool: str  # the default work pool
    dashboard_url: str  # the dashboard as people reach it (SWARMSYNC_DASHBOARD_PUBLIC_URL, else where it listens)
    max_body_bytes: int  # the largest request body the API takes (bounds uploads)
    public_api_url: str = ""  # the SwarmSync API as people reach it (SWARMSYNC_PUBLIC_URL, else api_url)


def dashboard_settings() -> DashboardSettings:
    settings = _settings()
    # default: the API on this host (0.0.0.0 reached as 127.0.0.1), https in team mode
    api_url = settings.dashboard_api_url or settings.url or settings.local_api_url
    prefect_ui = settings.prefect_ui_url or settings.prefect_api_url.removesuffix("/").removesuffix("/api")
    dashboard = settings.dashboard_public_url or f"http://{settings.dashboard_bind_host}:{settings.dashboard_port}"
    return DashboardSettings(
        api_url=api_url.rstrip("/"),
        prefect_ui_url=reachable(prefect_ui).rstrip("/"),
        home_dir=settings.home_dir, work_pool=settings.work_pool,
        dashboard_url=reachable(dashboard).rstrip("/"),
        max_body_bytes=settings.max_body_bytes,
        public_api_url=(settings.public_url or api_url).rstrip("/"),
    )


def reachable(url: str) -> str:
    """A URL a browser on this machine can open: a bind-everything address (0.0.0.0, ::) becomes 127.0.0.1
    (set the SWARMSYNC_*PUBLIC_URL / SWARMSYNC_PREFECT_UI_URL settings for other machines)."""
    parts = urlsplit(url)
    if parts.hostname in ("0.0.0.0", "::"):
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"127.0.0.1{port}"))
    return url


def _unused_tls_context() -> ssl.SSLContext:
    """The TLS context of a client of an http:// URL: never used, since the client does not follow redirects, and
    it trusts no CA, so it could only refuse. httpx's default would load certifi's bundle: 40 ms of a CLI
    command's start (docs/benchmarks.md, CLI start)."""
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _settings() -> SwarmSyncSettings:
    """`swarmsync.settings.get_settings()`, imported on first use (pydantic-settings: not for `--help`)."""
    from swarmsync.settings import get_settings

    return get_settings()


# --- the stored login (swarmsync login) ------------------------------------------------
def credentials_path() -> Path:
    return client_settings().config_dir.expanduser() / CREDENTIALS_FILE


def save_credentials(url: str, token: str, username: str, project: str | None = None,
                     ca: bytes | None = None) -> Path:
    """Write {url, token, username[, project][, ca]} readable by the user only (0600, folder 0700); `ca`: the PEM
    of the CA `login --ca` trusted, used again for this URL by `Client.from_settings()`."""
    return _write_credentials({"url": url.rstrip("/"), "token": token, "username": username,
                               **({"project": project} if project else {}),
                               **({"ca": ca.decode()} if ca else {})})


def _write_credentials(stored: dict[str, str]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        json.dump(stored, fh)
    return path


def use_project(project: str | None) -> Path:
    """Store `project` (None: forget it) as the project of the stored login's commands
    (`swarmsync project use`), beside its url and token; a server host without a login keeps it alone."""
    stored = {k: v for k, v in load_credentials().items() if k != "project"}
    return _write_credentials({**stored, **({"project": project} if project else {})})


def stored_project() -> str | None:
    """The project `swarmsync project use` stored, or None."""
    return load_credentials().get("project") or None


def load_credentials() -> dict[str, str]:
    path = credentials_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def forget_credentials() -> bool:
    try:
        credentials_path().unlink()
        return True
    except FileNotFoundError:
        return False


def remote_configured() -> bool:
    """True when the CLI should go through a SwarmSync API (SWARMSYNC_URL or a stored login)."""
    return bool(client_settings().url or load_credentials().get("url"))
