"""Forwarding one checked HTTP call to Prefect with Core's credentials (`Gateway.forward`)."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import anyio
import httpx

from swarmsync.auth import worker_tokens
from swarmsync.auth.worker_tokens import WorkerPrincipal
from swarmsync.connection import api_url
from swarmsync.errors import ConflictError, RefusedError
from swarmsync.gateway.rules import Kind, classify
from swarmsync.gateway.scope import NotYours, Scope
from swarmsync.settings import get_settings

logger = logging.getLogger("swarmsync.gateway")

RELEASED = {"COMPLETED", "FAILED", "CANCELLED", "SCHEDULED"}  # states after which a token holds a run no more
PASSED_HEADERS = ("content-type", "accept", "x-prefect-api-version", "user-agent")
KEPT_RESPONSE_HEADERS = ("content-type",)


class Refused(RefusedError):
    """A call the token may not make at all (403), whatever it names."""


class NotHeld(ConflictError):
    """A report about a run this token does not hold (any more): 409."""


class Answer:
    """What goes back to the worker: status, body, content type."""

    def __init__(self, status: int, body: bytes, content_type: str | None) -> None:
        self.status, self.body, self.content_type = status, body, content_type


def upstream_headers() -> dict[str, str]:
    """Core's own credentials for Prefect (its auth string), which no worker host holds."""
    auth = get_settings().prefect_auth_string
    if auth is None:
        return {}
    token = base64.b64encode(auth.get_secret_value().encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Gateway:
    """One per API process: the upstream client and the checks' caches."""

    def __init__(self) -> None:
        base = api_url().rstrip("/") + "/"
        self.base = base
        self.upstream = httpx.AsyncClient(
            base_url=base, headers=upstream_headers(), timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        self.scope = Scope(self.upstream)

    async def aclose(self) -> None:
        await self.upstream.aclose()

    async def forward(self, principal: WorkerPrincipal, method: str, path: str, query: str,
                      headers: dict[str, str], body: bytes) -> Answer:
        call = classify(method, path)
        if call is None:
            logger.warning("worker token %s refused: %s /api/%s", principal.name, method, path)
            raise Refused(f"worker token {principal.name!r} may not call {method} /api/{path.strip('/')}: "
                          "a worker token serves its pool's runs and nothing else")
        scope = self.scope
        data: Any = None
        if body and call.kind in {Kind.POOL_POLL, Kind.RUNS_FILTER, Kind.TASK_RUN_CREATE, Kind.LOGS, Kind.ARTIFACT,
                                  Kind.RUN_CHANGE, Kind.POOL_QUEUE_CREATE, Kind.POOL}:
            try:
                data = json.loads(body)
            except ValueError:
                raise Refused("the request body is not JSON") from None
        kind = call.kind
        if kind in {Kind.POOL, Kind.POOL_POLL, Kind.POOL_QUEUE_CREATE}:
            scope.check_pool(principal, call.pool)
        if kind is Kind.POOL_POLL and principal.queue is not None:
            data = {**(data or {}), "work_queue_names": [principal.queue]}
        elif kind is Kind.POOL_QUEUE_CREATE:
            name = str((data or {}).get("name") or "")
            if not (name.startswith("host:") or name == principal.queue or (principal.queue is None
                                                                          and name == "default")):
                raise Refused(f"worker token {principal.name!r} may create only host-label queues (host:...)")
        elif kind is Kind.RUNS_FILTER:
            data = dict(data or {})
            data["work_pools"] = {"name": {"any_": [principal.pool]}}
            if principal.queue is not None:
                data["work_pool_queues"] = {"name": {"any_": [principal.queue]}}
        elif kind is Kind.RUN_CHANGE:
            await scope.check_run(principal, call.object_id)
            claim = isinstance(data, dict) and (data.get("state") or {}).get("type") == "PENDING"
            if claim:
                data["state"] = bind_transition(data["state"], principal)
            elif not await anyio.to_thread.run_sync(worker_tokens.claimed_by, principal, call.object_id):
                raise NotHeld(f"flow run {call.object_id} is not held by worker token {principal.name!r} (not claimed "
                              "through it, or crashed and handed on since): its reports are refused")
        elif kind is Kind.RUN_STATES_READ:
            runs = httpx.QueryParams(query).get_list("flow_run_id")
            if len(runs) != 1:
                raise Refused("a worker token reads the states of one flow run at a time (?flow_run_id=ID)")
            await scope.check_run(principal, runs[0])
        elif kind is Kind.TASK_RUN_CREATE:
            await scope.check_run(principal, (data or {}).get("flow_run_id"))
        elif kind is Kind.TASK_RUN_CHANGE:
            await scope.check_task_run(principal, str(call.object_id))
        elif kind is Kind.LOGS:
            for run_id in {log.get("flow_run_id") for log in (data or []) if isinstance(log, dict)} - {None}:
                await scope.check_run(principal, run_id)
        elif kind is Kind.ARTIFACT:
            await scope.check_run(principal, (data or {}).get("flow_run_id"))
        elif kind is Kind.BLOCK_BY_NAME:
            await scope.check_block(principal, call.block_type, call.block_name)
        if data is not None:
            body = json.dumps(data).encode()
        sent = {k: v for k, v in headers.items() if k.lower() in PASSED_HEADERS}
        response = await self.upstream.request(method, path.lstrip("/"), params=httpx.QueryParams(query),
                                               content=body or None, headers=sent)
        answer = Answer(response.status_code, response.content, response.headers.get("content-type"))
        if response.status_code >= 300:
            return answer
        await self._after(principal, kind, call.object_id, data, response)
        return answer

    async def _after(self, principal: WorkerPrincipal, kind: Kind, object_id: str | None, sent: Any,
                     response: httpx.Response) -> None:
        """Checks on Prefect's answer (reads), and what the gateway learns from it."""
        scope = self.scope
        if kind is Kind.RUN_READ:
            scope.check_run_body(principal, response.json())
        elif kind in (Kind.DEPLOYMENT_READ, Kind.QUEUE_READ):
            if response.json().get("work_pool_name") != principal.pool:
                raise NotYours(f"no {kind.value.removesuffix('-read')} {object_id} in pool {principal.pool}")
        elif kind is Kind.TASK_RUN_READ:
            body = response.json()
            await scope.check_run(principal, body.get("flow_run_id"))
        elif kind is Kind.BLOCK_BY_ID:
            body = response.json()
            slug = (body.get("block_type") or {}).get("slug")
            await scope.check_block(principal, slug, body.get("name"), block_id=object_id)
        elif kind is Kind.POOL_POLL:
            for item in response.json():
                scope.learn_run(item.get("flow_run") or {}, pool=principal.pool)
        elif kind is Kind.RUNS_FILTER:
            for run in response.json():
                scope.learn_run(run)
        elif kind is Kind.TASK_RUN_CREATE:
            body = response.json()
            if body.get("id") and body.get("flow_run_id"):
                scope.task_runs[str(body["id"])] = str(body["flow_run_id"])
        elif kind is Kind.RUN_CHANGE and object_id and isinstance(sent, dict) and "state" in sent:  # set_state
            state = (sent.get("state") or {}).get("type")
            result = response.json() if response.content else {}
            if not accepted(sent["state"], result):
                return
            if result.get("status") != "ACCEPT":
                logger.info("worker token %s: its %s of flow run %s was sent again (the first answer was lost); "
                            "Prefect had taken the first", principal.name, state, object_id)
            if state == "PENDING":
                await anyio.to_thread.run_sync(worker_tokens.record_claim, principal, object_id)
            elif state in RELEASED:  # ended, or back in the queue (a Crashed run may still be retried by its holder)
                await anyio.to_thread.run_sync(worker_tokens.forget_claims, [object_id], principal)


def accepted(sent: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether Prefect's answer to a state proposal means the proposed state is the run's: accepted now, or
    accepted before, when a proposal sent again after its answer was lost (a Prefect replica died between
    the two; Prefect's client sends a 502'd request again) is rejected by Prefect's PreventDuplicateTransitions
    with the run's state, which carries the same transition id."""
    if result.get("status") == "ACCEPT":
        return True
    current = result.get("state") or {}
    transition = (sent.get("state_details") or {}).get("transition_id")
    return (result.get("status") == "REJECT" and transition is not None and current.get("type") == sent.get("type")
            and (current.get("state_details") or {}).get("transition_id") == transition)


def bind_transition(state: dict[str, Any], principal: WorkerPrincipal) -> dict[str, Any]:
    """A claim's transition id made the token's own (derived from the host's id and the token; the same
    claim sent again derives the same id). Another token of the pool, which can read the run's Pending and
    its transition id, cannot send a claim whose id matches it: its ids derive from its own token."""
    details = state.get("state_details") or {}
    if not details.get("transition_id"):
        return state
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"swarmsync:worker-token:{principal.token_id}")
    bound = str(uuid.uuid5(namespace, str(details["transition_id"])))
    return {**state, "state_details": {**details, "transition_id": bound}}
