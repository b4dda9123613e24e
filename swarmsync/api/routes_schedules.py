"""/schedules and /templates: the Hibernator over HTTP.

Thin wrappers over `swarmsync.deployments.schedules` and `swarmsync.templates`: the API adds who may
do it (`schedules:read` / `schedules:write`) and the audit line, nothing else.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field

from swarmsync import owners, templates
from swarmsync.api.deps import address, check, require
from swarmsync.api.routes_jobs import job_out
from swarmsync.api.schemas import JobOut, Strict
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal
from swarmsync.deployments import schedules
from swarmsync.spec import JobSpec

router = APIRouter(tags=["schedules"], responses={401: {}, 403: {}})
reader = require(Permission.SCHEDULES_READ)
writer = require(Permission.SCHEDULES_WRITE)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"  # as swarmsync.templates.check_name: also safe in any URL
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
PathName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
SecretEnv = dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=65536)]]


class ScheduleCreate(Strict):
    """A named recurring job: the job (a spec or a saved template) and when it runs."""

    name: Name
    spec: JobSpec | None = Field(default=None, description="The job; or give `template`")
    template: Name | None = Field(default=None, description="A saved job template instead of `spec`")
    cron: Annotated[str, Field(max_length=200)] | None = None
    every: Annotated[str, Field(max_length=50)] | None = Field(default=None, description="e.g. 15m, 1h, 90s")
    rrule: Annotated[str, Field(max_length=2000)] | None = None
    timezone: Annotated[str, Field(max_length=100)] | None = Field(default=None, description="e.g. Europe/Berlin")
    start: datetime | None = Field(default=None, description="Anchor of an interval")
    overlap: Literal["allow", "skip", "queue"] = "allow"
    pool: Annotated[str, Field(max_length=200)] | None = None
    queue: Annotated[str, Field(max_length=200)] | None = None
    paused: bool = False
    secret_env: SecretEnv = Field(default_factory=dict, max_length=100)


Text = Annotated[str, Field(max_length=65536)]


class ScheduleAdd(Strict):
    """Another schedule for an existing named schedule; `command` and `env` give it a job
    parameter of its own (Prefect's per-schedule parameters)."""

    cron: Annotated[str, Field(max_length=200)] | None = None
    every: Annotated[str, Field(max_length=50)] | None = Field(default=None, description="e.g. 15m, 1h, 90s")
    rrule: Annotated[str, Field(max_length=2000)] | None = None
    timezone: Annotated[str, Field(max_length=100)] | None = None
    start: datetime | None = Field(default=None, description="Anchor of an interval")
    active: bool = True
    command: Text | list[Text] | None = Field(default=None, description="This schedule's own command")
    env: dict[Annotated[str, Field(max_length=200)], Text] = Field(default_factory=dict, max_length=100)


class RunAt(Strict):
    at: datetime | None = Field(default=None, description="When to run (default: now)")


class TemplateCreate(Strict):
    name: Name
    spec: JobSpec
    secret_env: SecretEnv = Field(default_factory=dict, max_length=100)


def _schedule_out(job: schedules.RecurringJob) -> dict[str, Any]:
    return {**asdict(job), "deployment": job.deployment, "next_runs": job.next_runs}


@router.get("/schedules", response_model=list[dict[str, Any]])
def list_schedules(principal: Principal = Depends(reader)) -> list[dict[str, Any]]:
    """Every named schedule with its job, overlap policy and next run times."""
    return [_schedule_out(job) for job in schedules.list_schedules()]


@router.get("/schedules/{name}", response_model=dict[str, Any], responses={404: {}})
def get_schedule(name: PathName, principal: Principal = Depends(reader)) -> dict[str, Any]:
    return _schedule_out(schedules.get(name))


@router.post("/schedules", response_model=dict[str, Any], status_code=201, responses={400: {}, 404: {}, 422: {}})
def create_schedule(body: ScheduleCreate, request: Request, principal: Principal = Depends(writer)) -> dict[str, Any]:
    """Create a named schedule; its runs record the caller as their submitter (tag `swarmsync.user:NAME`)."""
    if body.spec is not None and any(item.source for item in body.spec.inputs):
        check(request, principal, Permission.POOLS_MANAGE)  # files from the worker host: admins only
    spec = None if body.spec is None else body.spec.model_copy(
        update={"tags": [*owners.without_user_tags(body.spec.tags), owners.user_tag(principal.username)]})
    job = schedules.create(
        body.name, spec, cron=body.cron, every=body.every, rrule=body.rrule, timezone=body.timezone,
        start=body.start, template=body.template, overlap=body.overlap, pool=body.pool, queue=body.queue,
        secret_env=body.secret_env or None, paused=body.paused,
    )
    audit.record(principal.username, "schedule.create", body.name, address=address(request),
                 cron=body.cron, every=body.every, rrule=body.rrule, overlap=body.overlap)
    return _schedule_out(job)


@router.post("/schedules/{name}/add", response_model=dict[str, Any], status_code=201,
             responses={400: {}, 404: {}, 422: {}})
def add_schedule(name: PathName, body: ScheduleAdd, request: Request,
                 principal: Principal = Depends(writer)) -> dict[str, Any]:
    """Add another schedule (cron, interval or RRule) to the named schedule."""
    overrides: dict[str, Any] = {"command": body.command} if body.command is not None else {}
    if body.env:
        overrides["env"] = body.env
    job = schedules.add(name, cron=body.cron, every=body.every, rrule=body.rrule, timezone=body.timezone,
                        start=body.start, active=body.active, **overrides)
    audit.record(principal.username, "schedule.add", name, address=address(request),
                 cron=body.cron, every=body.every, rrule=body.rrule)
    return _schedule_out(job)


def _change(action: str, apply) -> Any:
    def endpoint(name: PathName, request: Request, principal: Principal = Depends(writer)) -> dict[str, str]:
        apply(name)
        audit.record(principal.username, f"schedule.{action}", name, address=address(request))
        return {"name": name, "done": action}

    endpoint.__name__ = f"{action}_schedule"
    endpoint.__doc__ = f"{action.title()} the named schedule."
    return endpoint


router.post("/schedules/{name}/pause", responses={404: {}})(_change("pause", schedules.pause))
router.post("/schedules/{name}/resume", responses={404: {}})(_change("resume", schedules.resume))
router.delete("/schedules/{name}", responses={404: {}})(_change("delete", schedules.delete))


@router.post("/schedules/{name}/run", response_model=JobOut, status_code=201, responses={400: {}, 404: {}})
def run_schedule(name: PathName, request: Request, body: RunAt | None = None,
                 principal: Principal = Depends(writer)) -> JobOut:
    """Run the schedule's job now (or at `at`), outside its schedule."""
    job = schedules.run(name, at=body.at if body else None)
    audit.record(principal.username, "schedule.run", name, address=address(request), job=job.id)
    return job_out(job.flow_run())


@router.get("/templates", response_model=dict[str, dict[str, Any]])
def list_templates(principal: Principal = Depends(reader)) -> dict[str, dict[str, Any]]:
    """Saved job templates by name (secret values are never shown: only their Secret block names)."""
    return {name: t.job_fields() for name, t in templates.list_templates().items()}


@router.post("/templates", response_model=dict[str, Any], status_code=201, responses={400: {}, 422: {}})
def save_template(body: TemplateCreate, request: Request, principal: Principal = Depends(writer)) -> dict[str, Any]:
    """Save (or replace) a named job template."""
    if any(item.source for item in body.spec.inputs):
        check(request, principal, Permission.POOLS_MANAGE)
    fields = body.spec.model_dump(exclude_defaults=True)
    if "tags" in fields:  # who submits is recorded when a job is submitted, never taken from a template
        fields["tags"] = owners.without_user_tags(fields["tags"])
    spec = templates.save_template(
        body.name, fields.pop("image"), fields.pop("command", None), secret_env=body.secret_env or None, **fields,
    )
    audit.record(principal.username, "template.save", body.name, address=address(request), image=spec.image)
    return spec.public_dict()


@router.delete("/templates/{name}", responses={404: {}})
def delete_template(name: PathName, request: Request, principal: Principal = Depends(writer)) -> dict[str, str]:
    templates.delete_template(name)
    audit.record(principal.username, "template.delete", name, address=address(request))
    return {"name": name, "done": "delete"}
