"""Work pools as SwarmSync sees them: a pool per class of Docker hosts, with its host
policy in the base job template and a `container-job/<pool>` deployment to submit to."""

from __future__ import annotations

from typing import Any, get_args

import anyio
from pydantic import ValidationError

from swarmsync.connection import uses_prefect_api
from swarmsync.errors import InvalidError
from swarmsync.policy import HostPolicy
from swarmsync.policy import PoolNotFound as PoolNotFound  # no such pool (raised here and by the core)
from swarmsync.settings import get_settings
from swarmsync.spec import PullPolicy

# pool settings that name a prefect-docker block document (by name) -> its block type slug
BLOCK_FIELDS = {"docker_host": "docker-host", "registry_credentials": "docker-registry-credentials"}
LIST_FIELDS = ("allowed_networks", "allowed_roles", "allowed_users", "cap_drop", "allowed_images")
POLICY_FIELDS = (*HostPolicy.model_fields, "pull_policy", "archive_block", *BLOCK_FIELDS)


class PolicyError(InvalidError):
    """Pool settings that cannot be used; `errors` says what is wrong with each one."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def check_policy(policy: dict[str, Any], whole: bool = False) -> None:
    """Raise PolicyError naming every unknown or invalid setting (block names are checked on use);
    with `whole` (a pool's whole policy), also every default that exceeds its ceiling."""
    errors = {k: f"not a pool setting; known: {', '.join(POLICY_FIELDS)}" for k in policy if k not in POLICY_FIELDS}
    try:
        host = HostPolicy(**{k: v for k, v in policy.items() if k in HostPolicy.model_fields})
    except ValidationError as exc:
        for err in exc.errors():
            errors.setdefault(str(err["loc"][0]) if err["loc"] else "policy",
                              err["msg"].removeprefix("Value error, "))
    else:
        for field, message in (host.inconsistencies() if whole else {}).items():
            errors.setdefault(field, message)
    if "pull_policy" in policy and policy["pull_policy"] not in get_args(PullPolicy):
        errors["pull_policy"] = f"{policy['pull_policy']!r} is not one of {', '.join(get_args(PullPolicy))}"
    if policy.get("archive_block"):
        try:
            _check_archive_block(policy["archive_block"])
        except ValueError as exc:
            errors["archive_block"] = str(exc)
    if errors:
        raise PolicyError(errors)


@uses_prefect_api
def create_pool(name: str, **policy: Any) -> str:
    """Create a pool and its job deployment (on an existing pool, change only the settings given);
    returns the deployment name."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from swarmsync.deployments.job_deployment import ensure_job_deployment, ensure_work_pool
    from swarmsync.jobs import deployment_for_pool

    check_policy(policy)
    deployment = deployment_for_pool(name)
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            exists = True
        except ObjectNotFound:
            exists = False
    if not exists:  # the new pool's policy as a whole (an existing one is checked by update_policy)
        check_policy({**HostPolicy().model_dump(), **{k: v for k, v in policy.items() if k in HostPolicy.model_fields}},
                     whole=True)

    async def create() -> None:
        async with get_client() as client:
            if not exists:
                for field, slug in BLOCK_FIELDS.items():
                    if policy.get(field):
                        policy[field] = await _block_reference(client, slug, policy[field])
                await ensure_work_pool(client, name, policy=policy or None)
            await ensure_job_deployment(client, name, name=deployment.split("/", 1)[1])

    anyio.run(create)
    if exists and policy:  # an existing pool keeps the settings not given
        update_policy(name, **policy)
    return deployment


def _check_archive_block(slug: str) -> None:
    from prefect.exceptions import ObjectNotFound

    from swarmsync.archive import ArchiveStoreError, check_store, get_archive_store

    try:
        check_store(get_archive_store(slug))  # loads, and writes/reads/deletes a probe file: reachable from here
    except (ValueError, TypeError, ObjectNotFound, ArchiveStoreError) as exc:
        raise ValueError(f"archive_block {slug!r}: {exc}") from None


async def _block_reference(client: Any, block_type: str, name: str) -> dict[str, Any]:
    """A job-template reference to the block document `name` (or `block-type/name`)."""
    from prefect.exceptions import ObjectNotFound

    document = name.split("/", 1)[1] if name.startswith(f"{block_type}/") else name
    try:
        block = await client.read_block_document_by_name(name=document, block_type_slug=block_type)
    except ObjectNotFound:
        raise ValueError(f"no {block_type} block named {document!r}; create it first (Prefect UI > Blocks)") from None
    return {"$ref": {"block_document_id": str(block.id)}}


@uses_prefect_api
def update_policy(name: str, **changes: Any) -> dict[str, Any]:
    """Change some of an existing pool's settings, keeping the others; returns the whole policy.

    `changes` are POLICY_FIELDS (None clears a ceiling or block); they are validated as
    `create_pool` validates them (PolicyError), then written as the defaults of the pool's
    base job template. Workers apply them from their next heartbeat on.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    from swarmsync.deployments.job_deployment import pool_template

    changes = {k: [] if v is None and k in LIST_FIELDS else v for k, v in changes.items()}  # null clears a list
    check_policy(changes)

    async def update() -> None:
        async with get_client() as client:
            try:
                pool = await client.read_work_pool(name)
            except ObjectNotFound:
                raise PoolNotFound(f"no work pool named {name!r}; see 'swarmsync pool create'") from None
            template = pool.base_job_template
            properties = template.setdefault("variables", {}).setdefault("properties", {})
            if pool.type == "swarmsync":  # settings added since the pool was made get their schema
                known = pool_template(pool.type)["variables"]["properties"]
                for field in changes:
                    if field not in properties and field in known:
                        properties[field] = known[field]
            missing = {k: f"pool {name!r} ({pool.type}) has no such setting" for k in changes if k not in properties}
            if missing:
                raise PolicyError(missing)
            for field, value in changes.items():
                if field in BLOCK_FIELDS and value:
                    try:
                        value = await _block_reference(client, BLOCK_FIELDS[field], value)
                    except ValueError as exc:
                        raise PolicyError({field: str(exc)}) from None
                properties[field]["default"] = value
            merged = _policy_of(properties)
            check_policy({k: v for k, v in merged.items() if k in HostPolicy.model_fields}, whole=True)
            if changes:
                await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))

    anyio.run(update)
    return pool_policy(name)


@uses_prefect_api
def pool_policy(name: str | None = None) -> dict[str, Any]:
    """The pool's host policy (the defaults of its base job template's variables)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(name or get_settings().work_pool)
    properties = pool.base_job_template.get("variables", {}).get("properties", {})
    return _policy_of(properties)


@uses_prefect_api
def list_pools() -> list[dict[str, Any]]:
    """Every work pool with its policy, queues (priority, concurrency) and workers (last heartbeat)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        pools = client.read_work_pools()
        described = []
        for pool in sorted(pools, key=lambda p: p.name):
            queues = client.read_work_queues(work_pool_name=pool.name)
            workers = client.read_workers_for_work_pool(pool.name)
            properties = pool.base_job_template.get("variables", {}).get("properties", {})
            described.append({
                "name": pool.name, "type": pool.type, "paused": pool.is_paused,
                "concurrency_limit": pool.concurrency_limit,
                "policy": {k: _readable(client, v) for k, v in _policy_of(properties).items()},
                "queues": [
                    {"name": q.name, "priority": q.priority, "concurrency_limit": q.concurrency_limit,
                     "paused": q.is_paused, **queue_depth(client, pool.name, q.name)}
                    for q in sorted(queues, key=lambda q: (q.priority, q.name))
                ],
                "workers": [
                    {"name": w.name, "status": w.status.value if w.status else None,
                     "last_heartbeat": w.last_heartbeat_time.isoformat() if w.last_heartbeat_time else None}
                    for w in workers
                ],
            })
    return described


def queue_depth(client: Any, pool: str, queue: str) -> dict[str, int]:
    """Runs of one queue: `waiting` (Scheduled and due: waiting for a worker or a slot),
    `scheduled` (Scheduled for later), `running` (Pending or Running)."""
    from datetime import UTC, datetime

    from prefect.client.schemas.objects import StateType

    from swarmsync.queue_counts import count_runs

    waiting = count_runs(client, pool, queue, [StateType.SCHEDULED], due_before=datetime.now(UTC))
    return {"waiting": waiting, "scheduled": count_runs(client, pool, queue, [StateType.SCHEDULED]) - waiting,
            "running": count_runs(client, pool, queue, [StateType.PENDING, StateType.RUNNING])}


def _policy_of(properties: dict[str, Any]) -> dict[str, Any]:
    """The policy in a base job template's variables: each setting's default there, else the
    built-in one the worker applies (e.g. `cap_drop`, whose default the template's schema omits)."""
    built_in = HostPolicy().model_dump()
    return {k: properties[k].get("default", built_in.get(k)) for k in POLICY_FIELDS if k in properties}


def _readable(client: Any, value: Any) -> Any:
    """A block reference of the template as the block's name (what `pool create` and the dashboard take)."""
    from prefect.exceptions import ObjectNotFound

    if isinstance(value, dict) and (block_id := (value.get("$ref") or {}).get("block_document_id")):
        try:
            return client.read_block_document(block_id, include_secrets=False).name
        except ObjectNotFound:
            return f"(missing block {block_id})"
    return value
