"""The Hibernator on the session stack: delayed jobs, job templates, recurring schedules
(cron/interval, pause/resume, several schedules, overlap skip), the CLI, retention."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

import swarmsync
from swarmsync.archive import ArchiveNotFound
from swarmsync.connection import api_url, prefect_api
from swarmsync.deployments import schedules
from swarmsync.timing import TimingError
from tests.waiting import wait_until

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swarmsync.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "250"})


def runs_of(deployment_id: UUID) -> list:
    with prefect_api(), get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])), limit=200,
        )




def _stop(job) -> None:
    """Pause (no new runs) and let the runs in flight end, so none outlives its test."""
    schedules.pause(job.name)
    wait_until(lambda: all(_type(r) in TERMINAL for r in runs_of(job.deployment_id)), "runs in flight to end")


def _type(run) -> str:
    return run.state.type.value if run.state else "?"


def test_delayed_job_waits_scheduled_and_starts_at_its_time_not_before(stack, busybox, no_leftover_containers):
    at = datetime.now(UTC) + timedelta(seconds=8)
    job = swarmsync.submit(busybox, "date +%s", at=at)
    assert job.flow_run().expected_start_time == at
    # A worker takes runs due within its prefetch window (10 s) early and holds them
    # Pending until their time; before it, the job is never further than that.
    while datetime.now(UTC) < at - timedelta(seconds=1):
        assert job.status() in ("Scheduled", "Pending")
        time.sleep(0.5)
    job.wait(90)
    run = job.flow_run()
    assert run.state.is_completed(), run.state
    assert run.start_time >= at
    manifest = job.result().manifest
    assert datetime.fromisoformat(manifest["started_at"]) >= at  # the container itself
    assert int(job.result().output.strip()) >= int(at.timestamp())


def test_delayed_job_cancelled_while_scheduled_never_runs(stack, busybox, no_leftover_containers):
    done = cli("submit", "--in", "1h", busybox, "echo", "never")
    assert done.returncode == 0, done.stderr
    assert "scheduled for" in done.stderr
    job = swarmsync.get_job(done.stdout.strip())
    assert job.status() == "Scheduled"
    assert cli("cancel", job.id).returncode == 0
    assert job.status() == "Cancelled"
    with pytest.raises(ArchiveNotFound):
        job.result()
    later = swarmsync.submit(busybox, "echo never", delay="2h")
    later.cancel()
    assert later.status() == "Cancelled"
    at = datetime.now(UTC) + timedelta(seconds=8)
    soon = swarmsync.submit(busybox, "echo never", at=at)  # the worker takes it up to 10 s ahead of its time
    wait_until(lambda: soon.status() == "Pending", "the worker to take the run before its time", poll=0.1)
    soon.cancel()
    wait_until(lambda: soon.status() == "Cancelled", "the waiting run to be cancelled")
    wait_until(lambda: datetime.now(UTC) > at + timedelta(seconds=3), "its start time to pass")
    assert soon.status() == "Cancelled" and soon.flow_run().state.message == "cancelled before it started"
    with pytest.raises(ArchiveNotFound):
        soon.result()


def test_a_start_time_in_the_past_is_refused_before_anything_is_submitted(stack, busybox):
    with pytest.raises(TimingError, match="in the past"):
        swarmsync.submit(busybox, "echo", at=datetime.now(UTC) - timedelta(minutes=1))
    done = cli("submit", "--at", "2020-01-01T09:00+01:00", busybox, "echo")
    assert done.returncode == 2 and "in the past" in done.stderr
    done = cli("submit", "--in", "soon", busybox, "echo")
    assert done.returncode == 2 and "not understood" in done.stderr


def test_template_is_a_block_with_secrets_in_secret_blocks_and_runs_via_submit(stack, busybox,
                                                                               no_leftover_containers):
    from swarmsync.templates import delete_template, list_templates, load_template, save_template

    save_template("greeter", busybox, "echo hello $WHO $TOKEN", env={"WHO": "team"}, secret_env={"TOKEN": "t0p"},
                  memory="64m")
    template = load_template("greeter")
    assert list(template.secrets) == ["TOKEN"]  # one block per template and variable (name, hash)
    assert template.secrets["TOKEN"].startswith("swarmsync-template-greeter-token-")
    assert "t0p" not in template.model_dump_json()
    assert "greeter" in list_templates()
    result = swarmsync.submit(template="greeter").wait(90).result()
    assert result.state == "COMPLETED"
    assert result.output == "hello team ***\n"
    assert result.manifest["spec"]["memory"] == "64m"
    done = cli("submit", "--wait", "--template", "greeter", "-e", "WHO=cli", "--", "sh", "-c", "echo hi $WHO")
    assert done.returncode == 0, done.stderr
    assert "hi cli" in done.stdout
    assert "greeter" in cli("template", "list").stdout
    delete_template("greeter")
    assert "greeter" not in list_templates()


def test_interval_schedule_produces_runs_pause_stops_them_resume_restarts(stack, busybox, no_leftover_containers):
    job = schedules.create("ticker", busybox, "echo tick", every="4s")
    assert job.next_runs and job.overlap == "allow"
    completed = lambda: [r for r in runs_of(job.deployment_id) if _type(r) == "COMPLETED"]  # noqa: E731
    wait_until(lambda: len(completed()) >= 2, "two completed runs of an interval schedule")
    schedules.pause("ticker")
    assert schedules.get("ticker").paused and schedules.get("ticker").next_runs == []
    wait_until(lambda: all(_type(r) in TERMINAL for r in runs_of(job.deployment_id)), "runs in flight to end")
    seen = {r.id for r in runs_of(job.deployment_id)}
    time.sleep(10)  # 2.5 intervals: a live schedule would have made new runs by now
    assert {r.id for r in runs_of(job.deployment_id)} == seen
    schedules.resume("ticker")
    wait_until(lambda: any(r.id not in seen and _type(r) == "COMPLETED" for r in runs_of(job.deployment_id)),
               "a new run after resume")
    _stop(job)
    schedules.delete("ticker")
    with pytest.raises(schedules.ScheduleNotFound):
        schedules.get("ticker")


def test_overlap_skip_never_runs_two_at_once(stack, busybox, no_leftover_containers):
    job = schedules.create("no-overlap", busybox, "sleep 6", every="2s", overlap="skip")
    assert job.overlap == "skip"

    def enough():
        runs = runs_of(job.deployment_id)
        done = [r for r in runs if _type(r) == "COMPLETED"]
        return len(done) >= 2 and any(_type(r) == "CANCELLED" for r in runs)

    wait_until(enough, "two completed runs and a skipped one", timeout=120)
    _stop(job)
    runs = runs_of(job.deployment_id)
    schedules.delete("no-overlap")
    ran = sorted((r for r in runs if _type(r) != "CANCELLED"), key=lambda r: r.start_time)
    assert all(_type(r) == "COMPLETED" for r in ran)
    for earlier, later in zip(ran, ran[1:], strict=False):
        assert earlier.end_time <= later.start_time, f"{earlier.id} and {later.id} overlapped"
    containers = sorted(  # the containers' own start and finish times agree
        (datetime.fromisoformat(m["started_at"]), datetime.fromisoformat(m["finished_at"]))
        for m in (swarmsync.get_job(r.id).result().manifest for r in ran)
    )
    for (_, finished), (started, _) in zip(containers, containers[1:], strict=False):
        assert finished <= started
    for run in runs:
        if _type(run) == "CANCELLED":
            with pytest.raises(ArchiveNotFound):  # skipped: never started a container
                swarmsync.get_job(run.id).result()


def test_schedule_cli_with_several_schedules_their_own_parameters_and_run_now(stack, busybox,
                                                                             no_leftover_containers):
    done = cli("schedule", "create", "reports", busybox, "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
               "--overlap", "queue", "--shell", "echo report $MODE", "-e", "MODE=daily")
    assert done.returncode == 0, done.stderr
    done = cli("schedule", "add", "reports", "--rrule", "FREQ=WEEKLY;BYDAY=SA;BYHOUR=12;BYMINUTE=0",
               "--tz", "Europe/Berlin", "-e", "MODE=weekly")
    assert done.returncode == 0, done.stderr
    job = schedules.get("reports")
    assert job.overlap == "queue"
    first, second = (e.description for e in job.schedules)
    assert first == "cron 30 2 * * * (Europe/Berlin)"
    assert second.startswith("rrule") and "FREQ=WEEKLY;BYDAY=SA;BYHOUR=12" in second and "Europe/Berlin" in second
    assert job.schedules[0].job is None
    assert job.schedules[1].job["env"] == {"MODE": "weekly"}
    assert all(t.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") in ("02:30", "12:00")
               for t in job.next_runs)
    listing = cli("schedule", "list").stdout
    assert "reports" in listing and "Europe/Berlin" in listing
    with prefect_api(), get_client(sync_client=True) as client:
        deployment = client.read_deployment(job.deployment_id)
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy.value == "ENQUEUE"
    done = cli("schedule", "run", "reports")
    assert done.returncode == 0, done.stderr
    result = swarmsync.get_job(done.stdout.strip()).wait(90).result()
    assert result.output == "report daily\n"
    assert swarmsync.get_job(done.stdout.strip()).flow_run().name == f"reports: {busybox} echo report $MODE"
    bad = cli("schedule", "create", "bad-one", busybox, "echo", "--cron", "61 * * * *")
    assert bad.returncode == 2 and "out of range" in bad.stderr, bad.stderr
    for when, why in [
        ({"rrule": "FREQ=SOMETIMES"}, "invalid 'FREQ'"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "IANA"),
        ({"every": "0s"}, "longer than zero"),
        ({}, "say when"),
    ]:
        with pytest.raises(ValueError, match=why):
            schedules.create("bad-one", busybox, "echo", **when)
    with pytest.raises(schedules.ScheduleError, match="already a schedule"):
        schedules.create("reports", busybox, "echo", every="1h")
    with pytest.raises(schedules.ScheduleError, match="pool's job deployment"):
        schedules.create("default", busybox, "echo", every="1h")
    assert cli("schedule", "pause", "reports").returncode == 0
    assert "paused" in cli("schedule", "list").stdout
    assert cli("schedule", "delete", "reports").returncode == 0
    assert cli("schedule", "delete", "reports").returncode == 2


def _archive(job_id: str, finished: datetime) -> None:
    import anyio

    from swarmsync.archive import index_archive, write_archive
    from swarmsync.settings import get_settings

    spool = get_settings().home_dir / "spool" / job_id
    spool.mkdir(parents=True)
    (spool / "output.txt").write_bytes(b"x")
    manifest = {"spec": {"image": "busybox"}, "state": "COMPLETED", "finished_at": finished.isoformat()}
    location, manifest = anyio.run(write_archive, job_id, spool, manifest)
    index_archive(manifest, location)


def test_retention_flow_removes_exactly_the_archives_and_rows_older_than_its_cutoff(stack):
    from swarmsync.db import ArchiveRecord, session_scope
    from swarmsync.flows.retention import retention
    from swarmsync.settings import get_settings

    now = datetime.now(UTC)
    old = [str(uuid.uuid4()) for _ in range(2)]
    new = [str(uuid.uuid4()) for _ in range(2)]
    for job_id in old:
        _archive(job_id, now - timedelta(days=40))
    for job_id in new:
        _archive(job_id, now - timedelta(days=20))
    unindexed = str(uuid.uuid4())
    _archive(unindexed, now - timedelta(days=45))
    with session_scope() as session:
        session.delete(session.get(ArchiveRecord, unindexed))
    with prefect_api():
        report = asyncio.run(retention(max_age_days=30))
    removed = {(r["kind"], r["name"]) for r in report["removed"]}
    assert {("archive", j) for j in [*old, unindexed]} | {("index row", j) for j in old} <= removed
    assert not any(name in new for _kind, name in removed)
    archive_dir = get_settings().archive_dir
    with session_scope() as session:
        for job_id in old:
            assert session.get(ArchiveRecord, job_id) is None and not (archive_dir / job_id).exists()
        for job_id in new:
            assert session.get(ArchiveRecord, job_id) is not None and (archive_dir / job_id / "manifest.json").exists()
    assert not (archive_dir / unindexed).exists()
    with prefect_api(), get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    reports = [a for a in artifact if a.key == "swarmsync-retention"]
    assert reports and old[0] in reports[0].data


def test_retention_removes_only_this_installations_leftover_containers_older_than_the_cutoff(stack, busybox,
                                                                                             docker_client):
    """The session stack's worker also removes containers whose run is final or gone (each
    heartbeat), so every container here names a real, live (Pending) run: the worker leaves them
    alone and only retention decides. The run-gone case deletes its run just before retention runs."""
    from prefect import flow
    from prefect.states import Pending

    from swarmsync.docker_runner import LABEL_FLOW_RUN, LABEL_INSTANCE, LABEL_JOB
    from swarmsync.retention import _created, leftover_containers

    @flow(name="swarmsync-retention-test-placeholder")
    def placeholder() -> None:
        pass

    runs: list[UUID] = []

    def container(instance: str, command: str = "true"):
        with prefect_api(), get_client(sync_client=True) as client:
            run_id = client.create_flow_run(placeholder, state=Pending()).id
        runs.append(run_id)
        labels = {LABEL_JOB: "1", LABEL_FLOW_RUN: str(run_id), LABEL_INSTANCE: instance}
        return docker_client.containers.create(busybox, command, labels=labels), run_id

    made = []
    try:
        (old_ours, _), (old_other, _) = container(api_url()), container("http://another-installation:4200/api")
        old_live, _ = container(api_url(), "sleep 300")  # running, its run live: a job, never removed
        old_gone, gone_run = container(api_url(), "sleep 300")  # running, but its run is gone: a leftover
        made += [old_ours, old_other, old_live, old_gone]
        old_live.start()
        old_gone.start()
        time.sleep(3)
        new_ours, _ = container(api_url())
        made.append(new_ours)
        # the cut-off halfway between the engine's own creation times (no clock of ours involved)
        old_latest = max(_created(docker_client.containers.get(c.id)) for c in (old_ours, old_live, old_gone))
        cutoff = old_latest + (_created(docker_client.containers.get(new_ours.id)) - old_latest) / 2
        assert _created(docker_client.containers.get(new_ours.id)) > cutoff > old_latest
        with prefect_api(), get_client(sync_client=True) as client:
            client.delete_flow_run(gone_run)
        removed = {r.name for r in leftover_containers(cutoff)}
        # the worker may beat retention to the run-gone container (both remove it); nothing else may go
        assert old_ours.name in removed and removed <= {old_ours.name, old_gone.name}
        left = {c.id for c in docker_client.containers.list(all=True)}
        assert old_other.id in left and new_ours.id in left and old_live.id in left
        assert old_ours.id not in left and old_gone.id not in left
    finally:
        for c in made:
            try:
                c.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed by retention
                pass
        with prefect_api(), get_client(sync_client=True) as client:
            for run_id in runs:
                try:
                    client.delete_flow_run(run_id)
                except Exception:  # noqa: BLE001 - already deleted
                    pass

