"""Projects: who may read and change what (as Nomad's namespaces or GitLab's projects).

Every job, schedule, template, Secret block and archive belongs to one project. Users are
members of projects with a role there; admins are admins in every project. A single user
sees no difference: the installation has one default project (`DEFAULT_PROJECT`), and every
new user joins it unless an admin says otherwise (`swarmsync user add --project`).

    viewer      reads the project's jobs, results, files, logs, schedules and templates
    operator    and submits jobs; cancels, re-runs and deletes its own; changes its own
                schedules and templates
    maintainer  and changes everyone's in the project; adds and removes its members

A user's global role caps the project role: a global viewer only reads, whatever the project
says. Objects of a project the caller may not read do not exist for them (404), so their
existence is not leaked. The rules are here (`read_role`, `may_read`, `check_submit`,
`check_change`); the API, the CLI and the Python client all end in them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import func, select

from swarmsync.auth import audit
from swarmsync.auth.roles import Forbidden, Permission, Principal, Role, authorize, parse_choice
from swarmsync.db import Project, ProjectMember, User, session_scope
from swarmsync.errors import InvalidError, NotFoundError

DEFAULT_PROJECT = "default"
# no '--': a project's templates and schedules are stored as `<project>--<name>` (swarmsync.owners)
PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class ProjectRole(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    MAINTAINER = "maintainer"


RANK = {ProjectRole.VIEWER: 0, ProjectRole.OPERATOR: 1, ProjectRole.MAINTAINER: 2}


class ProjectError(InvalidError):
    """A project request that cannot be done as asked (message says why)."""


class ProjectNotFound(NotFoundError):
    """No such project, or none the caller may read (the same answer: existence is not leaked)."""


class MemberNotFound(NotFoundError):
    """No such user to add to a project."""


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    description: str
    created_at: datetime
    role: str | None = None  # the caller's role there (admin: "admin")
    members: int = 0


@dataclass(frozen=True)
class MemberInfo:
    project: str
    username: str
    role: str


def check_project_name(name: str) -> str:
    if not PROJECT_NAME.match(name or "") or len(name) > 64:
        raise ProjectError(f"project name {name!r} is not valid: lowercase letters and digits in words joined by "
                           "single dashes, at most 64 characters, e.g. 'data-team'")
    return name


def parse_project_role(value: str) -> ProjectRole:
    return parse_choice(ProjectRole, value, "project role", ProjectError)


# -- the rules --------------------------------------------------------------------------------

def read_role(principal: Principal, project: str) -> str | None:
    """The principal's effective role in `project`: "admin", maintainer, operator, viewer, or None (not a
    member). The global role caps it: a global viewer is a viewer everywhere."""
    if principal.role == Role.ADMIN:
        return "admin"
    role = principal.projects.get(project)
    if role is None:
        return None
    if principal.role == Role.VIEWER:
        return ProjectRole.VIEWER.value
    return role


def may_read(principal: Principal | None, project: str | None) -> bool:
    """None principal: the server host's own Python API (trusted)."""
    return principal is None or read_role(principal, project or DEFAULT_PROJECT) is not None


def readable(principal: Principal | None) -> list[str] | None:
    """The projects whose objects `principal` may read; None: all of them (admins, the server host)."""
    if principal is None or principal.role == Role.ADMIN:
        return None
    return sorted(principal.projects)


def check_read(principal: Principal | None, project: str | None, not_found: Exception) -> None:
    """Raise `not_found` (a 404 of the object's kind) unless `principal` may read `project`'s objects."""
    if not may_read(principal, project):
        raise not_found


def check_submit(principal: Principal | None, project: str) -> None:
    """Forbidden unless `principal` may create jobs, schedules and templates in `project` (operator or more);
    ProjectNotFound when it is not a member at all."""
    if principal is None:
        return
    role = read_role(principal, project)
    if role is None:
        raise ProjectNotFound(f"no project named {project!r} that {principal.username} is a member of; "
                              "see 'swarmsync project list'")
    if role == ProjectRole.VIEWER.value:
        raise Forbidden(f"{principal.username} is a viewer in project {project}: only operators and maintainers "
                        "may run jobs there")


def check_change(principal: Principal | None, project: str | None, owner: str | None, what: str) -> None:
    """Forbidden unless `principal` may change (cancel, re-run, delete, replace, pause, add to) `what`, an
    object of `project` owned by `owner`: its owner (an operator there), a maintainer of the project, or an
    admin. The caller is assumed to have read it (check_read first: a non-member gets 404)."""
    if principal is None:
        return
    role = read_role(principal, project or DEFAULT_PROJECT)
    if role in ("admin", ProjectRole.MAINTAINER.value):
        return
    if role == ProjectRole.OPERATOR.value and owner is not None and owner == principal.username:
        return
    whose = f"{owner}'s" if owner else "a"
    raise Forbidden(f"{principal.username} may not change {what}: it is {whose}, and only its owner, a maintainer "
                    f"of project {project or DEFAULT_PROJECT} or an admin may")


def check_manage_members(principal: Principal, project: str) -> None:
    if read_role(principal, project) in ("admin", ProjectRole.MAINTAINER.value):
        return
    if read_role(principal, project) is None:
        raise ProjectNotFound(f"no project named {project!r}")
    raise Forbidden(f"{principal.username} may not change the members of project {project}: only its "
                    "maintainers and admins may")


# -- the table --------------------------------------------------------------------------------

def memberships(session, user: User) -> tuple[tuple[str, str], ...]:
    """The user's (project, role) pairs for `Principal.memberships` (admins: none needed, they read all)."""
    if user.role == Role.ADMIN.value:
        return ()
    rows = session.execute(select(Project.name, ProjectMember.role).join(
        ProjectMember, ProjectMember.project_id == Project.id).where(ProjectMember.user_id == user.id)).all()
    return tuple(sorted((name, role) for name, role in rows))


def membership(username: str, project: str) -> tuple[str | None, str | None]:
    """(global role, project role) of `username` now; (None, None) when the user is gone or disabled. The
    worker asks this before a run of a schedule whose owner may have left the project."""
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or user.disabled:
            return None, None
        role = session.scalar(select(ProjectMember.role).join(Project, Project.id == ProjectMember.project_id)
                              .where(Project.name == project, ProjectMember.user_id == user.id))
        return user.role, role


def ensure_default_project() -> None:
    """The default project exists (migration 0007 makes it; an admin may have deleted it)."""
    with session_scope() as session:
        if session.scalar(select(Project.id).where(Project.name == DEFAULT_PROJECT)) is None:
            session.add(Project(name=DEFAULT_PROJECT, description="Every user's, unless an admin says otherwise",
                                created_at=datetime.now(UTC)))


def _project(session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise ProjectNotFound(f"no project named {name!r}; see 'swarmsync project list'")
    return project


def _user(session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise MemberNotFound(f"no user named {username!r}")
    return user


def _membership_row(session, name: str, username: str) -> tuple[Project, User, ProjectMember | None]:
    """Project `name`, user `username` and the user's membership row there (None: not a member)."""
    project = _project(session, name)
    user = _user(session, username)
    row = session.scalar(select(ProjectMember).where(ProjectMember.project_id == project.id,
                                                     ProjectMember.user_id == user.id))
    return project, user, row


def exists(name: str) -> bool:
    with session_scope() as session:
        return session.scalar(select(Project.id).where(Project.name == name)) is not None


def create_project(actor: Principal, name: str, description: str = "", address: str | None = None) -> ProjectInfo:
    authorize(actor, Permission.PROJECTS_MANAGE)
    check_project_name(name)
    with session_scope() as session:
        if session.scalar(select(Project.id).where(Project.name == name)) is not None:
            raise ProjectError(f"a project named {name!r} already exists")
        project = Project(name=name, description=description[:500], created_at=datetime.now(UTC))
        session.add(project)
        session.flush()
        info = ProjectInfo(project.name, project.description, project.created_at, "admin", 0)
    audit.record(actor.username, "project.create", name, address=address)
    return info


def delete_project(actor: Principal, name: str, address: str | None = None) -> None:
    """Delete an empty project's record and memberships (its jobs, schedules and templates stay, readable by
    admins; the default project cannot be deleted)."""
    authorize(actor, Permission.PROJECTS_MANAGE)
    if name == DEFAULT_PROJECT:
        raise ProjectError("the default project cannot be deleted (remove its members instead)")
    with session_scope() as session:
        project = _project(session, name)
        session.execute(ProjectMember.__table__.delete().where(ProjectMember.project_id == project.id))
        session.delete(project)
    audit.record(actor.username, "project.delete", name, address=address)


def list_projects(actor: Principal) -> list[ProjectInfo]:
    """The projects `actor` is a member of (admins: all), with its role there."""
    authorize(actor, Permission.PROJECTS_READ)
    with session_scope() as session:
        counts = dict(session.execute(select(ProjectMember.project_id, func.count()).group_by(
            ProjectMember.project_id)).all())
        out = []
        for project in session.scalars(select(Project).order_by(Project.name)):
            role = read_role(actor, project.name)
            if role is not None:
                out.append(ProjectInfo(project.name, project.description, project.created_at, role,
                                       counts.get(project.id, 0)))
    return out


def list_members(actor: Principal, name: str) -> list[MemberInfo]:
    authorize(actor, Permission.PROJECTS_READ)
    if read_role(actor, name) is None:
        raise ProjectNotFound(f"no project named {name!r}; see 'swarmsync project list'")
    with session_scope() as session:
        project = _project(session, name)
        rows = session.execute(select(User.username, ProjectMember.role).join(
            ProjectMember, ProjectMember.user_id == User.id).where(ProjectMember.project_id == project.id)
            .order_by(User.username)).all()
    return [MemberInfo(name, username, role) for username, role in rows]


def set_member(actor: Principal, name: str, username: str, role: str, address: str | None = None) -> MemberInfo:
    """Add `username` to project `name` with `role`, or change their role there."""
    authorize(actor, Permission.PROJECTS_READ)
    project_role = parse_project_role(role)
    check_manage_members(actor, name)
    with session_scope() as session:
        project, user, row = _membership_row(session, name, username)
        old = row.role if row else None
        if row is None:
            session.add(ProjectMember(project_id=project.id, user_id=user.id, role=project_role.value,
                                      added_at=datetime.now(UTC)))
        else:
            row.role = project_role.value
    audit.record(actor.username, "project.member", f"{name}/{username}", address=address, old=old,
                 new=project_role.value)
    return MemberInfo(name, username, project_role.value)


def remove_member(actor: Principal, name: str, username: str, address: str | None = None) -> None:
    authorize(actor, Permission.PROJECTS_READ)
    check_manage_members(actor, name)
    with session_scope() as session:
        _project_row, _user_row, row = _membership_row(session, name, username)
        if row is None:
            raise ProjectError(f"{username} is not a member of project {name}")
        session.delete(row)
    audit.record(actor.username, "project.remove-member", f"{name}/{username}", address=address)


def join_default(session, user_id: int) -> None:
    """A new user joins the default project as an operator there (their global role caps it: a viewer
    reads only; a viewer made operator later may then submit there)."""
    project = session.scalar(select(Project).where(Project.name == DEFAULT_PROJECT))
    if project is None:
        project = Project(name=DEFAULT_PROJECT, description="Every user's, unless an admin says otherwise",
                          created_at=datetime.now(UTC))
        session.add(project)
        session.flush()
    session.add(ProjectMember(project_id=project.id, user_id=user_id, role=ProjectRole.OPERATOR.value,
                              added_at=datetime.now(UTC)))
