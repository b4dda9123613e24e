"""Admission: may this caller run this job on this pool? Asked by every way in that creates
jobs for a caller (the API's job submission, schedule creation and runs) before anything is
created, and asked again by the worker before anything is pulled (`JobRuntime.check`).

    admit(principal, spec, pool)   # PolicyViolation / Forbidden (403) or the job as it will run

The checks, in order: files from the worker host (`inputs[].source`) need `pools:manage`;
the caller may use the pool (`HostPolicy.check_caller`); the job, resolved with the pool's
defaults, fits the pool's policy (`HostPolicy.check`). A refusal is audited.
"""

from __future__ import annotations

from swarmsync.auth import audit
from swarmsync.auth.roles import AuthError, Permission, Principal, authorize
from swarmsync.connection import uses_prefect_api
from swarmsync.policy import HostPolicy, PoolNotFound
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec


@uses_prefect_api
def pool_host_policy(pool: str | None = None) -> HostPolicy:
    """The host policy of `pool` (default: the installation's pool), from its base job template."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    name = pool or get_settings().work_pool
    with get_client(sync_client=True) as client:
        try:
            work_pool = client.read_work_pool(name)
        except ObjectNotFound:
            raise PoolNotFound(f"no work pool named {name!r}; see 'swarmsync pool create'") from None
    return HostPolicy.from_template(work_pool.base_job_template)


def admit(
    principal: Principal, spec: JobSpec | None, pool: str | None = None, *, template: str | None = None,
    action: str = "job.submit", address: str | None = None,
) -> JobSpec | None:
    """The job as it will run on `pool` when `principal` may run it there; raises (403) otherwise.
    `template` (a saved job template's name) stands for `spec` when no spec is given."""
    if spec is None and template:
        from swarmsync.templates import template_spec

        spec = template_spec(template)
    if spec is None:
        return None
    try:
        if any(item.source for item in spec.inputs):
            authorize(principal, Permission.POOLS_MANAGE)
        policy = pool_host_policy(pool)
        policy.check_caller(principal.username, principal.role.value)
        return policy.check(spec)
    except AuthError as exc:
        audit.record(principal.username, action, pool or get_settings().work_pool, "denied", address,
                     why=str(exc), status=exc.status_code)
        raise
