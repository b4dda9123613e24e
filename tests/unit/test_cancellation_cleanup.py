"""Prefect's cancellation cleanup, as SwarmSync's Prefect server runs it (swarmsync/prefect_internals.py,
`cleanup_only_open_cancelled_runs`): each pass schedules Prefect's `cancel_child_task_runs` for the runs
cancelled in the last day that still have an unfinished task run, and for no other (Prefect's own pass
schedules it for every run cancelled in the last day, every 20 s: its cost grew with the day's history).

Real parts: Prefect's server database models on a fresh SQLite database and a real Docket (in memory),
in a child process (Prefect's database interface is chosen once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import asyncio, json, uuid
from datetime import UTC, datetime, timedelta

import swarmsync.prefect_server  # noqa: F401 - applies SwarmSync's server patches, as `swarmsync up` does
from docket import Docket
from prefect.server.database import provide_database_interface
from prefect.server.services import cancellation_cleanup as cleanup


async def main():
    db = provide_database_interface()
    await db.create_db()
    now = datetime.now(UTC)
    runs = {}
    async with db.session_context(begin_transaction=True) as session:
        flow = db.Flow(name="cleanup-check")
        session.add(flow)
        await session.flush()
        for name, state, ended, task_state in [
                ("open", "CANCELLED", now, "RUNNING"),          # cancelled, its task run still running
                ("pending-task", "CANCELLED", now, "PENDING"),  # cancelled, its task run not started
                ("closed", "CANCELLED", now, "COMPLETED"),      # cancelled, its task run finished
                ("no-task", "CANCELLED", now, None),            # cancelled before any task run
                ("old", "CANCELLED", now - timedelta(days=2), "RUNNING"),  # outside Prefect's one-day window
                ("running", "RUNNING", None, "RUNNING")]:       # not cancelled
            run = db.FlowRun(name=name, flow_id=flow.id, state_type=state, end_time=ended)
            session.add(run)
            await session.flush()
            runs[name] = str(run.id)
            if task_state:
                session.add(db.TaskRun(flow_run_id=run.id, task_key="run-container", dynamic_key="0",
                                       name="run-container", state_type=task_state))
    ours = cleanup.monitor_cancelled_flow_runs
    found = {}
    for which, monitor in [("swarmsync", ours), ("prefect", getattr(ours, "every_cancelled", None))]:
        if monitor is None:  # the patch is not applied
            continue
        async with Docket(name=f"check-{uuid.uuid4().hex[:8]}", url="memory://") as docket:
            docket.register(cleanup.cancel_child_task_runs)
            await monitor(docket=docket, db=db, perpetual=None)
            snapshot = await docket.snapshot()
            keys = {execution.key for execution in [*snapshot.future, *snapshot.running]}
        found[which] = sorted(name for name, run_id in runs.items() if f"cancel-child-task-runs:{run_id}" in keys)
    print(json.dumps(found))


asyncio.run(main())
"""


def scheduled(tmp_path: Path) -> dict[str, list[str]]:
    """The runs one pass of each monitor scheduled a cleanup for: "swarmsync" (the one the server runs)
    and "prefect" (Prefect's own, which the patch replaced)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SWARMSYNC_"))}
    env |= {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_pass_schedules_cleanup_only_for_cancelled_runs_with_open_task_runs(tmp_path):
    found = scheduled(tmp_path)
    assert found.get("swarmsync") == ["open", "pending-task"]
    # Prefect's own pass, on the same runs: every run cancelled in the last day, open or not
    assert found.get("prefect") == ["closed", "no-task", "open", "pending-task"]
