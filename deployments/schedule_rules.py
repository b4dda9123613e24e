"""Schedule helpers of the Hibernator: Prefect schedules checked with messages that say
what is wrong, their next run times, and overlap policies as deployment concurrency.

A recurring job is a deployment of the `container-job` flow (see `job_deployment.py`)
holding one or more Prefect deployment schedules; each schedule may carry its own
`job` parameter. Prefect's scheduler service creates the runs, so everything lives in
the Prefect database and survives restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.client.schemas.schedules import SCHEDULE_TYPES, CronSchedule, IntervalSchedule, RRuleSchedule
from prefect.schedules import Schedule

from swarmsync.prefect_internals import cron_checkers

OVERLAP_POLICIES = ("allow", "skip", "queue")
_STRATEGY = {"skip": ConcurrencyLimitStrategy.CANCEL_NEW, "queue": ConcurrencyLimitStrategy.ENQUEUE}


class ScheduleError(ValueError):
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


def check_rrule(rule: str) -> str:
    from dateutil.rrule import rrulestr

    try:
        rrulestr(rule, cache=False)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(
            f"RRule {rule!r} is not valid: {exc} (e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0')"
        ) from None
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
        return Schedule(rrule=check_rrule(rrule), **common)
    if every <= timedelta(0):
        raise ScheduleError(f"interval {every} must be longer than zero")
    return Schedule(interval=every, anchor_date=start or datetime.now(UTC), **common)


def check_schedule(schedule: Schedule) -> Schedule:
    """Validate a Prefect `Schedule` (e.g. from `prefect.schedules.Cron`) with clear messages."""
    check_timezone(schedule.timezone)
    if schedule.cron is not None:
        check_cron(schedule.cron)
    if schedule.rrule is not None:
        check_rrule(schedule.rrule)
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
