"""/schedules: named recurring jobs (the Hibernator) over HTTP.

Thin wrappers over `swarmsync.deployments.schedules`: the API adds who may do it and the audit
line, nothing else. Names are per project (`?project=NAME`, default: the default project); a
schedule of a project the caller is not a member of is a 404. Pausing, resuming, deleting,
adding to and running a schedule is for its owner, the project's maintainers and admins; every
job it will run is admitted first (swarmsync.admission) on its final spec.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from swarmsync import templates
from swarmsync.api.deps import address
from swarmsync.api.errors import responses
from swarmsync.api.project_access import listed_projects
from swarmsync.api.schedule_access import PathName, ProjectQuery, ScheduleKind, reader, writer
from swarmsync.api.schemas import JobOut, RunAt, ScheduleAdd, ScheduleCreate, ScheduleOut
from swarmsync.api.secret_checks import admitted, hidden_rows, hide_jobs
from swarmsync.auth import audit
from swarmsync.auth.roles import Principal
from swarmsync.deployments import schedules
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.spec import JobSpec

router = APIRouter(prefix="/schedules", tags=["schedules"], responses=responses(401, 403))
JOB_SCHEDULES = ScheduleKind("schedule", "schedule", schedules.get, schedules.ScheduleNotFound)
readable, changeable = JOB_SCHEDULES.readable, JOB_SCHEDULES.changeable


def schedule_out(job: schedules.RecurringJob, principal: Principal) -> ScheduleOut:
    """The schedule as the API shows it to `principal` (other users' Secret block names hidden)."""
    data = {**asdict(job), "deployment": job.deployment, "next_runs": job.next_runs}
    hide_jobs(principal, [data["job"], *(entry["job"] for entry in data["schedules"])])
    return ScheduleOut.model_validate(data)


@router.get("", response_model=list[ScheduleOut])
def list_schedules(project: str | None = Query(None, max_length=64, description="Only this project's"),
                   principal: Principal = Depends(reader)) -> list[ScheduleOut]:
    """The named schedules of the caller's projects (admins: all) with their job, overlap policy and next
    run times."""
    scope = listed_projects(principal, project)
    return [schedule_out(job, principal) for job in schedules.list_schedules(scope)]


@router.get("/{name}", response_model=ScheduleOut, responses=responses(404))
def get_schedule(name: PathName, project: ProjectQuery = DEFAULT_PROJECT,
                 principal: Principal = Depends(reader)) -> ScheduleOut:
    return schedule_out(readable(principal, name, project), principal)


@router.post("", response_model=ScheduleOut, status_code=201, responses=responses(400, 404, 409, 422))
def create_schedule(body: ScheduleCreate, request: Request, principal: Principal = Depends(writer)) -> ScheduleOut:
    """Create a named schedule in `project`; its runs record the caller as their owner and the project
    (tags `swarmsync.user:NAME`, `swarmsync.project:NAME`). The name taken in the project: 409."""
    project = body.project or DEFAULT_PROJECT
    if body.spec is None and not body.template:
        raise schedules.ScheduleError("give the job: a `spec` or a saved `template`")
    spec = body.spec if body.spec is not None else templates.template_spec(body.template, project=project)
    admitted(request, principal, spec, project=project, pool=body.pool,
             template=body.template if body.spec is None else None, secret_env=body.secret_env,
             action="schedule.create")  # the job as it will run, with its secret_env, against the pool
    job = schedules.create(
        body.name, body.spec, cron=body.cron, every=body.every, rrule=body.rrule, timezone=body.timezone,
        start=body.start, template=body.template if body.spec is None else None, overlap=body.overlap,
        pool=body.pool, queue=body.queue, secret_env=body.secret_env or None, paused=body.paused,
        owner=principal.username, project=project,
    )
    audit.record(principal.username, "schedule.create", f"{project}/{body.name}", address=address(request),
                 cron=body.cron, every=body.every, rrule=body.rrule, overlap=body.overlap)
    return schedule_out(job, principal)


@router.post("/{name}/add", response_model=ScheduleOut, status_code=201, responses=responses(400, 404, 422))
def add_schedule(name: PathName, body: ScheduleAdd, request: Request, project: ProjectQuery = DEFAULT_PROJECT,
                 principal: Principal = Depends(writer)) -> ScheduleOut:
    """Add another schedule (cron, interval or RRule) to the named schedule; the job it will run (with its
    own command and env) is admitted first, for the caller, on the schedule's pool."""
    recurring = changeable(principal, name, project)
    overrides: dict[str, Any] = {"command": body.command} if body.command is not None else {}
    if body.env:
        overrides["env"] = body.env
    admitted(request, principal, schedules.job_with(name, project, **overrides), project=project,
             pool=recurring.pool, schedule=name, action="schedule.add")
    job = schedules.add(name, cron=body.cron, every=body.every, rrule=body.rrule, timezone=body.timezone,
                        start=body.start, active=body.active, project=project, **overrides)
    audit.record(principal.username, "schedule.add", f"{project}/{name}", address=address(request),
                 cron=body.cron, every=body.every, rrule=body.rrule)
    return schedule_out(job, principal)


JOB_SCHEDULES.add_change_routes(router, schedules.pause, schedules.resume, schedules.delete)


@router.post("/{name}/run", response_model=JobOut, status_code=201, responses=responses(400, 404))
def run_schedule(name: PathName, request: Request, body: RunAt | None = None,
                 project: ProjectQuery = DEFAULT_PROJECT, principal: Principal = Depends(writer)) -> JobOut:
    """Run the schedule's job now (or at `at`), outside its schedule. It runs as the schedule (its owner and
    secrets), so only those who may change it may; the job is admitted for the caller on its pool (403)."""
    recurring = changeable(principal, name, project)
    admitted(request, principal, JobSpec(**recurring.job), project=project, pool=recurring.pool, schedule=name,
             action="schedule.run")
    job = schedules.run(name, at=body.at if body else None, project=project)
    audit.record(principal.username, "schedule.run", f"{project}/{name}", address=address(request), job=job.id)
    return hidden_rows(principal, [JobOut.from_flow_run(job.last_read())])[0]  # as created
