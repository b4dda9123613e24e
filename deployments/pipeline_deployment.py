"""Where pipelines run: Core's own work pool `swarmsync-pipelines` (type `process`) and its deployments.

The parent flow of a pipeline creates flow runs (its steps), which a worker host's token may not do,
so it never runs on a job pool: `swarmsync up` creates this pool and `pipeline/default`, and runs
Prefect's process worker for it beside the Prefect server (the stack's `pipelines` process; one flow
run = one short-lived Python process on Core). A scheduled pipeline is the deployment
`pipeline/<schedule>` on the same pool, with the resolved pipeline and its owner as parameters
(Prefect's scheduler creates its runs, as for a recurring job).

Durability: a pipeline's state is its run and its steps' runs, all in Prefect's database. When Core
restarts under a running pipeline, `recover_pipelines` sends the orphaned parent runs back to
AwaitingRetry before the worker starts; the flow runs again and picks up its steps where they are
(completed ones reused, running ones followed). Run one pipeline worker per installation.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry
from prefect.utilities.callables import parameter_schema

from swarmsync.connection import uses_prefect_api
from swarmsync.deployments.job_deployment import ensure_work_pool
from swarmsync.deployments.schedule_rules import build_schedule, to_deployment_schedule
from swarmsync.owners import DEFAULT_PROJECT, owner_tags, stored_name
from swarmsync.pipeline_spec import ResolvedPipeline
from swarmsync.pipelines import PIPELINE_FLOW_NAME, PIPELINE_POOL, PIPELINE_TAG
from swarmsync.timing import parse_duration

PIPELINE_ENTRYPOINT = "swarmsync.flows.pipeline:pipeline"
SCHEDULE_TAG = "swarmsync-pipeline-schedule"


async def ensure_pipeline_deployment(client: PrefectClient, name: str = "default", **options: Any) -> UUID:
    """The pipeline pool (type process) and the `pipeline/<name>` deployment on it."""
    from swarmsync.flows.pipeline import pipeline

    await ensure_work_pool(client, PIPELINE_POOL, worker_type="process")
    flow_id = await client.create_flow_from_name(PIPELINE_FLOW_NAME)
    return await client.create_deployment(
        flow_id=flow_id, name=name, work_pool_name=PIPELINE_POOL, entrypoint=PIPELINE_ENTRYPOINT,
        parameter_openapi_schema=parameter_schema(pipeline).model_dump_for_openapi(),
        enforce_parameter_schema=False,
        **{"description": "Run one SwarmSync pipeline (parameter: pipeline, its resolved steps).",
           "tags": ["swarmsync"], **options},
    )


@uses_prefect_api
def schedule_pipeline(name: str, resolved: ResolvedPipeline, *, every: str | float | timedelta | None = None,
                      cron: str | None = None, timezone: str | None = None, user: str | None = None,
                      project: str | None = None, paused: bool = False) -> str:
    """A recurring pipeline: the deployment `pipeline/<name>` with a Cron or Interval schedule; its runs
    carry `user` and `project` as a submitted pipeline does. Returns the deployment's name."""
    import anyio

    project = project or DEFAULT_PROJECT
    schedule = build_schedule(cron=cron, every=parse_duration(every) if every is not None else None,
                              rrule=None, timezone=timezone, start=None)
    deployment_name = stored_name(project, name)

    async def create() -> None:
        async with get_client() as client:
            await ensure_pipeline_deployment(
                client, deployment_name, schedules=[to_deployment_schedule(schedule)], paused=paused,
                parameters={"pipeline": resolved.model_dump(mode="json", exclude_defaults=True),
                            "user": user, "project": project},
                tags=["swarmsync", SCHEDULE_TAG, PIPELINE_TAG, *owner_tags(user, project)])

    anyio.run(create)
    return f"{PIPELINE_FLOW_NAME}/{deployment_name}"


@uses_prefect_api
def delete_pipeline_schedule(name: str, project: str | None = None) -> None:
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(f"{PIPELINE_FLOW_NAME}/{stored_name(project, name)}")
        except ObjectNotFound:
            raise LookupError(f"no pipeline schedule named {name!r}") from None
        client.delete_deployment(deployment.id)


def _still_running_here(infrastructure_pid: str | None) -> bool:
    """The run's process (its PID, as Prefect's process worker records it; the pipeline worker runs only
    here, on Core) is alive: it goes on by itself (Prefect starts flow processes in sessions of their own).
    A zombie (killed, its parent gone, not reaped yet) is not alive."""
    host, _, pid = (infrastructure_pid or "").rpartition(":")
    if host not in ("", socket.gethostname()) or not pid.isdigit():
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"], [])


async def recover_pipelines() -> int:
    """Parent runs left Running or Pending by a pipeline worker that is gone (Core restarted), whose
    process is gone too, go back to AwaitingRetry for the worker about to start; returns how many."""
    flt = FlowRunFilter(tags={"all_": [PIPELINE_TAG]}, state={"type": {"any_": ["RUNNING", "PENDING"]}})
    recovered = 0
    async with get_client() as client:
        for run in await client.read_flow_runs(flow_run_filter=flt, limit=200):
            if _still_running_here(run.infrastructure_pid):
                continue
            await client.set_flow_run_state(
                run.id, AwaitingRetry(message="Core restarted: the pipeline picks up its steps"), force=True)
            recovered += 1
    return recovered
