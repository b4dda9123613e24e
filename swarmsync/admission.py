"""Admission: the one check every way in makes before it creates a job, schedule or template run
for a caller, on the final resolved spec (template applied, overrides and `secret_env` merged in).

    admit(principal, spec, pool, project=..., new_secrets=..., context=..., action=...)

Submit, template run, `secret_env`, schedule create, schedule add, schedule run, re-run and compose
jobs through the API all end here; the worker asks again before anything is pulled
(`JobRuntime.check`: the pool's policy and, for a run with an owner, that the owner is still a
member of its project who may use the pool).

The checks, in order, each refusal audited:
1. the caller may submit in `project` (an operator or maintainer there; swarmsync.auth.projects);
2. every Secret block the job names is the caller's, or the unchanged template's or schedule's
   being run (`context`); values the caller sends now (`new_secrets`) are the caller's own, and
   count as a change of the job (a template's secrets never go to a command of someone else's);
3. files from the worker host (`inputs[].source`) need `pools:manage`;
4. the caller (with its project) may use the pool (`HostPolicy.check_caller`);
5. the job, resolved with the pool's defaults, fits the pool's policy (`HostPolicy.check`).
6. the project has CPU-hours left this month, if an admin set it a budget
   (`usage_report.check_budget`; also for the server host's own Python API).

Nothing is created before `admit` returns; it returns the job as it will run on the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from swarmsync.auth import audit, projects, secret_owners
from swarmsync.auth.roles import AuthError, Permission, Principal, authorize
from swarmsync.connection import uses_prefect_api
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.policy import HostPolicy, PoolNotFound
from swarmsync.secret_access import check_secrets
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec, JobSpecError
from swarmsync.usage_report import check_budget


@uses_prefect_api
def pool_host_policy(pool: str | None = None) -> HostPolicy:
    """The host policy of `pool` (default: the installation's pool), from its base job template."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    name = pool or get_settings().work_pool
    with get_client(sync_client=True) as client:
        try:
            work_pool = client.read_work_pool(name)
        except (ObjectNotFound, httpx.InvalidURL):  # a name no URL can carry (control characters) names no pool
            raise PoolNotFound(f"no work pool named {name!r}; see 'swarmsync pool create'") from None
    return HostPolicy.from_template(work_pool.base_job_template)


def with_new_secrets(spec: JobSpec, names: Iterable[str]) -> JobSpec:
    """`spec` as it will run once the caller's `secret_env` values are stored: each name then points at a
    new block of the caller's (`secret_owners.NEW_SECRET` stands for it until it exists)."""
    names = list(names)
    if not names:
        return spec
    both = sorted(set(names) & set(spec.env))
    if both:
        raise JobSpecError(f"{both} given both as plain env and as secret_env")
    return spec.model_copy(update={"secrets": {**spec.secrets, **dict.fromkeys(names, secret_owners.NEW_SECRET)}})


def admit(
    principal: Principal | None, spec: JobSpec, pool: str | None = None, *, project: str | None = None,
    new_secrets: Iterable[str] = (), context: tuple[str, str] | None = None, action: str = "job.submit",
    address: str | None = None,
) -> JobSpec:
    """The job as it will run on `pool` when `principal` may run it there in `project`; raises otherwise
    (Forbidden 403, ProjectNotFound 404, PolicyViolation 403). `principal` None: the server host's own
    Python API (trusted): only the pool's policy is checked."""
    if principal is None:
        checked = pool_host_policy(pool).check(spec)
        check_budget(project)
        return checked
    project = project or DEFAULT_PROJECT
    with _audited(principal, action, pool or get_settings().work_pool, address, project):
        _check_caller_may(principal, spec, project, new_secrets, context)
        policy = pool_host_policy(pool)
        policy.check_caller(principal.username, principal.role.value, project)
        checked = policy.check(spec)
        check_budget(project)  # the project's monthly CPU-hours (swarmsync/usage_report.py)
        return checked


def admit_saved(
    principal: Principal, spec: JobSpec, *, project: str | None = None, new_secrets: Iterable[str] = (),
    action: str = "template.save", address: str | None = None,
) -> JobSpec:
    """A job saved to run later on any pool (a template): checks 1-3 (each run is admitted on its pool)."""
    project = project or DEFAULT_PROJECT
    with _audited(principal, action, None, address, project):
        _check_caller_may(principal, spec, project, new_secrets, None)
    return spec


def _check_caller_may(principal: Principal, spec: JobSpec, project: str, new_secrets: Iterable[str],
                      context: tuple[str, str] | None) -> None:
    projects.check_submit(principal, project)
    check_secrets(principal, with_new_secrets(spec, new_secrets), context)
    if any(item.source for item in spec.inputs):
        authorize(principal, Permission.POOLS_MANAGE)


@contextmanager
def _audited(principal: Principal, action: str, target: str | None, address: str | None,
             project: str) -> Iterator[None]:
    try:
        yield
    except (AuthError, projects.ProjectNotFound) as exc:
        status = exc.status_code if isinstance(exc, AuthError) else 404
        audit.record(principal.username, action, target, "denied", address, why=str(exc), status=status,
                     project=project)
        exc.audited = True  # the API's error handler audits 403s not audited yet
        raise
