"""Prefect's event websockets through the gateway: a worker's own events in, its pool's events out.

Prefect's protocol: the client opens the socket with the `prefect` subprotocol and sends
`{"type": "auth", "token": ...}` first (the worker's token, as its Prefect auth string
`worker:ssw_...`); the gateway answers `auth_success` itself, opens the same socket to Prefect with
Core's credentials, and relays: events a worker emits only about its pool's runs and itself
(others are dropped and counted), events it subscribes to only about its pool.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect

from swarmsync import job_events
from swarmsync.auth import worker_tokens
from swarmsync.auth.roles import Unauthenticated
from swarmsync.auth.worker_tokens import WorkerPrincipal
from swarmsync.gateway.proxy import Gateway, upstream_headers
from swarmsync.gateway.scope import NotYours

logger = logging.getLogger("swarmsync.gateway")


def token_of(credential: str | None) -> str | None:
    """The worker token in what a worker sends: `worker:ssw_...` (its Prefect auth string) or the token."""
    if not credential:
        return None
    return credential.split(":", 1)[1] if ":" in credential else credential


def _ids(event: dict[str, Any]) -> list[str]:
    resource = (event.get("resource") or {}).get("prefect.resource.id", "")
    related = [r.get("prefect.resource.id", "") for r in event.get("related") or [] if isinstance(r, dict)]
    return [resource, *related]


async def event_allowed(gateway: Gateway, principal: WorkerPrincipal, event: dict[str, Any]) -> bool:
    """An event a worker may emit: about itself (a worker) or a run of its pool, naming no other run."""
    ids = _ids(event)
    resource = ids[0]
    if not resource.startswith(("prefect.worker.", "prefect.flow-run.", "prefect.task-run.")):
        return False
    runs = [i.removeprefix("prefect.flow-run.") for i in ids if i.startswith("prefect.flow-run.")]
    if resource.startswith("prefect.task-run.") and not runs:
        return False
    try:
        for run_id in runs:
            await gateway.scope.check_run(principal, run_id)
        if str(event.get("event", "")).startswith(job_events.PREFIX):
            return resource.startswith("prefect.flow-run.") and await _job_event_true(gateway, principal, event,
                                                                                      runs[0])
    except NotYours:
        return False
    return True


async def _job_event_true(gateway: Gateway, principal: WorkerPrincipal, event: dict[str, Any], run_id: str) -> bool:
    """A `swarmsync.job.*` event names its run's own user, project and pool (alerts select by them): a host
    cannot make another project's alert fire."""
    user, project = await gateway.scope.owners(run_id)
    want = {"user": user, "project": project, "pool": principal.pool}
    for related in event.get("related") or []:
        role = related.get("prefect.resource.role") if isinstance(related, dict) else None
        if role in want and related.get("prefect.resource.id") != job_events.resource_id(role, str(want[role])):
            return False
    return True


def event_visible(gateway: Gateway, principal: WorkerPrincipal, pool_id: str, event: dict[str, Any]) -> bool:
    """An event a worker may see: one about its pool (Prefect relates a run's events to its work pool)."""
    ids = _ids(event)
    if f"prefect.work-pool.{pool_id}" in ids:
        return True
    runs = [i.removeprefix("prefect.flow-run.") for i in ids if i.startswith("prefect.flow-run.")]
    return bool(runs) and all((f := gateway.scope.runs.get(r)) is not None and gateway.scope.owns(principal, f)
                              for r in runs)


async def _accept(websocket: WebSocket, address: str | None) -> WorkerPrincipal | None:
    await websocket.accept(subprotocol="prefect")
    try:
        message = await websocket.receive_json()
    except (WebSocketDisconnect, ValueError):
        return None
    if message.get("type") != "auth":
        await websocket.close(1008, reason="Expected 'auth' message")
        return None
    try:
        principal = await anyio.to_thread.run_sync(worker_tokens.identify, token_of(message.get("token")), address)
    except Unauthenticated as exc:
        await websocket.close(1008, reason=str(exc)[:120])
        return None
    await websocket.send_json({"type": "auth_success"})
    return principal


def _upstream_url(gateway: Gateway, path: str) -> str:
    return gateway.base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path


async def _open_upstream(gateway: Gateway, path: str):
    from swarmsync.settings import get_settings

    auth = get_settings().prefect_auth_string
    socket = await connect(_upstream_url(gateway, path), subprotocols=["prefect"],
                           additional_headers=upstream_headers())
    await socket.send(json.dumps({"type": "auth", "token": auth.get_secret_value() if auth else None}))
    reply = json.loads(await socket.recv())
    if reply.get("type") != "auth_success":
        await socket.close()
        raise ConnectionError(f"Prefect refused the gateway's event socket: {reply}")
    return socket


async def relay_in(gateway: Gateway, websocket: WebSocket, address: str | None) -> None:
    principal = await _accept(websocket, address)
    if principal is None:
        return
    dropped = 0
    try:
        async with await _open_upstream(gateway, "events/in") as upstream:
            async for text in websocket.iter_text():
                try:
                    event = json.loads(text)
                except ValueError:
                    dropped += 1
                    continue
                if await event_allowed(gateway, principal, event):
                    await upstream.send(text)
                else:
                    dropped += 1
    except WebSocketDisconnect:
        pass
    finally:
        if dropped:
            logger.warning("worker token %s: dropped %d event(s) not about its pool's runs", principal.name, dropped)


async def relay_out(gateway: Gateway, websocket: WebSocket, address: str | None) -> None:
    principal = await _accept(websocket, address)
    if principal is None:
        return
    try:
        pool_id = str((await gateway.scope.pool(principal.pool)).get("id"))
        message = await websocket.receive_text()
        async with await _open_upstream(gateway, "events/out") as upstream:
            await upstream.send(message)  # the filter; what passes it is filtered again below
            async for text in upstream:
                item = json.loads(text)
                if item.get("type") != "event" or event_visible(gateway, principal, pool_id, item.get("event") or {}):
                    await websocket.send_text(text if isinstance(text, str) else text.decode())
    except WebSocketDisconnect:
        pass
