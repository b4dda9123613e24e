"""The attacks of tests/security through the CLI, as a user on another machine runs it
(`swarmsync` with SWARMSYNC_URL and SWARMSYNC_TOKEN, against the stack's own API process):
another user's secret by block name, through a template and through `schedule add`; a
`container:` network; a pool the user is not listed on; a scoped token minting a wider one.
Each refusal reaches the user as an `error:` line naming what was refused, exit code 4
(the API refused), and nothing is created."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

import swarmsync
from swarmsync.deployments.pools import create_pool
from tests.accounts.conftest import auth
from tests.security.test_secrets import LATER, a_job_with_a_secret, cancel, jobs_of, me

pytestmark = pytest.mark.stack
REFUSED = 4  # swarmsync/cli/console.py: the API refused


@pytest.fixture
def as_cli(stack, tmp_path):
    """`swarmsync ARGS` in a process of its own with TOKEN, like a remote user's shell."""
    url = f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}"

    def run(token: str, *args: str) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SWARMSYNC_URL": url, "SWARMSYNC_TOKEN": token,
               "SWARMSYNC_CONFIG_DIR": str(tmp_path / "config")}
        return subprocess.run([sys.executable, "-m", "swarmsync.cli.main", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def cli_operators(api, make_user) -> tuple[str, str, str, str]:
    """(A's session, B's session, A's API token, B's API token): API tokens are what a CLI
    elsewhere keeps; sessions are for the in-process API client that sets the stage."""
    sessions = make_user("operator", "alice").login(api), make_user("operator", "bob").login(api)
    tokens = [api.post("/tokens", json={"name": "cli"}, headers=auth(s)).json()["token"] for s in sessions]
    return (*sessions, *tokens)


def refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == REFUSED, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stderr.startswith("error:"), done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_another_users_secret_by_block_name_is_refused_through_the_cli(api, cli_operators, as_cli, busybox,
                                                                       tmp_path):
    alice, bob, _, bob_token = cli_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    try:
        spec = tmp_path / "attack.json"
        spec.write_text(json.dumps({"command": "echo $X | base64", "pull_policy": "never", "secrets": {"X": block}}))
        refused(as_cli(bob_token, "submit", "--spec", str(spec), "--at", LATER, busybox), "403", "X")
        assert jobs_of(api, bob, me(api, bob)) == []  # refused before anything was created
    finally:
        cancel(api, alice, job_id)


def test_a_templates_secret_with_another_command_and_a_schedules_secret_are_refused_through_the_cli(
        api, cli_operators, as_cli, busybox):
    alice, bob, _, bob_token = cli_operators
    name = f"cli-sec-{uuid.uuid4().hex[:8]}"
    saved = api.post("/templates", json={"name": name, "spec": {"image": busybox, "command": "true",
                                                                "pull_policy": "never"},
                                         "secret_env": {"TOKEN": "alice-template-s3cret"}}, headers=auth(alice))
    assert saved.status_code == 201, saved.text
    created = api.post("/schedules", json={
        "name": name, "spec": {"image": busybox, "command": "true", "pull_policy": "never"}, "cron": "0 3 * * *",
        "paused": True, "secret_env": {"TOKEN": "alice-schedule-s3cret"}}, headers=auth(alice))
    assert created.status_code == 201, created.text
    try:
        refused(as_cli(bob_token, "submit", "--template", name, "--at", LATER, "--", "sh", "-c", "echo $TOKEN"),
                "403")
        assert jobs_of(api, bob, me(api, bob)) == []
        refused(as_cli(bob_token, "schedule", "add", name, "--cron", "0 4 * * *", "--shell", "echo $TOKEN"), "403")
        assert len(api.get(f"/schedules/{name}", headers=auth(alice)).json()["schedules"]) == 1
    finally:
        api.delete(f"/schedules/{name}", headers=auth(alice))
        api.delete(f"/templates/{name}", headers=auth(alice))


def test_a_container_network_and_an_unlisted_pool_are_refused_through_the_cli(api, cli_operators, as_cli, busybox,
                                                                             tmp_path):
    alice, bob, alice_token, bob_token = cli_operators
    spec = tmp_path / "network.json"
    spec.write_text(json.dumps({"command": "true", "pull_policy": "never", "network": "container:swarmsync-api"}))
    refused(as_cli(bob_token, "submit", "--spec", str(spec), "--at", LATER, busybox), "container:")
    pool = f"cli-list-{uuid.uuid4().hex[:8]}"
    create_pool(pool, allowed_users=[me(api, alice)])
    refused(as_cli(bob_token, "submit", "--pool", pool, "--at", LATER, busybox, "true"), "may not use this pool")
    assert jobs_of(api, bob, me(api, bob)) == []
    listed = as_cli(alice_token, "submit", "--pool", pool, "--at", LATER, "--pull", "never", busybox, "true")
    assert listed.returncode == 0, listed.stderr  # the user on the list may
    cancel(api, alice, listed.stdout.strip().split()[-1])


def test_a_scoped_token_cannot_mint_a_wider_one_through_the_cli(api, cli_operators, as_cli):
    _, bob, _, _ = cli_operators
    scoped = api.post("/tokens", json={"name": "scoped", "scopes": ["jobs:read", "tokens:own"]},
                      headers=auth(bob)).json()["token"]
    refused(as_cli(scoped, "token", "create", "wider", "--scope", "jobs:read", "--scope", "jobs:submit"),
            "jobs:submit")
    refused(as_cli(scoped, "token", "create", "unscoped"), "jobs:submit")  # no scopes: all of the role's
    narrower = as_cli(scoped, "token", "create", "same", "--scope", "jobs:read")
    assert narrower.returncode == 0, narrower.stderr


def test_another_operators_job_schedule_and_template_are_refused_through_the_cli(api, cli_operators, as_cli,
                                                                                busybox):
    """Issue 23's attacks as a remote user's shell takes them: B (an operator of the same project) cancels,
    re-runs and deletes A's job, pauses and deletes A's schedule, replaces A's template."""
    alice, bob, _, bob_token = cli_operators
    job = api.post("/jobs", json={"spec": {"image": busybox, "command": "true", "pull_policy": "never"},
                                  "at": LATER}, headers=auth(alice)).json()["id"]
    done = api.post("/jobs", json={"spec": {"image": busybox, "command": "true", "pull_policy": "never"}},
                    headers=auth(alice)).json()["id"]
    swarmsync.get_job(done).wait(120)
    name = f"cli-own-{uuid.uuid4().hex[:8]}"
    spec = {"image": busybox, "command": "echo mine", "pull_policy": "never"}
    assert api.post("/schedules", json={"name": name, "spec": spec, "every": "1h", "paused": True},
                    headers=auth(alice)).status_code == 201
    assert api.post("/templates", json={"name": name, "spec": spec}, headers=auth(alice)).status_code == 201
    try:
        for args in (("cancel", job), ("rerun", job), ("delete", done), ("schedule", "pause", name),
                     ("schedule", "delete", name)):
            refused(as_cli(bob_token, *args), "403", "only its owner")
        taken = as_cli(bob_token, "template", "save", name, busybox, "--", "sh", "-c", "echo theirs")
        assert taken.returncode != 0 and "409" in taken.stderr, taken.stderr
        assert swarmsync.get_job(job).status() == "Scheduled" and swarmsync.get_job(done).status() == "Completed"
        assert api.get(f"/schedules/{name}", headers=auth(alice)).json()["owner"] == me(api, alice)
        assert swarmsync.templates.load_template(name).command == "echo mine"
    finally:
        cancel(api, alice, job)
        api.delete(f"/schedules/{name}", headers=auth(alice))
        api.delete(f"/templates/{name}", headers=auth(alice))


def test_gpus_over_the_pools_max_gpus_are_refused_through_the_cli(api, cli_operators, as_cli, busybox):
    """`--gpus` is an option because JobSpec declares the field (swarmsync/catalogue.py), and the pool's ceiling
    holds through it: more than max_gpus is refused, naming the setting ('all' too: test_policy); within it is
    accepted."""
    alice, _, alice_token, _ = cli_operators
    pool = f"cli-gpu-{uuid.uuid4().hex[:8]}"
    create_pool(pool, allow_gpu=True, max_gpus=1, allowed_users=[me(api, alice)])
    refused(as_cli(alice_token, "submit", "--pool", pool, "--gpus", "2", "--at", LATER, busybox, "true"), "max_gpus")
    assert jobs_of(api, alice, me(api, alice)) == []
    within = as_cli(alice_token, "submit", "--pool", pool, "--gpus", "1", "--at", LATER, "--pull", "never",
                    busybox, "true")
    assert within.returncode == 0, within.stderr
    job_id = within.stdout.strip().split()[-1]
    assert api.get(f"/jobs/{job_id}", headers=auth(alice)).json()["flow_run"]["parameters"]["job"]["gpus"] == 1
    cancel(api, alice, job_id)
