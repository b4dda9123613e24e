"""What `swarmsync.Client` sends for projects (no server: httpx's MockTransport records each request),
and the dashboard's project rules it offers actions by."""

from __future__ import annotations

import json

import httpx

from swarmsync.client import ALL_PROJECTS, Client
from swarmsync.dashboard import data
from swarmsync.spec import JobSpec

FLOW_RUN = {"id": "00000000-0000-0000-0000-000000000001", "name": "r",
            "flow_id": "00000000-0000-0000-0000-000000000002"}


def recording(answer=None) -> tuple[list[httpx.Request], httpx.MockTransport]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=answer(request) if answer else {})

    return sent, httpx.MockTransport(handle)


def body(request: httpx.Request) -> dict:
    return json.loads(request.content or b"{}")


def test_a_clients_project_goes_with_every_call_that_names_none():
    row = {"id": FLOW_RUN["id"], "state": "Scheduled", "flow_run": FLOW_RUN}  # a job row as the API sends it
    sent, transport = recording(lambda r: row if r.url.path == "/jobs" and r.method == "POST" else [])
    client = Client("http://api.test", "t", project="data", transport=transport)
    client.submit("busybox", "true")
    client.submit("busybox", "true", project="other")
    client.list_jobs()
    client.list_jobs(project=ALL_PROJECTS)
    client.schedules()
    client.change_schedule("nightly", "pause")
    client.change_schedule("nightly", "delete", project="other")
    client.save_template("greeter", JobSpec(image="busybox"))
    client.delete_template("greeter")
    assert [body(r).get("project") for r in sent[:2]] == ["data", "other"]
    assert sent[2].url.params.get("project") == "data"
    assert "project" not in sent[3].url.params  # every project of the caller's
    assert sent[4].url.params.get("project") == "data"
    assert (sent[5].method, sent[5].url.path, sent[5].url.params.get("project")) == (
        "POST", "/schedules/nightly/pause", "data")
    assert (sent[6].method, sent[6].url.params.get("project")) == ("DELETE", "other")
    assert body(sent[7])["project"] == "data"
    assert (sent[8].url.path, sent[8].url.params.get("project")) == ("/templates/greeter", "data")


def test_without_a_project_the_server_decides_and_listings_show_all():
    sent, transport = recording(lambda r: [])
    client = Client("http://api.test", "t", transport=transport)
    client.list_jobs()
    client.schedules()
    assert all("project" not in r.url.params for r in sent)
    assert "Client('http://api.test', project=None)" == repr(client)  # never the token


def test_a_template_is_read_by_its_stored_name_in_its_project():
    saved = {"data--greeter": {"image": "busybox", "command": "echo hi", "env": {"A": "1"}, "name": "greeter",
                               "project": "data", "owner": "alice"},
             "greeter": {"image": "alpine", "name": "greeter", "project": "default", "owner": None}}
    sent, transport = recording(lambda r: saved)
    client = Client("http://api.test", "t", transport=transport)
    spec = client.job_spec(None, None, "greeter", project="data", env={"B": "2"})
    assert (spec.image, spec.command, spec.env) == ("busybox", "echo hi", {"A": "1", "B": "2"})
    assert sent[0].url.params.get("project") == "data"
    assert client.job_spec(None, None, "greeter").image == "alpine"  # the default project's, by bare name


def test_actions_are_offered_to_owners_maintainers_and_admins_and_forms_to_operators():
    mine = [{"name": "data", "role": "operator"}, {"name": "ops", "role": "maintainer"},
            {"name": "docs", "role": "viewer"}]
    assert data.submittable(mine) == ["data", "ops"]
    assert data.may_change(mine, "data", "alice", "alice")
    assert not data.may_change(mine, "data", "bob", "alice")  # an operator changes only its own
    assert not data.may_change(mine, "data", None, "alice")  # made on the server host
    assert data.may_change(mine, "ops", "bob", "alice")
    assert not data.may_change(mine, "docs", "alice", "alice")
    assert not data.may_change(mine, "elsewhere", "alice", "alice")
    assert data.may_change([{"name": "data", "role": "admin"}], "data", None, "root")
    client = Client("http://api.test")
    data.use_project(client, "data")
    assert client.project == "data"
    data.use_project(client, data.ALL)
    assert client.project is None
