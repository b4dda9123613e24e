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

from swarmsync.jobs import _transient
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
        assert _transient(_status_error(code))
    for code in (400, 401, 403, 404, 422):
        assert not _transient(_status_error(code))
    assert _transient(httpx.ConnectError("refused"))
    assert _transient(httpx.ReadTimeout("slow"))
    assert not _transient(ValueError("bad spec"))


def test_jobs_share_one_docker_client_per_engine(monkeypatch):
    from swarmsync.docker_runner import docker_client
    from swarmsync.settings import get_settings

    first = docker_client()
    assert docker_client() is first  # no new client (and API version round trip) per call
    assert first.ping()
    monkeypatch.setenv("SWARMSYNC_DOCKER_HOST", "unix:///var/run/docker.sock")
    get_settings.cache_clear()
    try:
        other = docker_client()
        assert other is not first and other is docker_client()  # another engine, its own client
        assert other.ping()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


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
