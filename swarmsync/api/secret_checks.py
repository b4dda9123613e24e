"""The API's side of admission (swarmsync/admission.py) and of the secrets rule
(swarmsync/auth/secret_owners.py): admit the resolved spec of a job, template or schedule
before anything is created (403/404, audited), and hide Secret block names the caller does
not own in what the API returns."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from fastapi import Request

from swarmsync import admission
from swarmsync.api.deps import address
from swarmsync.auth import secret_owners
from swarmsync.auth.roles import Principal
from swarmsync.jobs import JobRow
from swarmsync.owners import stored_name
from swarmsync.spec import JobSpec, JobSpecError


def unhide(spec: JobSpec, template: str | None, project: str | None = None) -> JobSpec:
    """A spec made from a template read through the API carries HIDDEN for the template's
    secrets the caller may not see: take them from the saved template (422 without one)."""
    hidden = [var for var, block in spec.secrets.items() if block == secret_owners.HIDDEN]
    if not hidden:
        return spec
    saved: dict[str, str] = {}
    if template:
        from swarmsync.templates import load_template

        saved = dict(load_template(template, project).secrets)
    missing = [var for var in hidden if var not in saved]
    if missing:
        raise JobSpecError(f"the secret(s) {', '.join(missing)} name a hidden Secret block: submit with the "
                           "template they come from (its name in `template`), or name a block of your own")
    return spec.model_copy(update={"secrets": {**spec.secrets, **{var: saved[var] for var in hidden}}})


def admitted(request: Request, principal: Principal, spec: JobSpec, *, project: str, pool: str | None = None,
             template: str | None = None, schedule: str | None = None, secret_env: dict[str, str] | None = None,
             action: str = "job.submit") -> JobSpec:
    """`spec` with hidden secrets resolved, once `principal` may run it (with `secret_env` merged in) on
    `pool` in `project` (`admission.admit`, audited); `template`/`schedule`: the one of `project` being run
    (its own secrets serve it when it runs unchanged)."""
    spec = unhide(spec, template, project)
    context = (secret_owners.TEMPLATE, stored_name(project, template)) if template else (
        (secret_owners.SCHEDULE, stored_name(project, schedule)) if schedule else None)
    admission.admit(principal, spec, pool, project=project, new_secrets=list(secret_env or {}), context=context,
                    action=action, address=address(request))
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
    return [dataclasses.replace(row, flow_run=row.flow_run.model_copy(update={"parameters": params}))
            for row, params in out]
