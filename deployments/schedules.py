"""Recurring jobs (the Hibernator): named schedules of container jobs on Prefect.

A schedule NAME is the deployment `container-job/NAME` of the job flow, on a work pool,
with the job as its `job` parameter and one or more Prefect deployment schedules (Cron,
Interval, RRule, each with a time zone and, optionally, its own job overrides). Its
overlap policy is the deployment's concurrency limit: `allow` (none), `skip` (limit 1,
CANCEL_NEW: a run that would overlap a running one is cancelled) or `queue` (limit 1,
ENQUEUE). Prefect's scheduler creates the runs; everything is kept in Prefect's
database, so schedules survive restarts and show in the Prefect UI.

    from swarmsync.deployments import schedules
    schedules.create("nightly", "busybox", "echo report", cron="30 2 * * *",
                     timezone="Europe/Berlin", overlap="skip")
    schedules.add("nightly", cron="0 12 * * 6", env={"MODE": "full"})  # own parameters
    schedules.pause("nightly"); schedules.resume("nightly"); schedules.run("nightly")

Schedules belong to a project (`project=`, default: the default project) and record their
owner; names are per project (project `data`'s `nightly` is the deployment
`container-job/data--nightly`, the default project's keeps its bare name: see
`swarmsync.owners.stored_name`). Every run carries the schedule's owner and project as its
tags, so the worker can re-check, before each run, that the owner may still use the pool and
the project.

Prefect's own schedule objects work too:
`schedules.create("x", "busybox", "date", schedules=[Cron("0 9 * * 1", timezone="Europe/Berlin",
parameters={"env": {"DAY": "monday"}})])`, where `parameters` are JobSpec overrides.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron, Interval, RRule, Schedule

from swarmsync.auth import secret_owners
from swarmsync.connection import uses_prefect_api
from swarmsync.deployments.schedule_rules import (
    ScheduleError,
    build_schedule,
    describe,
    next_run_times,
    overlap_options,
    overlap_policy,
    to_deployment_schedule,
)
from swarmsync.errors import ConflictError, NotFoundError
from swarmsync.jobs import JOB_FLOW_NAME, Job, prepare_spec
from swarmsync.owners import DEFAULT_PROJECT, owner_of_tags, owner_tags, project_of, stored_name, without_user_tags
from swarmsync.schedule_rows import RecurringJob, ScheduleEntry  # here since the start; Prefect-free for the CLI
from swarmsync.settings import get_settings
from swarmsync.spec import SCHEDULE_TAG, JobSpec
from swarmsync.templates import check_name
from swarmsync.timing import aware, parse_duration

__all__ = [
    "Cron", "Interval", "RRule", "RecurringJob", "ScheduleConflict", "ScheduleError", "ScheduleNotFound",
    "add", "create", "delete", "get", "job_with", "list_schedules", "pause", "resume", "run",
]



class ScheduleNotFound(NotFoundError):
    """No schedule with that name."""


class ScheduleConflict(ConflictError, ScheduleError):
    """The name is taken (409): by another schedule of the project, or by a pool's job deployment."""


def _merged(base: JobSpec, overrides: dict[str, Any]) -> JobSpec:
    data = base.model_dump(exclude_defaults=True)
    for key in ("env", "secrets"):
        if key in overrides:
            overrides = {**overrides, key: {**data.get(key, {}), **overrides[key]}}
    return JobSpec(**{**data, **overrides})


def _deployment_schedule(schedule: Schedule, base: JobSpec) -> DeploymentScheduleCreate:
    """A Prefect deployment schedule; its `parameters` (JobSpec overrides) become its own
    `job` parameter. Refused when it would never run again (e.g. an RRule UNTIL in the past)."""
    created = to_deployment_schedule(schedule)
    if created.parameters:
        job = created.parameters.get("job") or _merged(base, created.parameters).model_dump(
            mode="json", exclude_defaults=True)
        created.parameters = {"job": JobSpec(**job).model_dump(mode="json", exclude_defaults=True)}
    if not next_run_times(created.schedule, n=1):
        raise ScheduleError(f"schedule {describe(created.schedule)} has no run in the future: "
                            "its end (UNTIL/COUNT) is in the past")
    return created


def _schedule_from_options(
    cron: str | None, every: str | float | timedelta | None, rrule: str | None, timezone: str | None,
    start: datetime | str | None, overrides: dict[str, Any] | None = None,
) -> Schedule | None:
    if cron is None and every is None and rrule is None:
        if timezone or start:
            raise ScheduleError("a time zone or start needs a cron expression, an interval or an RRule")
        return None
    anchor = aware(datetime.fromisoformat(start)) if isinstance(start, str) else (aware(start) if start else None)
    return build_schedule(
        cron=cron, every=parse_duration(every) if every is not None else None, rrule=rrule,
        timezone=timezone, start=anchor, parameters=overrides,
    )


def _to_recurring(deployment: DeploymentResponse) -> RecurringJob:
    limit = deployment.global_concurrency_limit
    entries = []
    for s in sorted(deployment.schedules, key=lambda s: s.created or datetime.min):
        entries.append(ScheduleEntry(
            id=s.id, description=describe(s.schedule), active=s.active,
            job=(s.parameters or {}).get("job"),
            next_runs=next_run_times(s.schedule) if s.active else [],
        ))
    project = project_of(deployment)
    return RecurringJob(
        name=deployment.name if project == DEFAULT_PROJECT else deployment.name.removeprefix(f"{project}--"),
        deployment_id=deployment.id, pool=deployment.work_pool_name,
        overlap=overlap_policy(limit.limit if limit else None, deployment.concurrency_options),
        paused=bool(deployment.paused), job=deployment.parameters.get("job", {}), schedules=entries,
        project=project, owner=owner_of_tags(deployment.tags),
    )


async def _read(client, name: str, project: str | None = None) -> DeploymentResponse:
    project = project or DEFAULT_PROJECT
    missing = ScheduleNotFound(f"no schedule named {name!r} in project {project}; see 'swarmsync schedule list'")
    try:
        deployment = await client.read_deployment_by_name(f"{JOB_FLOW_NAME}/{stored_name(project, name)}")
    except ObjectNotFound:
        raise missing from None
    if SCHEDULE_TAG not in deployment.tags:
        raise ScheduleNotFound(f"{JOB_FLOW_NAME}/{name} is a pool's job deployment, not a schedule")
    if project_of(deployment) != project:  # made before projects, with '--' in its name
        raise missing
    return deployment


@uses_prefect_api
def create(
    name: str, image: str | JobSpec | None = None, command: list[str] | str | None = None, *,
    cron: str | None = None, every: str | float | timedelta | None = None, rrule: str | None = None,
    timezone: str | None = None, start: datetime | str | None = None, schedules: list[Schedule] | None = None,
    template: str | None = None, overlap: str = "allow", pool: str | None = None, queue: str | None = None,
    secret_env: dict[str, str] | None = None, paused: bool = False, owner: str | None = None,
    project: str | None = None, **options: Any,
) -> RecurringJob:
    """Create a recurring job NAME (refused if it exists: delete it first or `add` to it).

    When: one of `cron`, `every` ('15m', seconds, timedelta; `start` anchors it) or
    `rrule`, with an IANA `timezone`; and/or `schedules`, Prefect `Cron`/`Interval`/
    `RRule` objects whose `parameters` are JobSpec overrides. What: `image` and `command`
    (with JobSpec options) or a saved `template`. `overlap`: allow, skip or queue.
    `secret_env` values become Secret blocks recorded as `owner`'s, deleted with the schedule.
    `project`: the project it belongs to (its template is that project's); `owner`: who made it,
    recorded on every run (the API passes its caller).
    """
    from swarmsync.deployments.job_deployment import ensure_job_deployment

    check_name(name, "schedule")
    project = project or DEFAULT_PROJECT
    stored = stored_name(project, name)
    limit, concurrency = overlap_options(overlap)
    spec = prepare_spec(image, command, secret_env, options, template, owner=owner, kind=secret_owners.SCHEDULE,
                        ref=stored, project=project)
    spec = spec.model_copy(update={"tags": without_user_tags(spec.tags)})
    wanted = [s for s in [_schedule_from_options(cron, every, rrule, timezone, start)] if s]
    wanted += [s for s in schedules or []]
    if not wanted:
        raise ScheduleError("say when: give a cron expression, an interval (every) or an RRule")
    creates = [_deployment_schedule(s, spec) for s in wanted]
    pool = pool or get_settings().work_pool

    async def make() -> None:
        async with get_client() as client:
            try:
                existing = await client.read_deployment_by_name(f"{JOB_FLOW_NAME}/{stored}")
            except ObjectNotFound:
                existing = None
            if existing is not None:
                if SCHEDULE_TAG in existing.tags:
                    raise ScheduleConflict(
                        f"{name!r} is already a schedule of project {project_of(existing)} (owner: "
                        f"{owner_of_tags(existing.tags) or 'the server host'}); pick another name (or delete "
                        "the schedule first)")
                raise ScheduleConflict(f"{name!r} is already a pool's job deployment ({JOB_FLOW_NAME}/{stored}); "
                                       "pick another name")
            await ensure_job_deployment(
                client, pool, name=stored, concurrency_limit=limit, concurrency_options=concurrency,
                parameters={"job": spec.model_dump(mode="json", exclude_defaults=True)},
                schedules=creates, paused=paused, work_queue_name=queue,
                # the runs' names say the schedule; every run carries the owner and project
                tags=["swarmsync", SCHEDULE_TAG, f"{SCHEDULE_TAG}:{stored}", *owner_tags(owner, project), *spec.tags],
                description=f"SwarmSync schedule {name}: {spec.image} {spec.display_command()}",
            )

    anyio.run(make)
    return get(name, project)


@uses_prefect_api
def add(
    name: str, *, cron: str | None = None, every: str | float | timedelta | None = None,
    rrule: str | None = None, timezone: str | None = None, start: datetime | str | None = None,
    active: bool = True, project: str | None = None, **overrides: Any,
) -> RecurringJob:
    """Add another schedule to NAME; `overrides` (JobSpec fields: command, env, ...) give it
    its own job parameter, as Prefect's per-schedule parameters."""
    schedule = _schedule_from_options(cron, every, rrule, timezone, start, overrides)
    if schedule is None:
        raise ScheduleError("say when: give a cron expression, an interval (every) or an RRule")
    schedule = dataclasses.replace(schedule, active=active)

    async def make() -> None:
        async with get_client() as client:
            deployment = await _read(client, name, project)
            base = JobSpec(**deployment.parameters["job"])
            await client.create_deployment_schedules(deployment.id, [_deployment_schedule(schedule, base)])

    anyio.run(make)
    return get(name, project)


@uses_prefect_api
def job_with(name: str, project: str | None = None, **overrides: Any) -> JobSpec:
    """The job schedule NAME runs with these JobSpec overrides, as `add(name, ..., **overrides)`
    would give its new schedule (the API admits it before adding)."""
    async def read() -> DeploymentResponse:
        async with get_client() as client:
            return await _read(client, name, project)

    base = JobSpec(**anyio.run(read).parameters["job"])
    return _merged(base, overrides) if overrides else base


@uses_prefect_api
def get(name: str, project: str | None = None) -> RecurringJob:
    async def read() -> DeploymentResponse:
        async with get_client() as client:
            return await _read(client, name, project)

    return _to_recurring(anyio.run(read))


@uses_prefect_api
def list_schedules(projects: list[str] | None = None) -> list[RecurringJob]:
    """All recurring jobs (of `projects` only, when given), by project and name."""
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[SCHEDULE_TAG]))
        )
    found = (_to_recurring(d) for d in deployments)
    return sorted((r for r in found if projects is None or r.project in projects), key=lambda r: (r.project, r.name))


@uses_prefect_api
def change_deployment(deployment_id: UUID, action: str) -> None:
    """`action` ("pause", "resume" or "delete") on a schedule's deployment: Prefect's pause removes the
    runs it already scheduled, delete those that have not started. Pipeline schedules use it too."""
    with get_client(sync_client=True) as client:
        getattr(client, f"{action}_deployment")(deployment_id)


def pause(name: str, project: str | None = None) -> None:
    """No new runs until resumed; runs it already scheduled are removed."""
    change_deployment(get(name, project).deployment_id, "pause")


def resume(name: str, project: str | None = None) -> None:
    change_deployment(get(name, project).deployment_id, "resume")


def delete(name: str, project: str | None = None) -> None:
    """Delete the schedule, its runs that have not started and the Secret blocks made for it."""
    change_deployment(get(name, project).deployment_id, "delete")
    secret_owners.delete_secrets_of(secret_owners.SCHEDULE, stored_name(project or DEFAULT_PROJECT, name))


@uses_prefect_api
def run(name: str, at: datetime | str | None = None, project: str | None = None) -> Job:
    """Run the schedule's job now (or at `at`), outside its schedule; returns the job."""
    from prefect.states import Scheduled

    from swarmsync.timing import start_time

    when = start_time(at)
    deployment_id = get(name, project).deployment_id
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=when) if when else None,
        )
    return Job(flow_run.id, flow_run)
