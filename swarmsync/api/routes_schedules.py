"""/schedules: named recurring jobs (the Hibernator) over HTTP.

Thin wrappers over `swarmsync.deployments.schedules`: the API adds who may do it
(`schedules:read` / `schedules:write`) and the audit line, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from swarmsync import admission, owners, templates
from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Done, JobOut, RunAt, ScheduleAdd, ScheduleCreate, ScheduleOut
from swarmsync.api.secret_checks import checked, hidden_rows, hide_jobs
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal
from swarmsync.deployments import schedules
from swarmsync.spec import JobSpec

router = APIRouter(prefix="/schedules", tags=["schedules"], responses=responses(401, 403))
reader = require(Permission.SCHEDULES_READ)
writer = require(Permission.SCHEDULES_WRITE)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"  # as swarmsync.templates.check_name: also safe in any URL
PathName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]


def schedule_out(job: schedules.RecurringJob, principal: Principal) -> ScheduleOut:
    """The schedule as the API shows it to `principal` (other users' Secret block names hidden)."""
    data = {**asdict(job), "deployment": job.deployment, "next_runs": job.next_runs}
    hide_jobs(principal, [data["job"], *(entry["job"] for entry in data["schedules"])])
    return ScheduleOut.model_validate(data)


@router.get("", response_model=list[ScheduleOut])
def list_schedules(principal: Principal = Depends(reader)) -> list[ScheduleOut]:
    """Every named schedule with its job, overlap policy and next run times."""
    return [schedule_out(job, principal) for job in schedules.list_schedules()]


@router.get("/{name}", response_model=ScheduleOut, responses=responses(404))
def get_schedule(name: PathName, principal: Principal = Depends(reader)) -> ScheduleOut:
    return schedule_out(schedules.get(name), principal)


@router.post("", response_model=ScheduleOut, status_code=201, responses=responses(400, 404, 422))
def create_schedule(body: ScheduleCreate, request: Request, principal: Principal = Depends(writer)) -> ScheduleOut:
    """Create a named schedule; its runs record the caller as their submitter (tag `swarmsync.user:NAME`)."""
    admission.admit(principal, body.spec, body.pool, template=body.template, action="schedule.create",
                    address=address(request))  # the job as it will run, with a template, against the pool
    spec = None if body.spec is None else body.spec.model_copy(
        update={"tags": [*owners.without_user_tags(body.spec.tags), owners.user_tag(principal.username)]})
    if spec is not None or body.template:  # only secrets the caller may use, on the resolved spec
        checked(request, principal, spec if spec is not None else templates.template_spec(body.template),
                template=body.template if spec is None else None)
    job = schedules.create(
        body.name, spec, cron=body.cron, every=body.every, rrule=body.rrule, timezone=body.timezone,
        start=body.start, template=body.template, overlap=body.overlap, pool=body.pool, queue=body.queue,
        secret_env=body.secret_env or None, paused=body.paused, owner=principal.username,
    )
    audit.record(principal.username, "schedule.create", body.name, address=address(request),
                 cron=body.cron, every=body.every, rrule=body.rrule, overlap=body.overlap)
    return schedule_out(job, principal)


@router.post("/{name}/add", response_model=ScheduleOut, status_code=201, responses=responses(400, 404, 422))
def add_schedule(name: PathName, body: ScheduleAdd, request: Request,
                 principal: Principal = Depends(writer)) -> ScheduleOut:
    """Add another schedule (cron, interval or RRule) to the named schedule."""
    overrides: dict[str, Any] = {"command": body.command} if body.command is not None else {}
    if body.env:
        overrides["env"] = body.env
    checked(request, principal, schedules.job_with(name, **overrides), schedule=name)  # with this command and env
    job = schedules.add(name, cron=body.cron, every=body.every, rrule=body.rrule, timezone=body.timezone,
                        start=body.start, active=body.active, **overrides)
    audit.record(principal.username, "schedule.add", name, address=address(request),
                 cron=body.cron, every=body.every, rrule=body.rrule)
    return schedule_out(job, principal)


def _change(action: str, apply: Callable[[str], Any]) -> Callable[..., Done]:
    def endpoint(name: PathName, request: Request, principal: Principal = Depends(writer)) -> Done:
        apply(name)
        audit.record(principal.username, f"schedule.{action}", name, address=address(request))
        return Done(name=name, done=action)

    endpoint.__name__ = f"{action}_schedule"
    endpoint.__doc__ = f"{action.title()} the named schedule."
    return endpoint


router.post("/{name}/pause", response_model=Done, responses=responses(404))(_change("pause", schedules.pause))
router.post("/{name}/resume", response_model=Done, responses=responses(404))(_change("resume", schedules.resume))
router.delete("/{name}", response_model=Done, responses=responses(404))(_change("delete", schedules.delete))


@router.post("/{name}/run", response_model=JobOut, status_code=201, responses=responses(400, 404))
def run_schedule(name: PathName, request: Request, body: RunAt | None = None,
                 principal: Principal = Depends(writer)) -> JobOut:
    """Run the schedule's job now (or at `at`), outside its schedule: as the caller, so the pool's policy
    is checked for the caller (403)."""
    recurring = schedules.get(name)
    admission.admit(principal, JobSpec(**recurring.job), recurring.pool, action="schedule.run",
                    address=address(request))
    job = schedules.run(name, at=body.at if body else None)
    audit.record(principal.username, "schedule.run", name, address=address(request), job=job.id)
    return hidden_rows(principal, [JobOut.from_flow_run(job.flow_run())])[0]
