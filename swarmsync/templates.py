"""Saved job templates: named JobSpecs kept as `JobTemplate` blocks in Prefect, with
their secret values in Prefect `Secret` blocks. Used by submit and by schedules."""

from __future__ import annotations

import re
from typing import Any

from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

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
    return f"swarmsync-template-{template}-{env_name.lower().replace('_', '-')}"


@uses_prefect_api
def save_template(
    name: str, image: str, command: list[str] | str | None = None, *,
    secret_env: dict[str, str] | None = None, **options: Any,
) -> JobSpec:
    """Save (or replace) a named job template; returns the JobSpec it stands for.

    The job is validated first. `secret_env` values go to Secret blocks named
    `swarmsync-template-<name>-<var>`; the template keeps only those names.
    """
    check_name(name)
    spec = JobSpec(image=image, command=command, **options)
    secrets = dict(spec.secrets)
    for env_name, value in (secret_env or {}).items():
        block_name = _secret_block_name(name, env_name)
        Secret(value=value).save(block_name, overwrite=True)
        secrets[env_name] = block_name
    spec = JobSpec(**{**spec.model_dump(exclude_defaults=True), "secrets": secrets})
    data = spec.model_dump(mode="json", exclude_defaults=True)
    template = JobTemplate(
        **{k: v for k, v in data.items() if k in _TEMPLATE_FIELDS},
        options={k: v for k, v in data.items() if k not in _TEMPLATE_FIELDS},
    )
    template.save(name, overwrite=True)
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
    with get_client(sync_client=True) as client:
        for env_name, block_name in template.secrets.items():
            if block_name == _secret_block_name(name, env_name):
                try:
                    client.delete_block_document(client.read_block_document_by_name(block_name, "secret").id)
                except ObjectNotFound:
                    pass
        document = client.read_block_document_by_name(name, JobTemplate.get_block_type_slug())
        client.delete_block_document(document.id)
