"""/templates: saved job templates (named JobSpecs) over HTTP.

Thin wrappers over `swarmsync.templates`: the API adds who may do it (`schedules:read` /
`schedules:write`) and the audit line, nothing else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from swarmsync import owners, templates
from swarmsync.api.deps import address, check, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Done, TemplateCreate, TemplateOut
from swarmsync.api.secret_checks import checked, hide_jobs
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/templates", tags=["templates"], responses=responses(401, 403))
reader = require(Permission.SCHEDULES_READ)
writer = require(Permission.SCHEDULES_WRITE)

PathName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]


@router.get("", response_model=dict[str, TemplateOut])
def list_templates(principal: Principal = Depends(reader)) -> dict[str, TemplateOut]:
    """Saved job templates by name (secret values are never shown: only their Secret block names, and those
    only to their owners: "(hidden)" for everyone else)."""
    fields = {name: t.job_fields() for name, t in templates.list_templates().items()}
    hide_jobs(principal, list(fields.values()))
    return {name: TemplateOut.model_validate(job) for name, job in fields.items()}


@router.post("", response_model=TemplateOut, status_code=201, responses=responses(400, 422))
def save_template(body: TemplateCreate, request: Request, principal: Principal = Depends(writer)) -> TemplateOut:
    """Save (or replace) a named job template."""
    if any(item.source for item in body.spec.inputs):
        check(request, principal, Permission.POOLS_MANAGE)
    fields = body.spec.model_dump(exclude_defaults=True)
    if "tags" in fields:  # who submits is recorded when a job is submitted, never taken from a template
        fields["tags"] = owners.without_user_tags(fields["tags"])
    checked(request, principal, body.spec)  # only secrets the caller may use
    spec = templates.save_template(
        body.name, fields.pop("image"), fields.pop("command", None), secret_env=body.secret_env or None,
        owner=principal.username, **fields,
    )
    audit.record(principal.username, "template.save", body.name, address=address(request), image=spec.image)
    return TemplateOut.model_validate(spec.public_dict())


@router.delete("/{name}", response_model=Done, responses=responses(404))
def delete_template(name: PathName, request: Request, principal: Principal = Depends(writer)) -> Done:
    templates.delete_template(name)
    audit.record(principal.username, "template.delete", name, address=address(request))
    return Done(name=name, done="delete")
