"""Who may read and change a named schedule, for job schedules (/schedules) and pipeline schedules
(/pipelines/schedules) alike: reading is for the project's members (others: the kind's not-found, 404),
changing for its owner, the project's maintainers and admins (403, audited); pause, resume and delete are
one route factory over that rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Done
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Permission, Principal
from swarmsync.owners import DEFAULT_PROJECT

reader = require(Permission.SCHEDULES_READ)
writer = require(Permission.SCHEDULES_WRITE)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"  # as swarmsync.templates.check_name: also safe in any URL
PathName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
PROJECT_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
ProjectQuery = Annotated[str, Query(max_length=64, pattern=PROJECT_PATTERN,
                                    description="The schedule's project (default: the default project)")]


@dataclass(frozen=True)
class ScheduleKind:
    """One kind of named schedule: `what` as messages name it, `action` as the audit log does
    ("schedule", "pipeline.schedule"), `get(name, project)` reading it, `not_found` its 404 error."""

    what: str
    action: str
    get: Callable[[str, str], Any]
    not_found: Callable[[str], Exception]

    def readable(self, principal: Principal, name: str, project: str) -> Any:
        """The schedule, when `principal` may read its project; the kind's not-found (404) otherwise."""
        projects.check_read(principal, project, self.not_found(
            f"no {self.what} named {name!r} in project {project}; see 'swarmsync schedule list'"))
        return self.get(name, project)

    def changeable(self, principal: Principal, name: str, project: str) -> Any:
        """The schedule, when `principal` may change it (its owner, a maintainer of its project, an admin)."""
        found = self.readable(principal, name, project)
        projects.check_change(principal, project, found.owner, f"{self.what} {name}")
        return found

    def change_route(self, action: str, apply: Callable[[str, str], Any]) -> Callable[..., Done]:
        """The endpoint of `action` (pause, resume, delete): checked by `changeable`, applied, audited."""

        def endpoint(name: PathName, request: Request, project: ProjectQuery = DEFAULT_PROJECT,
                     principal: Principal = Depends(writer)) -> Done:
            self.changeable(principal, name, project)
            apply(name, project)
            audit.record(principal.username, f"{self.action}.{action}", f"{project}/{name}",
                         address=address(request))
            return Done(name=name, done=action)

        endpoint.__name__ = f"{action}_{self.action.replace('.', '_')}"
        endpoint.__doc__ = f"{action.title()} the named {self.what} (its owner, a maintainer of its project, an admin)."
        return endpoint

    def add_change_routes(self, router: APIRouter, pause: Callable[[str, str], Any],
                          resume: Callable[[str, str], Any], delete: Callable[[str, str], Any]) -> None:
        """POST {name}/pause, POST {name}/resume and DELETE {name} on `router`."""
        router.post("/{name}/pause", response_model=Done, responses=responses(404))(self.change_route("pause", pause))
        router.post("/{name}/resume", response_model=Done, responses=responses(404))(
            self.change_route("resume", resume))
        router.delete("/{name}", response_model=Done, responses=responses(404))(self.change_route("delete", delete))
