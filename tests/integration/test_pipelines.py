"""Pipelines on real Docker and Prefect: the parent flow on Core's pipeline worker, each step a child
run of the job deployment (docs/pipelines.md). The CLI: test_pipeline_cli.py; Core dying under a running
pipeline: test_pipeline_recovery.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client

import swarmsync
from swarmsync.connection import prefect_api
from swarmsync.pipeline_spec import PipelineError
from swarmsync.pipelines import read_children, submit_pipeline
from tests.waiting import wait_until


def _step(busybox: str, command: str, **extra):
    return {"image": busybox, "pull_policy": "never", "command": ["sh", "-c", command], **extra}


UPTIME = "cut -d' ' -f1 /proc/uptime"  # the host's clock in every container, to 1/100 s


def test_diamond_passes_files_along(stack, busybox, no_leftover_containers):
    """A -> B, A -> C, B + C -> D: each hands its output folder on; D's output is checked. B and C run
    at the same time (their containers' lives overlap)."""
    pipeline = submit_pipeline({"name": "diamond", "max_parallel": 4, "steps": {
        "a": _step(busybox, "mkdir -p /out && echo 21 > /out/n.txt", output_dir="/out"),
        "b": _step(busybox, f"mkdir -p /out && {UPTIME} > /out/t0 && sleep 2 && "
                   f"echo $(( $(cat /in/n.txt) * 2 )) > /out/b.txt && {UPTIME} > /out/t1", output_dir="/out",
                   needs=["a"], inputs_from={"a": "/in"}),
        "c": _step(busybox, f"mkdir -p /out && {UPTIME} > /out/t0 && sleep 2 && "
                   f"echo c-saw-$(cat /in/n.txt) > /out/c.txt && {UPTIME} > /out/t1", output_dir="/out",
                   needs=["a"], inputs_from={"a": "/in"}),
        "d": _step(busybox, "cat /b/b.txt /c/c.txt; echo $(cat /b/t0) $(cat /b/t1) $(cat /c/t0) $(cat /c/t1)",
                   needs=["b", "c"], inputs_from={"b": "/b", "c": "/c"}),
    }})
    pipeline.wait(150)
    steps = {s.name: s for s in pipeline.steps()}
    assert pipeline.status() == "Completed", steps
    assert all(s.state == "Completed" for s in steps.values()), steps
    output = swarmsync.get_job(steps["d"].job_id).result().output.split()
    assert output[:2] == ["42", "c-saw-21"], output
    b0, b1, c0, c1 = map(float, output[2:6])
    assert b0 < c1 and c0 < b1, f"b and c did not overlap: b {b0}-{b1}, c {c0}-{c1}"
    # the Prefect tree: every step run is a child of one of the pipeline's task runs
    children = read_children(pipeline.id)
    assert len(children) == 4 and all(c.parent_task_run_id for c in children)


def test_failed_step_skips_dependents_runs_failure_step_and_resume(stack, busybox, docker_client,
                                                                  no_leftover_containers):
    """B fails: D (needs B) is skipped, not failed; the `when: failure` step runs. The cause fixed,
    resume re-runs only B and D; A's container is not started again (Docker's events say so)."""
    block = f"pipeline-mode-{uuid.uuid4().hex[:8]}"
    with prefect_api():  # the stack's Prefect (the test process has no PREFECT_API_URL of its own)
        Secret(value="broken").save(block)
    pipeline = submit_pipeline({"name": "resumable", "steps": {
        "a": _step(busybox, "mkdir -p /out && echo from-a > /out/a.txt", output_dir="/out"),
        "b": _step(busybox, 'echo mode=$MODE; test "$MODE" = fixed', needs=["a"], secrets={"MODE": block}),
        "d": _step(busybox, "echo d ran", needs=["b"]),
        "cleanup": _step(busybox, "echo cleaning up", needs=["d"], when="failure"),
        "report": _step(busybox, "cat /in/a.txt", needs=["a"], inputs_from={"a": "/in"}),
    }})
    pipeline.wait(150)
    steps = {s.name: s for s in pipeline.steps()}
    assert pipeline.status() == "Failed", steps
    assert steps["b"].state == "Failed" and steps["d"].state == "Skipped", steps
    assert steps["cleanup"].state == "Completed" and steps["report"].state == "Completed", steps
    assert "cleaning up" in swarmsync.get_job(steps["cleanup"].job_id).result().output
    first = {name: s.job_id for name, s in steps.items()}

    with prefect_api():
        Secret(value="fixed").save(block, overwrite=True)
    since = datetime.now(UTC)
    pipeline.resume()
    wait_until(lambda: pipeline.status() not in ("Failed", "AwaitingRetry"), "the pipeline started again", 60)
    pipeline.wait(150)
    after = {s.name: s for s in pipeline.steps()}
    assert pipeline.status() == "Completed", after
    assert after["b"].attempts == 2 and after["d"].attempts == 1 and after["b"].state == "Completed", after
    for reused in ("a", "report", "cleanup"):
        assert after[reused].job_id == first[reused] and after[reused].attempts == 1, after
    created = docker_client.events(since=since, until=datetime.now(UTC), decode=True,
                                   filters={"type": "container", "event": "create"})
    started_for = {e["Actor"]["Attributes"].get("io.swarmsync.flow-run-id") for e in created}
    assert first["a"] not in started_for and first["report"] not in started_for, started_for
    assert after["b"].job_id in started_for and after["d"].job_id in started_for, started_for


def test_matrix_of_ten(stack, busybox, no_leftover_containers):
    pipeline = submit_pipeline({"name": "fan-out", "max_parallel": 10, "steps": {
        "shard": {**_step(busybox, "echo shard=${{ matrix.n }} $REGION"), "env": {"REGION": "r-${{ matrix.n }}"},
                  "matrix": {"n": list(range(10))}},
        "after": _step(busybox, "echo all done", needs=["shard"]),
    }})
    pipeline.wait(150)
    steps = {s.name: s for s in pipeline.steps()}
    assert pipeline.status() == "Completed", steps
    assert len(steps) == 11 and steps["after"].needs == [f"shard[n={i}]" for i in range(10)]
    assert "shard=7 r-7" in swarmsync.get_job(steps["shard[n=7]"].job_id).result().output


def test_pipeline_on_a_schedule_runs(stack, busybox, no_leftover_containers):
    """A scheduled pipeline is the deployment `pipeline/NAME` on Core's pool: Prefect's scheduler makes its
    runs, each records its owner and project, and runs its steps."""
    from prefect.client.schemas.filters import DeploymentFilter, FlowRunFilter

    from swarmsync.deployments.pipeline_deployment import delete_pipeline_schedule, schedule_pipeline
    from swarmsync.pipelines import Pipeline, resolve

    name = f"every-{uuid.uuid4().hex[:6]}"
    resolved = resolve({"name": name, "steps": {"hello": _step(busybox, "echo scheduled")}})
    deployment = schedule_pipeline(name, resolved, every="10s", project="default")

    def runs(*types: str) -> list:
        with prefect_api(), get_client(sync_client=True) as client:
            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(name={"any_": [deployment.split("/", 1)[1]]}),
                flow_run_filter=FlowRunFilter(state={"type": {"any_": list(types)}}), limit=50)

    in_flight: list = []
    try:
        wait_until(lambda: runs("COMPLETED"), "a scheduled pipeline to complete", timeout=120)
        done = Pipeline(str(runs("COMPLETED")[0].id))
        assert done.project == "default" and [s.state for s in done.steps()] == ["Completed"]
        assert "swarmsync.project:default" in done.flow_run().tags  # recorded by the run itself
        in_flight = runs("PENDING", "RUNNING")
    finally:
        delete_pipeline_schedule(name)  # its future runs go with it
    for run in in_flight:  # runs already started: none may outlive the test
        Pipeline(str(run.id)).cancel()
        Pipeline(str(run.id)).wait(60)


@pytest.mark.parametrize(("steps", "where"), [
    ({"a": {"image": "busybox", "needs": ["b"]}, "b": {"image": "busybox", "needs": ["a"]}}, "cycle"),
    ({"a": {"image": "busybox", "needs": ["nope"]}}, "not a step"),
    ({"a": {"image": "busybox"}, "b": {"image": "busybox", "needs": ["a"], "inputs_from": {"a": "/in"}}},
     "no output_dir"),
])
def test_bad_dags_are_refused_before_anything_runs(stack, steps, where):
    before = len(swarmsync.pipelines.list_pipelines(limit=200))
    with pytest.raises(PipelineError, match=where):
        submit_pipeline({"name": "bad", "steps": steps})
    assert len(swarmsync.pipelines.list_pipelines(limit=200)) == before


def test_cancel_stops_the_running_steps(stack, busybox, no_leftover_containers):
    pipeline = submit_pipeline({"name": "to-cancel", "steps": {
        "long": _step(busybox, "echo started; sleep 120"),
        "after": _step(busybox, "echo never", needs=["long"]),
    }})
    wait_until(lambda: any(s.state == "Running" for s in pipeline.steps()), "the long step to run", 90)
    pipeline.cancel()
    pipeline.wait(60)
    steps = {s.name: s for s in pipeline.steps()}
    assert pipeline.status() == "Cancelled", steps
    job = swarmsync.get_job(steps["long"].job_id).wait(60)
    assert job.status() == "Cancelled" and steps["after"].job_id is None, steps


def test_a_steps_secret_env_reaches_its_container_never_its_logs_or_archive(stack, busybox, no_leftover_containers):
    """Python path: a step's `secret_env` is stored as a Secret block; the container sees the value, the
    runs' parameters name only the block, and no log line, archived file or manifest holds the value."""
    from tests.pipeline_checks import assert_secret_nowhere, secret_step

    value = f"py-s3cret-{uuid.uuid4().hex}"
    pipeline = submit_pipeline({"name": "with-secret", "steps": {"publish": secret_step(busybox, value)}})
    pipeline.wait(120)
    assert pipeline.status() == "Completed", pipeline.steps()
    assert_secret_nowhere(pipeline, "publish", value)
