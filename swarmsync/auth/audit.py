"""The audit log: one append-only row per change and per refusal (who, what, when, where);
refusals of anonymous callers are bounded per address and window (see `refusals`).

The rows are written and read by `audit_log`; this module adds what a reader expects:
refusal counts of windows that have passed are summarised before the events are read.
"""

from __future__ import annotations

from swarmsync.auth import audit_log, refusals
from swarmsync.auth.audit_log import record
from swarmsync.db import AuditEvent

__all__ = ["events", "record"]


def events(limit: int = 100, actor: str | None = None, action: str | None = None,
           before: int | None = None) -> list[AuditEvent]:
    """The newest events first (refusal counts of windows that have passed are summarised first);
    `before`: only events with a smaller id (the next page after the last id seen)."""
    refusals.flush()
    return audit_log.events(limit, actor, action, before)
