"""The `container-job/default` deployment: what every submission becomes a run of.

Created with the Prefect client (not `flow.deploy`, which wants an image or remote
storage). Its entrypoint is a module path (`swarmsync.flows.container_job:container_job`):
any worker with SwarmSync installed imports the flow, wherever the package lives.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.utilities.callables import parameter_schema

JOB_ENTRYPOINT = "swarmsync.flows.container_job:container_job"
JOB_FLOW_NAME = "container-job"


def pool_template(worker_type: str = "swarmsync", policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """The worker type's base job template with `policy` as the variables' defaults."""
    from prefect.workers.base import BaseWorker

    worker_cls = BaseWorker.get_worker_class_from_type(worker_type)
    template = worker_cls.get_default_base_job_template() if worker_cls else {}
    properties = template.get("variables", {}).get("properties", {})
    for key, value in (policy or {}).items():
        if key not in properties:
            raise ValueError(f"{key!r} is not a setting of {worker_type} pools; known: {sorted(properties)}")
        properties[key]["default"] = value
    return template


async def ensure_work_pool(
    client: PrefectClient, name: str, worker_type: str = "swarmsync", policy: dict[str, Any] | None = None
) -> None:
    """Create the work pool if missing; with `policy`, set its host policy defaults."""
    template = pool_template(worker_type, policy)
    try:
        await client.read_work_pool(name)
    except ObjectNotFound:
        try:
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=worker_type, base_job_template=template), overwrite=False
            )
            return
        except ObjectAlreadyExists:  # made meanwhile (a worker starting creates its pool): as if it existed
            pass
    if policy:
        await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))


async def ensure_job_deployment(
    client: PrefectClient, work_pool: str, name: str = "default", concurrency_limit: int | None = None,
    **options: Any,
) -> UUID:
    """Create or update the job deployment on `work_pool`; returns its id.

    `options` go to `client.create_deployment` (e.g. parameters, schedules,
    concurrency_options, tags, description: what a schedule's deployment adds)."""
    from swarmsync.flows.container_job import container_job

    flow_id = await client.create_flow_from_name(JOB_FLOW_NAME)
    return await client.create_deployment(
        flow_id=flow_id,
        name=name,
        work_pool_name=work_pool,
        entrypoint=JOB_ENTRYPOINT,
        parameter_openapi_schema=parameter_schema(container_job).model_dump_for_openapi(),
        # the schema drives the Prefect UI's run form; the flow validates the JobSpec itself,
        # so the server need not re-check the schema on every run it creates (~50 ms CPU each)
        enforce_parameter_schema=False,
        concurrency_limit=concurrency_limit,
        **{"description": "Run one SwarmSync container job (parameter: job, a JobSpec).", "tags": ["swarmsync"],
           **options},
    )
