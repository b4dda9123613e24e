"""Saved job templates: named JobSpecs kept as `JobTemplate` blocks in Prefect, with
their secret values in Prefect `Secret` blocks. Used by submit and by schedules.

Names are per project: project `data`'s template `nightly` is the block `data--nightly`
(the default project's keeps its bare name; see `swarmsync.owners.stored_name`). The block
records its project and owner; who may replace or delete it is decided by the caller's
rules (`swarmsync.auth.projects.check_change`), never silently: `save_template` refuses to
replace another owner's template unless told it may (`replace_any`)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from swarmsync.auth import secret_owners
from swarmsync.blocks.job_template import JobTemplate
from swarmsync.connection import uses_prefect_api
from swarmsync.errors import ConflictError, NotFoundError
from swarmsync.owners import DEFAULT_PROJECT, stored_name
from swarmsync.prefect_internals import block_from_document
from swarmsync.spec import JobSpec, JobSpecError

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_MAX_NAME = 100
_TEMPLATE_FIELDS = JobTemplate.spec_columns()  # the block's own fields; the other JobSpec fields go in `options`


_RECORD_FIELDS = {"name", "project", "owner"}  # what the API adds to a template's job fields (TemplateOut)


class TemplateNotFound(NotFoundError):
    """No saved job template with that name."""


class TemplateConflict(ConflictError):
    """The name is another owner's template (409): replacing it is never silent."""


def check_name(name: str, what: str = "template") -> str:
    if not _NAME_RE.match(name or "") or "--" in name or len(name) > _MAX_NAME:
        raise JobSpecError(
            f"{what} name {name!r} is not valid: use lowercase letters, digits and single dashes (at most "
            f"{_MAX_NAME}), e.g. 'nightly-report'"
        )
    return name


def _secret_block_name(template: str, env_name: str) -> str:
    """`swarmsync-template-<name>-<var>-<hash>`: readable, and one block per (template, variable).
    The hash of both parts keeps `a` + `B_C` apart from `a-b` + `C` (and `X` from `x`); the
    owners table (secret_owners) refuses a block already recorded for another template."""
    digest = hashlib.sha256(f"{template}\0{env_name}".encode()).hexdigest()[:12]
    return f"swarmsync-template-{template}-{env_name.lower().replace('_', '-')}-{digest}"


def _old_secret_block_name(template: str, env_name: str) -> str:
    """The name before 0.x (could collide): still deleted with its template."""
    return f"swarmsync-template-{template}-{env_name.lower().replace('_', '-')}"


def _project(project: str | None) -> str:
    return project or DEFAULT_PROJECT


def _template_project(template: JobTemplate) -> str:
    return template.project or DEFAULT_PROJECT


@uses_prefect_api
def find_template(name: str, project: str | None = None) -> JobTemplate | None:
    """Project `project`'s template `name`, or None."""
    try:
        return load_template(name, project)
    except TemplateNotFound:
        return None


@uses_prefect_api
def save_template(
    name: str, image: str, command: list[str] | str | None = None, *,
    secret_env: dict[str, str] | None = None, owner: str | None = None, project: str | None = None,
    replace_any: bool = True, **options: Any,
) -> JobSpec:
    """Save (or replace) a named job template of `project`; returns the JobSpec it stands for.

    The job is validated first. `secret_env` values go to Secret blocks named
    `swarmsync-template-<name>-<var>-<hash>`, recorded as `owner`'s; the template keeps
    only those names. `replace_any=False`: a template of that name saved by someone else
    than `owner` is not replaced (TemplateConflict, 409).
    """
    check_name(name)
    project = _project(project)
    existing = find_template(name, project)
    if existing is not None and not replace_any and existing.owner != owner:
        raise TemplateConflict(f"template {name!r} of project {project} is {existing.owner or 'the server host'}'s: "
                               "pick another name (only its owner, a maintainer or an admin may replace it)")
    stored = stored_name(project, name)
    spec = JobSpec(image=image, command=command, **options)
    secrets = dict(spec.secrets)
    blocks = {env_name: _secret_block_name(stored, env_name) for env_name in secret_env or {}}
    taken = {b: row for b, row in secret_owners.owners(blocks.values()).items()
             if row.kind != secret_owners.TEMPLATE or row.ref != stored}
    if taken:
        raise JobSpecError(f"Secret block(s) {sorted(taken)} already belong to something else: rename the variable")
    for env_name, value in (secret_env or {}).items():
        Secret(value=value).save(blocks[env_name], overwrite=True)
        secrets[env_name] = blocks[env_name]
    stale = set(secret_owners.blocks_of(secret_owners.TEMPLATE, stored)) - set(blocks.values()) - set(secrets.values())
    secret_owners.record(blocks.values(), owner, secret_owners.TEMPLATE, stored, project)
    spec = JobSpec(**{**spec.model_dump(exclude_defaults=True), "secrets": secrets})
    data = spec.model_dump(mode="json", exclude_defaults=True)
    template = JobTemplate(
        **{k: v for k, v in data.items() if k in _TEMPLATE_FIELDS},
        options={k: v for k, v in data.items() if k not in _TEMPLATE_FIELDS},
        project=project, owner=owner,
    )
    template.save(stored, overwrite=True)
    secret_owners.delete_blocks(stale)  # variables the replaced template had and this one has not
    return spec


@uses_prefect_api
def load_template(name: str, project: str | None = None) -> JobTemplate:
    """Project `project`'s template `name` (default: the default project's)."""
    project = _project(project)
    missing = TemplateNotFound(f"no job template named {name!r} in project {project}; save one with "
                               f"'swarmsync template save {name} IMAGE ...'")
    try:
        template = JobTemplate.load(stored_name(project, name))
    except ValueError:
        raise missing from None
    if _template_project(template) != project:  # a block saved before projects whose name has '--'
        raise missing
    return template


@uses_prefect_api
def load_stored(stored: str) -> JobTemplate | None:
    """The template saved under block name `stored` (`<project>--<name>`), or None."""
    try:
        return JobTemplate.load(stored)
    except ValueError:
        return None


def template_spec(name: str, command: list[str] | str | None = None, *, project: str | None = None,
                  **overrides: Any) -> JobSpec:
    """The template's JobSpec, with `command` and any JobSpec field overridden."""
    return apply_overrides(load_template(name, project).job_fields(), command, **overrides)


def apply_overrides(fields: dict[str, Any], command: list[str] | str | None = None, **overrides: Any) -> JobSpec:
    """A template's fields with `command` and JobSpec fields overridden; env and secrets are
    extended, not replaced (also used by `swarmsync.Client` for templates read over the API)."""
    fields = {k: v for k, v in fields.items() if k not in _RECORD_FIELDS}
    if command is not None:
        fields["command"] = command
    for key in ("env", "secrets"):
        if key in overrides:
            overrides[key] = {**fields.get(key, {}), **overrides[key]}
    return JobSpec(**{**fields, **overrides})


@uses_prefect_api
def list_templates(projects: list[str] | None = None) -> dict[str, JobTemplate]:
    """Saved templates by stored name (`<project>--<name>`; the default project's by name), of `projects`
    only when given."""
    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type(JobTemplate.get_block_type_slug())
        except ObjectNotFound:
            return {}
    found = {d.name: block_from_document(JobTemplate, d) for d in documents if d.name}
    return {stored: t for stored, t in found.items() if projects is None or _template_project(t) in projects}


def template_name(stored: str, template: JobTemplate) -> str:
    """The name a template has in its project (its block's name without the project's prefix)."""
    project = _template_project(template)
    return stored if project == DEFAULT_PROJECT else stored.removeprefix(f"{project}--")


@uses_prefect_api
def delete_template(name: str, project: str | None = None) -> None:
    """Delete the template and the Secret blocks it made."""
    template = load_template(name, project)
    name = stored_name(_project(project), name)
    made = set(secret_owners.blocks_of(secret_owners.TEMPLATE, name))
    recorded = secret_owners.owners(template.secrets.values())
    old = {block for env_name, block in template.secrets.items()  # made before owners were recorded
           if block == _old_secret_block_name(name, env_name) and block not in recorded}
    if old:  # an old name could be shared with another template (a + B_C, a-b + C): keep those
        old -= {b for other, t in list_templates().items() if other != name for b in t.secrets.values()}
    secret_owners.delete_blocks(made | old)
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name, JobTemplate.get_block_type_slug())
        client.delete_block_document(document.id)
