"""One PATCH of a flow run as it starts, where Prefect sends two.

Prefect's worker writes the run's `infrastructure_pid` once the run is submitted (`BaseWorker._submit_run`), and
the flow engine then writes its `flow_version` and `empirical_policy` (`AsyncFlowRunEngine.initialize_run`): two
`PATCH /flow_runs/{id}` per job, each a request the worker's client and Prefect's server spend CPU on (and, for a
host with a worker token, Core's gateway too). A SwarmSync worker runs the flow in its own process, so it knows
all three values before either call: the first call sends them all, and the second, which would write what is
stored already, is not sent. Whichever comes first (the run's task may reach the engine before the worker's
submit loop resumes) writes the three; a first call that failed leaves the second to send its own fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio


@dataclass
class _Start:
    fields: dict[str, Any]  # what the run will be given (then what the first call sent)
    written: anyio.Event | None = None  # set once the first call ended
    ok: bool = False  # ... and succeeded


class StartUpdates:
    """Wraps clients' `update_flow_run` (`install`) for the runs it is told about (`expect`)."""

    def __init__(self) -> None:
        self._runs: dict[UUID, _Start] = {}

    def install(self, client: Any) -> None:
        """Put the wrapper in front of `client.update_flow_run` (this client only: the worker's, and the one its
        runs' flow engines share)."""
        send = client.update_flow_run

        async def update_flow_run(flow_run_id: UUID, **fields: Any) -> Any:
            return await self._update(send, flow_run_id, **fields)

        client.update_flow_run = update_flow_run

    def expect(self, flow_run_id: UUID, **fields: Any) -> None:
        """The fields the run's start writes, as the worker and the flow engine will send them."""
        self._runs[flow_run_id] = _Start(dict(fields))

    def forget(self, flow_run_id: UUID) -> None:
        self._runs.pop(flow_run_id, None)

    async def _update(self, send: Callable[..., Awaitable[Any]], flow_run_id: UUID, **fields: Any) -> Any:
        start = self._runs.get(flow_run_id)
        if start is None or not fields or not fields.keys() <= start.fields.keys():
            return await send(flow_run_id, **fields)
        if start.written is None:  # the first of the two: all the fields at once
            start.written = anyio.Event()
            start.fields.update(fields)
            try:
                response = await send(flow_run_id, **start.fields)
                start.ok = True
                return response
            finally:
                start.written.set()
        await start.written.wait()
        if start.ok and all(start.fields[name] == value for name, value in fields.items()):
            return None  # stored already (callers do not read the answer of this PATCH)
        return await send(flow_run_id, **fields)


def engine_policy(flow_run: Any, flow: Any) -> Any:
    """The `empirical_policy` Prefect's flow engine writes at the run's start: the run's, with the retries and
    retry delay it does not set taken from the flow."""
    policy = flow_run.empirical_policy.model_copy()
    if policy.retry_delay is None:
        policy.retry_delay = flow.retry_delay_seconds
    if policy.retries is None:
        policy.retries = flow.retries
    return policy
