"""A pipeline schedule's when is checked before anything is made (no server asked, no Secret stored)."""

from __future__ import annotations

import pytest

from swarmsync.deployments import pipeline_schedules
from swarmsync.deployments.schedule_rules import ScheduleError
from swarmsync.timing import TimingError

PIPELINE = {"name": "p", "steps": {"a": {"image": "busybox", "secret_env": {"T": "v"}}}}


@pytest.mark.parametrize(("when", "error", "says"), [
    ({}, ScheduleError, "say when"),
    ({"every": "1h", "cron": "0 * * * *"}, ScheduleError, "one of them"),
    ({"every": "0s"}, TimingError, "longer than zero"),
    ({"cron": "61 * * * *"}, ScheduleError, "out of range"),
    ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, ScheduleError, "Mars/Olympus"),
])
def test_a_bad_when_is_refused_before_anything_is_made(when, error, says):
    with pytest.raises(error, match=says):
        pipeline_schedules.create("p", PIPELINE, **when)


def test_a_bad_name_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        pipeline_schedules.create("Not A Name", PIPELINE, every="1h")
