"""A recurring job as the CLI and the API show it (`RecurringJob`, its `ScheduleEntry`s), without Prefect.

`swarmsync.deployments.schedules` builds these from Prefect deployments (and still names them: the same classes);
the CLI builds them from the API's JSON (`RecurringJob.from_dict`), so `swarmsync schedule list` through an API
starts without importing Prefect (docs/benchmarks.md, CLI start)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from swarmsync.owners import DEFAULT_PROJECT, stored_name

JOB_FLOW_NAME = "container-job"  # the job flow: a schedule NAME is its deployment `container-job/NAME`


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
    """A named schedule: the job, where it runs, how overlaps are handled, when it runs next, its project
    and owner (None: made without the API)."""

    name: str
    deployment_id: UUID
    pool: str | None
    overlap: str
    paused: bool
    job: dict[str, Any]
    schedules: list[ScheduleEntry]
    project: str = DEFAULT_PROJECT
    owner: str | None = None

    @property
    def deployment(self) -> str:
        return f"{JOB_FLOW_NAME}/{stored_name(self.project, self.name)}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecurringJob:
        """From the API's JSON (`GET /schedules/{name}`), so remote and local callers see the same object."""
        entries = [ScheduleEntry(id=UUID(str(e["id"])), description=e["description"], active=e["active"],
                                 job=e.get("job"), next_runs=[_when(t) for t in e.get("next_runs") or []])
                   for e in data.get("schedules") or []]
        return cls(name=data["name"], deployment_id=UUID(str(data["deployment_id"])), pool=data.get("pool"),
                   overlap=data["overlap"], paused=bool(data["paused"]), job=data.get("job") or {},
                   schedules=entries, project=data.get("project") or DEFAULT_PROJECT, owner=data.get("owner"))

    @property
    def next_runs(self) -> list[datetime]:
        if self.paused:
            return []
        return sorted(t for s in self.schedules if s.active for t in s.next_runs)[:3]


def _when(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
