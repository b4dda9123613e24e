"""/worker-tokens: worker hosts' tokens (admins): create (the join command), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from swarmsync import worker_hosts
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


@router.post("", response_model=WorkerTokenCreated, status_code=201, responses=responses(400, 404, 409))
def create(body: WorkerTokenCreate, request: Request, principal: Principal = Depends(admin)) -> WorkerTokenCreated:
    """A token for one worker host; its secret and the command to run on that host are in this response only."""
    pool = body.pool or get_settings().work_pool
    uses_prefect_api(worker_hosts.check_pool)(pool)
    expires = parse_duration(body.expires) if body.expires else None
    new = worker_tokens.create(principal.username, body.name, pool, body.queue, expires, address(request))
    server, fingerprint = server_url(request), worker_hosts.ca_fingerprint()
    return WorkerTokenCreated(**new.info.model_dump(), token=new.token, server=server, ca_fingerprint=fingerprint,
                              command=worker_hosts.join_command(server, new.token, fingerprint))


@router.get("", response_model=list[WorkerTokenInfo])
def list_tokens(principal: Principal = Depends(admin)) -> list[WorkerTokenInfo]:
    """Every worker token: its pool, when and from where it was last seen, as which worker."""
    return worker_tokens.list_all()


@router.delete("/{name}", response_model=WorkerTokenRevoked, responses=responses(404))
def revoke(request: Request, name: str = Path(min_length=1, max_length=64),
           principal: Principal = Depends(admin)) -> WorkerTokenRevoked:
    """Revoke: refused from now on (within seconds); its running jobs are stopped on its host and handed back."""
    info, claimed = worker_tokens.revoke(principal.username, name, address(request))
    handed = uses_prefect_api(worker_hosts.hand_back)(claimed, info.name)
    return WorkerTokenRevoked(**info.model_dump(), handed_back=handed)
