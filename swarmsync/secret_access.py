"""The secrets rule with what it needs to read: saved templates and schedules.

`check_secrets(principal, spec)` is what the API calls on every resolved spec (jobs,
templates, schedules) before anything is created; the rule itself and the owners table
are in `swarmsync/auth/secret_owners.py`.
"""

from __future__ import annotations

from swarmsync.auth import secret_owners
from swarmsync.auth.roles import Principal
from swarmsync.connection import uses_prefect_api
from swarmsync.spec import JobSpec


@uses_prefect_api
def saved_job(kind: str, ref: str | None) -> JobSpec | None:
    """The job of template or schedule `ref` (its stored name, `<project>--<name>`) as saved now; None when
    it is gone."""
    if not ref:
        return None
    if kind == secret_owners.TEMPLATE:
        from swarmsync.templates import load_stored

        template = load_stored(ref)
        return JobSpec(**template.job_fields()) if template is not None else None
    if kind == secret_owners.SCHEDULE:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        from swarmsync.jobs import JOB_FLOW_NAME

        with get_client(sync_client=True) as client:
            try:
                job = client.read_deployment_by_name(f"{JOB_FLOW_NAME}/{ref}").parameters.get("job")
            except ObjectNotFound:
                return None
        return JobSpec(**job) if job else None
    return None


def check_secrets(principal: Principal, spec: JobSpec, context: tuple[str, str] | None = None) -> None:
    """403 (Forbidden) unless `principal` may use every Secret block in `spec.secrets`;
    `context`: the (kind, name) of the template or schedule being run, when known."""
    secret_owners.check_secrets(principal, spec, saved_job, context)
