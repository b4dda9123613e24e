"""The API records who submitted each job (and nobody can claim to be someone else), and admins
change a pool's policy through PATCH /pools/{name}; in-process API on the real stack."""

from __future__ import annotations

import uuid

import pytest

import swarmsync
from swarmsync.auth import audit
from swarmsync.deployments import pools
from tests.accounts.conftest import auth, later

FORGED = ["keep-me", "swarmsync.user:someone-else", " SWARMSYNC.USER:admin"]




def test_a_job_records_its_submitter_from_the_login_and_forged_user_tags_are_dropped(api, operator, busybox):
    account, headers = operator
    spec = {"image": busybox, "command": "true", "pull_policy": "never", "tags": FORGED}
    created = api.post("/jobs", json={"spec": spec, "at": later()}, headers=headers)
    assert created.status_code == 201, created.text
    job = created.json()
    try:
        assert job["user"] == account.username
        run = job["flow_run"]
        assert [t for t in run["tags"] if "user" in t.lower()] == [f"swarmsync.user:{account.username}"]
        assert "keep-me" in run["tags"]
        assert run["labels"]["swarmsync.user"] == account.username
        assert run["parameters"]["job"]["tags"] == ["keep-me"]  # the spec itself carries no claim
        assert api.get(f"/jobs/{job['id']}", headers=headers).json()["user"] == account.username

        mine = api.get("/jobs", params={"user": account.username}, headers=headers).json()
        assert [j["id"] for j in mine] == [job["id"]] and {j["user"] for j in mine} == {account.username}
        claimed = api.get("/jobs", params={"user": "someone-else", "limit": 200}, headers=headers).json()
        assert job["id"] not in [j["id"] for j in claimed]
    finally:
        api.post(f"/jobs/{job['id']}/cancel", headers=headers)


def test_a_schedule_and_a_template_cannot_claim_a_user_either(api, operator, busybox):
    account, headers = operator
    name = f"owner-{uuid.uuid4().hex[:8]}"
    spec = {"image": busybox, "command": "true", "pull_policy": "never", "tags": FORGED}
    created = api.post("/schedules", json={"name": name, "every": "1h", "paused": True, "spec": spec},
                       headers=headers)
    assert created.status_code == 201, created.text
    try:
        assert created.json()["job"]["tags"] == ["keep-me"]  # the spec itself carries no claim
        assert created.json()["owner"] == account.username  # its creator, recorded by the API
    finally:
        swarmsync.deployments.schedules.delete(name)
    saved = api.post("/templates", json={"name": name, "spec": spec}, headers=headers)
    assert saved.status_code == 201, saved.text
    try:
        assert swarmsync.templates.load_template(name).tags == ["keep-me"]
    finally:
        swarmsync.templates.delete_template(name)


@pytest.fixture
def new_pool(stack):
    from swarmsync.deployments.pools import create_pool

    name = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(name, max_cpu=2)
    return name


def test_an_admin_changes_some_of_a_pools_policy_and_the_rest_stays(api, role_tokens, new_pool):
    headers = auth(role_tokens["admin"])
    assert pools.pool_policy(new_pool)["cap_drop"] == ["NET_RAW", "MKNOD", "AUDIT_WRITE"]  # built in
    changed = api.patch(f"/pools/{new_pool}", json={"max_memory": "2g", "allow_gpu": True, "cap_drop": ["ALL"]},
                        headers=headers)
    assert changed.status_code == 200, changed.text
    policy = changed.json()
    assert policy["max_memory"] == "2g" and policy["allow_gpu"] is True and policy["cap_drop"] == ["ALL"]
    assert policy["max_cpu"] == 2  # untouched
    assert pools.pool_policy(new_pool) == policy
    cleared = api.patch(f"/pools/{new_pool}", json={"max_cpu": None}, headers=headers).json()
    assert cleared["max_cpu"] is None and cleared["max_memory"] == "2g"
    entry = audit.events(action="pool.update")[0]
    assert entry.target == new_pool and entry.detail == {"changes": {"max_cpu": None}}


def test_invalid_policy_values_get_422_naming_each_setting(api, role_tokens, new_pool):
    headers = auth(role_tokens["admin"])
    bad = api.patch(f"/pools/{new_pool}", json={"max_memory": "lots", "default_pids_limit": 0,
                                                "pull_policy": "sometimes"}, headers=headers)
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert "max_memory: memory 'lots' is not understood" in detail
    assert "default_pids_limit: Input should be greater than 0" in detail
    assert "pull_policy: 'sometimes' is not one of always, if-not-present, never" in detail
    block = api.patch(f"/pools/{new_pool}", json={"docker_host": "no-such-host"}, headers=headers)
    assert block.status_code == 422 and "no docker-host block named 'no-such-host'" in block.json()["detail"]
    unknown = api.patch(f"/pools/{new_pool}", json={"max_bananas": 3}, headers=headers)
    assert unknown.status_code == 422
    assert api.patch("/pools/no-such-pool", json={"max_cpu": 1}, headers=headers).status_code == 404
    assert pools.pool_policy(new_pool)["max_memory"] is None  # nothing was changed


def test_only_admins_change_pool_policy(api, role_tokens, new_pool):
    for role in ("operator", "viewer"):
        refused = api.patch(f"/pools/{new_pool}", json={"allow_privileged": True},
                            headers=auth(role_tokens[role]))
        assert refused.status_code == 403 and "pools:manage" in refused.json()["detail"]
    assert api.patch(f"/pools/{new_pool}", json={"allow_privileged": True}).status_code == 401
    assert pools.pool_policy(new_pool)["allow_privileged"] is False
