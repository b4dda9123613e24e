"""Whether a worker token may make a call (`rules.Call`): its own pool's runs, blocks and queues only.

Flow runs are learned as they pass through the gateway (a poll's answer names the runs of the pool)
and read from Prefect otherwise, once: a run's pool and queue never change, so they are cached.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
from cachetools import TTLCache

from swarmsync.auth import worker_tokens
from swarmsync.auth.worker_tokens import WorkerPrincipal
from swarmsync.errors import NotFoundError
from swarmsync.gateway.rules import blocks_of_template, secret_blocks_of
from swarmsync.owners import DEFAULT_PROJECT, project_of, submitted_by

logger = logging.getLogger("swarmsync.gateway")

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


class NotYours(NotFoundError):
    """The object is not the token's to see: answered 404, as if it did not exist."""


class RunFacts:
    __slots__ = ("pool", "queue", "parameters", "owners")

    def __init__(self, pool: str | None, queue: str | None, parameters: dict[str, Any] | None,
                 owners: tuple[str | None, str] | None = None) -> None:
        self.pool, self.queue, self.parameters = pool, queue, parameters
        self.owners = owners  # (user, project) of the run; None: not in the answer it was learned from


class Scope:
    """The checks, with what they learned; one per API process (`upstream` is Core's Prefect client)."""

    def __init__(self, upstream: httpx.AsyncClient) -> None:
        self.upstream = upstream
        self.runs: TTLCache[str, RunFacts] = TTLCache(maxsize=200_000, ttl=6 * 3600)
        self.task_runs: TTLCache[str, str] = TTLCache(maxsize=200_000, ttl=6 * 3600)  # task run -> flow run
        self.pools: TTLCache[str, dict[str, Any]] = TTLCache(maxsize=1000, ttl=15)

    # --- flow runs -----------------------------------------------------------------------

    def learn_run(self, run: dict[str, Any], pool: str | None = None) -> None:
        """Remember a run as Prefect answered it (`pool`: the pool it was listed from, when the answer has
        no `work_pool_name`, as a poll's has not)."""
        if run.get("id"):
            owners = None
            if "labels" in run or "tags" in run:
                as_run = SimpleNamespace(labels=run.get("labels"), tags=run.get("tags"))
                owners = (submitted_by(as_run), project_of(as_run))
            self.runs[str(run["id"])] = RunFacts(run.get("work_pool_name") or pool, run.get("work_queue_name"),
                                                 run.get("parameters"), owners)

    async def _read(self, path: str, what: str) -> dict[str, Any]:
        """Prefect's object at `path`; NotYours when there is none."""
        response = await self.upstream.get(path)
        if response.status_code == 404:
            raise NotYours(f"no {what}")
        response.raise_for_status()
        return response.json()

    async def facts(self, run_id: str) -> RunFacts:
        facts = self.runs.get(run_id)
        if facts is None:
            self.learn_run(await self._read(f"flow_runs/{run_id}", f"flow run {run_id}"))
            facts = self.runs[run_id]
        return facts

    async def owners(self, run_id: str) -> tuple[str | None, str]:
        """(user, project) of a flow run (read from Prefect when it was learned without them)."""
        facts = await self.facts(run_id)
        if facts.owners is None:
            self.learn_run(await self._read(f"flow_runs/{run_id}", f"flow run {run_id}"))
            facts = self.runs[run_id]
        return facts.owners or (None, DEFAULT_PROJECT)

    def owns(self, principal: WorkerPrincipal, facts: RunFacts) -> bool:
        return facts.pool == principal.pool and (principal.queue is None or facts.queue == principal.queue)

    async def check_run(self, principal: WorkerPrincipal, run_id: str | None) -> None:
        """NotYours unless the flow run is of the token's pool (and queue)."""
        if not run_id or not self.owns(principal, await self.facts(str(run_id))):
            raise NotYours(f"no flow run {run_id} in pool {principal.pool}")

    def check_run_body(self, principal: WorkerPrincipal, run: dict[str, Any]) -> None:
        """A flow run as Prefect answered it: the token's, or NotYours."""
        self.learn_run(run)
        if not self.owns(principal, self.runs[str(run.get("id"))]):
            raise NotYours(f"no flow run {run.get('id')} in pool {principal.pool}")

    async def check_task_run(self, principal: WorkerPrincipal, task_run_id: str) -> None:
        flow_run_id = self.task_runs.get(task_run_id)
        if flow_run_id is None:
            flow_run_id = (await self._read(f"task_runs/{task_run_id}", f"task run {task_run_id}")).get("flow_run_id")
            if flow_run_id:
                self.task_runs[task_run_id] = str(flow_run_id)
        await self.check_run(principal, flow_run_id)

    # --- pools and blocks ------------------------------------------------------------------

    def check_pool(self, principal: WorkerPrincipal, pool: str | None) -> None:
        if pool != principal.pool:
            raise NotYours(f"no work pool {pool!r} for worker token {principal.name!r}")

    async def pool(self, name: str) -> dict[str, Any]:
        pool = self.pools.get(name)
        if pool is None:
            response = await self.upstream.get(f"work_pools/{name}")
            response.raise_for_status()
            pool = self.pools[name] = response.json()
        return pool

    async def check_block(self, principal: WorkerPrincipal, slug: str | None, name: str | None,
                          block_id: str | None = None) -> None:
        """The pool's own blocks (its base job template names them), and the Secret blocks of runs
        this token claimed and has not finished; NotYours for any other."""
        named, ids = blocks_of_template((await self.pool(principal.pool)).get("base_job_template"))
        if (slug, name) in named or (block_id is not None and block_id in ids):
            return
        if slug == "secret" and name and await self._claimed_secret(principal, name):
            return
        raise NotYours(f"no block {slug}/{name} for worker token {principal.name!r}")

    async def _claimed_secret(self, principal: WorkerPrincipal, name: str) -> bool:
        claimed = await anyio.to_thread.run_sync(worker_tokens.claims_of, principal)
        for run_id in claimed:
            try:
                facts = await self.facts(run_id)
            except NotYours:
                continue
            if name in secret_blocks_of(facts.parameters) and await self._active(run_id):
                return True
        return False

    async def _active(self, run_id: str) -> bool:
        response = await self.upstream.get(f"flow_runs/{run_id}")
        if response.status_code != 200:
            return False
        state = (response.json().get("state") or {}).get("type")
        return state not in FINAL_STATES
