"""Secrets: a job may use only Secret blocks its caller owns (or those of a template or
schedule it runs unchanged); block names of other users are never shown; a job's,
template's or schedule's blocks go when it goes; two templates never share a block.

Every attack here is the one of issue 13: operator A stores a secret, operator B learns
(or guesses) its block name and tries to read it with a command of B's own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from swarmsync.client import APIError, Client
from tests.accounts.conftest import auth

pytestmark = pytest.mark.stack

LATER = (datetime.now(UTC) + timedelta(days=2)).isoformat()  # jobs that never start during the test


@pytest.fixture
def client_for(api):
    def make(token: str) -> Client:
        return Client("http://testserver", token, transport=api._transport)

    return make


@pytest.fixture
def two_operators(api, make_user) -> tuple[str, str]:
    """Session tokens of operator A (the victim) and operator B (the attacker)."""
    return make_user("operator", "alice").login(api), make_user("operator", "bob").login(api)


def secret_value(block_name: str) -> str | None:
    """The block's value from the stack's Prefect; None when there is no such block."""
    from prefect.blocks.system import Secret

    from swarmsync.connection import prefect_api

    with prefect_api():
        try:
            return Secret.load(block_name).get()
        except ValueError:
            return None


def secret_exists(block_name: str) -> bool:
    return secret_value(block_name) is not None


def jobs_of(api, token: str, username: str) -> list[dict]:
    response = api.get("/jobs", params={"user": username, "limit": 50}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def me(api, token: str) -> str:
    return api.get("/me", headers=auth(token)).json()["username"]


def a_job_with_a_secret(api, token: str, busybox: str) -> tuple[str, str]:
    """A's delayed job with `secret_env`: (job id, its Secret block name as A sees it)."""
    body = {"spec": {"image": busybox, "command": "true", "pull_policy": "never"},
            "secret_env": {"TOKEN": "alice-s3cret"}, "at": LATER}
    response = api.post("/jobs", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    job = response.json()
    return job["id"], job["flow_run"]["parameters"]["job"]["secrets"]["TOKEN"]


def a_paused_schedule_with_a_secret(api, token: str, busybox: str, secret: str, command: str = "true") -> dict:
    """A new paused nightly schedule of `token`'s user whose job has TOKEN=`secret`; its JSON."""
    created = api.post("/schedules", json={
        "name": f"sec-{uuid.uuid4().hex[:8]}", "spec": {"image": busybox, "command": command, "pull_policy": "never"},
        "cron": "0 3 * * *", "paused": True, "secret_env": {"TOKEN": secret}}, headers=auth(token))
    assert created.status_code == 201, created.text
    return created.json()


def cancel(api, token: str, job_id: str) -> None:
    api.post(f"/jobs/{job_id}/cancel", headers=auth(token))


def test_another_users_secret_by_block_name_is_refused_through_the_api(api, two_operators, busybox):
    alice, bob = two_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    try:
        attack = {"spec": {"image": busybox, "command": "echo $X | base64", "pull_policy": "never",
                           "secrets": {"X": block}}, "at": LATER}
        response = api.post("/jobs", json=attack, headers=auth(bob))
        assert response.status_code == 403, response.text
        assert "X" in response.json()["detail"] and "secret" in response.json()["detail"]
        assert jobs_of(api, bob, me(api, bob)) == []  # refused before anything was created
        # A may reuse her own block
        own = api.post("/jobs", json={**attack, "spec": {**attack["spec"], "command": "true"}}, headers=auth(alice))
        assert own.status_code == 201, own.text
        cancel(api, alice, own.json()["id"])
        # a block SwarmSync never made (or a made-up name) is for admins only
        made_up = {**attack, "spec": {**attack["spec"], "secrets": {"X": "swarmsync-secret-0000000000000000"}}}
        assert api.post("/jobs", json=made_up, headers=auth(bob)).status_code == 403
    finally:
        cancel(api, alice, job_id)


def test_another_users_secret_is_refused_through_the_python_client(api, two_operators, client_for, busybox):
    alice, bob = two_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    try:
        with pytest.raises(APIError) as refused:
            client_for(bob).submit(busybox, "echo $X | base64", secrets={"X": block}, pull_policy="never", at=LATER)
        assert refused.value.status == 403
        assert jobs_of(api, bob, me(api, bob)) == []
    finally:
        cancel(api, alice, job_id)


def test_block_names_are_hidden_from_another_operator(api, two_operators, busybox):
    alice, bob = two_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    try:
        seen = api.get(f"/jobs/{job_id}", headers=auth(bob)).json()
        assert seen["flow_run"]["parameters"]["job"]["secrets"] == {"TOKEN": "(hidden)"}
        upcoming = api.get("/jobs", params={"limit": 200, "state": "scheduled"}, headers=auth(bob)).json()
        listed = [j for j in upcoming if j["id"] == job_id]  # (a delayed job: among the scheduled ones)
        assert listed and listed[0]["flow_run"]["parameters"]["job"]["secrets"] == {"TOKEN": "(hidden)"}
        assert block not in api.get(f"/jobs/{job_id}", headers=auth(bob)).text
        # the owner still sees her block's name
        assert api.get(f"/jobs/{job_id}", headers=auth(alice)).json()["flow_run"]["parameters"]["job"][
            "secrets"] == {"TOKEN": block}
    finally:
        cancel(api, alice, job_id)


def test_a_templates_secret_serves_only_the_templates_own_command(api, two_operators, client_for, busybox):
    alice, bob = two_operators
    name = f"sec-{uuid.uuid4().hex[:8]}"
    job_id, job_block = a_job_with_a_secret(api, alice, busybox)  # A's template also uses one of her job secrets
    saved = api.post("/templates", json={"name": name, "spec": {"image": busybox, "command": "true",
                                                                "pull_policy": "never",
                                                                "secrets": {"JOB_TOKEN": job_block}},
                                         "secret_env": {"TOKEN": "alice-template-s3cret"}}, headers=auth(alice))
    assert saved.status_code == 201, saved.text
    try:
        listed = api.get("/templates", headers=auth(bob)).json()[name]
        assert listed["secrets"] == {"TOKEN": "(hidden)", "JOB_TOKEN": "(hidden)"}
        bobs = client_for(bob)
        with pytest.raises(APIError) as refused:
            bobs.submit(None, "echo $TOKEN | base64", template=name, at=LATER)
        assert refused.value.status == 403
        assert jobs_of(api, bob, me(api, bob)) == []
        # running the template as it is stays allowed to anyone who may submit
        job = bobs.submit(None, template=name, at=LATER)
        job.cancel()
        # a template of B's own pointing at A's block is refused too
        block = api.get("/templates", headers=auth(alice)).json()[name]["secrets"]["TOKEN"]
        copy = api.post("/templates", json={"name": f"{name}-copy", "spec": {
            "image": busybox, "command": "echo $TOKEN", "secrets": {"TOKEN": block}}}, headers=auth(bob))
        assert copy.status_code == 403, copy.text
        assert f"{name}-copy" not in api.get("/templates", headers=auth(bob)).json()
    finally:
        api.delete(f"/templates/{name}", headers=auth(alice))
        cancel(api, alice, job_id)


def test_adding_a_schedule_with_another_command_to_a_schedule_with_secrets_is_refused(api, two_operators, busybox):
    alice, bob = two_operators
    name = a_paused_schedule_with_a_secret(api, alice, busybox, "alice-schedule-s3cret")["name"]
    try:
        assert api.get(f"/schedules/{name}", headers=auth(bob)).json()["job"]["secrets"] == {"TOKEN": "(hidden)"}
        attack = api.post(f"/schedules/{name}/add", json={"cron": "0 4 * * *", "command": "echo $TOKEN | base64"},
                          headers=auth(bob))
        assert attack.status_code == 403, attack.text
        assert len(api.get(f"/schedules/{name}", headers=auth(alice)).json()["schedules"]) == 1
        env = api.post(f"/schedules/{name}/add", json={"cron": "0 4 * * *", "env": {"BASH_ENV": "/x"}},
                       headers=auth(bob))
        assert env.status_code == 403, env.text
        # the owner may
        own = api.post(f"/schedules/{name}/add", json={"cron": "0 4 * * *", "command": "echo other"},
                       headers=auth(alice))
        assert own.status_code == 201, own.text
    finally:
        api.delete(f"/schedules/{name}", headers=auth(alice))


def test_a_schedule_naming_another_users_block_is_refused_and_not_created(api, two_operators, busybox):
    alice, bob = two_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    name = f"sec-{uuid.uuid4().hex[:8]}"
    try:
        attack = api.post("/schedules", json={
            "name": name, "spec": {"image": busybox, "command": "echo $X | base64", "pull_policy": "never",
                                   "secrets": {"X": block}}, "cron": "* * * * *"}, headers=auth(bob))
        assert attack.status_code == 403, attack.text
        assert api.get(f"/schedules/{name}", headers=auth(bob)).status_code == 404  # nothing was created
    finally:
        api.delete(f"/schedules/{name}", headers=auth(bob))
        cancel(api, alice, job_id)


def test_deleting_a_schedule_deletes_its_secret_blocks(api, two_operators, busybox):
    alice, _bob = two_operators
    created = a_paused_schedule_with_a_secret(api, alice, busybox, "s")
    name, block = created["name"], created["job"]["secrets"]["TOKEN"]
    assert secret_exists(block)
    assert api.delete(f"/schedules/{name}", headers=auth(alice)).status_code == 200
    assert not secret_exists(block)


def test_templates_never_share_a_block_and_deleting_one_keeps_the_others(api, two_operators, busybox):
    alice, _bob = two_operators
    first, second = f"c{uuid.uuid4().hex[:6]}", None
    second = f"{first}-b"
    spec = {"image": busybox, "command": "true"}
    one = api.post("/templates", json={"name": first, "spec": spec, "secret_env": {"B_C": "one"}},
                   headers=auth(alice))
    two = api.post("/templates", json={"name": second, "spec": spec, "secret_env": {"C": "two"}},
                   headers=auth(alice))
    try:
        assert one.status_code == 201 and two.status_code == 201, (one.text, two.text)
        listed = api.get("/templates", headers=auth(alice)).json()
        block_one, block_two = listed[first]["secrets"]["B_C"], listed[second]["secrets"]["C"]
        assert block_one != block_two
        assert secret_value(block_one) == "one" and secret_value(block_two) == "two"
        assert api.delete(f"/templates/{second}", headers=auth(alice)).status_code == 200
        assert not secret_exists(block_two)
        assert secret_value(block_one) == "one"
        assert api.delete(f"/templates/{first}", headers=auth(alice)).status_code == 200
        assert not secret_exists(block_one)
    finally:
        for name in (first, second):
            api.delete(f"/templates/{name}", headers=auth(alice))


def test_retention_deletes_the_secret_blocks_of_a_job_it_removes(api, two_operators, busybox, no_leftover_containers):
    from sqlalchemy import update

    from swarmsync import retention
    from swarmsync.db import ArchiveRecord, session_scope
    from swarmsync.jobs import get_job

    alice, _bob = two_operators
    body = {"spec": {"image": busybox, "command": "true", "pull_policy": "never"}, "secret_env": {"TOKEN": "s"}}
    response = api.post("/jobs", json=body, headers=auth(alice))
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    block = response.json()["flow_run"]["parameters"]["job"]["secrets"]["TOKEN"]
    get_job(job_id).wait(120)
    assert secret_exists(block)
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    with session_scope() as session:  # only this job is old enough to go
        session.execute(update(ArchiveRecord).where(ArchiveRecord.job_id == job_id).values(finished_at=long_ago))
    removed = retention.expired_archives(long_ago + timedelta(days=1))
    assert any(r.kind == "secret" and r.name == block for r in removed)
    assert not secret_exists(block)
