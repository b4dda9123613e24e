"""A worker host with a worker token on this machine (issue 24): `swarmsync worker start --server URL
--token ssw_...` in a process that has nothing of the stack's (no database URL, no Prefect address or
auth string, no store) runs jobs through Core's one endpoint: Prefect through the gateway, the run's
Secret, the archive uploaded to Core. Revoking its token mid-job stops the job there and hands it back.
The same on separate, firewalled hosts: tests/multihost/test_worker_hosts.py."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import swarmsync
from swarmsync.docker_runner import LABEL_FLOW_RUN
from swarmsync.jobs import LocalJobs
from swarmsync.routing import queue_for
from tests.conftest import ARTIFACTS, stop_process
from tests.waiting import wait_until
from tests.workers import start_token_host


class Host:
    def __init__(self, name: str, home: Path, token: str, proc: subprocess.Popen, log: Path) -> None:
        self.name, self.home, self.token, self.proc, self.log = name, home, token, proc, log

    @property
    def queue(self) -> str:
        return queue_for([self.name])


@pytest.fixture
def worker_host(stack, tmp_path, busybox) -> Iterator[Host]:
    from swarmsync.auth import worker_tokens
    from swarmsync.settings import get_settings

    name = f"tokhost-{uuid.uuid4().hex[:6]}"
    token = worker_tokens.create("test", name, get_settings().work_pool).token
    home = tmp_path / name
    server = f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}"
    proc = start_token_host(server, token, name, home, "--label", name, "--limit", "2",
                            env={"PREFECT_WORKER_HEARTBEAT_SECONDS": "3"})
    log = proc.log_path
    yield Host(name, home, token, proc, log)
    stop_process(proc)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}-worker.log").write_bytes(log.read_bytes())


def test_a_host_with_only_a_token_runs_a_job_and_its_archive_arrives_at_core(worker_host, busybox):
    job = swarmsync.submit(busybox, 'test "$TOKEN" = s3cret && echo secret-ok; mkdir -p /out; '
                           'seq 1 5000 > /out/numbers.txt; echo done', queue=worker_host.queue,
                           secret_env={"TOKEN": "s3cret"}, output_dir="/out", pull_policy="never")
    job.wait(120)
    assert job.status() == "Completed", worker_host.log.read_text()[-3000:]
    assert (swarmsync.get_job(job.id).flow_run().labels or {}).get("prefect.worker.name") == worker_host.name
    assert job.result().state == "COMPLETED"
    assert LocalJobs().read_archive_file(job.id, "stdout.txt").decode().split() == ["secret-ok", "done"]
    files = job.result().manifest["files"]
    assert "files.tar.gz" in files or any("numbers" in name for name in files), files
    # the host kept nothing: no database of its own, no archive, its spool emptied once Core confirmed
    sw_home = worker_host.home / "swarmsync"
    assert not (sw_home / "swarmsync.db").exists()
    assert not any((sw_home / "archive").glob("*")) if (sw_home / "archive").exists() else True
    assert not any((sw_home / "spool").glob("*")) if (sw_home / "spool").exists() else True


def test_revoking_the_token_mid_job_stops_the_job_on_the_host_and_hands_it_back(worker_host, busybox,
                                                                                docker_client):
    from swarmsync import worker_hosts
    from swarmsync.auth import worker_tokens
    from swarmsync.connection import prefect_api

    job = swarmsync.submit(busybox, "echo started; sleep 120", queue=worker_host.queue, pull_policy="never")
    wait_until(lambda: any(n.endswith("stdout") and m == "started" for _, n, m in job.logs()), "the job started", 90)
    info, claimed = worker_tokens.revoke("test", worker_host.name)
    assert job.id in claimed
    with prefect_api():
        assert worker_hosts.hand_back(claimed, info.name) == [job.id]
    running = {"label": f"{LABEL_FLOW_RUN}={job.id}", "status": "running"}
    wait_until(lambda: not docker_client.containers.list(filters=running), "the job's container stopped", 30)
    wait_until(lambda: worker_host.proc.poll() is not None, "the host's worker exited", 30)
    assert worker_host.proc.returncode != 0
    assert "revoked" in worker_host.log.read_text()
    assert job.status() == "AwaitingRetry", job.status()
    assert "handed back" in (job.states()[-1][3] or "")
    job.cancel()
