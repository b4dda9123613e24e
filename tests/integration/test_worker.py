"""The `swarmsync` worker type: many jobs in one process, recovery after kill -9,
several workers on one pool, pool policy, queues, telemetry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from prefect.client.orchestration import get_client

import swarmsync
from swarmsync.archive import verify_archive
from swarmsync.connection import prefect_api
from swarmsync.deployments.pools import create_pool
from swarmsync.docker_runner import LABEL_FLOW_RUN
from swarmsync.spec import JobSpec
from tests.workers import WorkerProcesses


@pytest.fixture
def pool(stack) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(name)
    return name


@pytest.fixture
def workers(stack, tmp_path):
    """Start `swarmsync worker start` processes; all are stopped after the test."""
    procs = WorkerProcesses(tmp_path)
    yield procs.start
    procs.stop_all()


class ContainerCreates:
    """Counts job-container creations per flow run, from Docker's live event stream
    (the daemon keeps only its last 1000 events, so they are read as they happen)."""

    def __init__(self, docker_client):
        self.counts: dict[str, int] = {}
        self._events = docker_client.events(
            decode=True, filters={"type": "container", "event": "create", "label": LABEL_FLOW_RUN}
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._events:
                run_id = event["Actor"]["Attributes"][LABEL_FLOW_RUN]
                self.counts[run_id] = self.counts.get(run_id, 0) + 1
        except Exception:  # noqa: BLE001 - the stream is closed by stop()
            pass

    def stop(self) -> dict[str, int]:
        time.sleep(1)  # let the last events arrive
        self._events.close()
        return self.counts


def _running_container(docker_client, job_id: str, printed: str, seconds: float = 60):
    """Wait until the job's container runs and has printed `printed`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = docker_client.containers.list(filters={"label": f"{LABEL_FLOW_RUN}={job_id}"})
        if found and printed in found[0].logs().decode(errors="replace"):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never ran a container that printed {printed!r}")


def _wait_for_log(job, text: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not any(text in m for _, name, m in job.logs() if name.endswith("stdout")):
        assert time.monotonic() < deadline, f"{text!r} never appeared in the log"
        time.sleep(0.2)


def test_prefect_worker_start_type_swarmsync_runs_jobs(pool, workers, busybox, no_leftover_containers):
    env = {"PREFECT_API_URL": f"http://127.0.0.1:{os.environ['SWARMSYNC_PORT']}/api",
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    workers(pool, command=[sys.executable, "-m", "prefect", "worker", "start", "--type", "swarmsync",
                           "--pool", pool], env=env)
    job = swarmsync.submit(busybox, "echo via-entry-point", pool=pool).wait(60)
    assert job.status() == "Completed"
    assert job.result().stdout == "via-entry-point\n"


def test_twenty_concurrent_jobs_in_one_worker_all_complete(pool, workers, busybox, no_leftover_containers):
    worker = workers(pool, "--limit", "25")
    specs = [JobSpec(image=busybox, command=f"sleep 10; echo job-{i}") for i in range(20)]
    submitted = swarmsync.submit_many(specs, pool=pool)
    assert all(s.job for s in submitted) and len(submitted) == 20
    results = [s.job.wait(120).result() for s in submitted]
    assert [r.stdout for r in results] == [f"job-{i}\n" for i in range(20)]
    assert {r.manifest["worker"] for r in results} == {worker.worker_name}
    spans = [(datetime.fromisoformat(r.manifest["started_at"]), datetime.fromisoformat(r.manifest["finished_at"]))
             for r in results]
    most_at_once = max(sum(1 for s, f in spans if s <= point < f) for point, _ in spans)
    assert most_at_once >= 5, f"only {most_at_once} jobs ran at the same time"


def test_kill_9_mid_job_then_restart_finishes_the_run_once(pool, workers, busybox, docker_client,
                                                          no_leftover_containers):
    creates = ContainerCreates(docker_client)
    first = workers(pool)
    job = swarmsync.submit(busybox, "echo start-$(cat /proc/sys/kernel/random/uuid); sleep 15; echo end", pool=pool)
    container = _running_container(docker_client, job.id, printed="start-")
    seen = container.logs().decode().strip()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    container.reload()
    assert container.status == "running", "the container must outlive its worker"
    workers(pool)
    job.wait(90)
    assert job.status() == "Completed"
    assert job.result().stdout == f"{seen}\nend\n"
    assert verify_archive(job.id) == []
    assert creates.stop().get(job.id) == 1


def test_container_gone_while_worker_down_crashes_then_retries(pool, workers, busybox, docker_client,
                                                                no_leftover_containers):
    first = workers(pool)
    retried = swarmsync.submit(busybox, "echo attempt; sleep 5", pool=pool, retries=1)
    given_up = swarmsync.submit(busybox, "echo attempt; sleep 30", pool=pool)
    for job in (retried, given_up):
        _running_container(docker_client, job.id, printed="attempt")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    for job in (retried, given_up):
        for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_FLOW_RUN}={job.id}"}):
            container.remove(force=True)
    workers(pool)
    given_up.wait(60)
    assert given_up.status() == "Crashed"
    retried.wait(90)
    assert retried.status() == "Completed"
    with prefect_api(), get_client(sync_client=True) as client:
        history = [s.type.value for s in client.read_flow_run_states(uuid.UUID(retried.id))]
    assert "CRASHED" in history


@pytest.mark.timeout(600)  # ~3 min here; a job that never ends fails job.wait(300) with its id first
def test_three_workers_on_one_pool_run_each_of_30_jobs_once(pool, workers, busybox, docker_client,
                                                              no_leftover_containers):
    # 30 here (CI time); 100 across three real hosts in tests/multihost (full runs)
    creates = ContainerCreates(docker_client)
    for _ in range(3):
        workers(pool)
    specs = [JobSpec(image=busybox, command=["echo", f"n{i}"]) for i in range(30)]
    submitted = swarmsync.submit_many(specs, pool=pool)
    assert len({s.job.id for s in submitted if s.job}) == 30
    results = [s.job.wait(300).result() for s in submitted]
    assert [r.stdout for r in results] == [f"n{i}\n" for i in range(30)]
    counts = creates.stop()
    wrong = {s.job.id: counts.get(s.job.id) for s in submitted if counts.get(s.job.id) != 1}
    assert not wrong, f"jobs not run exactly once: {wrong}"
    assert len({r.manifest["worker"] for r in results}) >= 2


def test_job_over_the_pools_memory_ceiling_is_refused_naming_the_limit(stack, workers, busybox):
    name = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(name, max_memory="64m", default_memory="32m")
    workers(name)
    job = swarmsync.submit(busybox, "echo hi", pool=name, memory="128m").wait(60)
    assert job.status() == "Failed"
    assert "max_memory" in job.result().message and "64m" in job.result().message


class RecordingDockerSocket:
    """A unix socket in front of the Docker engine's that forwards every byte both ways and
    keeps what clients sent: the container-create requests show what reached the engine."""

    def __init__(self, path: Path, engine: str = "/var/run/docker.sock"):
        import socket

        self.path, self.engine, self.sent = path, engine, bytearray()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.engine)
            threading.Thread(target=self._pipe, args=(client, engine, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(engine, client, False), daemon=True).start()

    def _pipe(self, source, target, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    self.sent.extend(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(2)
                except OSError:
                    pass

    def create_requests(self, name: str) -> list[dict]:
        """The JSON bodies of the container-create requests for container `name`."""
        import json

        bodies = []
        for part in bytes(self.sent).split(b"POST ")[1:]:
            head, _, body = part.partition(b"\r\n\r\n")
            if b"/containers/create" in head.split(b"\r\n", 1)[0] and f"name={name}".encode() in head:
                bodies.append(json.JSONDecoder().raw_decode(body.decode())[0])
        return bodies

    def close(self) -> None:
        self._server.close()


def test_privileged_passes_policy_only_where_the_pool_allows_it(stack, workers, busybox, no_leftover_containers):
    from prefect_docker import DockerHost

    name = f"t-{uuid.uuid4().hex[:8]}"
    engine = RecordingDockerSocket(Path(f"/tmp/{name}.sock"))
    try:
        host = _save_block(DockerHost(base_url=f"unix://{engine.path}"), f"{name}-host")
        create_pool(name, allow_privileged=True, docker_host=host)
        workers(name)
        job = swarmsync.submit(busybox, "grep CapEff /proc/self/status", pool=name, privileged=True).wait(60)
        message = job.result().message
        assert "allow_privileged" not in message
        # what reached the engine: the create request of this job's container asked for privileged
        [created] = engine.create_requests(f"swarmsync-{job.id}")
        assert created["HostConfig"]["Privileged"] is True, created["HostConfig"]
        # Some sandboxed engines (this project's CI among them) cannot grant every capability:
        # the engine then refuses to start the privileged container it was asked for.
        if job.status() != "Completed":
            assert "unable to apply caps" in message, message
        else:
            assert "0000003fffffffff" in job.result().stdout or "000001ffffffffff" in job.result().stdout
    finally:
        engine.close()
        engine.path.unlink(missing_ok=True)


def _save_block(block, name: str) -> str:
    with prefect_api():
        block.save(name, overwrite=True)
    return name


def test_pools_docker_host_block_chooses_the_engine_jobs_run_on(stack, workers, busybox, no_leftover_containers):
    from prefect_docker import DockerHost

    good, bad = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    create_pool(good, docker_host=_save_block(DockerHost(base_url="unix:///var/run/docker.sock"), f"{good}-host"))
    create_pool(bad, docker_host=_save_block(DockerHost(base_url="unix:///nonexistent/docker.sock"), f"{bad}-host"))
    assert swarmsync.deployments.pools.pool_policy(good)["docker_host"]["$ref"]["block_document_id"]
    workers(good)
    workers(bad)
    assert swarmsync.submit(busybox, "echo on-the-pools-engine", pool=good).wait(60).result().stdout == (
        "on-the-pools-engine\n"
    )
    failed = swarmsync.submit(busybox, "echo never", pool=bad).wait(60)
    assert failed.status() == "Failed"
    assert "nonexistent/docker.sock" in failed.result().message or "No such file" in failed.result().message


def test_pool_with_an_unknown_block_is_refused_by_name(stack):
    with pytest.raises(ValueError, match="no docker-host block named 'missing-host'"):
        create_pool(f"t-{uuid.uuid4().hex[:8]}", docker_host="missing-host")


def test_pools_archive_block_receives_its_jobs_archives(stack, workers, busybox, tmp_path, no_leftover_containers):
    from prefect.filesystems import LocalFileSystem

    name = f"t-{uuid.uuid4().hex[:8]}"
    store_dir = tmp_path / "pool-archive"
    _save_block(LocalFileSystem(basepath=str(store_dir)), f"{name}-archive")
    create_pool(name, archive_block=f"local-file-system/{name}-archive")
    workers(name)
    job = swarmsync.submit(busybox, "echo kept-apart", pool=name).wait(60)
    assert job.result().stdout == "kept-apart\n"
    assert (store_dir / str(job.id) / "output.txt").read_bytes() == b"kept-apart\n"
    assert verify_archive(str(job.id)) == []
    assert not (Path(stack["SWARMSYNC_HOME"]) / "archive" / str(job.id)).exists()
    with pytest.raises(ValueError, match="archive_block 'local-file-system/absent'"):
        create_pool(name, archive_block="local-file-system/absent")


def test_registry_credentials_are_used_before_a_pull_and_only_then(stack, workers, busybox, no_leftover_containers):
    from prefect_docker import DockerRegistryCredentials

    name = f"t-{uuid.uuid4().hex[:8]}"
    credentials = DockerRegistryCredentials(username="u", password="s3cret-pw", registry_url="127.0.0.1:2")
    # a registry on loopback is refused unless the pool's admin names it (here: the one the test pulls from)
    create_pool(name, registry_credentials=_save_block(credentials, f"{name}-registry"),
                allowed_images=["127.0.0.1:1/*", "swarmsync/*"])
    workers(name)
    # the image is local: no pull, so no login (there is no registry here to log in to)
    assert swarmsync.submit(busybox, "echo local", pool=name).wait(60).status() == "Completed"
    # an image that must be pulled: the login to the pool's registry comes first, and fails
    pulled = swarmsync.submit("127.0.0.1:1/absent:latest", "true", pool=name).wait(60)
    assert pulled.status() == "Failed"
    assert "127.0.0.1:2" in pulled.result().message and "s3cret-pw" not in pulled.result().message


def test_gpu_request_refused_on_a_pool_without_gpus(pool, workers, busybox):
    workers(pool)
    job = swarmsync.submit(busybox, "true", pool=pool, gpus=1).wait(60)
    assert job.status() == "Failed"
    assert "allow_gpu" in job.result().message


def test_queues_route_jobs_to_the_workers_that_serve_them(pool, workers, busybox, no_leftover_containers):
    with prefect_api(), get_client(sync_client=True) as client:
        client.create_work_queue(name="special", work_pool_name=pool, priority=1)
    workers(pool, "--queue", "default")
    special = workers(pool, "--queue", "special")
    job = swarmsync.submit(busybox, "echo routed", pool=pool, queue="special").wait(60)
    assert job.result().manifest["worker"] == special.worker_name


def test_host_labels_route_jobs_only_to_workers_having_every_label(pool, workers, busybox, no_leftover_containers):
    """A worker polling the whole pool (no --queue) takes no job of a `host:` queue unless it has
    every label the queue names; it still takes every other job."""
    from swarmsync.routing import queue_for

    plain_worker = workers(pool)
    both = swarmsync.submit(busybox, "echo both", pool=pool, queue=queue_for(["gpu", "region=eu"]))
    # a later plain job completing shows the unlabelled worker polled after `both` was created
    plain = swarmsync.submit(busybox, "echo plain", pool=pool).wait(60)
    assert plain.result().manifest["worker"] == plain_worker.worker_name
    gpu_worker = workers(pool, "--label", "gpu")
    done = subprocess.run([sys.executable, "-m", "swarmsync.cli.main", "submit", "--pool", pool, "--require", "gpu",
                           busybox, "echo", "gpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    gpu = swarmsync.get_job(done.stdout.split()[-1]).wait(60)
    assert gpu.flow_run().work_queue_name == "host:gpu"
    assert gpu.result().manifest["worker"] == gpu_worker.worker_name
    assert both.status() in ("Scheduled", "Late")  # not taken: neither worker has region=eu
    full = workers(pool, "--label", "gpu", "--label", "region=eu")
    assert both.wait(60).status() == "Completed"
    assert both.result().manifest["worker"] == full.worker_name


def test_cancel_with_prefects_cli_stops_the_container(stack, busybox, no_leftover_containers):
    job = swarmsync.submit(busybox, "echo partial; sleep 60")
    _wait_for_log(job, "partial")
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{os.environ['SWARMSYNC_PORT']}/api"}
    done = subprocess.run([sys.executable, "-m", "prefect", "flow-run", "cancel", job.id],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    job.wait(30)
    assert job.status() == "Cancelled"
    assert job.result().stdout == "partial\n"


def test_workers_report_host_telemetry(pool, workers):
    from sqlalchemy import select

    from swarmsync.db import WorkerTelemetry, session_scope

    worker = workers(pool)
    deadline = time.monotonic() + 30
    row = None
    while row is None and time.monotonic() < deadline:
        with session_scope() as session:
            query = select(WorkerTelemetry).where(WorkerTelemetry.worker_name == worker.worker_name)
            row = session.scalars(query).one_or_none()
        time.sleep(0.3)
    assert row is not None, "no telemetry row"
    assert row.pool == pool and row.docker_version and row.cpus >= 1 and row.memory_bytes > 0
    assert row.running_jobs == 0


def test_submit_many_never_duplicates_and_keys_are_idempotent(stack, busybox):
    key = f"k-{uuid.uuid4()}"
    first = swarmsync.submit(busybox, "echo once", idempotency_key=key)
    again = swarmsync.submit(busybox, "echo once", idempotency_key=key)
    assert first.id == again.id
    first.wait(60)


def test_a_stale_claim_of_a_run_that_already_ended_does_not_run_it_again(pool, busybox):
    """Prefect accepts Pending from a final state (re-runs); a worker whose listing saw the run
    Scheduled and whose claim arrives after another worker finished it must not run it again."""
    import logging

    from prefect.states import Completed, Running

    from swarmsync.claim import claim_run

    job = swarmsync.submit(busybox, "echo once", pool=pool)  # no worker serves this pool
    log = logging.getLogger("test.claim")

    async def scenario() -> tuple[bool, bool, bool, list[str]]:
        async with get_client() as client:
            stale = await client.read_flow_run(uuid.UUID(job.id))  # listed while Scheduled
            first = await claim_run(client, stale, log)
            while_pending = await claim_run(client, stale, log)  # Prefect aborts this one itself
            await client.set_flow_run_state(stale.id, Running())
            await client.set_flow_run_state(stale.id, Completed())
            late = await claim_run(client, stale, log)
            states = sorted(await client.read_flow_run_states(stale.id), key=lambda s: s.timestamp)
            return first, while_pending, late, [s.type.value for s in states]

    with prefect_api():
        first, while_pending, late, history = anyio.run(scenario)
    assert (first, while_pending, late) == (True, False, False)
    # the server did accept the late Pending (so the check had work to do); it was undone
    assert history[-3:] == ["COMPLETED", "PENDING", "COMPLETED"], history
    assert job.status() == "Completed"


def test_retry_from_the_prefect_ui_runs_a_finished_job_again(stack, busybox, docker_client, no_leftover_containers):
    """The Prefect UI's Retry (a forced Scheduled 'AwaitingRetry') re-runs the container and
    archives the new output; only other repeats of an archived run are refused."""
    from prefect.states import AwaitingRetry

    creates = ContainerCreates(docker_client)
    job = swarmsync.submit(busybox, "cat /proc/sys/kernel/random/uuid").wait(60)
    first = job.result().stdout
    with prefect_api(), get_client(sync_client=True) as client:
        client.set_flow_run_state(uuid.UUID(job.id), AwaitingRetry(message="Retry from the UI"), force=True)
        deadline = time.monotonic() + 90
        while (run := client.read_flow_run(uuid.UUID(job.id))).run_count < 2 or not run.state.is_final():
            assert time.monotonic() < deadline, f"retry never finished: {run.state}"
            time.sleep(0.3)
    assert run.state.is_completed()
    second = job.result().stdout
    assert second != first and len(second) == len(first)
    assert creates.stop().get(job.id) == 2


def test_pool_create_on_an_existing_pool_changes_only_the_settings_given(stack):
    from swarmsync.deployments.pools import pool_policy

    name = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(name, max_memory="2g", allow_gpu=True)
    create_pool(name, max_cpu=2)
    policy = pool_policy(name)
    assert (policy["max_memory"], policy["allow_gpu"], policy["max_cpu"]) == ("2g", True, 2)
    create_pool(name)  # what `swarmsync up` does at every start: the policy stays
    assert pool_policy(name) == policy


def test_queue_depth_counts_waiting_scheduled_and_running_runs(pool, busybox):
    from swarmsync.deployments.pools import list_pools

    due = swarmsync.submit(busybox, "echo due", pool=pool)  # no worker serves this pool
    later = swarmsync.submit(busybox, "echo later", pool=pool, delay="1h")
    try:
        [queue] = next(p for p in list_pools() if p["name"] == pool)["queues"]
        assert (queue["waiting"], queue["scheduled"], queue["running"]) == (1, 1, 0)
    finally:
        due.cancel()
        later.cancel()


def test_jobs_share_one_docker_client_per_engine(monkeypatch):
    from prefect_docker import DockerHost

    from swarmsync.docker_runner import docker_client
    from swarmsync.settings import get_settings

    first = docker_client()
    assert docker_client(None) is first  # no new client (and API version round trip) per call
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
    engine = DockerHost(base_url="unix:///var/run/docker.sock")
    by_block = docker_client(engine)
    assert by_block is docker_client(DockerHost(base_url="unix:///var/run/docker.sock"))  # same engine, same client
    assert by_block is not first and by_block.ping()


def test_a_jobs_docker_calls_share_one_connection_pool(busybox, monkeypatch):
    """docker-py keeps a connection pool, and opens a socket, per URL: a container's inspect, attach, start,
    wait and delete each have their own, so every job opened ~7 sockets to the engine. The worker's client
    has one pool for every URL: a socket for the pool and one per attach stream (4 for three containers)."""
    from docker.transport.unixconn import UnixHTTPConnection

    from swarmsync.docker_runner import attach_stream, docker_client

    client = docker_client()
    opened: list[str] = []
    real_connect = UnixHTTPConnection.connect

    def counted_connect(self) -> None:
        opened.append(self.unix_socket)
        real_connect(self)

    monkeypatch.setattr(UnixHTTPConnection, "connect", counted_connect)
    for i in range(3):
        container = client.containers.create(busybox, ["echo", f"hello {i}"], labels={"io.swarmsync.test": "pool"})
        try:
            stream = attach_stream(client.api, container.id)
            container.start()
            output = b"".join(out for out, _err in stream if out)
            assert container.wait()["StatusCode"] == 0
            container.reload()
            assert output == f"hello {i}\n".encode() and container.status == "exited"
        finally:
            container.remove(force=True)
    assert len(client.api.adapters["http+docker://"].pools) == 1
    # an attach stream takes its socket over; everything else reuses the pool's (docker-py's own adapter: 17 pools)
    assert len(opened) <= 6, f"{len(opened)} sockets opened to the engine for 3 containers"


def test_a_jobs_docker_calls_do_not_look_for_netrc_files_or_proxies(busybox, monkeypatch):
    """requests reads the environment at each call (a `.netrc` file for the host, proxy variables): a Unix
    socket uses neither, and the worker's client does not look (~27% of docker-py's CPU per call)."""
    import requests.sessions

    from swarmsync.docker_runner import docker_client

    looked: list[str] = []
    real = requests.sessions.get_netrc_auth
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", lambda url, *a: looked.append(url) or real(url, *a))
    client = docker_client()
    container = client.containers.create(busybox, ["true"], labels={"io.swarmsync.test": "netrc"})
    try:
        container.start()
        assert container.wait()["StatusCode"] == 0
    finally:
        container.remove(force=True)
    assert looked == []


def test_a_poll_validates_only_the_runs_the_worker_would_submit(pool, busybox):
    """A run the worker is already submitting stays Scheduled until its Pending is set, so Prefect's poll
    answered it again in every poll of a burst (~3 validations of each run, ~5% of the worker's CPU): a poll
    leaves out the runs being submitted and those of queues needing labels this host lacks."""
    from prefect.client.schemas.responses import WorkerFlowRunResponse

    from swarmsync.routing import queue_for
    from swarmsync.worker import SwarmSyncWorker

    jobs = [swarmsync.submit(busybox, ["echo", f"job {i}"], pool=pool) for i in range(3)]
    labelled = swarmsync.submit(busybox, ["echo", "gpu"], pool=pool, queue=queue_for(["gpu"]))

    async def poll() -> tuple[list[WorkerFlowRunResponse], uuid.UUID]:
        async with SwarmSyncWorker(work_pool_name=pool) as worker:
            worker._submitting_flow_run_ids.add(uuid.UUID(jobs[0].id))
            return await worker._get_scheduled_flow_runs(), worker._work_pool.id

    try:
        with prefect_api():
            found, pool_id = anyio.run(poll)
        assert all(isinstance(entry, WorkerFlowRunResponse) for entry in found)
        assert sorted(str(entry.flow_run.id) for entry in found) == sorted(job.id for job in jobs[1:])
        assert {entry.work_pool_id for entry in found} == {pool_id}  # the worker's own pool, validated whole
    finally:
        for job in [*jobs, labelled]:
            job.cancel()


def test_job_runs_use_the_workers_one_api_client(pool, busybox, monkeypatch, no_leftover_containers):
    """A worker's runs (the flow engine, the run's artifacts) share the worker's Prefect client: a
    new client per job costs an SSL context (~35 ms of CPU) and a connection. The worker runs as
    `worker start` runs it (Prefect's polling loop; --run-once: it stops once its runs are done)."""
    from prefect.client.orchestration import PrefectClient

    from swarmsync.worker import SwarmSyncWorker

    jobs = [swarmsync.submit(busybox, ["echo", f"job {i}"], pool=pool) for i in range(3)]
    for_runs: list[str] = []
    real_init = PrefectClient.__init__

    def counted_init(self, *args, **kwargs) -> None:
        stack = traceback.extract_stack()
        if any(frame.name == "run_flow_async" or "container_job" in frame.filename for frame in stack):
            for_runs.append("".join(traceback.format_list(stack[-12:])))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(PrefectClient, "__init__", counted_init)
    with prefect_api():
        anyio.run(lambda: SwarmSyncWorker(work_pool_name=pool).start(run_once=True))
    assert [job.status() for job in jobs] == ["Completed"] * 3
    assert for_runs == [], f"{len(for_runs)} Prefect clients made for 3 runs:\n" + "\n".join(for_runs)



def test_a_second_start_of_a_run_adopts_its_container_instead_of_making_another(docker_client, busybox, tmp_path):
    """The run's container is created first, under the run's name; starting the same run again (a worker that
    died and came back) is refused that name by the engine and adopts the container: one container per run,
    without listing containers before every creation."""
    from swarmsync.docker_runner import find_job_containers, resolve_image, start_or_adopt
    from swarmsync.output import OutputCapture
    from swarmsync.policy import HostPolicy

    spec = JobSpec(image=busybox, command=["sh", "-c", "echo started; sleep 30"], pull_policy="never")
    image = resolve_image(docker_client, spec, "never")
    run_id = f"adopt-{uuid.uuid4()}"
    lines: list[str] = []

    def capture(name: str) -> OutputCapture:
        return OutputCapture(tmp_path / name, lambda _stream, line: lines.append(line), 1 << 20)

    first, _, _, adopted = start_or_adopt(docker_client, spec, image, HostPolicy(), run_id, {}, capture("a"), None)
    try:
        assert not adopted
        again, _, _, adopted = start_or_adopt(docker_client, spec, image, HostPolicy(), run_id, {}, capture("b"), None)
        assert adopted and again.container.id == first.container.id
        assert [c.id for c in find_job_containers(docker_client, run_id)] == [first.container.id]
    finally:
        first.remove()
