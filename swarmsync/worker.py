"""The `swarmsync` Prefect worker type: runs container-job flow runs inside its own
event loop, many at once. The only new process per job is the user's container.

Registered through the `prefect.collections` entry point, so both
`prefect worker start --type swarmsync --pool NAME` and `swarmsync worker start` work.
The pool's base job template carries host policy (see `swarmsync.policy.HostPolicy`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.flow_engine import run_flow_async
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult
from pydantic import Field

from swarmsync import runtime
from swarmsync.policy import HostPolicy


class SwarmSyncVariables(BaseVariables, HostPolicy):
    """Pool-level settings, editable in the Prefect UI (work pool > base job template)."""

    pull_policy: str = Field(
        default="if-not-present", description="Image pull policy: always, if-not-present, never"
    )


class SwarmSyncJobConfiguration(BaseJobConfiguration, HostPolicy):
    pull_policy: str = Field(default="if-not-present")

    def host_policy(self) -> HostPolicy:
        return HostPolicy(**self.model_dump(include=set(HostPolicy.model_fields)))


class SwarmSyncWorkerResult(BaseWorkerResult):
    """The final state of a job flow run executed in the worker's process."""


class SwarmSyncWorker(BaseWorker[SwarmSyncJobConfiguration, SwarmSyncVariables, SwarmSyncWorkerResult]):
    type = "swarmsync"
    job_configuration = SwarmSyncJobConfiguration
    job_configuration_variables = SwarmSyncVariables
    _description = (
        "SwarmSync: runs container jobs in the worker's own event loop, many at once, "
        "each in an isolated Docker container with limits."
    )
    _display_name = "SwarmSync"
    _documentation_url = "https://github.com/swarmsync/swarmsync"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flows: dict[str, Flow] = {}

    async def _load_flow(self, flow_run: FlowRun) -> Flow:
        deployment = await self.client.read_deployment(flow_run.deployment_id)
        if not deployment.entrypoint:
            raise ValueError(f"deployment {deployment.name!r} has no entrypoint")
        entrypoint = deployment.entrypoint
        file_part = entrypoint.rsplit(":", 1)[0]
        if file_part.endswith(".py") and not os.path.isabs(file_part) and deployment.path:
            entrypoint = str(Path(deployment.path) / entrypoint)
        if entrypoint not in self._flows:
            self._flows[entrypoint] = await anyio.to_thread.run_sync(
                load_flow_from_entrypoint, entrypoint
            )
        return self._flows[entrypoint]

    async def run(
        self,
        flow_run: FlowRun,
        configuration: SwarmSyncJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> SwarmSyncWorkerResult:
        flow = await self._load_flow(flow_run)
        identifier = f"{socket.gethostname()}:{os.getpid()}:{flow_run.id}"
        if task_status:
            task_status.started(identifier)
        runtime.current_policy.set(configuration.host_policy())
        runtime.current_pull_policy.set(configuration.pull_policy)
        state = await run_flow_async(
            flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
        )
        return SwarmSyncWorkerResult(identifier=identifier, status_code=0 if state else 1)
