"""/worker: what worker hosts call, with a worker token only (users' tokens are refused, 401).

- `/worker/prefect/api/...`: Prefect's API through the gateway (`swarmsync.gateway`): the worker's
  `PREFECT_API_URL`; HTTP calls and the two event websockets.
- `/worker/telemetry`: the host's heartbeat facts (the dashboard's and doctor's worker table).
- `/worker/runs/{id}/owner`: who submitted a run of the pool and their roles now (re-checked per run).
- `/worker/runs/{id}/outcome`: a run's archived outcome, if it has one (a resumed run is not run twice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response, WebSocket
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from swarmsync.api.deps import address
from swarmsync.api.errors import error_response, responses
from swarmsync.api.worker_auth import worker_caller
from swarmsync.auth import audit
from swarmsync.auth.worker_tokens import WorkerPrincipal
from swarmsync.gateway import events
from swarmsync.gateway.proxy import Gateway, Refused

router = APIRouter(prefix="/worker", tags=["worker hosts"], responses=responses(401, 403, 404))


def gateway(connection: HTTPConnection) -> Gateway:
    """The app's gateway (its upstream client lives on the app's event loop; made at first use)."""
    state = connection.app.state
    if getattr(state, "gateway", None) is None:
        state.gateway = Gateway()
    return state.gateway


@router.api_route("/prefect/api/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                  include_in_schema=False)
async def prefect_api(path: str, request: Request, principal: WorkerPrincipal = Depends(worker_caller)) -> Response:
    """One Prefect API call of the token's worker, checked and forwarded with Core's credentials."""
    body = await request.body()
    try:
        answer = await gateway(request).forward(principal, request.method, path, request.url.query,
                                         dict(request.headers), body)
    except Refused as exc:
        why = str(exc)
        await anyio.to_thread.run_sync(lambda: audit.record(
            principal.actor, f"{request.method} /api/{path}"[:64], principal.pool, "denied", address(request),
            why=why, status=403))
        return error_response(403, why)  # NotYours: 404, NotHeld: 409 (api/errors.py)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


@router.websocket("/prefect/api/events/in")
async def events_in(websocket: WebSocket) -> None:
    await events.relay_in(gateway(websocket), websocket, websocket.client.host if websocket.client else None)


@router.websocket("/prefect/api/events/out")
async def events_out(websocket: WebSocket) -> None:
    await events.relay_out(gateway(websocket), websocket, websocket.client.host if websocket.client else None)


class WhoAmI(BaseModel):
    name: str
    pool: str
    queue: str | None


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: WorkerPrincipal = Depends(worker_caller)) -> WhoAmI:
    """The calling token: its name, pool and queue (`worker start --server` takes its pool from here)."""
    return WhoAmI(name=principal.name, pool=principal.pool, queue=principal.queue)


class Telemetry(BaseModel):
    worker_name: str = Field(max_length=200)
    hostname: str = Field(max_length=200)
    pid: int
    docker_version: str | None = Field(None, max_length=100)
    cpus: int | None = None
    memory_bytes: int | None = None
    containers_running: int | None = None
    docker_error: str | None = Field(None, max_length=300)
    running_jobs: int
    started_at: datetime


@router.post("/telemetry", status_code=204)
def telemetry(body: Telemetry, principal: WorkerPrincipal = Depends(worker_caller)) -> Response:
    """The host's facts at its heartbeat, recorded under the token's pool."""
    from swarmsync.recovery import store_telemetry

    store_telemetry(pool=principal.pool, **body.model_dump())
    return Response(status_code=204)


class RunOwner(BaseModel):
    submitter: str | None
    role: str | None
    project: str | None
    project_role: str | None


async def _run(request: Request, principal: WorkerPrincipal, run_id: str) -> dict[str, Any]:
    await gateway(request).scope.check_run(principal, run_id)
    response = await gateway(request).upstream.get(f"flow_runs/{run_id}")
    response.raise_for_status()
    return response.json()


@router.get("/runs/{run_id}/owner", response_model=RunOwner)
async def run_owner(run_id: str, request: Request,
                    principal: WorkerPrincipal = Depends(worker_caller)) -> RunOwner | Response:
    """Who submitted the run (or owns its schedule), and their global and project roles now."""
    from prefect.client.schemas.objects import FlowRun

    from swarmsync.owners import project_of
    from swarmsync.worker import run_submitter, user_membership

    run = FlowRun.model_validate(await _run(request, principal, run_id))  # NotYours: 404 (api/errors.py)
    submitter, project = run_submitter(run), project_of(run)
    role, project_role = (await anyio.to_thread.run_sync(user_membership, submitter, project)
                          if submitter else (None, None))
    return RunOwner(submitter=submitter, role=role, project=project, project_role=project_role)


class RunOutcome(BaseModel):
    state: str
    message: str | None


@router.get("/runs/{run_id}/outcome", response_model=RunOutcome)
async def run_outcome(run_id: str, request: Request,
                      principal: WorkerPrincipal = Depends(worker_caller)) -> RunOutcome | Response:
    """The run's archived outcome (its final state's name and message); 404 when it has none."""
    from swarmsync import archive

    await gateway(request).scope.check_run(principal, run_id)  # NotYours: 404 (api/errors.py)
    done = await anyio.to_thread.run_sync(archive.indexed_outcome, run_id)
    if not done:
        return error_response(404, f"flow run {run_id} has no archived outcome")
    return RunOutcome(state=done[0], message=done[1])
