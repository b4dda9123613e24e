"""Pure logic of the worker: which runs are orphaned, which errors are worth retrying,
which state a stale claim puts back."""

import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import httpx
from prefect.client.schemas.objects import FlowRun

from swarmsync.jobs import is_transient
from swarmsync.recovery import is_orphaned


def _run(infra: str | None) -> FlowRun:
    return FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), infrastructure_pid=infra)


def test_a_run_under_a_dead_pid_on_this_host_is_orphaned():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    assert is_orphaned(_run(f"{host}:{dead.pid}:x"))
    assert not is_orphaned(_run(f"{host}:{os.getpid()}:x"))  # alive
    assert not is_orphaned(_run(f"other-host:{dead.pid}:x"))  # not ours to judge
    assert not is_orphaned(_run(None))
    assert not is_orphaned(_run("garbage"))


def _status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://x/api/deployments/1/create_flow_run")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(code, request=request))


def test_transient_errors_are_retried_and_others_are_not():
    for code in (429, 500, 502, 503, 504):
        assert is_transient(_status_error(code))
    for code in (400, 401, 403, 404, 422):
        assert not is_transient(_status_error(code))
    assert is_transient(httpx.ConnectError("refused"))
    assert is_transient(httpx.ReadTimeout("slow"))
    assert not is_transient(ValueError("bad spec"))


def _at(state, second: int):
    return state.model_copy(update={"timestamp": datetime(2026, 11, 27, 12, 0, second, tzinfo=UTC)})


def test_a_stale_claim_puts_back_the_runs_final_state_even_when_stamped_before_it():
    """Seen under load: the late Pending was stamped on arrival, before the run's Completed,
    but orchestrated after it. The run must go back to Completed, never to Running."""
    from prefect.states import Completed, Pending, Running, Scheduled

    from swarmsync.claim import latest_final_state

    ours = _at(Pending(), 3)
    history = [_at(Scheduled(), 0), _at(Pending(), 1), _at(Running(), 2), ours, _at(Completed(), 4)]
    assert latest_final_state(history).type.value == "COMPLETED"


def test_a_stale_claim_after_a_retry_puts_back_the_latest_final_state():
    from prefect.states import AwaitingRetry, Completed, Failed, Pending, Running

    from swarmsync.claim import latest_final_state

    ours = _at(Pending(), 9)
    history = [_at(Completed(), 1), _at(AwaitingRetry(), 2), _at(Pending(), 3), _at(Running(), 4),
               _at(Failed(), 5), ours]
    assert latest_final_state(history).type.value == "FAILED"


def test_a_claim_with_no_final_state_before_it_restores_nothing():
    from prefect.states import Pending, Running

    from swarmsync.claim import latest_final_state

    ours = _at(Pending(), 3)
    assert latest_final_state([_at(Running(), 1), ours]) is None


def test_a_worker_that_has_not_read_its_pool_applies_the_secure_defaults_not_job_variables():
    """Job variables (a run's or a deployment's) never set policy: with the pool not read yet the
    worker fails closed, on HostPolicy's defaults."""
    from swarmsync.policy import HostPolicy
    from swarmsync.worker import SwarmSyncJobConfiguration, SwarmSyncWorker

    worker = SwarmSyncWorker(work_pool_name="never-read")
    assert worker._work_pool is None
    asked = SwarmSyncJobConfiguration(allow_privileged=True, allow_host_network=True, allow_root_user=True,
                                      allowed_networks=["server-net"], max_memory="1t")
    assert worker._pool_policy(FlowRun(flow_id=uuid.uuid4()), asked) == HostPolicy()


def test_the_container_task_of_a_jobs_retries_is_made_once_per_retries_and_delay():
    """A Task is a definition: the job flow reuses one per (retries, delay) instead of making one per job; each
    still retries as the job asked, and never a refused job."""
    from swarmsync.flows import container_job

    runner = container_job._runner(2, 5.0)
    assert runner is container_job._runner(2, 5.0) and runner is not container_job._runner(3, 5.0)
    assert (runner.retries, runner.retry_delay_seconds) == (2, 5.0)
    assert container_job._runner(0, 0).retries == 0
    assert runner.fn is container_job.run_container.fn
    assert runner.retry_condition_fn is container_job._retry_unless_refused
