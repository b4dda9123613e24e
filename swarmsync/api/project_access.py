"""What the routes ask of a caller's projects: which projects a list reads (`listed_projects`), and whether
the caller may read or change one run, a job or a pipeline, by its id (`RunKind`). A project the caller is
not a member of does not exist for them: its runs are a 404, as for no run at all, and listing it lists
nothing. Named schedules have their own rules in `schedule_access`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from swarmsync.auth import projects
from swarmsync.auth.roles import Principal
from swarmsync.run_handle import RunHandle

H = TypeVar("H", bound=RunHandle)


def listed_projects(principal: Principal, project: str | None) -> list[str] | None:
    """The projects a list route reads: the caller's (None: all of them, for admins), or only `project` when
    the request names one; none when the caller may not read it (an empty list, not a 404)."""
    if project is None:
        return projects.readable(principal)
    return [project] if projects.may_read(principal, project) else []


@dataclass(frozen=True)
class RunKind(Generic[H]):
    """One kind of run the API reads by id, named by its handle class (`jobs.Job`, `pipelines.Pipeline`):
    `get(id)` reads the run (its `not_found` error when there is none), messages name it by its `noun`."""

    handle: type[H]

    def readable(self, principal: Principal, run_id: str) -> H:
        """The run, when `principal` may read its project; its not-found (404) otherwise, as for no run."""
        run = self.handle.get(run_id)
        projects.check_read(principal, run.project, self.handle.not_found(f"no {run.noun} with id {run.id}"))
        return run

    def changeable(self, principal: Principal, run_id: str) -> H:
        """The run, when `principal` may change it (its submitter, a maintainer of its project, an admin)."""
        run = self.readable(principal, run_id)
        projects.check_change(principal, run.project, run.submitter, f"{run.noun} {run.id}")
        return run
