"""The authorization matrix: every route of the API's route table, called by every kind of caller,
against objects of one project P owned by one operator ("owner").

The callers: nobody, a viewer of P, the owner (an operator of P), another operator of P ("peer"),
an operator of another project Q only ("outsider"), a maintainer of P, and an admin. Each route's
expected outcome for each caller is declared in one table (`MATRIX`); a route of the app that the
table does not name fails `test_the_matrix_names_every_route`, so no route ships unchecked.

Outcomes: "ok" (2xx: done, not any other refusal), 401, 403 (with the reason; audited once), 404
(an object of a project the caller is not in does not exist for them).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute

import swarmsync
from swarmsync.api import create_app
from swarmsync.api.app import ROUTERS
from swarmsync.auth import audit, projects, users
from swarmsync.auth.roles import Principal
from swarmsync.settings import get_settings
from tests.accounts.conftest import PASSWORD, auth
from tests.accounts.sshkeys import random_public_line
from tests.waiting import wait_until

CALLERS = ("anonymous", "viewer", "owner", "peer", "outsider", "maintainer", "admin")
SIGNED_IN = set(CALLERS) - {"anonymous"}


def outcome(ok: set[str] = frozenset(), forbidden: set[str] = frozenset(), hidden: set[str] = frozenset(),
            public: bool = False) -> dict[str, str]:
    """Each caller's expected outcome: `ok`, 403 for `forbidden`, 404 for `hidden`; anonymous: 401 (or, on a
    public route, anything but 401/403/500)."""
    table = {"anonymous": "public" if public else "401"}
    for caller in SIGNED_IN:
        table[caller] = "ok" if caller in ok else "403" if caller in forbidden else "404" if caller in hidden else "?"
    unknown = [c for c, o in table.items() if o == "?"]
    assert not unknown, f"no outcome for {unknown}"
    return table


EVERYONE = outcome(ok=SIGNED_IN)
ADMIN_ONLY = outcome(ok={"admin"}, forbidden=SIGNED_IN - {"admin"})
PUBLIC = {caller: "public" for caller in CALLERS}
# worker hosts' routes: a worker token only; every user's session or token is refused as no worker token (401)
WORKER_ONLY = {caller: "worker-401" for caller in CALLERS}
# an object of project P: read by its members, hidden from everyone else
READ_P = outcome(ok=SIGNED_IN - {"outsider"}, hidden={"outsider"})
# a change of the owner's object in P: the owner, P's maintainer and admins; a viewer's role or another
# operator of P is refused (403), an outsider does not see it (404)
CHANGE_P = outcome(ok={"owner", "maintainer", "admin"}, forbidden={"viewer", "peer"}, hidden={"outsider"})
# creating something in P: P's operators and maintainers, admins; a viewer may not; an outsider: no such project
CREATE_IN_P = outcome(ok={"owner", "peer", "maintainer", "admin"}, forbidden={"viewer"}, hidden={"outsider"})
# P's members: listed by members, changed by P's maintainer and admins
MEMBERS_P = outcome(ok={"maintainer", "admin"}, forbidden={"viewer", "owner", "peer"}, hidden={"outsider"})


@dataclass
class World:
    """Project P with the owner's objects, project Q, and a session per caller."""

    p: str
    q: str
    accounts: dict[str, str]  # caller -> username
    sessions: dict[str, str]
    done_job: str
    busybox: str
    api: Any
    submitted: list[str]
    pipelines: list[str] = field(default_factory=list)

    def as_owner(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.api.request(method, path, json=body, headers=auth(self.sessions["owner"]))
        assert response.status_code < 300, response.text
        return response.json()

    def job(self, command: str, wait: bool = False, **spec: Any) -> str:
        job_id = self.as_owner("POST", "/jobs", {"spec": {"image": self.busybox, "command": command,
                                                          "pull_policy": "never", **spec}, "project": self.p})["id"]
        self.submitted.append(job_id)
        if wait:
            swarmsync.get_job(job_id).wait(120)
        return job_id


Maker = Callable[[World], tuple[str, Any]]


def fixed(path: str, body: Any = None) -> Maker:
    return lambda w: (path.format(p=w.p, q=w.q, job=w.done_job, pool=get_settings().work_pool), body)


def running_job(w: World) -> tuple[str, Any]:
    job_id = w.job("echo started; sleep 60")
    job = swarmsync.get_job(job_id)
    wait_until(lambda: job.status() not in ("Scheduled", "Pending"), "the job left Scheduled/Pending", timeout=120)
    return f"/jobs/{job_id}/cancel", None


def finished_job(w: World) -> tuple[str, Any]:
    return f"/jobs/{w.job('echo bye', wait=True)}", None


def a_schedule(suffix: str = "", body: Any = None) -> Maker:
    def make(w: World) -> tuple[str, Any]:
        name = f"m-{uuid.uuid4().hex[:8]}"
        w.as_owner("POST", "/schedules", {"name": name, "every": "1h", "paused": True, "project": w.p,
                                          "spec": {"image": w.busybox, "command": "echo matrix",
                                                   "pull_policy": "never"}})
        return f"/schedules/{name}{suffix}?project={w.p}", body
    return make


def a_template(w: World) -> tuple[str, Any]:
    name = f"m-{uuid.uuid4().hex[:8]}"
    w.as_owner("POST", "/templates", {"name": name, "project": w.p, "spec": {"image": w.busybox, "command": "true"}})
    return f"/templates/{name}?project={w.p}", None


def new_in_p(kind: str) -> Maker:
    def make(w: World) -> tuple[str, Any]:
        name = f"m-{uuid.uuid4().hex[:8]}"
        spec = {"image": w.busybox, "command": "echo matrix", "pull_policy": "never"}
        bodies = {"/jobs": {"spec": spec, "project": w.p, "at": tomorrow()},
                  "/pipelines": {"pipeline": {"name": name, "steps": {"one": spec}}, "project": w.p, "at": tomorrow()},
                  "/schedules": {"name": name, "every": "1h", "paused": True, "project": w.p, "spec": spec},
                  "/pipelines/schedules": {"name": name, "every": "1h", "paused": True, "project": w.p,
                                           "pipeline": {"name": name, "steps": {"one": spec}}},
                  "/templates": {"name": name, "project": w.p, "spec": spec},
                  "/alerts": {"name": name, "on": "failed", "webhook": HOOK, "project": w.p}}
        return kind, bodies[kind]
    return make


HOOK = "https://hooks.example.com/matrix"  # an alert's webhook: a public name (private addresses: admins only)


def an_alert(w: World) -> tuple[str, Any]:
    """The owner's alert on P's failed jobs."""
    name = f"m-{uuid.uuid4().hex[:8]}"
    w.as_owner("POST", "/alerts", {"name": name, "on": "failed", "webhook": HOOK, "project": w.p})
    return f"/alerts/{name}?project={w.p}", None


def a_pipeline(suffix: str = "", cancelled: bool = False) -> Maker:
    """The owner's pipeline in P, due tomorrow (`cancelled`: cancelled at once, so it may be resumed)."""
    def make(w: World) -> tuple[str, Any]:
        spec = {"image": w.busybox, "command": "echo matrix", "pull_policy": "never"}
        made = w.as_owner("POST", "/pipelines", {"pipeline": {"name": "m", "steps": {"one": spec}}, "project": w.p,
                                                 "at": tomorrow()})
        w.pipelines.append(made["id"])
        if cancelled:
            w.as_owner("POST", f"/pipelines/{made['id']}/cancel")
        return f"/pipelines/{made['id']}{suffix}", None
    return make


def a_pipeline_schedule(suffix: str = "") -> Maker:
    """The owner's paused pipeline schedule in P."""
    def make(w: World) -> tuple[str, Any]:
        name = f"m-{uuid.uuid4().hex[:8]}"
        spec = {"image": w.busybox, "command": "echo matrix", "pull_policy": "never"}
        w.as_owner("POST", "/pipelines/schedules", {"name": name, "every": "1h", "paused": True, "project": w.p,
                                                    "pipeline": {"name": name, "steps": {"one": spec}}})
        return f"/pipelines/schedules/{name}{suffix}?project={w.p}", None
    return make


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


def a_member(w: World) -> tuple[str, Any]:
    name = f"member-{uuid.uuid4().hex[:8]}"
    users.add_user(Principal.local(), name, PASSWORD, "operator")
    projects.set_member(Principal.local(), w.p, name, "viewer")
    return f"/projects/{w.p}/members/{name}", None


def new_member(w: World) -> tuple[str, Any]:
    name = f"member-{uuid.uuid4().hex[:8]}"
    users.add_user(Principal.local(), name, PASSWORD, "operator")
    return f"/projects/{w.p}/members/{name}", {"role": "viewer"}


def a_project(w: World) -> tuple[str, Any]:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    projects.create_project(Principal.local(), name)
    return f"/projects/{name}", None


def own_token(w: World, caller: str) -> tuple[str, Any]:
    created = w.api.post("/tokens", json={"name": "to-revoke"}, headers=auth(w.sessions[caller])).json()
    return f"/tokens/{created['id']}", None


def new_key(owner: str | None = None) -> Maker:
    return lambda w: ((f"/users/{owner}/keys" if owner else "/me/keys"), {"public_key": random_public_line()})


def a_worker_token(w: World) -> tuple[str, Any]:
    from swarmsync.auth import worker_tokens

    name = f"m-{uuid.uuid4().hex[:8]}"
    worker_tokens.create("matrix", name, get_settings().work_pool)
    return f"/worker-tokens/{name}", None


MATRIX_USER = f"matrix-target-{uuid.uuid4().hex[:6]}"

# (method, route path, how to make the call, expected outcome per caller). A maker gets the world (and,
# for per-caller objects, the caller) and returns the concrete path and body.
MATRIX: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", "/auth/login", fixed("/auth/login", {"username": "nobody-x", "password": "whatever1"}), PUBLIC),
    ("POST", "/auth/link", fixed("/auth/link", {"token": "ssl_not-a-link"}), PUBLIC),
    ("POST", "/auth/challenge", fixed("/auth/challenge", {"user": "nobody-x"}), PUBLIC),
    ("POST", "/auth/verify", fixed("/auth/verify", {"user": "nobody-x", "nonce": "ssn_x", "signature": "x"}), PUBLIC),
    ("GET", "/health", fixed("/health"), PUBLIC),
    ("GET", "/tls/ca.pem", fixed("/tls/ca.pem"), PUBLIC),  # public material (404 without a CA of its own)
    ("POST", "/auth/logout", fixed("/auth/logout"), EVERYONE),
    ("GET", "/me", fixed("/me"), EVERYONE),
    ("GET", "/me/keys", fixed("/me/keys"), EVERYONE),
    ("POST", "/me/keys", new_key(), EVERYONE),
    ("DELETE", "/me/keys/{fingerprint}", "own_key", EVERYONE),
    ("GET", "/users/{username}/keys", fixed(f"/users/{MATRIX_USER}/keys"), ADMIN_ONLY),
    ("POST", "/users/{username}/keys", new_key(MATRIX_USER), ADMIN_ONLY),
    ("DELETE", "/users/{username}/keys/{fingerprint}", "user_key", ADMIN_ONLY),
    ("GET", "/users", fixed("/users"), ADMIN_ONLY),
    ("POST", "/users", lambda w: ("/users", {"username": f"u-{uuid.uuid4().hex[:8]}", "password": "a password!",
                                             "role": "viewer"}), ADMIN_ONLY),
    ("PATCH", "/users/{username}", fixed(f"/users/{MATRIX_USER}", {"role": "viewer"}), ADMIN_ONLY),
    ("GET", "/tokens", fixed("/tokens"), EVERYONE),
    ("POST", "/tokens", fixed("/tokens", {"name": "matrix"}), EVERYONE),
    ("DELETE", "/tokens/{token_id}", own_token, EVERYONE),
    ("GET", "/audit", fixed("/audit"), ADMIN_ONLY),
    ("GET", "/metrics", fixed("/metrics"), ADMIN_ONLY),  # and metrics:read tokens: tests/integration/test_metrics.py
    ("GET", "/health/checks", fixed("/health/checks"), EVERYONE),
    ("GET", "/workers", fixed("/workers"), EVERYONE),
    ("GET", "/pools", fixed("/pools"), EVERYONE),
    ("PATCH", "/pools/{name}", fixed("/pools/{pool}", {}), ADMIN_ONLY),  # an empty change: nothing written
    # jobs of P
    ("GET", "/jobs", fixed("/jobs"), EVERYONE),
    ("POST", "/jobs", new_in_p("/jobs"), CREATE_IN_P),
    ("GET", "/jobs/{job_id}", fixed("/jobs/{job}"), READ_P),
    ("GET", "/jobs/{job_id}/logs", fixed("/jobs/{job}/logs"), READ_P),
    ("GET", "/jobs/{job_id}/states", fixed("/jobs/{job}/states"), READ_P),
    ("GET", "/jobs/{job_id}/result", fixed("/jobs/{job}/result"), READ_P),
    ("GET", "/jobs/{job_id}/result.txt", fixed("/jobs/{job}/result.txt"), READ_P),
    ("GET", "/jobs/{job_id}/files", fixed("/jobs/{job}/files"), READ_P),
    ("POST", "/jobs/{job_id}/cancel", running_job, CHANGE_P),
    ("POST", "/jobs/{job_id}/rerun", fixed("/jobs/{job}/rerun"), CHANGE_P),
    ("DELETE", "/jobs/{job_id}", finished_job, CHANGE_P),
    # pipelines of P
    ("GET", "/pipelines", fixed("/pipelines"), EVERYONE),
    ("POST", "/pipelines", new_in_p("/pipelines"), CREATE_IN_P),
    ("GET", "/pipelines/{pipeline_id}", a_pipeline(), READ_P),
    ("GET", "/pipelines/{pipeline_id}/logs", a_pipeline("/logs"), READ_P),
    ("POST", "/pipelines/{pipeline_id}/cancel", a_pipeline("/cancel"), CHANGE_P),
    ("POST", "/pipelines/{pipeline_id}/resume", a_pipeline("/resume", cancelled=True), CHANGE_P),
    # pipeline schedules of P
    ("GET", "/pipelines/schedules", fixed("/pipelines/schedules"), EVERYONE),
    ("POST", "/pipelines/schedules", new_in_p("/pipelines/schedules"), CREATE_IN_P),
    ("GET", "/pipelines/schedules/{name}", a_pipeline_schedule(), READ_P),
    ("POST", "/pipelines/schedules/{name}/pause", a_pipeline_schedule("/pause"), CHANGE_P),
    ("POST", "/pipelines/schedules/{name}/resume", a_pipeline_schedule("/resume"), CHANGE_P),
    ("DELETE", "/pipelines/schedules/{name}", a_pipeline_schedule(), CHANGE_P),
    # schedules and templates of P
    ("GET", "/schedules", fixed("/schedules"), EVERYONE),
    ("POST", "/schedules", new_in_p("/schedules"), CREATE_IN_P),
    ("GET", "/schedules/{name}", a_schedule(), READ_P),
    ("POST", "/schedules/{name}/pause", a_schedule("/pause"), CHANGE_P),
    ("POST", "/schedules/{name}/resume", a_schedule("/resume"), CHANGE_P),
    ("POST", "/schedules/{name}/run", a_schedule("/run", {"at": tomorrow()}), CHANGE_P),
    ("POST", "/schedules/{name}/add", a_schedule("/add", {"every": "2h", "env": {"MODE": "extra"}}), CHANGE_P),
    ("DELETE", "/schedules/{name}", a_schedule(), CHANGE_P),
    ("GET", "/templates", fixed("/templates"), EVERYONE),
    ("POST", "/templates", new_in_p("/templates"), CREATE_IN_P),
    ("DELETE", "/templates/{name}", a_template, CHANGE_P),
    # alerts of P (Prefect Automations on its jobs' events)
    ("GET", "/alerts", fixed("/alerts"), EVERYONE),
    ("POST", "/alerts", new_in_p("/alerts"), CREATE_IN_P),
    ("DELETE", "/alerts/{name}", an_alert, CHANGE_P),
    # projects
    ("GET", "/projects", fixed("/projects"), EVERYONE),
    ("POST", "/projects", lambda w: ("/projects", {"name": f"new-{uuid.uuid4().hex[:8]}"}), ADMIN_ONLY),
    ("DELETE", "/projects/{project}", a_project, ADMIN_ONLY),
    ("GET", "/projects/{project}/members", fixed("/projects/{p}/members"), READ_P),
    ("PUT", "/projects/{project}/members/{username}", new_member, MEMBERS_P),
    ("DELETE", "/projects/{project}/members/{username}", a_member, MEMBERS_P),
    # usage and budgets (budget null: the matrix's own jobs in P stay admitted)
    ("GET", "/usage", fixed("/usage?project={p}&by=user"), READ_P),
    ("GET", "/usage/budgets/{project}", fixed("/usage/budgets/{p}"), READ_P),
    ("PUT", "/usage/budgets/{project}", lambda w: (f"/usage/budgets/{w.p}", {"cpu_hours": None}), ADMIN_ONLY),
    # worker hosts' tokens (admins) and the routes worker hosts call (worker tokens only)
    ("GET", "/worker-tokens", fixed("/worker-tokens"), ADMIN_ONLY),
    ("POST", "/worker-tokens", lambda w: ("/worker-tokens", {"name": f"m-{uuid.uuid4().hex[:8]}"}), ADMIN_ONLY),
    ("DELETE", "/worker-tokens/{name}", a_worker_token, ADMIN_ONLY),
    ("GET", "/worker/whoami", fixed("/worker/whoami"), WORKER_ONLY),
    ("POST", "/worker/telemetry", fixed("/worker/telemetry", {}), WORKER_ONLY),
    ("GET", "/worker/runs/{run_id}/owner", fixed("/worker/runs/{job}/owner"), WORKER_ONLY),
    ("GET", "/worker/runs/{run_id}/outcome", fixed("/worker/runs/{job}/outcome"), WORKER_ONLY),
    *[(method, "/worker/prefect/api/{path}", fixed("/worker/prefect/api/flow_runs/{job}"), WORKER_ONLY)
      for method in ("GET", "POST", "PATCH", "PUT", "DELETE")],
    # a worker host returns a run's archive to Core (tests/archives/test_core_uploads.py: which token may)
    ("GET", "/worker/archives/{run_id}/files/{name}", fixed("/worker/archives/{job}/files/output.txt"), WORKER_ONLY),
    ("PUT", "/worker/archives/{run_id}/files/{name}", fixed("/worker/archives/{job}/files/output.txt?offset=0"),
     WORKER_ONLY),
    ("POST", "/worker/archives/{run_id}/commit", fixed("/worker/archives/{job}/commit", {}), WORKER_ONLY),
    ("POST", "/worker/archives/{run_id}/unstored", fixed("/worker/archives/{job}/unstored", {}), WORKER_ONLY),
    # last: a password change ends every session of its user
    ("POST", "/me/password", fixed("/me/password", {"current_password": PASSWORD, "new_password": PASSWORD}), EVERYONE),
]


def test_the_matrix_names_every_route():
    """Built from the route table the app is made of (`ROUTERS`, hidden routes included), checked against
    the app's own OpenAPI description: a new route without a row here fails."""
    routes = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))  # {fingerprint:path} -> {fingerprint}
              for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)
              for method in route.methods}
    described = {(method.upper(), path) for path, ops in create_app().openapi()["paths"].items() for method in ops}
    assert described <= routes, "the app serves routes not in ROUTERS"
    named = {(method, path) for method, path, _make, _expected in MATRIX}
    assert routes - named == set(), "routes with no row in the authorization matrix"
    assert named - routes == set(), "rows naming no route"
    for method, path, _make, expected in MATRIX:
        assert set(expected) == set(CALLERS), f"{method} {path}: an outcome for every caller"


@pytest.fixture
def world(api, make_user, stack, busybox, no_leftover_containers):
    local = Principal.local()
    p, q = f"p-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    projects.create_project(local, p)
    projects.create_project(local, q)
    roles = {"viewer": ("viewer", p, "viewer"), "owner": ("operator", p, "operator"),
             "peer": ("operator", p, "operator"), "outsider": ("operator", q, "operator"),
             "maintainer": ("operator", p, "maintainer"), "admin": ("admin", None, None)}
    accounts = {}
    for caller, (role, project, project_role) in roles.items():
        account = make_user(role, prefix=caller)
        if project:
            projects.set_member(local, project, account.username, project_role)
        accounts[caller] = account
    users.add_user(local, MATRIX_USER, PASSWORD, "operator")
    sessions = {caller: account.login(api) for caller, account in accounts.items()}
    w = World(p, q, {c: a.username for c, a in accounts.items()}, sessions, "", busybox, api, [])
    w.done_job = w.job("mkdir -p /out && echo kept > /out/a.txt && echo hello", wait=True, output_dir="/out")
    yield w
    for pipeline_id in w.pipelines:  # a resumed one runs its step now: let it end
        pipeline = swarmsync.get_pipeline(pipeline_id)
        if not pipeline.is_finished():
            pipeline.cancel()
        pipeline.wait(120)
    for job_id in w.submitted:
        try:
            job = swarmsync.get_job(job_id)
        except swarmsync.JobNotFound:
            continue  # deleted by the matrix
        if not job.is_finished():
            job.cancel()
        job.wait(120)


def _call(w: World, method: str, make: Any, caller: str, expected: str) -> tuple[str, Any]:
    if make == "own_key":
        added = w.api.post("/me/keys", json={"public_key": random_public_line()},
                           headers=auth(w.sessions[caller])).json() if caller != "anonymous" else {"fingerprint": "x"}
        return f"/me/keys/{added['fingerprint']}", None
    if make == "user_key":
        added = w.api.post(f"/users/{MATRIX_USER}/keys", json={"public_key": random_public_line()},
                           headers=auth(w.sessions["admin"])).json()
        return f"/users/{MATRIX_USER}/keys/{added['fingerprint']}", None
    if make is own_token:
        return own_token(w, caller) if caller != "anonymous" else ("/tokens/1", None)
    if expected != "ok" and make in (running_job, finished_job):  # refused before the job's state matters
        return ("/jobs/" + w.done_job + ("/cancel" if make is running_job else "")), None
    return make(w)


def test_every_route_gives_each_caller_what_the_matrix_says(world):
    w = world
    for method, path, make, expected in MATRIX:
        for caller in CALLERS:
            want = expected[caller]
            headers = {}
            if caller != "anonymous":
                fresh = path in ("/auth/logout", "/me/password")  # these end the session they use
                token = w.api.post("/auth/login", json={"username": w.accounts[caller], "password": PASSWORD}
                                   ).json()["token"] if fresh else w.sessions[caller]
                headers = auth(token)
            call_path, body = _call(w, method, make, caller, want)
            response = w.api.request(method, call_path, json=body, headers=headers)
            where = f"{method} {call_path} as {caller}: {response.status_code} {response.text[:300]}"
            if method == "POST" and call_path in ("/jobs",) and response.status_code < 300:
                w.submitted.append(response.json()["id"])
            if method == "POST" and call_path == "/pipelines" and response.status_code < 300:
                w.pipelines.append(response.json()["id"])
            if call_path.endswith("/rerun") and response.status_code < 300:
                w.submitted.append(response.json()["id"])
            if want == "public":  # answered on its merits (a wrong password is a 401), never a role's refusal
                assert response.status_code not in (403, 500), where
            elif want == "401":
                assert response.status_code == 401, where
                assert "authentication required" in response.json()["detail"], where
            elif want == "worker-401":
                assert response.status_code == 401, where
                assert "worker token is required" in response.json()["detail"], where
            elif want == "ok":
                assert 200 <= response.status_code < 300, where
            elif want == "404":
                assert response.status_code == 404, where
            else:
                assert response.status_code == 403, where
                assert w.accounts[caller] in response.json()["detail"], where
                newest = audit.events(limit=1, actor=w.accounts[caller])[0]
                assert newest.outcome == "denied", where
