"""/usage: jobs' measured use summed per user, project, pool or image, and project CPU-hours budgets
(swarmsync.usage_report).

Everyone sums the projects they are a member of (admins: all); a project the caller is not a
member of is a 404. Members read their project's budget; admins set it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from swarmsync import usage_report
from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import BudgetOut, BudgetSet, UsageSumOut
from swarmsync.auth import projects
from swarmsync.auth.roles import Permission, Principal
from swarmsync.timing import parse_duration

router = APIRouter(prefix="/usage", tags=["usage"], responses=responses(401, 403))
reader = require(Permission.JOBS_READ)
admin = require(Permission.PROJECTS_MANAGE)

ProjectPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]


@router.get("", response_model=list[UsageSumOut], responses=responses(400, 404))
def usage(
    by: Literal["user", "project", "pool", "image"] = "project",
    project: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=32, description="A duration back from now: 7d, 12h, 1w")] = None,
    principal: Principal = Depends(reader),
) -> list[UsageSumOut]:
    """Finished jobs' use summed `by` user, project, pool or image (largest CPU first)."""
    start = datetime.now(UTC) - parse_duration(since) if since else None
    sums = usage_report.summarize(principal, by, project=project, user=user, since=start)
    return [UsageSumOut(**asdict(s)) for s in sums]


@router.get("/budgets/{project}", response_model=BudgetOut, responses=responses(404))
def get_budget(project: ProjectPath, principal: Principal = Depends(reader)) -> BudgetOut:
    """The project's monthly CPU-hours budget and what its jobs used of it this month."""
    projects.check_read(principal, project, projects.ProjectNotFound(
        f"no project named {project!r} that {principal.username} is a member of"))
    return _budget(project)


@router.put("/budgets/{project}", response_model=BudgetOut, responses=responses(400, 404))
def set_budget(project: ProjectPath, body: BudgetSet, request: Request,
               principal: Principal = Depends(admin)) -> BudgetOut:
    """Set (null: remove) the project's monthly CPU-hours budget; past it, its new jobs are refused."""
    usage_report.set_budget(principal, project, body.cpu_hours, address(request))
    return _budget(project)


def _budget(project: str) -> BudgetOut:
    _, resets = usage_report.month_bounds()
    return BudgetOut(project=project, cpu_hours=usage_report.budget(project),
                     used_cpu_hours=round(usage_report.month_cpu_seconds(project) / 3600, 4), resets=resets)
