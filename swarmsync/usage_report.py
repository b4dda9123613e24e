"""Jobs' measured use summed per user, project, pool or image, and each project's monthly CPU-hours budget.

The rows are `job_usage` (one per finished job, written with its archive index row from the manifest's
`usage`: swarmsync/usage.py measures, swarmsync/archive/index.py stores). A user sums only the projects
they are a member of (admins: all); naming another project is a 404, as for its jobs. A budget counts
the CPU seconds of the project's jobs that finished this calendar month (UTC); past it, admission refuses
new jobs of the project until the month ends (jobs already running finish).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Permission, Principal, authorize
from swarmsync.db import JobUsage, Project, session_scope
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.policy import PolicyViolation

GROUPS = {"user": JobUsage.owner, "project": JobUsage.project, "pool": JobUsage.pool, "image": JobUsage.image}


class BudgetExceeded(PolicyViolation):
    """The project used its month's CPU-hours: HTTP 403 through the API, with when it resets."""


@dataclass
class UsageSum:
    """One group's sum (`key`: the user, project, pool or image; None: not recorded, e.g. no user)."""

    key: str | None
    jobs: int
    cpu_seconds: float
    memory_peak_bytes: int  # the largest single job's peak
    block_read_bytes: int
    block_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    wall_seconds: float


def summarize(principal: Principal | None, by: str = "project", project: str | None = None,
              user: str | None = None, since: datetime | None = None) -> list[UsageSum]:
    """Sums of the jobs `principal` may read (None: the server host's own, all), grouped `by`, largest CPU first."""
    if by not in GROUPS:
        raise ValueError(f"usage cannot be summed by {by!r}: use one of {', '.join(GROUPS)}")
    if principal is not None:
        authorize(principal, Permission.JOBS_READ)
    if project is not None:
        projects.check_read(principal, project, projects.ProjectNotFound(
            f"no project named {project!r} that {principal.username if principal else ''} is a member of"))
    column = GROUPS[by]
    query = select(
        column, func.count(), func.sum(JobUsage.cpu_seconds), func.max(JobUsage.memory_peak_bytes),
        func.sum(JobUsage.block_read_bytes), func.sum(JobUsage.block_write_bytes), func.sum(JobUsage.net_rx_bytes),
        func.sum(JobUsage.net_tx_bytes), func.sum(JobUsage.wall_seconds),
    ).group_by(column)
    visible = projects.readable(principal)
    if visible is not None:
        query = query.where(JobUsage.project.in_(visible))
    if project is not None:
        query = query.where(JobUsage.project == project)
    if user is not None:
        query = query.where(JobUsage.owner == user)
    if since is not None:
        query = query.where(JobUsage.finished_at >= since)
    with session_scope() as session:
        rows = session.execute(query).all()
    sums = [UsageSum(key, jobs, round(cpu or 0.0, 3), int(peak or 0), int(read or 0), int(write or 0), int(rx or 0),
                     int(tx or 0), round(wall or 0.0, 3))
            for key, jobs, cpu, peak, read, write, rx, tx, wall in rows]
    return sorted(sums, key=lambda s: (-s.cpu_seconds, s.key or ""))


# -- budgets ----------------------------------------------------------------------------------------

def month_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The first instant of this calendar month (UTC) and of the next: when a budget resets."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def budget(project: str) -> float | None:
    """The project's monthly CPU-hours budget (None: no cap, or no such project)."""
    with session_scope() as session:
        return session.scalar(select(Project.cpu_hours_budget).where(Project.name == project))


def month_cpu_seconds(project: str, now: datetime | None = None) -> float:
    """CPU seconds of the project's jobs that finished this month."""
    start, _ = month_bounds(now)
    with session_scope() as session:
        used = session.scalar(select(func.sum(JobUsage.cpu_seconds)).where(
            JobUsage.project == project, JobUsage.finished_at >= start))
    return float(used or 0.0)


def check_budget(project: str | None, now: datetime | None = None) -> None:
    """BudgetExceeded when the project has a budget and its jobs used all of it this month."""
    project = project or DEFAULT_PROJECT
    cap = budget(project)
    if cap is None:
        return
    used_hours = month_cpu_seconds(project, now) / 3600
    if used_hours >= cap:
        _, resets = month_bounds(now)
        raise BudgetExceeded(f"project {project} used {_hours(used_hours)} of its {cap:g} CPU-hours this month "
                             f"(resets {resets.date().isoformat()}); an admin may raise it: "
                             f"swarmsync project budget {project} --cpu-hours N")


def _hours(value: float) -> str:
    """10.24 -> '10.2'; a small use keeps two digits: 0.00056 -> '0.00056'."""
    return f"{value:.1f}" if value >= 1 or value == 0 else f"{value:.2g}"


def set_budget(actor: Principal, project: str, cpu_hours: float | None, address: str | None = None) -> None:
    """Set (None: remove) a project's monthly CPU-hours budget; admins only."""
    authorize(actor, Permission.PROJECTS_MANAGE)
    if cpu_hours is not None and cpu_hours < 0:
        raise ValueError("a CPU-hours budget cannot be negative")
    with session_scope() as session:
        row = session.scalar(select(Project).where(Project.name == project))
        if row is None:
            raise projects.ProjectNotFound(f"no project named {project!r}; see 'swarmsync project list'")
        row.cpu_hours_budget = cpu_hours
    audit.record(actor.username, "project.budget", project, address=address)
