"""The API's side of the secrets rule (swarmsync/auth/secret_owners.py): check the resolved
spec of a job, template or schedule before anything is created (403, audited), and hide
Secret block names the caller does not own in what the API returns."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import Request

from swarmsync.api.deps import denied
from swarmsync.auth import secret_owners
from swarmsync.auth.roles import AuthError, Principal
from swarmsync.jobs import JobRow
from swarmsync.secret_access import check_secrets
from swarmsync.spec import JobSpec, JobSpecError


def unhide(spec: JobSpec, template: str | None) -> JobSpec:
    """A spec made from a template read through the API carries HIDDEN for the template's
    secrets the caller may not see: take them from the saved template (422 without one)."""
    hidden = [var for var, block in spec.secrets.items() if block == secret_owners.HIDDEN]
    if not hidden:
        return spec
    saved: dict[str, str] = {}
    if template:
        from swarmsync.templates import load_template

        saved = dict(load_template(template).secrets)
    missing = [var for var in hidden if var not in saved]
    if missing:
        raise JobSpecError(f"the secret(s) {', '.join(missing)} name a hidden Secret block: submit with the "
                           "template they come from (its name in `template`), or name a block of your own")
    return spec.model_copy(update={"secrets": {**spec.secrets, **{var: saved[var] for var in hidden}}})


def checked(request: Request, principal: Principal, spec: JobSpec, template: str | None = None,
            schedule: str | None = None) -> JobSpec:
    """`spec` with hidden secrets resolved, when `principal` may use every Secret block it names;
    `template`/`schedule`: the one being run (its own secrets serve it when it runs unchanged)."""
    spec = unhide(spec, template)
    context = (secret_owners.TEMPLATE, template) if template else (
        (secret_owners.SCHEDULE, schedule) if schedule else None)
    try:
        check_secrets(principal, spec, context)
    except AuthError as exc:
        denied(request, principal.username, exc)
        raise
    return spec


def hide_jobs(principal: Principal, jobs: list[dict[str, Any] | None]) -> None:
    secret_owners.hide_in_jobs(principal, jobs)


def hidden_rows(principal: Principal, rows: list[JobRow]) -> list[JobRow]:
    """Job rows with the block names `principal` may not see replaced by HIDDEN."""
    out = []
    for row in rows:
        params = copy.deepcopy(row.flow_run.parameters or {})
        out.append((row, params))
    secret_owners.hide_in_jobs(principal, [params.get("job") for _row, params in out])
    return [row.model_copy(update={"flow_run": row.flow_run.model_copy(update={"parameters": params})})
            for row, params in out]
