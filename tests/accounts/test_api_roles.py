"""The role matrix: every endpoint of the API, called by nobody, a viewer, an operator and
an admin. Allowed calls go through; the others get 401/403 with a clear message, audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

import swarmsync
from swarmsync.api import create_app
from swarmsync.auth import audit
from swarmsync.settings import get_settings
from tests.accounts.conftest import PASSWORD, auth
from tests.accounts.sshkeys import random_public_line
from tests.waiting import wait_until

ALL = {"admin", "operator", "viewer"}
WRITERS = {"admin", "operator"}
ADMIN = {"admin"}


def matrix(job_id: str, running: object, busybox: str) -> list[tuple[str, str, object, set[str] | None]]:
    """(method, path, JSON body or a callable(api, token) -> (path, body), roles allowed; None: public)."""

    def own_token(api, token):
        if not token:
            return "/tokens/1", None
        created = api.post("/tokens", json={"name": "to-revoke"}, headers=auth(token)).json()
        return f"/tokens/{created['id']}", None

    def some_user(api, token):
        return f"/users/{MATRIX_USER}", {"role": "viewer"}

    def a_schedule(suffix: str = ""):
        def make(api, token):
            name = f"m-{uuid.uuid4().hex[:8]}"
            swarmsync.schedules.create(name, busybox, "echo matrix", every="1h", paused=True, pull_policy="never")
            tomorrow = {"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}  # never starts in the test
            bodies = {"/run": tomorrow, "/add": {"every": "2h", "env": {"MODE": "extra"}}}
            return f"/schedules/{name}{suffix}", bodies.get(suffix)
        return make

    def new_key(owner: str | None = None):
        def make(api, token):
            return (f"/users/{owner}/keys" if owner else "/me/keys"), {"public_key": random_public_line()}
        return make

    def a_key(owner: str | None = None):
        def make(api, token):
            where = f"/users/{owner}/keys" if owner else "/me/keys"
            added = api.post(where, json={"public_key": random_public_line()}, headers=auth(token)).json()
            return f"{where}/{added['fingerprint']}", None
        return make

    def new_schedule(api, token):
        return "/schedules", {"name": f"m-{uuid.uuid4().hex[:8]}", "every": "1h", "paused": True,
                              "spec": {"image": busybox, "command": "echo matrix", "pull_policy": "never"}}

    def a_template(api, token):
        name = f"m-{uuid.uuid4().hex[:8]}"
        swarmsync.templates.save_template(name, busybox, "echo matrix")
        return f"/templates/{name}", None

    return [
        ("POST", "/auth/login", {"username": "nobody-x", "password": "whatever1"}, None),
        ("POST", "/auth/link", {"token": "ssl_not-a-link"}, None),
        ("GET", "/health", None, None),
        ("POST", "/auth/challenge", {"user": "nobody-x"}, None),
        ("POST", "/auth/verify", {"user": "nobody-x", "nonce": "ssn_x", "signature": "x"}, None),
        ("GET", "/me/keys", None, ALL),
        ("POST", "/me/keys", new_key(), ALL),
        ("DELETE", "/me/keys/{fingerprint}", a_key(), ALL),
        ("GET", f"/users/{MATRIX_USER}/keys", None, ADMIN),
        ("POST", "/users/{username}/keys", new_key(MATRIX_USER), ADMIN),
        ("DELETE", "/users/{username}/keys/{fingerprint}", a_key(MATRIX_USER), ADMIN),
        ("POST", "/auth/logout", None, ALL),
        ("GET", "/me", None, ALL),
        ("GET", "/jobs", None, ALL),
        ("POST", "/jobs", {"spec": {"image": busybox, "command": "echo matrix", "pull_policy": "never"}}, WRITERS),
        ("GET", f"/jobs/{job_id}", None, ALL),
        ("GET", f"/jobs/{job_id}/logs", None, ALL),
        ("GET", f"/jobs/{job_id}/states", None, ALL),
        ("POST", "/jobs/{job_id}/cancel", running, WRITERS),
        ("GET", f"/jobs/{job_id}/result", None, ALL),
        ("GET", f"/jobs/{job_id}/result.txt", None, ALL),
        ("GET", f"/jobs/{job_id}/files", None, ALL),
        ("GET", "/health/checks", None, ALL),
        ("GET", "/workers", None, ALL),
        ("GET", "/pools", None, ALL),
        ("PATCH", f"/pools/{get_settings().work_pool}", {}, ADMIN),  # an empty change: nothing is written
        ("GET", "/audit", None, ADMIN),
        ("GET", "/users", None, ADMIN),
        ("POST", "/users", lambda api, t: ("/users", {"username": f"u-{uuid.uuid4().hex[:8]}",
                                                      "password": "a password!", "role": "viewer"}), ADMIN),
        ("PATCH", "/users/{username}", some_user, ADMIN),
        ("GET", "/tokens", None, ALL),
        ("POST", "/tokens", {"name": "matrix"}, ALL),
        ("DELETE", "/tokens/{token_id}", own_token, ALL),
        ("GET", "/schedules", None, ALL),
        ("POST", "/schedules", new_schedule, WRITERS),
        ("GET", "/schedules/{name}", a_schedule(), ALL),
        ("POST", "/schedules/{name}/pause", a_schedule("/pause"), WRITERS),
        ("POST", "/schedules/{name}/resume", a_schedule("/resume"), WRITERS),
        ("POST", "/schedules/{name}/run", a_schedule("/run"), WRITERS),
        ("POST", "/schedules/{name}/add", a_schedule("/add"), WRITERS),
        ("DELETE", "/schedules/{name}", a_schedule(), WRITERS),
        ("GET", "/templates", None, ALL),
        ("POST", "/templates", lambda api, t: ("/templates", {"name": f"m-{uuid.uuid4().hex[:8]}",
                                                              "spec": {"image": busybox, "command": "true"}}), WRITERS),
        ("DELETE", "/templates/{name}", a_template, WRITERS),
        ("POST", "/me/password", {"current_password": PASSWORD, "new_password": PASSWORD}, ALL),  # last
    ]


MATRIX_USER = f"matrix-target-{uuid.uuid4().hex[:6]}"


def _template(path: str) -> str:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "jobs":
        parts[2] = "{job_id}"
    if len(parts) >= 3 and parts[1] == "users":
        parts[2] = "{username}"
    if "keys" in parts and parts.index("keys") + 1 < len(parts):  # /me/keys/FP, /users/NAME/keys/FP (FP has '/')
        parts[parts.index("keys") + 1:] = ["{fingerprint}"]
    if len(parts) == 3 and parts[1] == "tokens":
        parts[2] = "{token_id}"
    if len(parts) > 2 and parts[1] in ("schedules", "templates", "pools"):
        parts[2] = "{name}"
    return "/".join(parts)


def test_the_matrix_covers_every_endpoint():
    paths = create_app().openapi()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    covered = {(m, _template(p)) for m, p, _b, _r in matrix("x", None, "busybox")}
    assert routes == covered


@pytest.fixture
def jobs_for_matrix(stack, busybox, no_leftover_containers):
    """A finished job with files, and a fresh running job for every cancel the matrix tries."""
    done = swarmsync.submit(busybox, "mkdir -p /out && echo kept > /out/a.txt && echo hello",
                            output_dir="/out", pull_policy="never").wait(120)
    submitted: list[str] = []

    def running(api, token):
        job = swarmsync.submit(busybox, "echo started; sleep 60", pull_policy="never")
        submitted.append(job.id)
        wait_until(lambda: job.status() not in ("Scheduled", "Pending"), "the job left Scheduled/Pending",
                   timeout=120)
        return f"/jobs/{job.id}/cancel", None

    yield done.id, running, submitted
    for job_id in submitted:
        job = swarmsync.get_job(job_id)
        if not job.is_finished():
            job.cancel()
        job.wait(120)


def test_every_endpoint_refuses_the_roles_it_does_not_allow(api, make_user, jobs_for_matrix, busybox):
    from swarmsync.auth import users
    from swarmsync.auth.roles import Principal

    done_id, running, submitted = jobs_for_matrix
    users.add_user(Principal.local(), MATRIX_USER, PASSWORD, "operator")
    accounts = {role: make_user(role) for role in ("viewer", "operator", "admin")}
    sessions = {role: user.login(api) for role, user in accounts.items()}
    for method, path, body, allowed in matrix(done_id, running, busybox):
        for role in ("anonymous", "viewer", "operator", "admin"):
            headers = {}
            if role != "anonymous":
                user = accounts[role]
                fresh = path in ("/auth/logout", "/me/password")  # these end the session they use
                headers = auth(user.login(api) if fresh else sessions[role])
            token = headers.get("Authorization", "").removeprefix("Bearer ")
            if callable(body) and not (role == "anonymous" or (allowed and role not in allowed)):
                call_path, call_body = body(api, token)
            elif callable(body):
                call_path, call_body = path.replace("{job_id}", done_id).replace("{token_id}", "1"), None
            else:
                call_path, call_body = path, body
            response = api.request(method, call_path, json=call_body, headers=headers)
            where = f"{method} {call_path} as {role}: {response.status_code} {response.text[:200]}"
            if allowed is None:
                assert response.status_code not in (403, 500), where
            elif role == "anonymous":
                assert response.status_code == 401, where
                assert "authentication required" in response.json()["detail"], where
            elif role in allowed:
                assert 200 <= response.status_code < 300, where  # allowed means done, not any other refusal
                if method == "POST" and call_path == "/jobs":
                    submitted.append(response.json()["id"])
            else:
                assert response.status_code == 403, where
                assert f"({role}) may not" in response.json()["detail"], where
                denied = audit.events(limit=1, actor=user.username)[0]
                assert (denied.outcome, denied.action) == ("denied", f"{method} {call_path}"[:64]), where
