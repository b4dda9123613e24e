"""/audit: the audit log (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from swarmsync.api.deps import require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import AuditOut
from swarmsync.auth import audit
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/audit", tags=["audit"], responses=responses(401, 403))


@router.get("", response_model=list[AuditOut])
def audit_log(
    request: Request,
    response: Response,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=2**31 - 1,  # audit_log.id is a 32-bit INTEGER
                               description="Only events older than this id (the next page: X-Next-Before)"),
    actor: str | None = Query(None, max_length=100),
    action: str | None = Query(None, max_length=64),
    principal: Principal = Depends(require(Permission.AUDIT_READ)),
) -> list[AuditOut]:
    """The audit log, newest first (read-only: no way in edits it). A full page carries the cursor of
    the next one in `X-Next-Before` and a `Link: <...>; rel="next"` header."""
    rows = [AuditOut.model_validate(e, from_attributes=True) for e in audit.events(limit, actor, action, before)]
    if len(rows) == limit:
        cursor = rows[-1].id
        response.headers["X-Next-Before"] = str(cursor)
        following = request.url.include_query_params(before=cursor, limit=limit)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return rows
