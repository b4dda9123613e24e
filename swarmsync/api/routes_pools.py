"""/pools: work pools with policy, queues and workers (viewers and up); admins change a pool's
policy (`pools:manage`), audited.

A thin wrapper over `swarmsync.deployments.pools` (the checks `swarmsync pool create` makes);
invalid settings get 422 with `errors` naming each setting.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from swarmsync.api.deps import address, require
from swarmsync.api.errors import FieldErrors, responses
from swarmsync.api.schemas import PolicyOut, PolicyUpdate, PoolOut
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal
from swarmsync.deployments import pools

router = APIRouter(prefix="/pools", tags=["pools"], responses=responses(401, 403))
PoolName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]


@router.get("", response_model=list[PoolOut], response_model_exclude_unset=True)
def pool_list(principal: Principal = Depends(require(Permission.HEALTH_READ))) -> list[PoolOut]:
    """Work pools with their policy, queues (priority, concurrency) and workers (last heartbeat)."""
    return [PoolOut.model_validate(p) for p in pools.list_pools()]


@router.patch("/{name}", response_model=PolicyOut, response_model_exclude_unset=True,
              responses=responses(404, 422))
def update_pool(name: PoolName, body: PolicyUpdate, request: Request,
                principal: Principal = Depends(require(Permission.POOLS_MANAGE))) -> PolicyOut:
    """Change a pool's policy; returns the whole policy. Workers apply it from their next heartbeat."""
    changes = body.model_dump(exclude_unset=True)
    try:
        policy = pools.update_policy(name, **changes)
    except pools.PolicyError as exc:
        raise FieldErrors(exc.errors) from None
    audit.record(principal.username, "pool.update", name, address=address(request), changes=changes)
    return PolicyOut.model_validate(policy)
