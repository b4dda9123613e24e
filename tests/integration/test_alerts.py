"""Job events and alerts on the session stack (real Prefect server with its event persister and
automation services, real worker and containers): one failing job is seen as Prefect events with its
related resources, fires its project's alert to a webhook listening in this test, and shows an alert
whose webhook cannot be reached as failed. docs/alerts-and-monitoring.md."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

import swarmsync
from swarmsync.auth import projects
from swarmsync.auth.roles import Principal
from swarmsync.connection import uses_prefect_api
from swarmsync.settings import get_settings
from tests.accounts import conftest as accounts_fixtures
from tests.accounts.conftest import auth
from tests.integration.test_cli import cli
from tests.waiting import wait_until

redis_client = accounts_fixtures.redis_client
accounts = accounts_fixtures.accounts
make_user = accounts_fixtures.make_user
api = accounts_fixtures.api
quick_password_hashing = accounts_fixtures.quick_password_hashing  # autouse: cheap argon2 in-process


class Receiver:
    """A webhook: an HTTP server on 127.0.0.1 (a free port) keeping every body posted to it."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_webhooks(monkeypatch):
    """Non-admins may alert to this host's receivers (SWARMSYNC_ALERT_PRIVATE_URLS; off by default)."""
    monkeypatch.setattr(get_settings(), "alert_private_urls", True)


@pytest.fixture
def receiver():
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def project_member(api, make_user):
    """A fresh project, an operator of it (logged in) and a viewer of it."""
    project = f"al-{uuid.uuid4().hex[:8]}"
    projects.create_project(Principal.local(), project)
    operator, viewer = make_user("operator"), make_user("viewer")
    projects.set_member(Principal.local(), project, operator.username, "operator")
    projects.set_member(Principal.local(), project, viewer.username, "viewer")
    return project, operator, auth(operator.login(api)), auth(viewer.login(api))


@uses_prefect_api
def job_events(job_id: str) -> dict[str, Any]:
    """The swarmsync.job.* events of a job's flow run, read back through Prefect's events API, by name."""
    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter(event=EventNameFilter(prefix=["swarmsync.job."]),
                                              resource=EventResourceFilter(id=[f"prefect.flow-run.{job_id}"])),
                                  limit=50)
    return {event.event: event for event in page.events}


def test_a_failed_job_emits_its_events_and_fires_its_projects_alert(
        api, project_member, receiver, private_webhooks, stack, busybox, no_leftover_containers):
    project, operator, headers, _ = project_member
    hook = {"name": "fails", "on": "failed", "webhook": receiver.url, "project": project}
    made = api.post("/alerts", json=hook, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == operator.username
    dead = {"name": "dead", "on": "any-final", "project": project,
            "webhook": f"http://127.0.0.1:{closed_port()}/hook?token=s3cret"}
    assert api.post("/alerts", json=dead, headers=headers).status_code == 201
    assert api.post("/alerts", json=hook, headers=headers).status_code == 409  # one name per project

    submitted = api.post("/jobs", headers=headers, json={
        "spec": {"image": busybox, "command": "echo about to fail; exit 3", "pull_policy": "never"},
        "project": project})
    assert submitted.status_code < 300, submitted.text
    job_id = submitted.json()["id"]
    assert swarmsync.get_job(job_id).wait(120).status() == "Failed"

    body = wait_until(lambda: next((b for b in receiver.bodies if job_id in b.get("text", "")), None),
                      "the alert's webhook called with the job's id", timeout=30)
    assert body["alert"] == "fails" and body["project"] == project
    assert "reason: exit-code" in body["text"] and "exit code: 3" in body["text"], body

    events = wait_until(lambda: (found := job_events(job_id)) and {
        "swarmsync.job.submitted", "swarmsync.job.started", "swarmsync.job.exited", "swarmsync.job.archived",
    } <= set(found) and found, "the job's four lifecycle events in Prefect's events API", timeout=30)
    exited = events["swarmsync.job.exited"]
    assert exited.resource["swarmsync.job.id"] == job_id
    assert exited.resource["swarmsync.job.outcome"] == "failed"
    assert exited.payload["exit_code"] == 3 and exited.payload["reason"] == "exit-code"
    roles = {related.role: related.id for related in exited.related if related.role}
    assert roles["user"] == f"swarmsync.user.{operator.username}"
    assert roles["project"] == f"swarmsync.project.{project}"
    assert roles["pool"].startswith("swarmsync.pool.") and roles["host"].startswith("swarmsync.host.")
    assert roles["image"] == f"swarmsync.image.{busybox}"
    submitted_roles = {r.role for r in events["swarmsync.job.submitted"].related}
    assert {"user", "project", "pool", "image"} <= submitted_roles

    def deliveries() -> dict[str, Any]:
        listed = api.get("/alerts", params={"project": project}, headers=headers)
        assert listed.status_code == 200, listed.text
        return {a["name"]: a for a in listed.json() if a.get("last_delivery")}

    shown = wait_until(lambda: (d := deliveries()).keys() >= {"fails", "dead"} and d,
                       "both alerts' last delivery in GET /alerts", timeout=30)
    assert shown["fails"]["last_delivery"]["status"] == "ok"
    assert shown["dead"]["last_delivery"]["status"] == "failed"
    assert "Connect" in shown["dead"]["last_delivery"]["reason"], shown["dead"]
    assert "s3cret" not in json.dumps(shown) and shown["fails"]["webhook"] == receiver.url
    listed = cli("alert", "list", "-P", project, env={"COLUMNS": "300"})  # the CLI on the server host
    assert listed.returncode == 0, listed.stderr
    assert "failed" in listed.stdout and "ConnectError" in listed.stdout and "s3cret" not in listed.stdout

    assert api.delete("/alerts/dead", params={"project": project}, headers=headers).status_code == 200
    assert api.delete("/alerts/fails", params={"project": project}, headers=headers).status_code == 200
    assert api.get("/alerts", params={"project": project}, headers=headers).json() == []


def test_a_user_cannot_set_an_alert_on_a_project_they_are_not_in_nor_to_the_servers_network(
        api, project_member, make_user):
    project, _, headers, viewer = project_member
    outsider = make_user("operator")
    other = f"al-{uuid.uuid4().hex[:8]}"
    projects.create_project(Principal.local(), other)
    projects.set_member(Principal.local(), other, outsider.username, "operator")
    outside = auth(outsider.login(api))
    hook = {"name": "peek", "on": "any-final", "webhook": "https://hooks.example.com/peek", "project": project}
    assert api.post("/alerts", json=hook, headers=outside).status_code == 404
    assert api.post("/alerts", json=hook, headers=viewer).status_code == 403
    probe = api.post("/alerts", json={**hook, "webhook": "http://169.254.169.254/latest"}, headers=headers)
    assert probe.status_code == 400 and "private address" in probe.json()["detail"]  # the server's own network
    assert api.post("/alerts", json=hook, headers=headers).status_code == 201
    assert api.get("/alerts", params={"project": project}, headers=outside).json() == []
    assert api.delete("/alerts/peek", params={"project": project}, headers=outside).status_code == 404
    assert api.delete("/alerts/peek", params={"project": project}, headers=viewer).status_code == 403
    assert api.delete("/alerts/peek", params={"project": project}, headers=headers).status_code == 200
