"""A pipeline survives what a job survives: Core's pipeline worker and the pipeline's own process
killed while a step runs (docs/pipelines.md#where-the-pipeline-runs)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import swarmsync
from swarmsync.pipelines import submit_pipeline
from swarmsync.settings import get_settings
from tests.integration.test_pipelines import _step
from tests.waiting import wait_until


def test_a_pipeline_survives_its_core_process_dying(stack, busybox, no_leftover_containers):
    """The pipeline worker and the pipeline's own process killed while a step runs: `up` restarts the
    worker, the orphaned pipeline goes back to AwaitingRetry and runs again, reusing the completed step
    and following the running one; every step ran once."""
    pipeline = submit_pipeline({"name": "survivor", "steps": {
        "first": _step(busybox, "echo first"),
        "slow": _step(busybox, "sleep 8; echo slow done", needs=["first"]),
        "last": _step(busybox, "echo last", needs=["slow"]),
    }})
    wait_until(lambda: any(s.name == "slow" and s.state == "Running" for s in pipeline.steps()), "slow runs", 90)
    worker_pid = int((get_settings().home_dir / "run" / "pipelines.pid").read_text())
    flow_pid = int(pipeline.flow_run().infrastructure_pid.rpartition(":")[2])
    assert b"prefect" in Path(f"/proc/{flow_pid}/cmdline").read_bytes()  # the pipeline's own process
    os.kill(flow_pid, signal.SIGKILL)
    os.killpg(worker_pid, signal.SIGKILL)
    wait_until(lambda: int((get_settings().home_dir / "run" / "pipelines.pid").read_text()) != worker_pid,
               "`up` to restart the pipeline worker", 30)
    pipeline.wait(150)
    steps = {s.name: s for s in pipeline.steps()}
    assert pipeline.status() == "Completed", steps
    assert all(s.attempts == 1 and s.state == "Completed" for s in steps.values()), steps
    assert "slow done" in swarmsync.get_job(steps["slow"].job_id).result().output
