"""When a job runs: durations like `10m` and start times, checked before anything is
scheduled. A time in the past is refused with a message that says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from swarmsync.errors import InvalidError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class TimingError(InvalidError):
    """A duration or start time that cannot be used; the message says why."""


def parse_duration(text: str | float | int | timedelta) -> timedelta:
    """'90s', '10m', '1h30m', '2d', '1w' (or seconds as a number) -> timedelta > 0."""
    if isinstance(text, timedelta):
        value = text
    elif isinstance(text, int | float):
        value = timedelta(seconds=text)
    else:
        compact = str(text).strip().replace(" ", "")
        parts = _DURATION_PART.findall(compact)
        if not parts or "".join(n + u for n, u in parts).lower() != compact.lower():
            raise TimingError(
                f"duration {text!r} is not understood: use a number with a unit s, m, h, d or w, "
                "e.g. '90s', '10m', '1h30m', '2d'"
            )
        value = timedelta(seconds=sum(float(n) * _UNITS[u.lower()] for n, u in parts))
    if value <= timedelta(0):
        raise TimingError(f"duration {text!r} must be longer than zero")
    return value


def parse_time(text: str) -> datetime:
    """An ISO 8601 time ('2026-12-01T09:00+01:00', '...Z'); without an offset, local time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimingError(
            f"time {text!r} is not ISO 8601: use e.g. 2026-12-01T09:00+01:00 (or ...Z for UTC)"
        ) from None
    return aware(value)


def db_utc(value: datetime | None) -> datetime | None:
    """A time read from SwarmSync's database: SQLite returns naive datetimes, written as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def aware(value: datetime) -> datetime:
    """A naive datetime is taken as the machine's local time, as `date` shows it."""
    return value if value.tzinfo else value.astimezone()


def start_time(at: datetime | str | None = None, after: str | float | timedelta | None = None,
               now: datetime | None = None) -> datetime | None:
    """The UTC start time of a delayed job from `at` (a time) or `after` (a delay).

    None when neither is given (run now). Refuses both at once and times in the past.
    """
    if at is not None and after is not None:
        raise TimingError("give a start time (at) or a delay (in), not both")
    now = now or datetime.now(UTC)
    if after is not None:
        return now + parse_duration(after)
    if at is None:
        return None
    when = parse_time(at) if isinstance(at, str) else aware(at)
    if when < now:
        raise TimingError(
            f"start time {when.isoformat()} is in the past (it is now {now.astimezone(when.tzinfo).isoformat()}"
            f"); give a future time, or leave it out to run now"
        )
    return when.astimezone(UTC)
