"""Work pools as SwarmSync sees them: a pool per class of Docker hosts, with its host
policy in the base job template and a `container-job/<pool>` deployment to submit to."""

from __future__ import annotations

from typing import Any

import anyio

from swarmsync.connection import uses_prefect_api
from swarmsync.policy import HostPolicy
from swarmsync.settings import get_settings

POLICY_FIELDS = (*HostPolicy.model_fields, "pull_policy")


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
    deployment = deployment_for_pool(name)

    async def create() -> None:
        async with get_client() as client:
            await ensure_work_pool(client, name, policy=policy or None)
            await ensure_job_deployment(client, name, name=deployment.split("/", 1)[1])

    anyio.run(create)
    return deployment


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
