"""The audit log: one append-only row per change and per refusal (who, what, when, where);
refusals of anonymous callers are bounded per address and window (see `refusals`)."""

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


def events(limit: int = 100, actor: str | None = None, action: str | None = None) -> list[AuditEvent]:
    """The newest events first (refusal counts of windows that have passed are summarised first)."""
    from swarmsync.auth import refusals

    refusals.flush()
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    with session_scope() as session:
        return list(session.scalars(query))
