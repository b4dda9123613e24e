"""How many flow runs of one work queue are in given states: what the pool listings (`swarmsync.deployments.
pools.queue_depth`) and the metrics (`swarmsync.metrics`) count, one Prefect count request each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect.client.schemas.filters import (
    FlowFilter,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
    WorkQueueFilter,
    WorkQueueFilterName,
)
from prefect.client.schemas.objects import StateType


def count_runs(client: Any, pool: str, queue: str, types: list[StateType], *, due_before: datetime | None = None,
               flows: FlowFilter | None = None) -> int:
    """Runs of `pool`/`queue` in one of `types` (expected to start before `due_before`, when given; of the
    flows `flows` selects, when given), counted by Prefect's server."""
    return client.count_flow_runs(
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        work_queue_filter=WorkQueueFilter(name=WorkQueueFilterName(any_=[queue])),
        flow_filter=flows,
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)),
            expected_start_time=FlowRunFilterExpectedStartTime(before_=due_before) if due_before else None,
        ),
    )
