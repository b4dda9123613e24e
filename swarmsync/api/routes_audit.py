"""/audit: the audit log (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from swarmsync.api.deps import require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import AuditOut
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/audit", tags=["audit"], responses=responses(401, 403))


@router.get("", response_model=list[AuditOut])
def audit_log(
    limit: int = Query(100, ge=1, le=1000),
    actor: str | None = Query(None, max_length=100),
    action: str | None = Query(None, max_length=64),
    principal: Principal = Depends(require(Permission.AUDIT_READ)),
) -> list[AuditOut]:
    """The audit log, newest first (read-only: no way in edits it)."""
    return [AuditOut.model_validate(e, from_attributes=True) for e in audit.events(limit, actor, action)]
