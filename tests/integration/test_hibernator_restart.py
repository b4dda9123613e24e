"""The Hibernator across a restart, on a stack of its own (Prefect server on real
PostgreSQL): schedules and pending delayed runs survive it; `prefect deploy --all`
accepts prefect.yaml unchanged and its deployments run on the SwarmSync worker."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter

import swarmsync
from swarmsync.connection import api_url, prefect_api
from swarmsync.deployments import schedules
from tests.conftest import _configure, create_pg_database, drop_pg_database, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


class OwnStack:
    """`swarmsync up` that this module can stop and start again on the same databases."""

    def __init__(self, env: dict[str, str]):
        self.env, self.proc = env, None
        self.log = Path(env["SWARMSYNC_HOME"]) / "up.log"

    def start(self) -> None:
        ups = self.log.read_bytes().count(b"SwarmSync is up") if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "swarmsync.cli.main", "up"],
                                         env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while self.log.read_bytes().count(b"SwarmSync is up") <= ups:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"swarmsync up failed:\n{self.log.read_text()}")
            time.sleep(0.5)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def own_stack(busybox) -> Iterator[OwnStack]:
    saved = dict(os.environ)
    home = Path(tempfile.mkdtemp(prefix="swarmsync-restart-"))
    db_url, prefect_db_url = create_pg_database(), create_pg_database()
    env = {
        "SWARMSYNC_HOME": str(home), "SWARMSYNC_PORT": str(free_port()), "SWARMSYNC_DATABASE_URL": db_url,
        # `up` also starts the API and the dashboard: on ports of their own, not the session stack's
        "SWARMSYNC_API_PORT": str(free_port()), "SWARMSYNC_DASHBOARD_PORT": str(free_port()),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db_url.replace("+psycopg", "+asyncpg"),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    }
    _configure(env)
    stack = OwnStack(env)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        drop_pg_database(db_url)
        drop_pg_database(prefect_db_url)
        os.environ.clear()
        os.environ.update(saved)
        _configure({})


def _scheduled_runs(deployment_id) -> dict:
    with prefect_api(), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(state={"type": {"any_": ["SCHEDULED"]}}), limit=200,
        )
    return {r.id: r.expected_start_time for r in runs}


def test_schedules_and_pending_delayed_runs_survive_a_server_restart_on_postgresql(own_stack, busybox):
    schedules.create("survivor", busybox, "echo survived", cron="0 3 * * *", timezone="Europe/Berlin",
                     overlap="skip")
    schedules.add("survivor", rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", timezone="Europe/Berlin",
                  env={"WEEKLY": "1"})
    before = schedules.get("survivor")
    deadline = time.monotonic() + 60
    while not (planned := _scheduled_runs(before.deployment_id)) and time.monotonic() < deadline:
        time.sleep(1)  # Prefect's scheduler service creates the runs within seconds
    assert planned
    far = swarmsync.submit(busybox, "echo far", delay="1h")
    near_at = datetime.now(UTC) + timedelta(seconds=15)  # due while the server is down
    near = swarmsync.submit(busybox, "date +%s", at=near_at)

    own_stack.stop()
    own_stack.start()

    after = schedules.get("survivor")
    assert (after.overlap, after.paused, after.job) == (before.overlap, before.paused, before.job)
    assert [(e.description, e.job) for e in after.schedules] == [(e.description, e.job) for e in before.schedules]
    assert after.schedules[1].job["env"] == {"WEEKLY": "1"}
    still = _scheduled_runs(after.deployment_id)
    assert all(still.get(run_id) == when for run_id, when in planned.items())
    assert far.status() == "Scheduled"
    assert far.flow_run().expected_start_time > near_at
    near.wait(120)
    run = near.flow_run()
    assert run.state.is_completed(), run.state
    assert run.start_time >= near_at
    assert int(near.result().output.strip()) >= int(near_at.timestamp())
    far.cancel()
    assert far.status() == "Cancelled"
    schedules.delete("survivor")


def test_prefect_deploy_all_accepts_prefect_yaml_and_its_deployments_run(own_stack, busybox, docker_client):
    env = {**os.environ, "PREFECT_API_URL": api_url(), "PWD": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    with prefect_api(), get_client(sync_client=True) as client:
        job = client.read_deployment_by_name("container-job/default")
        retention = client.read_deployment_by_name("retention/daily")
        assert job.entrypoint == "swarmsync.flows.container_job:container_job"
        assert retention.parameters == {"max_age_days": 30}
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in retention.schedules] == [
            ("15 3 * * *", "UTC", True)]
        assert retention.global_concurrency_limit.limit == 1
        run = client.create_flow_run_from_deployment(retention.id, parameters={"max_age_days": 3650})
    result = swarmsync.submit(busybox, "echo via prefect.yaml").wait(120).result()  # the redeployed job deployment
    assert result.output == "via prefect.yaml\n"
    retention_run = swarmsync.get_job(run.id).wait(120).flow_run()
    assert retention_run.state.is_completed(), retention_run.state
    assert not docker_client.containers.list(all=True, filters={"label": f"io.swarmsync.instance={api_url()}"})
