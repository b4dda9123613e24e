"""/projects: projects and their members (swarmsync.auth.projects).

Everyone lists the projects they are a member of (admins: all); admins create and delete
projects; a project's maintainers and admins add, change and remove its members. A project
the caller is not a member of is a 404.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Done, MemberOut, MemberSet, ProjectCreate, ProjectOut
from swarmsync.auth import projects
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/projects", tags=["projects"], responses=responses(401, 403))
reader = require(Permission.PROJECTS_READ)
admin = require(Permission.PROJECTS_MANAGE)

ProjectPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
UserPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=list[ProjectOut])
def list_projects(principal: Principal = Depends(reader)) -> list[ProjectOut]:
    """The caller's projects (admins: all), with the caller's role in each."""
    return [ProjectOut(**asdict(p)) for p in projects.list_projects(principal)]


@router.post("", response_model=ProjectOut, status_code=201, responses=responses(400))
def create_project(body: ProjectCreate, request: Request, principal: Principal = Depends(admin)) -> ProjectOut:
    return ProjectOut(**asdict(projects.create_project(principal, body.name, body.description, address(request))))


@router.delete("/{project}", response_model=Done, responses=responses(400, 404))
def delete_project(project: ProjectPath, request: Request, principal: Principal = Depends(admin)) -> Done:
    """Delete a project and its memberships (its jobs, schedules and templates stay, for admins)."""
    projects.delete_project(principal, project, address(request))
    return Done(name=project, done="delete")


@router.get("/{project}/members", response_model=list[MemberOut], responses=responses(404))
def list_members(project: ProjectPath, principal: Principal = Depends(reader)) -> list[MemberOut]:
    return [MemberOut(**asdict(m)) for m in projects.list_members(principal, project)]


@router.put("/{project}/members/{username}", response_model=MemberOut, responses=responses(400, 404))
def set_member(project: ProjectPath, username: UserPath, body: MemberSet, request: Request,
               principal: Principal = Depends(reader)) -> MemberOut:
    """Add a user to the project with a role, or change their role (its maintainers, admins)."""
    return MemberOut(**asdict(projects.set_member(principal, project, username, body.role, address(request))))


@router.delete("/{project}/members/{username}", response_model=Done, responses=responses(400, 404))
def remove_member(project: ProjectPath, username: UserPath, request: Request,
                  principal: Principal = Depends(reader)) -> Done:
    projects.remove_member(principal, project, username, address(request))
    return Done(name=f"{project}/{username}", done="remove")
