"""/worker-tokens: worker hosts' tokens (admins): create (the join command), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.auth import worker_tokens
from swarmsync.auth.roles import Permission, Principal
from swarmsync.auth.worker_tokens import WorkerTokenInfo
from swarmsync.connection import uses_prefect_api
from swarmsync.settings import get_settings
from swarmsync.timing import parse_duration

router = APIRouter(prefix="/worker-tokens", tags=["workers"], responses=responses(401, 403))
admin = require(Permission.POOLS_MANAGE)
HAND_BACK_DELAY = timedelta(seconds=45)  # the revoked host stops its containers first (docs/many-hosts.md)


class WorkerTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="The host's name, e.g. gpu-box-1")
    pool: str | None = Field(None, max_length=100, description="Its work pool (default: SWARMSYNC_WORK_POOL)")
    queue: str | None = Field(None, max_length=100, description="Only this work queue of the pool")
    expires: str | None = Field(None, max_length=20, description="Lifetime, e.g. 90d, 12h (default: never)")


class WorkerTokenCreated(WorkerTokenInfo):
    token: str = Field(description="The secret: shown once")
    server: str = Field(description="Core's URL the worker host uses")
    ca_fingerprint: str | None = Field(description="SHA-256 of Core's CA certificate (None: no CA of Core's own)")
    command: str = Field(description="What to run on the new host")


class WorkerTokenRevoked(WorkerTokenInfo):
    handed_back: list[str] = Field(description="Runs it held, sent back to the queue")


def server_url(request: Request) -> str:
    """Core's URL as a worker host reaches it: SWARMSYNC_PUBLIC_URL, else how this request reached it."""
    return (get_settings().public_url or str(request.base_url)).rstrip("/")


def ca_fingerprint() -> str | None:
    try:
        from swarmsync import tls
    except ImportError:
        return None
    return tls.core_ca_fingerprint()


def join_command(server: str, token: str, fingerprint: str | None) -> str:
    pin = f" --ca-fingerprint {fingerprint}" if fingerprint else ""
    return f"swarmsync worker start --server {server} --token {token}{pin}"


@router.post("", response_model=WorkerTokenCreated, status_code=201, responses=responses(400, 404, 409))
def create(body: WorkerTokenCreate, request: Request, principal: Principal = Depends(admin)) -> WorkerTokenCreated:
    """A token for one worker host; its secret and the command to run on that host are in this response only."""
    from swarmsync.deployments.pools import pool_policy

    pool = body.pool or get_settings().work_pool
    uses_prefect_api(pool_policy)(pool)  # PoolNotFound (404) for a pool that does not exist
    expires = parse_duration(body.expires) if body.expires else None
    new = worker_tokens.create(principal.username, body.name, pool, body.queue, expires, address(request))
    server, fingerprint = server_url(request), ca_fingerprint()
    return WorkerTokenCreated(**new.info.model_dump(), token=new.token, server=server, ca_fingerprint=fingerprint,
                              command=join_command(server, new.token, fingerprint))


@router.get("", response_model=list[WorkerTokenInfo])
def list_tokens(principal: Principal = Depends(admin)) -> list[WorkerTokenInfo]:
    """Every worker token: its pool, when and from where it was last seen, as which worker."""
    return worker_tokens.list_all()


@router.delete("/{name}", response_model=WorkerTokenRevoked, responses=responses(404))
def revoke(request: Request, name: str = Path(min_length=1, max_length=64),
           principal: Principal = Depends(admin)) -> WorkerTokenRevoked:
    """Revoke: refused from now on (within seconds); its running jobs are stopped on its host and handed back."""
    info, claimed = worker_tokens.revoke(principal.username, name, address(request))
    handed = uses_prefect_api(hand_back)(claimed, info.name)
    return WorkerTokenRevoked(**info.model_dump(), handed_back=handed)


def hand_back(flow_run_ids: list[str], token: str) -> list[str]:
    """Send the token's runs that are still Pending or Running back to their queue (AwaitingRetry, due after
    HAND_BACK_DELAY so that the revoked host has stopped them first); returns their ids."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
    from prefect.client.schemas.objects import StateType
    from prefect.states import AwaitingRetry

    async def run() -> list[str]:
        if not flow_run_ids:
            return []
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=flow_run_ids),
                state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.PENDING, StateType.RUNNING]))))
            due = datetime.now(UTC) + HAND_BACK_DELAY
            for run in runs:
                await client.set_flow_run_state(run.id, AwaitingRetry(
                    scheduled_time=due, message=f"handed back: worker token {token} was revoked"), force=True)
            return [str(run.id) for run in runs]

    handed = anyio.run(run)
    worker_tokens.forget_claims(handed)
    return handed
