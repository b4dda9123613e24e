"""`swarmsync doctor`'s Docker check: where Docker lives. In team mode the API's host has no Docker
socket (the compose stack's API container has none): the engine is what the workers reported with
their last heartbeat (worker_telemetry). Embedded mode with no worker heard from probes locally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from swarmsync import doctor
from swarmsync.settings import get_settings


@pytest.fixture
def database(tmp_path: Path, monkeypatch) -> None:
    from swarmsync.db import migrate
    from swarmsync.db.session import get_engine

    monkeypatch.setenv("SWARMSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'swarmsync.db'}")
    monkeypatch.setenv("SWARMSYNC_PREFECT_AUTH_STRING", "admin:team-mode")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no local engine, as in the API container
    get_settings.cache_clear()
    getattr(get_engine, "cache_clear", lambda: None)()
    migrate()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    getattr(get_engine, "cache_clear", lambda: None)()


def _heartbeat(name: str, *, docker_version: str | None, error: str | None = None, age: float = 5) -> None:
    from swarmsync.db import WorkerTelemetry, session_scope

    now = datetime.now(UTC)
    with session_scope() as session:
        session.merge(WorkerTelemetry(
            worker_name=name, pool=get_settings().work_pool, hostname=f"{name}-host", pid=1,
            docker_version=docker_version, cpus=2, memory_bytes=2**30, containers_running=1, running_jobs=0,
            docker_error=error, started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(seconds=age)))


def _docker(checks: list[doctor.Check]) -> doctor.Check:
    return next(c for c in checks if c.part == "Docker engine")


def test_docker_is_green_from_the_workers_heartbeats_without_a_local_socket(database, monkeypatch) -> None:
    def no_local_probe():
        raise AssertionError("team mode probed a local Docker socket")

    monkeypatch.setattr(doctor, "check_docker", no_local_probe)
    _heartbeat("w1", docker_version="24.0.9")
    check = doctor.check_worker_docker()
    assert check.ok, check.detail
    assert "w1 on w1-host: 24.0.9" in check.detail


def test_a_worker_whose_engine_did_not_answer_makes_docker_red_and_says_where(database) -> None:
    _heartbeat("w1", docker_version="24.0.9")
    _heartbeat("w2", docker_version=None, error="Error while fetching server API version")
    _heartbeat("gone", docker_version=None, error="old", age=3600)  # not heard from: not counted
    check = doctor.check_worker_docker()
    assert not check.ok
    assert "w2 on w2-host: down (Error while fetching server API version)" in check.detail
    assert "gone" not in check.detail


def test_team_mode_with_no_worker_heard_from_says_to_start_one(database) -> None:
    check = doctor.check_worker_docker()
    assert not check.ok and "start a worker" in check.detail


def test_embedded_mode_with_no_worker_yet_probes_the_local_engine(database, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SWARMSYNC_PREFECT_AUTH_STRING")
    # whatever engine runs on this machine (and a client of it the process may have cached): none there
    monkeypatch.setenv("SWARMSYNC_DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    get_settings.cache_clear()
    check = doctor.check_worker_docker()
    assert not check.ok and "Start dockerd" in check.detail  # the local probe's message (no engine there)
