"""Work pools as SwarmSync sees them: a pool per class of Docker hosts, with its host
policy in the base job template and a `container-job/<pool>` deployment to submit to."""

from __future__ import annotations

from typing import Any

import anyio

from swarmsync.connection import uses_prefect_api
from swarmsync.policy import HostPolicy
from swarmsync.settings import get_settings

# pool settings that name a prefect-docker block document (by name) -> its block type slug
BLOCK_FIELDS = {"docker_host": "docker-host", "registry_credentials": "docker-registry-credentials"}
POLICY_FIELDS = (*HostPolicy.model_fields, "pull_policy", "archive_block", *BLOCK_FIELDS)


@uses_prefect_api
def create_pool(name: str, **policy: Any) -> str:
    """Create (or update the policy of) a pool and its job deployment; returns the deployment name."""
    from prefect.client.orchestration import get_client

    from deployments.job_deployment import ensure_job_deployment, ensure_work_pool
    from swarmsync.jobs import deployment_for_pool

    unknown = set(policy) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"unknown pool settings {sorted(unknown)}; known: {sorted(POLICY_FIELDS)}")
    HostPolicy(**{k: v for k, v in policy.items() if k in HostPolicy.model_fields})  # validates
    if policy.get("archive_block"):
        _check_archive_block(policy["archive_block"])
    deployment = deployment_for_pool(name)

    async def create() -> None:
        async with get_client() as client:
            for field, slug in BLOCK_FIELDS.items():
                if policy.get(field):
                    policy[field] = await _block_reference(client, slug, policy[field])
            await ensure_work_pool(client, name, policy=policy or None)
            await ensure_job_deployment(client, name, name=deployment.split("/", 1)[1])

    anyio.run(create)
    return deployment


def _check_archive_block(slug: str) -> None:
    from swarmsync.archive import get_archive_store

    try:
        get_archive_store(slug)
    except (ValueError, TypeError) as exc:
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
def pool_policy(name: str | None = None) -> dict[str, Any]:
    """The pool's host policy (the defaults of its base job template's variables)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(name or get_settings().work_pool)
    properties = pool.base_job_template.get("variables", {}).get("properties", {})
    return {k: properties[k].get("default") for k in POLICY_FIELDS if k in properties}


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
                "policy": {k: properties[k].get("default") for k in POLICY_FIELDS if k in properties},
                "queues": [
                    {"name": q.name, "priority": q.priority, "concurrency_limit": q.concurrency_limit,
                     "paused": q.is_paused}
                    for q in sorted(queues, key=lambda q: (q.priority, q.name))
                ],
                "workers": [
                    {"name": w.name, "status": w.status.value if w.status else None,
                     "last_heartbeat": w.last_heartbeat_time.isoformat() if w.last_heartbeat_time else None}
                    for w in workers
                ],
            })
    return described
