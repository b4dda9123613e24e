"""/alerts: a project's alerts (Prefect Automations on its jobs' events, posting to a webhook).

Thin wrappers over `swarmsync.alerts`: the API adds who may do it and the audit line. Members read
their projects' alerts (the webhook URL masked); an operator or maintainer of a project may add one
(on a pool, only one they may use); removing one is for its owner, the project's maintainers and
admins. A project the caller is not in does not exist for them (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from swarmsync import alerts
from swarmsync.admission import pool_host_policy
from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.project_access import listed_projects
from swarmsync.api.schemas import Done, ProjectName, Strict
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Permission, Principal, Role
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.settings import get_settings

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=responses(401, 403))
reader = require(Permission.JOBS_READ)
writer = require(Permission.SCHEDULES_WRITE)  # who may save a project's schedules and templates may add alerts

AlertName = Annotated[str, Field(min_length=1, max_length=63, pattern=alerts.NAME_PATTERN)]
PathName = Annotated[str, Path(min_length=1, max_length=63, pattern=alerts.NAME_PATTERN)]
ProjectQuery = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
                                    description="The alert's project (default: the default project)")]
On = Literal["failed", "timed-out", "oom", "host-lost", "any-final"]


class AlertCreate(Strict):
    name: AlertName
    on: On = Field(description="failed, timed-out, oom, host-lost or any-final (see docs/alerts-and-monitoring.md)")
    webhook: str = Field(min_length=8, max_length=2048, pattern=r"^https?://",
                         description="The URL the alert posts to (stored as its owner's secret; shown masked)")
    project: ProjectName | None = Field(default=None, description="Its project (default: the default project)")
    pool: str | None = Field(default=None, max_length=100, description="Only jobs of this pool")


class DeliveryOut(BaseModel):
    status: Literal["ok", "failed"]
    at: datetime
    reason: str | None = None


class AlertOut(BaseModel):
    name: str
    project: str
    owner: str | None
    on: str
    pool: str | None
    webhook: str = Field(description="masked: no user info, query or token-like last path segment")
    automation_id: str
    enabled: bool
    last_delivery: DeliveryOut | None = None


def alert_out(alert: alerts.Alert) -> AlertOut:
    delivery = alert.delivery
    return AlertOut(name=alert.name, project=alert.project, owner=alert.owner, on=alert.on, pool=alert.pool,
                    webhook=alert.webhook, automation_id=alert.automation_id, enabled=alert.enabled,
                    last_delivery=DeliveryOut(status=delivery.status, at=delivery.at, reason=delivery.reason)
                    if delivery else None)


@router.get("", response_model=list[AlertOut])
def list_alerts(project: str | None = Query(None, max_length=64, description="Only this project's"),
                principal: Principal = Depends(reader)) -> list[AlertOut]:
    """The alerts of the caller's projects (admins: all), each with its last delivery (ok, or failed and why)."""
    scope = listed_projects(principal, project)
    return [alert_out(a) for a in alerts.list_alerts(scope)]


@router.post("", response_model=AlertOut, status_code=201, responses=responses(400, 404, 409, 422))
def add_alert(body: AlertCreate, request: Request, principal: Principal = Depends(writer)) -> AlertOut:
    """Add an alert on the jobs of `project` (and `pool`): an operator or maintainer of the project; on a pool
    only one the caller may use; to a private address only an admin (or anyone with
    SWARMSYNC_ALERT_PRIVATE_URLS). Its webhook block is the caller's secret."""
    project = body.project or DEFAULT_PROJECT
    projects.check_submit(principal, project)
    if body.pool is not None:
        pool_host_policy(body.pool).check_caller(principal.username, principal.role.value, project)
    allow_private = get_settings().alert_private_urls or principal.role == Role.ADMIN
    alert = alerts.create_alert(body.name, body.on, body.webhook, project=project, pool=body.pool,
                                owner=principal.username, allow_private=allow_private)
    audit.record(principal.username, "alert.add", f"{project}/{body.name}", address=address(request),
                 on=body.on, pool=body.pool, webhook=alert.webhook)
    return alert_out(alert)


@router.delete("/{name}", response_model=Done, responses=responses(404))
def remove_alert(name: PathName, request: Request, project: ProjectQuery = DEFAULT_PROJECT,
                 principal: Principal = Depends(writer)) -> Done:
    """Remove an alert (its owner, a maintainer of its project, an admin)."""
    projects.check_read(principal, project, alerts.AlertNotFound(f"no alert named {name!r} in project {project}"))
    alert = alerts.get_alert(name, project)
    projects.check_change(principal, project, alert.owner, f"alert {name}")
    alerts.delete_alert(name, project)
    audit.record(principal.username, "alert.remove", f"{project}/{name}", address=address(request))
    return Done(name=name, done="remove")
