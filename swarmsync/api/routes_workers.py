"""/workers: the live workers of the default pool (viewers and up)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends

from swarmsync import doctor
from swarmsync.api.deps import require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Check
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/workers", tags=["workers"], responses=responses(401, 403))


@router.get("", response_model=Check)
def workers(principal: Principal = Depends(require(Permission.HEALTH_READ))) -> Check:
    """The live workers of the default pool with their hosts' telemetry."""
    return Check(**asdict(doctor.check_workers()))
