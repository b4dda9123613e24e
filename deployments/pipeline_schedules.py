"""Pipeline schedules (the Hibernator for pipelines): a named schedule whose target is a pipeline.

A pipeline schedule NAME of project P is the deployment `pipeline/<stored name>` on Core's pipeline
pool (swarmsync/deployments/pipeline_deployment.py), with the resolved pipeline and its owner as
parameters, tagged `swarmsync-pipeline-schedule` and with its owner and project. Prefect's scheduler
makes its runs; each run records its owner and project, and each step's job is re-checked by the worker
(its owner still a member who may use the pool) as any scheduled job is.

    from swarmsync.deployments import pipeline_schedules
    pipeline_schedules.create("nightly", yaml_text, every="1h", owner="alice", project="data")
    pipeline_schedules.pause("nightly", "data"); pipeline_schedules.resume("nightly", "data")
    pipeline_schedules.list_schedules(["data"]); pipeline_schedules.delete("nightly", "data")

Names are per project and apart from job schedules (`container-job/NAME`): a job schedule and a
pipeline schedule may share a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound

from swarmsync.auth import secret_owners
from swarmsync.auth.roles import Principal
from swarmsync.connection import uses_prefect_api
from swarmsync.deployments.pipeline_deployment import SCHEDULE_TAG, schedule_pipeline
from swarmsync.deployments.schedule_rules import ScheduleError, build_schedule, describe, next_run_times
from swarmsync.deployments.schedules import change_deployment
from swarmsync.errors import ConflictError, NotFoundError
from swarmsync.owners import DEFAULT_PROJECT, owner_of_tags, project_of, stored_name
from swarmsync.pipeline_secrets import store_step_secrets
from swarmsync.pipeline_spec import PipelineSpec
from swarmsync.pipelines import PIPELINE_FLOW_NAME, resolve_and_admit
from swarmsync.templates import check_name
from swarmsync.timing import parse_duration


class PipelineScheduleNotFound(NotFoundError):
    """No pipeline schedule with that name in the project (404)."""


class PipelineScheduleConflict(ConflictError, ScheduleError):
    """The name is taken by another pipeline schedule of the project (409)."""


@dataclass
class PipelineSchedule:
    """A named pipeline schedule as the API, the CLI and the dashboard show it."""

    name: str
    project: str
    owner: str | None
    deployment_id: UUID
    deployment: str
    paused: bool
    pipeline: dict[str, Any]  # the resolved pipeline (secrets as block names, never values)
    schedules: list[str] = field(default_factory=list)  # each Prefect schedule described
    next_runs: list[datetime] = field(default_factory=list)

    @property
    def steps(self) -> list[str]:
        return [step["name"] for step in self.pipeline.get("steps", [])]


def secrets_ref(project: str | None, name: str) -> str:
    """What the schedule's Secret blocks belong to (kind schedule): apart from a job schedule's names."""
    return f"{PIPELINE_FLOW_NAME}/{stored_name(project or DEFAULT_PROJECT, name)}"


def _to_schedule(deployment: DeploymentResponse) -> PipelineSchedule:
    project = project_of(deployment)
    active = [s for s in deployment.schedules if s.active]
    return PipelineSchedule(
        name=deployment.name if project == DEFAULT_PROJECT else deployment.name.removeprefix(f"{project}--"),
        project=project, owner=owner_of_tags(deployment.tags), deployment_id=deployment.id,
        deployment=f"{PIPELINE_FLOW_NAME}/{deployment.name}", paused=bool(deployment.paused),
        pipeline=(deployment.parameters or {}).get("pipeline", {}),
        schedules=[describe(s.schedule) for s in deployment.schedules],
        next_runs=[] if deployment.paused else sorted(t for s in active for t in next_run_times(s.schedule))[:3],
    )


def _read(client: Any, name: str, project: str | None) -> DeploymentResponse | None:
    project = project or DEFAULT_PROJECT
    try:
        deployment = client.read_deployment_by_name(f"{PIPELINE_FLOW_NAME}/{stored_name(project, name)}")
    except ObjectNotFound:
        return None
    if SCHEDULE_TAG not in deployment.tags or project_of(deployment) != project:
        return None  # `pipeline/default`, or a name of another project with '--' in it
    return deployment


@uses_prefect_api
def get(name: str, project: str | None = None) -> PipelineSchedule:
    with get_client(sync_client=True) as client:
        deployment = _read(client, name, project)
    if deployment is None:
        raise PipelineScheduleNotFound(f"no pipeline schedule named {name!r} in project {project or DEFAULT_PROJECT}; "
                                       "see 'swarmsync schedule list'")
    return _to_schedule(deployment)


@uses_prefect_api
def list_schedules(projects: list[str] | None = None) -> list[PipelineSchedule]:
    """Every pipeline schedule (of `projects` only, when given), by project and name."""
    if projects is not None and not projects:
        return []
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[SCHEDULE_TAG])))
    found = (_to_schedule(d) for d in deployments)
    return sorted((s for s in found if projects is None or s.project in projects), key=lambda s: (s.project, s.name))


@uses_prefect_api
def create(name: str, data: str | bytes | dict[str, Any] | PipelineSpec, *,
           every: str | float | timedelta | None = None, cron: str | None = None, timezone: str | None = None,
           owner: str | None = None,
           project: str | None = None, principal: Principal | None = None, address: str | None = None,
           paused: bool = False) -> PipelineSchedule:
    """Schedule the pipeline as NAME: checked whole and every step admitted under `principal` (None: the
    server host, only the pools' policies) before anything is made; its steps' `secret_env` values become
    Secret blocks of `owner`, deleted with the schedule. The name taken in the project: 409."""
    check_name(name, "schedule")
    project = project or DEFAULT_PROJECT
    if (cron is None) == (every is None):
        raise ScheduleError("say when: give a cron expression or an interval (every), one of them")
    build_schedule(cron=cron, every=parse_duration(every) if every is not None else None, rrule=None,
                   timezone=timezone, start=None)  # a bad one refused before anything is made
    with get_client(sync_client=True) as client:
        try:  # any deployment of that name: `pipeline/default` is Core's own, never a schedule's
            taken = client.read_deployment_by_name(f"{PIPELINE_FLOW_NAME}/{stored_name(project, name)}")
        except ObjectNotFound:
            taken = None
    if taken is not None and SCHEDULE_TAG not in taken.tags:
        raise PipelineScheduleConflict(f"{name!r} is Core's own pipeline deployment ({taken.name}); pick another name")
    if taken is not None:
        raise PipelineScheduleConflict(f"{name!r} is already a pipeline schedule of project {project} (owner: "
                                       f"{owner_of_tags(taken.tags) or 'the server host'}); pick another name "
                                       "(or delete it first)")
    resolved, values = resolve_and_admit(data, principal, project, address, action="pipeline.schedule")
    resolved, _blocks = store_step_secrets(resolved, values, owner=owner, kind=secret_owners.SCHEDULE,
                                           ref=secrets_ref(project, name), project=project)
    try:
        schedule_pipeline(name, resolved, every=every, cron=cron, timezone=timezone, user=owner, project=project,
                          paused=paused)
    except Exception:
        secret_owners.delete_secrets_of(secret_owners.SCHEDULE, secrets_ref(project, name))  # none left behind
        raise
    return get(name, project)


def pause(name: str, project: str | None = None) -> None:
    """No new runs until resumed; the runs it already scheduled are removed."""
    change_deployment(get(name, project).deployment_id, "pause")


def resume(name: str, project: str | None = None) -> None:
    change_deployment(get(name, project).deployment_id, "resume")


def delete(name: str, project: str | None = None) -> None:
    """Delete the schedule, its runs that have not started and its steps' Secret blocks (past runs stay)."""
    change_deployment(get(name, project).deployment_id, "delete")
    secret_owners.delete_secrets_of(secret_owners.SCHEDULE, secrets_ref(project, name))
