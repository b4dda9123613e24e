"""/templates: saved job templates (named JobSpecs) over HTTP.

Thin wrappers over `swarmsync.templates`: the API adds who may do it and the audit line,
nothing else. Names are per project (`project` in the body, `?project=NAME` on a name,
default: the default project). Members may run a project's templates unchanged; replacing
or deleting one is for its owner, the project's maintainers and admins. Saving under a name
another user's template has is a 409, never a silent replacement.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from swarmsync import admission, owners, templates
from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.project_access import listed_projects
from swarmsync.api.schemas import Done, TemplateCreate, TemplateOut
from swarmsync.api.secret_checks import hide_jobs
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import AuthError, Permission, Principal
from swarmsync.owners import DEFAULT_PROJECT

router = APIRouter(prefix="/templates", tags=["templates"], responses=responses(401, 403))
reader = require(Permission.SCHEDULES_READ)
writer = require(Permission.SCHEDULES_WRITE)

PathName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]
ProjectQuery = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
                                    description="The template's project (default: the default project)")]


def template_out(stored: str, template: templates.JobTemplate, principal: Principal) -> TemplateOut:
    job = template.job_fields()
    hide_jobs(principal, [job])
    return TemplateOut.model_validate({**job, "name": templates.template_name(stored, template),
                                       "project": template.project or DEFAULT_PROJECT, "owner": template.owner})


@router.get("", response_model=dict[str, TemplateOut])
def list_templates(project: str | None = Query(None, max_length=64, description="Only this project's"),
                   principal: Principal = Depends(reader)) -> dict[str, TemplateOut]:
    """Saved job templates of the caller's projects (admins: all), by stored name (`<project>--<name>`; the
    default project's by name). Secret values are never shown: only their Secret block names, and those only
    to their owners ("(hidden)" for everyone else)."""
    scope = listed_projects(principal, project)
    return {stored: template_out(stored, t, principal) for stored, t in templates.list_templates(scope).items()}


@router.post("", response_model=TemplateOut, status_code=201, responses=responses(400, 404, 409, 422))
def save_template(body: TemplateCreate, request: Request, principal: Principal = Depends(writer)) -> TemplateOut:
    """Save a named job template in `project`, or replace one the caller may change (its own; any, for a
    maintainer of the project or an admin). Another user's name: 409."""
    project = body.project or DEFAULT_PROJECT
    admission.admit_saved(principal, body.spec, project=project, new_secrets=list(body.secret_env),
                          address=address(request))  # a member who may submit there, with secrets of its own
    try:
        projects.check_change(principal, project, None, "another user's template")
        replace_any = True  # a maintainer or an admin
    except AuthError:
        replace_any = False
    fields = body.spec.model_dump(exclude_defaults=True)
    if "tags" in fields:  # who submits is recorded when a job is submitted, never taken from a template
        fields["tags"] = owners.without_user_tags(fields["tags"])
    spec = templates.save_template(
        body.name, fields.pop("image"), fields.pop("command", None), secret_env=body.secret_env or None,
        owner=principal.username, project=project, replace_any=replace_any, **fields,
    )
    audit.record(principal.username, "template.save", f"{project}/{body.name}", address=address(request),
                 image=spec.image)
    saved = templates.load_template(body.name, project)
    return template_out(owners.stored_name(project, body.name), saved, principal)


@router.delete("/{name}", response_model=Done, responses=responses(404))
def delete_template(name: PathName, request: Request, project: ProjectQuery = DEFAULT_PROJECT,
                    principal: Principal = Depends(writer)) -> Done:
    """Delete a template (its owner, a maintainer of its project, an admin)."""
    projects.check_read(principal, project, templates.TemplateNotFound(
        f"no job template named {name!r} in project {project}"))
    template = templates.load_template(name, project)
    projects.check_change(principal, project, template.owner, f"template {name}")
    templates.delete_template(name, project)
    audit.record(principal.username, "template.delete", f"{project}/{name}", address=address(request))
    return Done(name=name, done="delete")
