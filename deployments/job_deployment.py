"""The `container-job/default` deployment: what every submission becomes a run of.

Created with the Prefect client (not `flow.deploy`, which wants an image or remote
storage) so it points at this checkout's `flows/` on the machine's workers.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema

PROJECT_ROOT = Path(__file__).resolve().parent.parent
JOB_ENTRYPOINT = "flows/container_job.py:container_job"
JOB_FLOW_NAME = "container-job"


async def ensure_work_pool(client: PrefectClient, name: str, worker_type: str = "swarmsync") -> None:
    """Create the work pool with the worker type's default base job template if missing."""
    from prefect.workers.base import BaseWorker

    try:
        await client.read_work_pool(name)
        return
    except ObjectNotFound:
        pass
    worker_cls = BaseWorker.get_worker_class_from_type(worker_type)
    template = worker_cls.get_default_base_job_template() if worker_cls else {}
    await client.create_work_pool(
        WorkPoolCreate(name=name, type=worker_type, base_job_template=template),
        overwrite=False,
    )


async def ensure_job_deployment(
    client: PrefectClient, work_pool: str, name: str = "default", concurrency_limit: int | None = None
) -> UUID:
    """Create or update the job deployment on `work_pool`; returns its id."""
    from flows.container_job import container_job

    flow_id = await client.create_flow_from_name(JOB_FLOW_NAME)
    return await client.create_deployment(
        flow_id=flow_id,
        name=name,
        work_pool_name=work_pool,
        entrypoint=JOB_ENTRYPOINT,
        path=str(PROJECT_ROOT),
        parameter_openapi_schema=parameter_schema(container_job).model_dump_for_openapi(),
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}],
        description="Run one SwarmSync container job (parameter: job, a JobSpec).",
        tags=["swarmsync"],
        concurrency_limit=concurrency_limit,
    )
