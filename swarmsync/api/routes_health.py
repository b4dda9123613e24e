"""/health (public liveness), /health/checks, /workers and /pools (viewers and up), /audit (admin)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query

from swarmsync import doctor
from swarmsync.api.deps import require
from swarmsync.api.schemas import AuditOut, Check, PoolOut
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal
from swarmsync.deployments import pools

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness of the API itself; no authentication."""
    return {"status": "ok"}


@router.get("/health/checks", response_model=list[Check], responses={401: {}, 403: {}})
def checks(principal: Principal = Depends(require(Permission.HEALTH_READ))) -> list[Check]:
    """`swarmsync doctor`: Prefect API, Docker, database, Redis, workers."""
    return [Check(**asdict(c)) for c in doctor.run_checks()]


@router.get("/workers", response_model=Check, responses={401: {}, 403: {}})
def workers(principal: Principal = Depends(require(Permission.HEALTH_READ))) -> Check:
    """The live workers of the default pool with their hosts' telemetry."""
    return Check(**asdict(doctor.check_workers()))


@router.get("/pools", response_model=list[PoolOut], responses={401: {}, 403: {}})
def pool_list(principal: Principal = Depends(require(Permission.HEALTH_READ))) -> list[PoolOut]:
    """Work pools with their policy, queues (priority, concurrency) and workers (last heartbeat)."""
    return [PoolOut.model_validate(p) for p in pools.list_pools()]


@router.get("/audit", response_model=list[AuditOut], tags=["audit"], responses={401: {}, 403: {}})
def audit_log(
    limit: int = Query(100, ge=1, le=1000),
    actor: str | None = Query(None, max_length=100),
    action: str | None = Query(None, max_length=64),
    principal: Principal = Depends(require(Permission.AUDIT_READ)),
) -> list[AuditOut]:
    """The audit log, newest first (read-only: no way in edits it)."""
    return [AuditOut.model_validate(e, from_attributes=True) for e in audit.events(limit, actor, action)]
