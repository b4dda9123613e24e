"""The audit log's rows: append one, read the newest. Use `swarmsync.auth.audit`, which
also summarises pending refusal counts before a read; `refusals` writes through this module."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from swarmsync.db import AuditEvent, session_scope


def record(
    actor: str, action: str, target: str | None = None, outcome: str = "ok",
    address: str | None = None, **detail: Any,
) -> None:
    """Append one event. `detail` must never hold a secret (passwords, tokens)."""
    with session_scope() as session:
        session.add(AuditEvent(
            at=datetime.now(UTC), actor=actor[:100], action=action[:64],
            target=target[:300] if target else None, outcome=outcome, address=(address or None),
            detail={k: v for k, v in detail.items() if v is not None},
        ))


def events(limit: int = 100, actor: str | None = None, action: str | None = None,
           before: int | None = None) -> list[AuditEvent]:
    """The newest events first, as stored; `before`: only those with a smaller id (paging)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    with session_scope() as session:
        return list(session.scalars(query))
