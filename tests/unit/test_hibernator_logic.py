"""Pure logic of the Hibernator: durations and start times, schedule validation,
time zones and DST (computed by Prefect's own scheduler code), overlap policies,
job templates as blocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from swarmsync.blocks.job_template import JobTemplate
from swarmsync.deployments.schedule_rules import (
    ScheduleError,
    build_schedule,
    check_cron,
    check_rrule,
    check_timezone,
    next_run_times,
    overlap_options,
    overlap_policy,
)
from swarmsync.deployments.schedules import Cron, RRule, _deployment_schedule, _schedule_from_options
from swarmsync.spec import JobSpec, JobSpecError
from swarmsync.templates import check_name
from swarmsync.timing import TimingError, parse_duration, parse_time, start_time

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("1.5h", 5400), (45, 45),
])
def test_durations_are_parsed(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["10", "ten minutes", "10x", "-5m", "0s", "", "m10"])
def test_bad_durations_are_refused_saying_which_units_work(text):
    with pytest.raises(TimingError, match="duration"):
        parse_duration(text)


def test_delay_gives_a_start_time_after_now():
    assert start_time(after="10m", now=NOW) == NOW + timedelta(minutes=10)


def test_iso_time_with_offset_is_converted_to_utc():
    assert start_time("2026-12-01T09:00+01:00", now=NOW) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert start_time("2026-12-01T09:00Z", now=NOW) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_naive_time_is_taken_as_local_time():
    assert parse_time("2026-12-01T09:00") == datetime(2026, 12, 1, 9, 0).astimezone()


def test_a_start_time_in_the_past_is_refused_saying_so():
    with pytest.raises(TimingError, match="in the past"):
        start_time(NOW - timedelta(seconds=1), now=NOW)
    with pytest.raises(TimingError, match="in the past"):
        start_time("2020-01-01T00:00Z", now=NOW)


def test_no_time_means_now_and_both_at_once_is_refused():
    assert start_time(None, None, now=NOW) is None
    with pytest.raises(TimingError, match="not both"):
        start_time(NOW + timedelta(hours=1), "10m", now=NOW)


def test_a_malformed_time_is_refused_with_an_example():
    with pytest.raises(TimingError, match="ISO 8601"):
        parse_time("tomorrow at nine")


def _local_days(times: list[datetime]) -> list[date]:
    return [t.astimezone(BERLIN).date() for t in times]


def test_daily_0230_runs_once_on_the_spring_forward_day_after_the_gap():
    """2027-03-28 in Berlin: 02:00 jumps to 03:00, so 02:30 does not exist that day."""
    schedule = build_schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    runs = next_run_times(schedule, n=4, after=datetime(2027, 3, 26, 12, tzinfo=BERLIN))
    assert _local_days(runs) == [date(2027, 3, 27), date(2027, 3, 28), date(2027, 3, 29), date(2027, 3, 30)]
    change_day = runs[1].astimezone(BERLIN)
    assert (change_day.hour, change_day.minute) == (3, 30)  # the first wall-clock time after the gap
    assert all(t.astimezone(BERLIN).strftime("%H:%M") == "02:30" for t in (runs[0], runs[2], runs[3]))
    assert runs[2] - runs[1] == timedelta(hours=23)


def test_daily_0230_runs_once_on_the_fall_back_day():
    """2027-10-31 in Berlin: 02:30 happens twice (CEST, then CET); the job runs once."""
    schedule = build_schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    runs = next_run_times(schedule, n=3, after=datetime(2027, 10, 30, 12, tzinfo=BERLIN))
    assert _local_days(runs) == [date(2027, 10, 31), date(2027, 11, 1), date(2027, 11, 2)]
    assert [t.astimezone(BERLIN).strftime("%H:%M") for t in runs] == ["02:30"] * 3
    assert runs[1] - runs[0] == timedelta(hours=25)


@pytest.mark.parametrize("schedule", [
    build_schedule(cron="0 9 * * 1", timezone="Europe/Berlin"),
    build_schedule(rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0", timezone="Europe/Berlin"),
    build_schedule(every=timedelta(weeks=1), timezone="Europe/Berlin",
                   start=datetime(2027, 3, 15, 9, 0, tzinfo=BERLIN)),
], ids=["cron", "rrule", "interval"])
def test_weekly_job_keeps_its_local_time_across_the_dst_change(schedule):
    runs = next_run_times(schedule, n=3, after=datetime(2027, 3, 20, tzinfo=BERLIN))
    assert [t.astimezone(BERLIN).strftime("%a %H:%M") for t in runs] == ["Mon 09:00"] * 3
    assert [t.astimezone(UTC).hour for t in runs] == [8, 7, 7]  # UTC moves, local time does not


def test_utc_schedule_is_not_shifted_by_dst():
    runs = next_run_times(build_schedule(cron="30 2 * * *", timezone="UTC"), n=3,
                          after=datetime(2027, 3, 27, tzinfo=UTC))
    assert [t.astimezone(UTC).strftime("%d %H:%M") for t in runs] == ["27 02:30", "28 02:30", "29 02:30"]


@pytest.mark.parametrize("expression, why", [
    ("61 * * * *", "out of range"),
    ("* * *", "expected 5"),
    ("0 25 * * *", "out of range"),
    ("H * * * *", "Hashed"),
])
def test_invalid_cron_is_refused_saying_why(expression, why):
    with pytest.raises(ScheduleError, match=why):
        check_cron(expression)


def test_invalid_rrule_and_timezone_are_refused_saying_why():
    with pytest.raises(ScheduleError, match="invalid 'FREQ'"):
        check_rrule("FREQ=SOMETIMES")
    with pytest.raises(ScheduleError, match="IANA"):
        check_timezone("Mars/Olympus")
    with pytest.raises(ScheduleError, match="IANA"):
        build_schedule(cron="0 9 * * *", timezone="CEST+1")


def test_exactly_one_kind_of_schedule_is_required():
    with pytest.raises(ScheduleError, match="exactly one"):
        build_schedule()
    with pytest.raises(ScheduleError, match="got cron, rrule"):
        build_schedule(cron="0 9 * * *", rrule="FREQ=DAILY")
    with pytest.raises(ScheduleError, match="needs a cron"):
        _schedule_from_options(None, None, None, "Europe/Berlin", None)
    with pytest.raises(TimingError, match="longer than zero"):
        _schedule_from_options(None, "0s", None, None, None)


def test_a_schedule_that_never_runs_again_is_refused():
    base = JobSpec(image="busybox", command="date")
    with pytest.raises(ScheduleError, match="no run in the future"):
        _deployment_schedule(RRule("DTSTART:20200101T090000\nRRULE:FREQ=DAILY;UNTIL=20200201T090000"), base)


def test_each_schedule_carries_its_own_job_when_it_overrides_fields():
    base = JobSpec(image="busybox", command="date", env={"A": "1"})
    plain = _deployment_schedule(Cron("0 9 * * *", timezone="Europe/Berlin"), base)
    own = _deployment_schedule(Cron("0 12 * * 6", parameters={"env": {"MODE": "full"}, "command": "echo x"}), base)
    assert plain.parameters == {}
    assert own.parameters == {"job": {"image": "busybox", "command": "echo x", "env": {"A": "1", "MODE": "full"}}}
    with pytest.raises(ValueError, match="memory 'lots' is not understood"):
        _deployment_schedule(Cron("0 9 * * *", parameters={"memory": "lots"}), base)


def test_overlap_policies_map_to_deployment_concurrency_and_back():
    assert overlap_options("allow") == (None, None)
    for policy, strategy in (("skip", "CANCEL_NEW"), ("queue", "ENQUEUE")):
        limit, options = overlap_options(policy)
        assert limit == 1 and options.collision_strategy.value == strategy
        assert overlap_policy(limit, options) == policy
    assert overlap_policy(None, None) == "allow"
    with pytest.raises(ScheduleError, match="allow, skip, queue"):
        overlap_options("sometimes")


def test_a_job_template_block_gives_back_the_job_fields():
    template = JobTemplate(image="busybox", command=["echo", "hi"], env={"A": "1"}, secrets={"T": "blk"},
                           memory="64m", options={"retries": 2})
    fields = template.job_fields()
    assert fields == {"image": "busybox", "command": ["echo", "hi"], "env": {"A": "1"}, "secrets": {"T": "blk"},
                      "memory": "64m", "tags": [], "retries": 2}
    assert JobSpec(**fields).retries == 2
    assert JobTemplate.get_block_type_slug() == "swarmsync-job-template"


@pytest.mark.parametrize("name", ["Nightly", "a b", "", "-x", "x_y"])
def test_bad_template_and_schedule_names_are_refused(name):
    with pytest.raises(JobSpecError, match="lowercase"):
        check_name(name)
