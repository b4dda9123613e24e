"""Prefect's multi-process server (SWARMSYNC_PREFECT_REDIS_URL): `swarmsync up` runs the
Prefect API (two processes) and its background services separately, sharing events through
real Redis. Jobs, event wake-ups, schedules and cancellation must work as in one process.

SWARMSYNC_TEST_PREFECT_REDIS (default database 8 of host-setup.sh's Redis, with its password) is the Redis database this
module gives Prefect; it is flushed first, so it must not hold anything else.
"""

from __future__ import annotations

import os
import time

import pytest
import redis

import swarmsync
from swarmsync.deployments import schedules
from swarmsync.deployments.stack import StackError, prefect_redis_env, split_server
from tests.conftest import _configure, running_stack
from tests.services import redis_url

PREFECT_REDIS = os.environ.get("SWARMSYNC_TEST_PREFECT_REDIS") or redis_url(8)


@pytest.fixture(scope="module")
def split_stack(tmp_path_factory, busybox, stack):
    saved = {k: os.environ.get(k) for k in stack}  # the session stack's env, restored afterwards
    redis.Redis.from_url(PREFECT_REDIS).flushdb()
    extra = {"SWARMSYNC_PREFECT_REDIS_URL": PREFECT_REDIS, "SWARMSYNC_PREFECT_API_WORKERS": "2"}
    with running_stack(tmp_path_factory.mktemp("split-home"), extra, name="split") as env:
        yield env
    for key in extra:
        os.environ.pop(key, None)
    _configure({k: v for k, v in saved.items() if v is not None})


def test_prefect_runs_as_api_processes_and_a_services_process(split_stack):
    logs = os.path.join(split_stack["SWARMSYNC_HOME"], "logs")
    assert os.path.exists(os.path.join(logs, "prefect-services.log"))
    assert "2 worker processes" in open(os.path.join(logs, "prefect-server.log")).read()
    streams = [k.decode() for k in redis.Redis.from_url(PREFECT_REDIS).scan_iter()]
    assert any("events" in k for k in streams), f"no Prefect event stream in Redis: {streams}"


def test_jobs_run_and_cancel_with_the_split_server(split_stack, busybox):
    job = swarmsync.submit(busybox, "echo split-ok").wait(90)
    assert job.status() == "Completed"
    assert job.result().stdout == "split-ok\n"
    long = swarmsync.submit(busybox, "echo started; sleep 60")
    deadline = time.monotonic() + 60
    while not any(name.endswith("stdout") and m == "started" for _, name, m in long.logs()):  # not the "job:" line
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.3)
    long.cancel()
    long.wait(60)
    assert long.status() == "Cancelled"


def test_schedules_and_skip_overlap_work_from_the_separate_services_process(split_stack, busybox):
    """The scheduler runs in the services process; deployment concurrency leases live in Redis."""
    from test_hibernator import _stop, _type, runs_of

    from tests.waiting import wait_until

    job = schedules.create("split-skip", busybox, "sleep 6", every="2s", overlap="skip")
    try:
        wait_until(lambda: (lambda runs: any(_type(r) == "COMPLETED" for r in runs)
                            and any(_type(r) == "CANCELLED" for r in runs))(runs_of(job.deployment_id)),
                   "a completed run and a skipped one", timeout=150)
        _stop(job)
        ran = sorted((r for r in runs_of(job.deployment_id) if r.start_time and _type(r) != "CANCELLED"),
                     key=lambda r: r.start_time)
        for before, after in zip(ran, ran[1:], strict=False):
            assert after.start_time >= before.end_time, "two runs of a skip schedule overlapped"
    finally:
        schedules.delete("split-skip")


def test_split_mode_is_refused_without_postgresql_or_with_a_bad_url(monkeypatch):
    from swarmsync.settings import get_settings

    monkeypatch.setenv("SWARMSYNC_PREFECT_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "sqlite+aiosqlite:////tmp/x.db")
    get_settings.cache_clear()
    try:
        with pytest.raises(StackError, match="needs Prefect on PostgreSQL"):
            split_server(get_settings())
    finally:
        get_settings.cache_clear()
    with pytest.raises(StackError, match="not a redis"):
        prefect_redis_env("http://127.0.0.1:6379/3")
    assert prefect_redis_env("redis://u:p@h:6390/4")["PREFECT_REDIS_MESSAGING_DB"] == "4"
