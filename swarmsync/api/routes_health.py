"""/health: liveness (public) and `swarmsync doctor`'s checks (viewers and up)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends

from swarmsync import doctor
from swarmsync.api.deps import require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Check, Status
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=Status)
def health() -> Status:
    """Liveness of the API itself; no authentication."""
    return Status(status="ok")


@router.get("/checks", response_model=list[Check], responses=responses(401, 403))
def checks(principal: Principal = Depends(require(Permission.HEALTH_READ))) -> list[Check]:
    """`swarmsync doctor`: Prefect API, Docker, database, Redis, workers."""
    return [Check(**asdict(c)) for c in doctor.run_checks()]
