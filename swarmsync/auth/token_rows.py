"""Finding a stored token by its secret: API tokens (`identify`) and worker tokens (`worker_tokens`)
keep only a digest, and refuse a revoked or expired one the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from swarmsync.auth.roles import Unauthenticated
from swarmsync.auth.secrets import digest
from swarmsync.timing import db_utc


def live_token_row(session: Session, model: Any, secret: str, what: str, now: datetime, *, named: bool = False) -> Any:
    """The `model` row whose `token_hash` is `secret`'s digest; Unauthenticated ("invalid|revoked|expired",
    saying `what` it is, and its name when `named`) if there is none or it is no longer valid at `now`."""
    row = session.scalar(select(model).where(model.token_hash == digest(secret)))
    if row is None:
        raise Unauthenticated(f"invalid {what}")
    label = f"{what} {row.name!r}" if named else what
    if row.revoked_at is not None:
        raise Unauthenticated(f"{label} revoked")
    if row.expires_at is not None and db_utc(row.expires_at) <= now:
        raise Unauthenticated(f"{label} expired")
    return row
