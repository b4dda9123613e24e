"""The `pipeline` flow: one run per pipeline (the parent), each step a child run of the job deployment.

It runs on Core, on the pipeline pool's process worker (`swarmsync up` starts it; see
swarmsync/pipelines.py), never on a worker host: it creates flow runs, which worker hosts may not.
For each step, once the steps it needs have ended and its `when` holds, the task `pipeline-step`
creates the step's job run with `parent_task_run_id` set to that task run (the Prefect UI shows the
tree) and waits for it. A step whose `when` does not hold is skipped (no run; its dependents see it as
skipped, not failed). `max_parallel` steps run at once.

Run again (resumed, or after Core restarted under a running pipeline), the flow finds its steps' runs
by their tags: a completed one is reused (no container starts), a running one is waited for (the
idempotency key of each attempt makes a creation sent twice return the same run), a failed, cancelled
or never-run one runs again as a new attempt.
"""

from __future__ import annotations

from typing import Any

import anyio
from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound
from prefect.states import Completed, Failed, State

from swarmsync import job_events
from swarmsync.errors import Error
from swarmsync.jobs import deployment_for_pool, run_request
from swarmsync.owners import (
    DEFAULT_PROJECT,
    PROJECT_LABEL,
    owner_labels,
    owner_tags,
    project_of,
    submitted_by,
    without_user_tags,
)
from swarmsync.pipeline_inputs import folder_inputs, read_output_folder
from swarmsync.pipeline_spec import ResolvedPipeline, ResolvedStep
from swarmsync.pipelines import PIPELINE_LABEL, latest_by_step, pipeline_tag, step_tag

POLL_SECONDS = 1.0


class StepFailed(Error, RuntimeError):
    """The step's job ended in a state other than Completed."""


async def _children(pipeline_id: str) -> dict[str, Any]:
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags={"all_": [pipeline_tag(pipeline_id)]}),
                                           limit=200)
    return latest_by_step(sorted(runs, key=lambda r: r.created))


async def _wait_final(client: Any, run_id: Any) -> Any:
    while True:
        run = await client.read_flow_run(run_id)
        if run.state and run.state.is_final():
            return run
        await anyio.sleep(POLL_SECONDS)


async def _task_run_recorded(client: Any, task_run_id: Any, timeout: float = 60) -> None:
    """Wait until the server has the step's task run: Prefect 3 records task runs from their events,
    a moment after they start, and a child run naming it as its parent before that is refused (409)."""
    with anyio.fail_after(timeout):
        while True:
            try:
                await client.read_task_run(task_run_id)
                return
            except ObjectNotFound:
                await anyio.sleep(0.2)


@task(name="pipeline-step", persist_result=False)
async def pipeline_step(step: ResolvedStep, pipeline_id: str, pipeline_name: str, user: str | None,
                        project: str, sources: dict[str, str]) -> str:
    """Run one step as a child job run (or reuse / follow the one it has); returns the job's id.
    `sources`: step name -> job id of the steps its `inputs_from` names."""
    logger = get_run_logger()
    task_run_id = TaskRunContext.get().task_run.id
    latest = await _children(pipeline_id)
    async with get_client() as client:
        previous, attempts = latest.get(step.name, (None, 0))
        if previous is not None and previous.state and previous.state.is_completed():
            logger.info("step %s: reusing job %s (completed before)", step.name, previous.id)
            return str(previous.id)
        if previous is not None and previous.state and not previous.state.is_final():
            logger.info("step %s: following job %s (started before)", step.name, previous.id)
            child = previous
        else:
            spec = step.job
            handed = []
            for source, mount in step.inputs_from.items():
                data = await anyio.to_thread.run_sync(read_output_folder, sources[source])
                handed += folder_inputs(data, mount)
                logger.info("step %s: %s's output folder (job %s, checked by SHA-256) mounted at %s",
                            step.name, source, sources[source], mount)
            if handed:
                spec = spec.model_copy(update={"inputs": [*spec.inputs, *handed]})
            request = run_request(spec, None, user, project)
            request["name"] = f"{pipeline_name}: {step.name}"[:60]
            request["tags"] += [pipeline_tag(pipeline_id), step_tag(step.name)]
            request["labels"] = {**request["labels"], PIPELINE_LABEL: pipeline_id}
            deployment = await client.read_deployment_by_name(deployment_for_pool(step.pool))
            await _task_run_recorded(client, task_run_id)
            child = await client.create_flow_run_from_deployment(
                deployment.id, parent_task_run_id=task_run_id, work_queue_name=step.queue,
                idempotency_key=f"swarmsync-pipeline-{pipeline_id}-{step.name}-{attempts + 1}", **request)
            logger.info("step %s: job %s (attempt %d)", step.name, child.id, attempts + 1)
            job_events.emit_for_run(job_events.SUBMITTED, child)
        child = await _wait_final(client, child.id)
    if not child.state.is_completed():
        raise StepFailed(f"step {step.name}: job {child.id} ended {child.state.name}: {child.state.message}")
    return str(child.id)


@flow(name="pipeline", persist_result=False)
async def pipeline(pipeline: ResolvedPipeline, user: str | None = None, project: str | None = None) -> State:
    """Run the pipeline's steps as child job runs, in `needs` order, `max_parallel` at once.
    `user`/`project`: the owner of a scheduled run (a run the API created carries them as labels)."""
    logger = get_run_logger()
    run = FlowRunContext.get().flow_run
    pipeline_id = str(run.id)
    if PROJECT_LABEL in (run.labels or {}):  # created by SwarmSync with its owner recorded
        owner, in_project = submitted_by(run), project_of(run)
    else:  # a scheduled run: its owner is in its parameters
        owner, in_project = user, project or DEFAULT_PROJECT
        await _record_owner(run, owner, in_project)
    previous = await _children(pipeline_id)
    outcome: dict[str, str] = {}  # step -> succeeded / failed / skipped
    upstream_failed: dict[str, bool] = {}
    job_ids: dict[str, str] = {name: str(r.id) for name, (r, _n) in previous.items()}
    done = {step.name: anyio.Event() for step in pipeline.steps}
    limiter = anyio.CapacityLimiter(pipeline.max_parallel)

    async def drive(step: ResolvedStep) -> None:
        try:
            for need in step.needs:
                await done[need].wait()
            failed_before = any(outcome[n] == "failed" or upstream_failed[n] for n in step.needs)
            upstream_failed[step.name] = failed_before
            all_ok = all(outcome[n] == "succeeded" for n in step.needs)
            runs = {"success": all_ok, "failure": failed_before, "always": True}[step.when]
            if not runs:
                outcome[step.name] = "skipped"
                logger.info("step %s: skipped (when: %s)", step.name, step.when)
                return
            async with limiter:
                sources = {s: job_ids.get(s, "") for s in step.inputs_from}
                job_ids[step.name] = await pipeline_step.with_options(task_run_name=f"step: {step.name}")(
                    step, pipeline_id, pipeline.name, owner, in_project, sources)
            outcome[step.name] = "succeeded"
        except Exception as exc:  # noqa: BLE001 - the step failed, whatever the reason: its dependents decide
            outcome[step.name] = "failed"
            logger.error("step %s failed: %s", step.name, exc)
            fresh = (await _children(pipeline_id)).get(step.name)
            if fresh is not None:
                job_ids[step.name] = str(fresh[0].id)
        finally:
            done[step.name].set()

    async with anyio.create_task_group() as tg:
        for step in pipeline.steps:
            tg.start_soon(drive, step)
    failed = [n for n, o in outcome.items() if o == "failed"]
    skipped = [n for n, o in outcome.items() if o == "skipped"]
    summary = f"{len(outcome) - len(failed) - len(skipped)} succeeded, {len(failed)} failed, {len(skipped)} skipped"
    if failed:
        return Failed(message=f"{summary}; failed: {', '.join(failed)}")
    return Completed(message=summary)


async def _record_owner(run: Any, user: str | None, project: str) -> None:
    """A scheduled run names its owner in its parameters: record it as a submitted one carries it."""
    async with get_client() as client:
        await client.update_flow_run_labels(run.id, owner_labels(user, project))
        await client.update_flow_run(run.id, tags=[*without_user_tags(run.tags or []), *owner_tags(user, project)])
