"""Saved job templates: named JobSpecs kept as `JobTemplate` blocks in Prefect, with
their secret values in Prefect `Secret` blocks. Used by submit and by schedules."""

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
from swarmsync.prefect_internals import block_from_document
from swarmsync.spec import JobSpec, JobSpecError

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TEMPLATE_FIELDS = {"image", "command", "env", "secrets", "cpu", "memory", "pids_limit", "timeout", "tags"}


class TemplateNotFound(LookupError):
    """No saved job template with that name."""


def check_name(name: str, what: str = "template") -> str:
    if not _NAME_RE.match(name or ""):
        raise JobSpecError(
            f"{what} name {name!r} is not valid: use lowercase letters, digits and dashes, e.g. 'nightly-report'"
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


@uses_prefect_api
def save_template(
    name: str, image: str, command: list[str] | str | None = None, *,
    secret_env: dict[str, str] | None = None, owner: str | None = None, **options: Any,
) -> JobSpec:
    """Save (or replace) a named job template; returns the JobSpec it stands for.

    The job is validated first. `secret_env` values go to Secret blocks named
    `swarmsync-template-<name>-<var>-<hash>`, recorded as `owner`'s; the template keeps
    only those names.
    """
    check_name(name)
    spec = JobSpec(image=image, command=command, **options)
    secrets = dict(spec.secrets)
    blocks = {env_name: _secret_block_name(name, env_name) for env_name in secret_env or {}}
    taken = {b: row for b, row in secret_owners.owners(blocks.values()).items()
             if row.kind != secret_owners.TEMPLATE or row.ref != name}
    if taken:
        raise JobSpecError(f"Secret block(s) {sorted(taken)} already belong to something else: rename the variable")
    for env_name, value in (secret_env or {}).items():
        Secret(value=value).save(blocks[env_name], overwrite=True)
        secrets[env_name] = blocks[env_name]
    stale = set(secret_owners.blocks_of(secret_owners.TEMPLATE, name)) - set(blocks.values()) - set(secrets.values())
    secret_owners.record(blocks.values(), owner, secret_owners.TEMPLATE, name)
    spec = JobSpec(**{**spec.model_dump(exclude_defaults=True), "secrets": secrets})
    data = spec.model_dump(mode="json", exclude_defaults=True)
    template = JobTemplate(
        **{k: v for k, v in data.items() if k in _TEMPLATE_FIELDS},
        options={k: v for k, v in data.items() if k not in _TEMPLATE_FIELDS},
    )
    template.save(name, overwrite=True)
    secret_owners.delete_blocks(stale)  # variables the replaced template had and this one has not
    return spec


@uses_prefect_api
def load_template(name: str) -> JobTemplate:
    try:
        return JobTemplate.load(name)
    except ValueError:
        raise TemplateNotFound(
            f"no job template named {name!r}; save one with 'swarmsync template save {name} IMAGE ...'"
        ) from None


def template_spec(name: str, command: list[str] | str | None = None, **overrides: Any) -> JobSpec:
    """The template's JobSpec, with `command` and any JobSpec field overridden."""
    return apply_overrides(load_template(name).job_fields(), command, **overrides)


def apply_overrides(fields: dict[str, Any], command: list[str] | str | None = None, **overrides: Any) -> JobSpec:
    """A template's fields with `command` and JobSpec fields overridden; env and secrets are
    extended, not replaced (also used by `swarmsync.Client` for templates read over the API)."""
    fields = dict(fields)
    if command is not None:
        fields["command"] = command
    for key in ("env", "secrets"):
        if key in overrides:
            overrides[key] = {**fields.get(key, {}), **overrides[key]}
    return JobSpec(**{**fields, **overrides})


@uses_prefect_api
def list_templates() -> dict[str, JobTemplate]:
    """Saved templates by name."""
    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type(JobTemplate.get_block_type_slug())
        except ObjectNotFound:
            return {}
    return {d.name: block_from_document(JobTemplate, d) for d in documents if d.name}


@uses_prefect_api
def delete_template(name: str) -> None:
    """Delete the template and the Secret blocks it made."""
    template = load_template(name)
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
