"""Schedule helpers of the Hibernator: Prefect schedules checked with messages that say
what is wrong, their next run times, and overlap policies as deployment concurrency.

A recurring job is a deployment of the `container-job` flow (see `job_deployment.py`)
holding one or more Prefect deployment schedules; each schedule may carry its own
`job` parameter. Prefect's scheduler service creates the runs, so everything lives in
the Prefect database and survives restarts.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.client.schemas.schedules import SCHEDULE_TYPES, CronSchedule, IntervalSchedule, RRuleSchedule
from prefect.schedules import Schedule

from swarmsync.errors import Error, InvalidError
from swarmsync.prefect_internals import cron_checkers

OVERLAP_POLICIES = ("allow", "skip", "queue")
_STRATEGY = {"skip": ConcurrencyLimitStrategy.CANCEL_NEW, "queue": ConcurrencyLimitStrategy.ENQUEUE}


class ScheduleError(InvalidError):
    """A schedule that cannot be used; the message says why and how to fix it."""


def check_timezone(timezone: str | None) -> str | None:
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"time zone {timezone!r} is unknown: use an IANA name such as 'Europe/Berlin', "
            "'America/New_York' or 'UTC'"
        ) from None
    return timezone


def check_cron(expression: str) -> str:
    validate_cron_string, croniter = cron_checkers()  # Prefect's own cron rules: their errors say why

    if len(expression.split()) not in (5, 6):
        raise ScheduleError(
            f"cron expression {expression!r} has {len(expression.split())} fields; expected 5: "
            "minute hour day-of-month month day-of-week, e.g. '30 2 * * *' (02:30 daily)"
        )
    try:
        croniter(expression)
        validate_cron_string(expression)
    except Exception as exc:  # noqa: BLE001 - croniter raises several types; its message says why
        raise ScheduleError(f"cron expression {expression!r} is not valid: {exc}") from None
    return expression


RRULE_ANCHOR = datetime(2020, 1, 1)  # Prefect's DEFAULT_ANCHOR_DATE: the start of a rule without DTSTART
RRULE_CHECK_SECONDS = 0.4  # how long finding an RRule's next occurrence may take before it is refused


class _TooSlow(Error):
    pass


def _bounded(seconds: float, compute: Callable[[], Any]) -> Any:
    """`compute()`, stopped with _TooSlow once it has run `seconds`: dateutil can search for an
    occurrence until the year 9999 without ever yielding (a rule that never occurs), so the deadline
    is checked at every Python call it makes (a trace function on this thread only)."""
    deadline = time.monotonic() + seconds
    previous = sys.gettrace()

    def stop_when_late(_frame, _event, _arg):
        if time.monotonic() > deadline:
            raise _TooSlow
        return None  # no line events: only each call is checked

    sys.settrace(stop_when_late)
    try:
        return compute()
    finally:
        sys.settrace(previous)


def _wall_clock(parsed: Any) -> Any:
    """An rrule or rruleset with every time made naive (its wall time)."""
    from dateutil.rrule import rrule

    def naive(one: rrule) -> rrule:
        changes = {"dtstart": one._dtstart.replace(tzinfo=None)}
        if one._until:
            changes["until"] = one._until.replace(tzinfo=None)
        return one.replace(**changes)

    if isinstance(parsed, rrule):
        return naive(parsed)
    parsed._rrule = [naive(r) for r in parsed._rrule]
    parsed._exrule = [naive(r) for r in parsed._exrule]
    parsed._rdate = [d.replace(tzinfo=None) for d in parsed._rdate]
    parsed._exdate = [d.replace(tzinfo=None) for d in parsed._exdate]
    return parsed


def check_rrule(rule: str, timezone: str | None = None) -> str:
    """A valid RRule that occurs again, found as Prefect's scheduler will look for it (from its DTSTART,
    else Prefect's anchor 2020-01-01, in `timezone`) within RRULE_CHECK_SECONDS; refused otherwise, so
    an impossible rule (February 31) never reaches the scheduler, which would search it for minutes."""
    hint = "(e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0')"
    try:
        parsed = rrulestr(rule, dtstart=RRULE_ANCHOR, cache=False)  # Prefect's anchor when there is no DTSTART
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"RRule {rule!r} is not valid: {exc} {hint}") from None
    # Wall times in the schedule's zone, as Prefect reads the rule; naive, so that no time zone code runs
    # in the search (dateutil's zones are Python: a rule with TZID took seconds).
    parsed = _wall_clock(parsed)
    start = datetime.now(ZoneInfo(timezone or "UTC")).replace(tzinfo=None)
    try:
        following = _bounded(RRULE_CHECK_SECONDS, lambda: parsed.after(start, inc=True))
    except _TooSlow:
        raise ScheduleError(
            f"RRule {rule!r}: no next occurrence found within {RRULE_CHECK_SECONDS} s. It may never occur "
            "(a date that does not exist, e.g. BYMONTH=2;BYMONTHDAY=30), or it repeats so often since its start "
            "(DTSTART, else 2020-01-01) that Prefect's scheduler would spend minutes on it: give a recent DTSTART "
            "('DTSTART:20260101T090000\\nRRULE:FREQ=HOURLY'), "
            f"or use a cron or interval schedule {hint}"
        ) from None
    except TypeError:  # a DTSTART with its own zone next to a naive one
        raise ScheduleError(f"RRule {rule!r} mixes times with and without a time zone {hint}") from None
    if following is None:
        raise ScheduleError(
            f"RRule {rule!r} has no run in the future: it never occurs after now (a date that does not exist, "
            f"e.g. BYMONTH=2;BYMONTHDAY=31, or a COUNT or UNTIL already past) {hint}"
        )
    return rule


def build_schedule(
    cron: str | None = None, every: timedelta | None = None, rrule: str | None = None,
    timezone: str | None = None, start: datetime | None = None, parameters: dict[str, Any] | None = None,
    active: bool = True, slug: str | None = None,
) -> Schedule:
    """One Prefect schedule from exactly one of `cron`, `every` (an interval) or `rrule`."""
    given = [k for k, v in {"cron": cron, "every": every, "rrule": rrule}.items() if v is not None]
    if len(given) != 1:
        raise ScheduleError(
            "give exactly one of a cron expression, an interval (every) or an RRule"
            + (f"; got {', '.join(given)}" if given else "")
        )
    check_timezone(timezone)
    common: dict[str, Any] = {"timezone": timezone, "parameters": parameters or {}, "active": active, "slug": slug}
    if cron is not None:
        return Schedule(cron=check_cron(cron), **common)
    if rrule is not None:
        return Schedule(rrule=check_rrule(rrule, timezone), **common)
    if every <= timedelta(0):
        raise ScheduleError(f"interval {every} must be longer than zero")
    return Schedule(interval=every, anchor_date=start or datetime.now(UTC), **common)


def check_schedule(schedule: Schedule) -> Schedule:
    """Validate a Prefect `Schedule` (e.g. from `prefect.schedules.Cron`) with clear messages."""
    check_timezone(schedule.timezone)
    if schedule.cron is not None:
        check_cron(schedule.cron)
    if schedule.rrule is not None:
        check_rrule(schedule.rrule, schedule.timezone)
    if schedule.interval is not None and schedule.interval <= timedelta(0):
        raise ScheduleError(f"interval {schedule.interval} must be longer than zero")
    return schedule


def to_deployment_schedule(schedule: Schedule) -> DeploymentScheduleCreate:
    try:
        return DeploymentScheduleCreate.from_schedule(check_schedule(schedule))
    except ValueError as exc:
        if isinstance(exc, ScheduleError):
            raise
        raise ScheduleError(f"schedule not valid: {exc}") from None


def next_run_times(schedule: SCHEDULE_TYPES | Schedule, n: int = 3, after: datetime | None = None) -> list[datetime]:
    """The next `n` run times after `after` (default now), as Prefect's scheduler computes them."""
    from prefect.server.schemas import schedules as server
    from prefect.utilities.asyncutils import run_coro_as_sync

    if isinstance(schedule, Schedule):
        schedule = to_deployment_schedule(schedule).schedule
    server_cls = {
        CronSchedule: server.CronSchedule, IntervalSchedule: server.IntervalSchedule,
        RRuleSchedule: server.RRuleSchedule,
    }[type(schedule)]
    server_schedule = server_cls(**schedule.model_dump(exclude_none=True))
    start = after or datetime.now(UTC)
    return list(run_coro_as_sync(server_schedule.get_dates(n=n, start=start)) or [])


def describe(schedule: SCHEDULE_TYPES) -> str:
    """'cron 30 2 * * * (Europe/Berlin)', 'every 0:15:00', 'rrule FREQ=...'."""
    zone = f" ({schedule.timezone})" if getattr(schedule, "timezone", None) else ""
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.cron}{zone}"
    if isinstance(schedule, IntervalSchedule):
        return f"every {schedule.interval}{zone}"
    return f"rrule {schedule.rrule}{zone}"


def overlap_options(overlap: str) -> tuple[int | None, ConcurrencyOptions | None]:
    """Deployment concurrency for an overlap policy: allow = no limit; skip = limit 1 with
    CANCEL_NEW (a run that would overlap is cancelled); queue = limit 1 with ENQUEUE."""
    if overlap not in OVERLAP_POLICIES:
        raise ScheduleError(f"overlap policy {overlap!r} is not one of {', '.join(OVERLAP_POLICIES)}")
    if overlap == "allow":
        return None, None
    return 1, ConcurrencyOptions(collision_strategy=_STRATEGY[overlap])


def overlap_policy(concurrency_limit: int | None, options: ConcurrencyOptions | None) -> str:
    """The overlap policy a deployment's concurrency settings stand for."""
    if not concurrency_limit:
        return "allow"
    strategy = options.collision_strategy if options else ConcurrencyLimitStrategy.ENQUEUE
    return "skip" if strategy == ConcurrencyLimitStrategy.CANCEL_NEW else "queue"
