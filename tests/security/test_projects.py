"""Projects and ownership: the attacks of issue 23, each through the way an attacker takes it (the
API, and the Python client `swarmsync.Client` over HTTP), each refused.

Operator A (the victim) and operator B (the attacker) are both operators of project P, unless a test
says otherwise; X is an operator of another project only. Every object below is A's, in P."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

import swarmsync
from swarmsync.auth import projects
from swarmsync.auth.roles import Principal
from swarmsync.client import APIError, Client
from tests.accounts.conftest import auth
from tests.security.test_secrets import secret_exists

pytestmark = pytest.mark.stack

LATER = (datetime.now(UTC) + timedelta(days=2)).isoformat()  # jobs that never start during the test


class Team:
    """Project P with operators A and B and a viewer V; project Q with operator X."""

    def __init__(self, api, make_user):
        local = Principal.local()
        self.api = api
        self.p, self.q = f"p-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
        projects.create_project(local, self.p)
        projects.create_project(local, self.q)
        self.users = {}
        self.tokens = {}
        for who, role, project, project_role in (("a", "operator", self.p, "operator"),
                                                 ("b", "operator", self.p, "operator"),
                                                 ("v", "viewer", self.p, "viewer"),
                                                 ("x", "operator", self.q, "operator")):
            account = make_user(role, prefix=f"{who}-user")
            projects.set_member(local, project, account.username, project_role)
            self.users[who] = account.username
            self.tokens[who] = account.login(api)

    def client(self, who: str) -> Client:
        return Client("http://testserver", self.tokens[who], transport=self.api._transport)

    def call(self, who: str, method: str, path: str, body=None, **params):
        return self.api.request(method, path, json=body, params=params or None, headers=auth(self.tokens[who]))

    def ok(self, who: str, method: str, path: str, body=None, **params) -> dict:
        response = self.call(who, method, path, body, **params)
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture
def team(api, make_user, stack) -> Team:
    return Team(api, make_user)


def spec(busybox: str, command: str = "echo hi", **more) -> dict:
    return {"image": busybox, "command": command, "pull_policy": "never", **more}


def test_another_operator_cannot_cancel_a_job_and_an_outsider_cannot_see_it(team, busybox):
    job_id = team.ok("a", "POST", "/jobs", {"spec": spec(busybox), "project": team.p, "at": LATER})["id"]
    with pytest.raises(APIError) as refused:
        team.client("b").get_job(job_id).cancel()
    assert refused.value.status == 403 and "only its owner" in str(refused.value)
    with pytest.raises(swarmsync.JobNotFound):
        team.client("x").get_job(job_id)
    assert team.call("x", "POST", f"/jobs/{job_id}/cancel").status_code == 404
    assert swarmsync.get_job(job_id).status() == "Scheduled"  # untouched
    assert team.call("a", "POST", f"/jobs/{job_id}/cancel").status_code == 202  # its owner may


def test_another_operator_cannot_pause_resume_delete_or_run_a_schedule(team, busybox):
    name = f"s-{uuid.uuid4().hex[:6]}"
    made = team.ok("a", "POST", "/schedules", {"name": name, "every": "1h", "paused": True, "project": team.p,
                                               "spec": spec(busybox, "echo $TOKEN"),
                                               "secret_env": {"TOKEN": "a-secret"}})
    block = made["job"]["secrets"]["TOKEN"]
    for action in ("pause", "resume", "run"):
        assert team.call("b", "POST", f"/schedules/{name}/{action}", project=team.p).status_code == 403, action
    assert team.call("b", "DELETE", f"/schedules/{name}", project=team.p).status_code == 403
    with pytest.raises(APIError) as refused:
        team.client("b").change_schedule(name, "delete")  # the default project's: none of that name
    assert refused.value.status == 404
    assert team.call("x", "DELETE", f"/schedules/{name}", project=team.p).status_code == 404
    assert team.ok("a", "GET", f"/schedules/{name}", project=team.p)["owner"] == team.users["a"]
    assert secret_exists(block)  # A's Secret block is still there


def test_taking_another_operators_template_name_is_a_conflict_and_it_stays_as_it_was(team, busybox):
    name = f"t-{uuid.uuid4().hex[:6]}"
    team.ok("a", "POST", "/templates", {"name": name, "project": team.p, "spec": spec(busybox, "echo $TOKEN"),
                                        "secret_env": {"TOKEN": "a-secret"}})
    taken = team.call("b", "POST", "/templates", {"name": name, "project": team.p,
                                                  "spec": spec(busybox, "echo $TOKEN | rev")})
    assert taken.status_code == 409, taken.text
    saved = swarmsync.templates.load_template(name, team.p)
    assert saved.command == "echo $TOKEN" and saved.owner == team.users["a"]
    assert team.call("b", "DELETE", f"/templates/{name}", project=team.p).status_code == 403
    # the same name in another project is another template
    team.ok("x", "POST", "/templates", {"name": name, "project": team.q, "spec": spec(busybox, "echo x")})
    assert swarmsync.templates.load_template(name, team.p).command == "echo $TOKEN"


def test_secret_env_beside_another_operators_template_is_refused_before_anything_is_made(team, busybox):
    """B runs A's template unchanged but adds `http_proxy` (his listener): A's token would go there."""
    name = f"t-{uuid.uuid4().hex[:6]}"
    template = team.ok("a", "POST", "/templates", {"name": name, "project": team.p,
                                                   "spec": spec(busybox, "wget -q -O- http://example.test/?t=$TOKEN"),
                                                   "secret_env": {"TOKEN": "a-secret"}})
    job = {k: v for k, v in template.items() if k not in ("name", "project", "owner")}
    before = team.ok("b", "GET", "/jobs", user=team.users["b"])
    refused = team.call("b", "POST", "/jobs", {"spec": job, "template": name, "project": team.p,
                                               "secret_env": {"http_proxy": "http://127.0.0.1:9/"}})
    assert refused.status_code == 403, refused.text
    assert "TOKEN" in refused.json()["detail"]
    assert team.ok("b", "GET", "/jobs", user=team.users["b"]) == before  # nothing was created
    refused = team.call("b", "POST", "/schedules", {"name": f"s-{uuid.uuid4().hex[:6]}", "every": "1h",
                                                    "template": name, "project": team.p,
                                                    "secret_env": {"http_proxy": "http://127.0.0.1:9/"}})
    assert refused.status_code == 403, refused.text
    # unchanged, it runs for B (members may run shared templates)
    ran = team.call("b", "POST", "/jobs", {"spec": job, "template": name, "project": team.p, "at": LATER})
    assert ran.status_code == 201, ran.text


def test_adding_to_a_schedule_is_its_owners_and_is_admitted_on_the_final_job(team, busybox):
    name = f"s-{uuid.uuid4().hex[:6]}"
    team.ok("a", "POST", "/schedules", {"name": name, "every": "1h", "paused": True, "project": team.p,
                                        "spec": spec(busybox, "echo $TOKEN"), "secret_env": {"TOKEN": "a-secret"}})
    assert team.call("b", "POST", f"/schedules/{name}/add", {"every": "2h", "command": "echo $TOKEN | rev"},
                     project=team.p).status_code == 403
    maintainer = team.users["b"]
    projects.set_member(Principal.local(), team.p, maintainer, "maintainer")
    team.tokens["b"] = team.api.post("/auth/login", json={"username": maintainer,
                                                          "password": "correct horse battery staple"}).json()["token"]
    # a maintainer may change A's schedule, but not put a command of their own next to A's secret
    refused = team.call("b", "POST", f"/schedules/{name}/add", {"every": "2h", "command": "echo $TOKEN | rev"},
                        project=team.p)
    assert refused.status_code == 403 and "TOKEN" in refused.json()["detail"], refused.text
    assert len(team.ok("a", "GET", f"/schedules/{name}", project=team.p)["schedules"]) == 1


def test_a_schedule_from_a_template_has_an_owner_and_stops_running_when_the_owner_leaves(team, busybox):
    name = f"s-{uuid.uuid4().hex[:6]}"
    template = f"t-{uuid.uuid4().hex[:6]}"
    team.ok("a", "POST", "/templates", {"name": template, "project": team.p, "spec": spec(busybox, "echo ran")})
    made = team.ok("a", "POST", "/schedules", {"name": name, "every": "1h", "paused": True, "project": team.p,
                                               "template": template})
    assert made["owner"] == team.users["a"]
    projects.remove_member(Principal.local(), team.p, team.users["a"])
    job_id = swarmsync.schedules.run(name, project=team.p).id  # as the server host: the worker still checks
    job = swarmsync.get_job(job_id).wait(120)
    assert job.status() == "Failed"
    assert f"no longer a member of project {team.p}" in job.flow_run().state.message


def test_an_outsider_reads_nothing_of_a_project_and_lists_none_of_it(team, busybox):
    job_id = team.ok("a", "POST", "/jobs", {"spec": spec(busybox, "echo visible-only-in-p", env={"K": "v"}),
                                            "project": team.p})["id"]
    swarmsync.get_job(job_id).wait(120)
    for path in ("", "/logs", "/states", "/result", "/result.txt", "/files"):
        assert team.call("x", "GET", f"/jobs/{job_id}{path}").status_code == 404, path
    assert job_id not in {row["id"] for row in team.ok("x", "GET", "/jobs", limit=200)}
    assert team.ok("x", "GET", "/jobs", project=team.p) == []
    assert job_id not in {row.id for row in team.client("x").list_jobs(limit=200)}
    # the project's viewer reads it, env and output included
    assert team.ok("v", "GET", f"/jobs/{job_id}")["flow_run"]["parameters"]["job"]["env"] == {"K": "v"}
    assert team.call("v", "GET", f"/jobs/{job_id}/result.txt").text.strip() == "visible-only-in-p"
    assert job_id in {row["id"] for row in team.ok("v", "GET", "/jobs", project=team.p)}


def test_an_outsider_cannot_submit_into_a_project_nor_claim_one_with_tags(team, busybox):
    refused = team.call("x", "POST", "/jobs", {"spec": spec(busybox), "project": team.p, "at": LATER})
    assert refused.status_code == 404, refused.text
    sneaky = team.ok("x", "POST", "/jobs", {"spec": spec(busybox, tags=[f"swarmsync.project:{team.p}"]),
                                            "project": team.q, "at": LATER})
    assert sneaky["project"] == team.q and f"swarmsync.project:{team.p}" not in sneaky["tags"]
    assert team.call("a", "GET", f"/jobs/{sneaky['id']}").status_code == 404
    team.ok("x", "POST", f"/jobs/{sneaky['id']}/cancel")


@pytest.mark.parametrize("name", ["A=B", "BAD NAME", "", "1X"])
def test_secret_env_names_must_be_environment_names(team, busybox, name):
    refused = team.call("a", "POST", "/jobs", {"spec": spec(busybox), "project": team.p, "at": LATER,
                                               "secret_env": {name: "v"}})
    assert refused.status_code == 422, refused.text


def test_a_pool_granted_to_other_projects_refuses_this_one(team, busybox):
    from swarmsync.deployments import pools
    from swarmsync.settings import get_settings

    pool = get_settings().work_pool
    pools.update_policy(pool, allowed_projects=[team.q, "default"])
    try:
        refused = team.call("a", "POST", "/jobs", {"spec": spec(busybox), "project": team.p, "at": LATER})
        assert refused.status_code == 403 and "allowed_projects" in refused.json()["detail"], refused.text
        allowed = team.call("x", "POST", "/jobs", {"spec": spec(busybox), "project": team.q, "at": LATER})
        assert allowed.status_code == 201, allowed.text
        team.ok("x", "POST", f"/jobs/{allowed.json()['id']}/cancel")
    finally:
        pools.update_policy(pool, allowed_projects=[])
