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

Prefect's own schedule objects work too:
`schedules.create("x", "busybox", "date", schedules=[Cron("0 9 * * 1", timezone="Europe/Berlin",
parameters={"env": {"DAY": "monday"}})])`, where `parameters` are JobSpec overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
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
from swarmsync.jobs import JOB_FLOW_NAME, Job, prepare_spec
from swarmsync.settings import get_settings
from swarmsync.spec import SCHEDULE_TAG, JobSpec
from swarmsync.templates import check_name
from swarmsync.timing import aware, parse_duration

__all__ = [
    "Cron", "Interval", "RRule", "RecurringJob", "ScheduleError", "ScheduleNotFound",
    "add", "create", "delete", "get", "job_with", "list_schedules", "pause", "resume", "run",
]



class ScheduleNotFound(LookupError):
    """No schedule with that name."""


@dataclass
class ScheduleEntry:
    """One Prefect schedule of a recurring job."""

    id: UUID
    description: str
    active: bool
    job: dict[str, Any] | None  # its own job parameter, if it overrides the deployment's
    next_runs: list[datetime] = field(default_factory=list)


@dataclass
class RecurringJob:
    """A named schedule: the job, where it runs, how overlaps are handled, when it runs next."""

    name: str
    deployment_id: UUID
    pool: str | None
    overlap: str
    paused: bool
    job: dict[str, Any]
    schedules: list[ScheduleEntry]

    @property
    def deployment(self) -> str:
        return f"{JOB_FLOW_NAME}/{self.name}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecurringJob:
        """From the API's JSON (`GET /schedules/{name}`), so remote and local callers see the same object."""
        entries = [ScheduleEntry(id=UUID(str(e["id"])), description=e["description"], active=e["active"],
                                 job=e.get("job"), next_runs=[_when(t) for t in e.get("next_runs") or []])
                   for e in data.get("schedules") or []]
        return cls(name=data["name"], deployment_id=UUID(str(data["deployment_id"])), pool=data.get("pool"),
                   overlap=data["overlap"], paused=bool(data["paused"]), job=data.get("job") or {},
                   schedules=entries)

    @property
    def next_runs(self) -> list[datetime]:
        if self.paused:
            return []
        return sorted(t for s in self.schedules if s.active for t in s.next_runs)[:3]


def _when(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


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
    return RecurringJob(
        name=deployment.name, deployment_id=deployment.id, pool=deployment.work_pool_name,
        overlap=overlap_policy(limit.limit if limit else None, deployment.concurrency_options),
        paused=bool(deployment.paused), job=deployment.parameters.get("job", {}), schedules=entries,
    )


async def _read(client, name: str) -> DeploymentResponse:
    try:
        deployment = await client.read_deployment_by_name(f"{JOB_FLOW_NAME}/{name}")
    except ObjectNotFound:
        raise ScheduleNotFound(f"no schedule named {name!r}; see 'swarmsync schedule list'") from None
    if SCHEDULE_TAG not in deployment.tags:
        raise ScheduleNotFound(f"{JOB_FLOW_NAME}/{name} is a pool's job deployment, not a schedule")
    return deployment


@uses_prefect_api
def create(
    name: str, image: str | JobSpec | None = None, command: list[str] | str | None = None, *,
    cron: str | None = None, every: str | float | timedelta | None = None, rrule: str | None = None,
    timezone: str | None = None, start: datetime | str | None = None, schedules: list[Schedule] | None = None,
    template: str | None = None, overlap: str = "allow", pool: str | None = None, queue: str | None = None,
    secret_env: dict[str, str] | None = None, paused: bool = False, owner: str | None = None, **options: Any,
) -> RecurringJob:
    """Create a recurring job NAME (refused if it exists: delete it first or `add` to it).

    When: one of `cron`, `every` ('15m', seconds, timedelta; `start` anchors it) or
    `rrule`, with an IANA `timezone`; and/or `schedules`, Prefect `Cron`/`Interval`/
    `RRule` objects whose `parameters` are JobSpec overrides. What: `image` and `command`
    (with JobSpec options) or a saved `template`. `overlap`: allow, skip or queue.
    `secret_env` values become Secret blocks recorded as `owner`'s, deleted with the schedule.
    """
    from swarmsync.deployments.job_deployment import ensure_job_deployment

    check_name(name, "schedule")
    limit, concurrency = overlap_options(overlap)
    spec = prepare_spec(image, command, secret_env, options, template, owner=owner, kind=secret_owners.SCHEDULE,
                        ref=name)
    wanted = [s for s in [_schedule_from_options(cron, every, rrule, timezone, start)] if s]
    wanted += [s for s in schedules or []]
    if not wanted:
        raise ScheduleError("say when: give a cron expression, an interval (every) or an RRule")
    creates = [_deployment_schedule(s, spec) for s in wanted]
    pool = pool or get_settings().work_pool

    async def make() -> None:
        async with get_client() as client:
            try:
                existing = await client.read_deployment_by_name(f"{JOB_FLOW_NAME}/{name}")
            except ObjectNotFound:
                existing = None
            if existing is not None:
                what = "a schedule" if SCHEDULE_TAG in existing.tags else "a pool's job deployment"
                raise ScheduleError(f"{name!r} is already {what} ({JOB_FLOW_NAME}/{name}); "
                                    "pick another name (or delete the schedule first)")
            await ensure_job_deployment(
                client, pool, name=name, concurrency_limit=limit, concurrency_options=concurrency,
                parameters={"job": spec.model_dump(mode="json", exclude_defaults=True)},
                schedules=creates, paused=paused, work_queue_name=queue,
                tags=["swarmsync", SCHEDULE_TAG, f"{SCHEDULE_TAG}:{name}", *spec.tags],  # the runs' names say it
                description=f"SwarmSync schedule {name}: {spec.image} {spec.display_command()}",
            )

    anyio.run(make)
    return get(name)


@uses_prefect_api
def add(
    name: str, *, cron: str | None = None, every: str | float | timedelta | None = None,
    rrule: str | None = None, timezone: str | None = None, start: datetime | str | None = None,
    active: bool = True, **overrides: Any,
) -> RecurringJob:
    """Add another schedule to NAME; `overrides` (JobSpec fields: command, env, ...) give it
    its own job parameter, as Prefect's per-schedule parameters."""
    schedule = _schedule_from_options(cron, every, rrule, timezone, start, overrides)
    if schedule is None:
        raise ScheduleError("say when: give a cron expression, an interval (every) or an RRule")
    schedule = dataclasses.replace(schedule, active=active)

    async def make() -> None:
        async with get_client() as client:
            deployment = await _read(client, name)
            base = JobSpec(**deployment.parameters["job"])
            await client.create_deployment_schedules(deployment.id, [_deployment_schedule(schedule, base)])

    anyio.run(make)
    return get(name)


@uses_prefect_api
def job_with(name: str, **overrides: Any) -> JobSpec:
    """The job schedule NAME runs with these JobSpec overrides, as `add(name, ..., **overrides)`
    would give its new schedule (the API checks its secrets before adding)."""
    async def read() -> DeploymentResponse:
        async with get_client() as client:
            return await _read(client, name)

    base = JobSpec(**anyio.run(read).parameters["job"])
    return _merged(base, overrides) if overrides else base


@uses_prefect_api
def get(name: str) -> RecurringJob:
    async def read() -> DeploymentResponse:
        async with get_client() as client:
            return await _read(client, name)

    return _to_recurring(anyio.run(read))


@uses_prefect_api
def list_schedules() -> list[RecurringJob]:
    """All recurring jobs, by name."""
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[SCHEDULE_TAG]))
        )
    return sorted((_to_recurring(d) for d in deployments), key=lambda r: r.name)


@uses_prefect_api
def pause(name: str) -> None:
    """No new runs until resumed; runs it already scheduled are removed."""
    deployment_id = get(name).deployment_id
    with get_client(sync_client=True) as client:
        client.pause_deployment(deployment_id)


@uses_prefect_api
def resume(name: str) -> None:
    deployment_id = get(name).deployment_id
    with get_client(sync_client=True) as client:
        client.resume_deployment(deployment_id)


@uses_prefect_api
def delete(name: str) -> None:
    """Delete the schedule, its runs that have not started and the Secret blocks made for it."""
    deployment_id = get(name).deployment_id
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)
    secret_owners.delete_secrets_of(secret_owners.SCHEDULE, name)


@uses_prefect_api
def run(name: str, at: datetime | str | None = None) -> Job:
    """Run the schedule's job now (or at `at`), outside its schedule; returns the job."""
    from prefect.states import Scheduled

    from swarmsync.timing import start_time

    when = start_time(at)
    deployment_id = get(name).deployment_id
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=when) if when else None,
        )
    return Job(flow_run.id, flow_run)
