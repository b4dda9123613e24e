"""/pools/{name}: admins change a pool's policy (`pools:manage`), audited.

A thin wrapper over `swarmsync.deployments.pools.update_policy` (the checks `swarmsync pool create`
makes); invalid settings get 422 with "setting: what is wrong" for each one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import Field

from swarmsync.api.deps import address, require
from swarmsync.api.schemas import Strict
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal
from swarmsync.deployments import pools

router = APIRouter(tags=["health"], responses={401: {}, 403: {}})

Text = Annotated[str, Field(max_length=200)]
PoolName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]


class PolicyUpdate(Strict):
    """The settings to change (README: Workers, pools and routing); those left out stay as they are,
    null clears a ceiling or a block."""

    allow_privileged: bool | None = None
    allow_host_network: bool | None = None
    allow_gpu: bool | None = None
    max_cpu: float | None = None
    max_memory: Text | None = None
    max_pids: int | None = None
    max_timeout: float | None = None
    default_cpu: float | None = None
    default_memory: Text | None = None
    default_pids_limit: int | None = None
    default_network: Text | None = None
    cap_drop: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=64)
    pull_policy: Text | None = None
    docker_host: Text | None = Field(default=None, description="A Docker Host block name")
    registry_credentials: Text | None = Field(default=None, description="A Docker Registry Credentials block name")
    archive_block: Text | None = Field(default=None, description="A filesystem block slug")


@router.patch("/pools/{name}", response_model=dict[str, Any], responses={404: {}, 422: {}})
def update_pool(name: PoolName, body: PolicyUpdate, request: Request,
                principal: Principal = Depends(require(Permission.POOLS_MANAGE))) -> dict[str, Any]:
    """Change a pool's policy; returns the whole policy. Workers apply it from their next heartbeat."""
    changes = body.model_dump(exclude_unset=True)
    try:
        policy = pools.update_policy(name, **changes)
    except pools.PolicyError as exc:
        raise HTTPException(422, str(exc)) from None
    audit.record(principal.username, "pool.update", name, address=address(request), changes=changes)
    return policy
