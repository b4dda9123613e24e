"""Core notices a lost worker host by itself (a service in the SwarmSync API's process, every
LOST_CHECK_SECONDS): every Running or Pending run of a host that has not been heard of for the
detection bound is ended Crashed ("host NAME lost"), then AwaitingRetry while its job has retries
left, so that a host that can run it (labels, pool) takes the retry. It holds when the pool has no
other live host, and for every such run (no page limit).

How a host is heard of:
- a host with a worker token: its last call to Core (`worker_tokens` records it, every
  LAST_SEEN_RESOLUTION s; the worker checks its token every few seconds even when idle); its runs are
  the ones it claimed (`worker_claims`);
- a host without one (the direct shape): its Prefect worker heartbeat; its runs carry its name in
  Prefect's `prefect.worker.name` label.

A run left Pending for the bound (its worker's claim was accepted, but the answer was lost, e.g. the
API died in between) goes back to its queue: Prefect refuses a second Pending, so nobody else would run it.

The bound is SWARMSYNC_LOST_WORKER_SECONDS (90 by default). A host with a token fences itself earlier
(SWARMSYNC_HOST_LEASE_SECONDS, 75 by default: it stops its jobs' containers when it has not reached Core
for that long), so a job is stopped on a cut-off host before Core retries it anywhere else; Core forgets
the crashed runs' claims, so the gateway refuses any later report of them from that host.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
    WorkPoolFilterType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import AwaitingRetry, Crashed, Scheduled

from swarmsync import job_events
from swarmsync.auth import worker_tokens
from swarmsync.settings import get_settings

logger = logging.getLogger("swarmsync.lost_hosts")

LOST_CHECK_SECONDS = 2.0
MARGIN_SECONDS = 5.0  # the check's period and the resolution of last contact, within the bound
PAGE = 200
CRASH_CONCURRENCY = 16
WORKER_LABEL = "prefect.worker.name"
ACTIVE = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))


def silent_since(now: datetime | None = None) -> datetime:
    """A host last heard of before this is lost (so that Core acts within the bound)."""
    bound = get_settings().lost_worker_seconds
    return (now or datetime.now(UTC)) - timedelta(seconds=max(bound - MARGIN_SECONDS, 1.0))


async def crash_runs_of_lost_hosts(client: PrefectClient, now: datetime | None = None) -> list[tuple[str, str]]:
    """One pass: (run id, host) of every run crashed because its host was lost."""
    since = silent_since(now)
    handled: list[tuple[str, str]] = []
    silent, token_workers = await anyio.to_thread.run_sync(worker_tokens.silent_hosts, since)
    lost: list[tuple[FlowRun, str]] = []
    for host, run_ids in silent.items():
        for start in range(0, len(run_ids), PAGE):
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=run_ids[start:start + PAGE]), state=ACTIVE), limit=PAGE)
            lost += [(run, host) for run in runs]
    handled += await _crash_all(client, lost)
    handled += await _direct_hosts(client, since, token_workers)
    handled += await _stale_pending(client, since)
    return handled


async def _direct_hosts(client: PrefectClient, since: datetime, token_workers: set[str]) -> list[tuple[str, str]]:
    """Hosts without a token: Prefect's heartbeats; their runs by Prefect's worker label, all pages."""
    handled: list[tuple[str, str]] = []
    pools = await client.read_work_pools(work_pool_filter=WorkPoolFilter(type=WorkPoolFilterType(any_=["swarmsync"])))
    for pool in pools:
        workers = await client.read_workers_for_work_pool(pool.name)
        lost = {w.name for w in workers if w.name not in token_workers
                and (w.last_heartbeat_time is not None and w.last_heartbeat_time < since)}
        if not lost:
            continue
        runs: list[FlowRun] = []
        while True:  # every Running/Pending run of the pool first (states change below: no shifting pages)
            page = await client.read_flow_runs(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool.name])),
                flow_run_filter=FlowRunFilter(state=ACTIVE), limit=PAGE, offset=len(runs))
            runs += page
            if len(page) < PAGE:
                break
        handled += await _crash_all(client, [(run, (run.labels or {}).get(WORKER_LABEL)) for run in runs
                                             if (run.labels or {}).get(WORKER_LABEL) in lost])
    return handled


async def _crash_all(client: PrefectClient, runs: list[tuple[FlowRun, str]]) -> list[tuple[str, str]]:
    """Crash (and retry) these runs of lost hosts, CRASH_CONCURRENCY at once: 300 runs of one host take
    seconds, not minutes, so the last of them is crashed within the bound too."""
    handled: list[tuple[str, str]] = []
    limit = anyio.CapacityLimiter(CRASH_CONCURRENCY)

    async def one(run: FlowRun, host: str) -> None:
        async with limit:
            if await _crash(client, run, host):
                handled.append((str(run.id), host))

    async with anyio.create_task_group() as tg:
        for run, host in runs:
            tg.start_soon(one, run, host)
    return handled


async def _stale_pending(client: PrefectClient, since: datetime) -> list[tuple[str, str]]:
    """Runs Pending since before `since` with nobody running them: a claim whose answer was lost (the API
    died after Prefect accepted the worker's Pending; the worker, told nothing, let it go). Prefect refuses
    a second Pending, so nobody would ever run them: they go back to their queue (Scheduled "Resuming")."""
    handled: list[tuple[str, str]] = []
    pools = await client.read_work_pools(work_pool_filter=WorkPoolFilter(type=WorkPoolFilterType(any_=["swarmsync"])))
    if not pools:
        return handled
    pending = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING]))
    runs: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[p.name for p in pools])),
            flow_run_filter=FlowRunFilter(state=pending), limit=PAGE, offset=len(runs))
        runs += page
        if len(page) < PAGE:
            break
    for run in runs:
        if not run.state or run.state.timestamp >= since:
            continue
        run = await client.read_flow_run(run.id)  # still Pending, and since then?
        if run.state and run.state.type == StateType.PENDING and run.state.timestamp < since:
            host = (run.labels or {}).get(WORKER_LABEL) or "unknown host"
            await anyio.to_thread.run_sync(worker_tokens.forget_claims, [str(run.id)])
            logger.warning("flow run %s: Pending since %s and not started: back to its queue", run.id,
                           run.state.timestamp)
            await client.set_flow_run_state(run.id, Scheduled(
                name="Resuming", message=f"claimed by {host} but never started (its claim's answer was lost)"),
                force=True)
            handled.append((str(run.id), host))
    return handled


async def _crash(client: PrefectClient, run: FlowRun, host: str) -> bool:
    """Crash the run of a lost host (re-read: still Running/Pending?), then AwaitingRetry while retries are left."""
    run = await client.read_flow_run(run.id)
    if not run.state or run.state.type not in (StateType.RUNNING, StateType.PENDING):
        return False
    # the lost host's claim goes first: the retry may be claimed by another host a moment after it is made
    await anyio.to_thread.run_sync(worker_tokens.forget_claims, [str(run.id)])
    crashed = await crash_run(client, run, f"host {host} lost")
    if crashed:
        job_events.emit_for_run(job_events.HOST_LOST, run, host=host, outcome="crashed", reason="host-lost",
                                message=f"host {host} lost")
    return crashed


async def crash_run(client: PrefectClient, run: FlowRun, why: str) -> bool:
    """Crashed with `why`, then AwaitingRetry while the job has retries left; False if it is not Running/Pending."""
    if not run.state or run.state.type not in (StateType.RUNNING, StateType.PENDING):
        return False
    retries = int(((run.parameters or {}).get("job") or {}).get("retries") or 0)
    await client.set_flow_run_state(run.id, Crashed(message=why), force=True)
    if run.run_count <= retries:
        logger.warning("flow run %s: %s; retry %d of %d", run.id, why, run.run_count, retries)
        await client.set_flow_run_state(
            run.id, AwaitingRetry(message=f"{why}; retry {run.run_count} of {retries}"), force=True)
    else:
        logger.warning("flow run %s: %s; no retries left", run.id, why)
    return True


async def watch(stop: Any = None) -> None:
    """Core's service: a pass every LOST_CHECK_SECONDS, for ever (errors logged, retried next pass)."""
    from prefect.client.orchestration import get_client

    from swarmsync.connection import prefect_api

    with prefect_api():
        async with get_client() as client:
            while True:
                try:
                    for run_id, host in await crash_runs_of_lost_hosts(client):
                        logger.info("run %s of lost host %s crashed", run_id, host)
                except Exception as exc:  # noqa: BLE001 - Prefect or the database busy: next pass
                    logger.warning("lost-host check failed: %s", exc)
                await anyio.sleep(LOST_CHECK_SECONDS)
