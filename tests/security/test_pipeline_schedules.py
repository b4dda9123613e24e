"""Pipelines through the API, what issue 28 still lacked: schedules whose target is a pipeline
(/pipelines/schedules) under the job schedules' rules, a resume that admits its steps again under their
submitter, and a step's `secret_env` (stored as the submitter's Secret block, never shown or archived)."""
# ruff: noqa: F811 - pytest fixtures imported from test_secrets are parameters here

from __future__ import annotations

import json
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, FlowRunFilter

from swarmsync.auth import users
from swarmsync.auth.roles import Principal
from swarmsync.connection import prefect_api
from swarmsync.pipelines import Pipeline, read_children
from tests.accounts.conftest import auth
from tests.pipeline_checks import assert_secret_nowhere, secret_step
from tests.security.test_secrets import a_job_with_a_secret, cancel, client_for, two_operators  # noqa: F401
from tests.waiting import wait_until


def _step(busybox: str, command: str, **extra) -> dict:
    return {"image": busybox, "pull_policy": "never", "command": ["sh", "-c", command], **extra}


def _runs_of(deployment: str, *types: str) -> list:
    with prefect_api(), get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(name={"any_": [deployment.split("/", 1)[1]]}),
            flow_run_filter=FlowRunFilter(state={"type": {"any_": list(types)}}), limit=50)


def _username(api, token: str) -> str:
    return api.get("/me", headers=auth(token)).json()["username"]


def test_a_pipeline_schedule_through_the_api_runs_as_its_owner_and_only_they_change_it(
        api, two_operators, client_for, busybox, no_leftover_containers):  # noqa: F811
    """Bob schedules a pipeline every 10 s through the Client: a run completes, recorded as his; it is listed;
    Alice (another operator of the project) may neither pause nor delete it; Bob pauses and deletes it."""
    alice, bob = two_operators
    name = f"pl-{uuid.uuid4().hex[:6]}"
    made = client_for(bob).schedule_pipeline(name, {"name": name, "steps": {
        "hello": _step(busybox, "echo scheduled-pipeline")}}, every="10s")
    assert made["deployment"] == f"pipeline/{name}" and made["owner"] == _username(api, bob), made
    in_flight: list = []
    try:
        assert name in [s["name"] for s in client_for(alice).pipeline_schedules()]  # members read it
        here = f"/pipelines/schedules/{name}"
        for method, path in (("POST", f"{here}/pause"), ("DELETE", here)):
            refused = api.request(method, path, headers=auth(alice))
            assert refused.status_code == 403, refused.text
        again = api.post("/pipelines/schedules", headers=auth(bob), json={
            "name": name, "every": "1h", "pipeline": {"name": name, "steps": {"x": _step(busybox, "true")}}})
        assert again.status_code == 409, again.text
        wait_until(lambda: _runs_of(made["deployment"], "COMPLETED"), "a scheduled pipeline to complete", timeout=120)
        done = Pipeline(str(_runs_of(made["deployment"], "COMPLETED")[0].id))
        assert done.submitter == _username(api, bob) and [s.state for s in done.steps()] == ["Completed"]
        client_for(bob).change_pipeline_schedule(name, "pause")
        assert client_for(bob).pipeline_schedule(name)["paused"] is True
        in_flight = _runs_of(made["deployment"], "PENDING", "RUNNING")
    finally:
        api.delete(f"/pipelines/schedules/{name}", headers=auth(bob))
    for run in in_flight:  # runs already started: none may outlive the test
        Pipeline(str(run.id)).cancel()
        Pipeline(str(run.id)).wait(60)
    assert api.get(f"/pipelines/schedules/{name}", headers=auth(bob)).status_code == 404


def test_a_pipeline_schedule_with_another_users_secret_a_bad_dag_or_cores_name_is_refused(
        api, two_operators, busybox):  # noqa: F811
    alice, bob = two_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    try:
        name = f"steal-{uuid.uuid4().hex[:6]}"
        response = api.post("/pipelines/schedules", headers=auth(bob), json={
            "name": name, "every": "1h", "paused": True, "pipeline": {"name": name, "steps": {
                "leak": _step(busybox, "echo $X", secrets={"X": block})}}})
        assert response.status_code == 403, response.text
        assert "X" in response.json()["detail"] and "secret" in response.json()["detail"]
        assert api.get(f"/pipelines/schedules/{name}", headers=auth(bob)).status_code == 404
        loop = {"a": _step(busybox, "true", needs=["a"])}
        bad = api.post("/pipelines/schedules", headers=auth(bob),
                       json={"name": name, "every": "1h", "pipeline": {"name": name, "steps": loop}})
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "pipeline.steps.a.needs"], bad.text
        core = api.post("/pipelines/schedules", headers=auth(bob), json={  # Core's own deployment stays its own
            "name": "default", "every": "1h", "pipeline": {"name": "x", "steps": {"a": _step(busybox, "true")}}})
        assert core.status_code == 409 and "Core's own pipeline deployment" in core.text, core.text
    finally:
        cancel(api, alice, job_id)


def test_resume_admits_its_steps_again_under_the_submitter(api, two_operators, make_user, busybox,
                                                            no_leftover_containers):  # noqa: F811
    """Bob's pipeline failed; Bob is made a viewer: an admin's resume is refused (403, why, nothing started).
    Bob an operator again, it resumes."""
    _alice, bob = two_operators
    admin = make_user("admin").login(api)
    made = api.post("/pipelines", headers=auth(bob), json={"pipeline": {"name": "readmit", "steps": {
        "a": _step(busybox, "echo a"), "b": _step(busybox, "exit 3", needs=["a"])}}})
    assert made.status_code == 201, made.text
    pipeline = Pipeline(made.json()["id"])
    pipeline.wait(120)
    assert pipeline.status() == "Failed"
    before = len(read_children(pipeline.id))
    bob_name = _username(api, bob)
    users.set_role(Principal.local(), bob_name, "viewer")
    try:
        refused = api.post(f"/pipelines/{pipeline.id}/resume", headers=auth(admin))
        assert refused.status_code == 403, refused.text
        assert "not resumed" in refused.json()["detail"] and bob_name in refused.json()["detail"], refused.text
        assert pipeline.status() == "Failed" and len(read_children(pipeline.id)) == before  # nothing started
    finally:
        users.set_role(Principal.local(), bob_name, "operator")
    resumed = api.post(f"/pipelines/{pipeline.id}/resume", headers=auth(admin))
    assert resumed.status_code == 202, resumed.text
    wait_until(lambda: len(read_children(pipeline.id)) > before, "the failed step to run again", 90)
    wait_until(pipeline.is_finished, "the resumed pipeline to end", 120)
    steps = {s.name: s for s in pipeline.steps()}
    assert steps["a"].attempts == 1 and steps["b"].attempts == 2, steps


def test_a_steps_secret_env_through_the_api_is_the_submitters_and_never_shown(api, two_operators, busybox,
                                                                              no_leftover_containers):  # noqa: F811
    _alice, bob = two_operators
    value = f"api-s3cret-{uuid.uuid4().hex}"
    made = api.post("/pipelines", headers=auth(bob), json={"pipeline": {"name": "api-secret", "steps": {
        "publish": secret_step(busybox, value)}}})
    assert made.status_code == 201, made.text
    assert value not in made.text
    pipeline = Pipeline(made.json()["id"])
    pipeline.wait(120)
    assert pipeline.status() == "Completed", pipeline.steps()
    job = assert_secret_nowhere(pipeline, "publish", value)
    for path in (f"/pipelines/{pipeline.id}", f"/pipelines/{pipeline.id}/logs", f"/jobs/{job.id}"):
        shown = api.get(path, headers=auth(bob))
        assert shown.status_code == 200 and value not in shown.text, path
    block = json.loads(api.get(f"/jobs/{job.id}", headers=auth(bob)).text)["flow_run"]["parameters"]["job"]["secrets"]
    assert block["TOKEN"].startswith("swarmsync-secret-")  # bob owns it: he sees its name
