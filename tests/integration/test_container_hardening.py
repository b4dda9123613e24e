"""Containers of different jobs cannot reach each other (unless the pool shares a network), leave
no anonymous volume behind, and stay within the writable storage and users their pool sets
(issue 23). Real Docker, real Prefect stack; every wait has a deadline."""

from __future__ import annotations

import http.server
import io
import threading
import uuid
from functools import partial

import docker
import pytest

import swarmsync
from swarmsync.deployments.pools import create_pool
from swarmsync.docker_runner import ISOLATED_NETWORK, JobRefused, create_container, resolve_image
from swarmsync.policy import HostPolicy
from swarmsync.spec import InputFile, JobSpec
from tests.conftest import free_port
from tests.waiting import wait_until
from tests.workers import WorkerProcesses

SECRET = "secret-of-job-a"


@pytest.fixture
def workers(stack, tmp_path):
    procs = WorkerProcesses(tmp_path)
    yield procs.start
    procs.stop_all()


def _running_container(docker_client, job) -> docker.models.containers.Container:
    def running():
        try:
            container = docker_client.containers.get(f"swarmsync-{job.id}")
        except docker.errors.NotFound:
            return None
        return container if container.status == "running" else None

    return wait_until(running, f"the container of job {job.id} running", timeout=120)


def _spec(image: str, command: str, **fields) -> JobSpec:
    """A JobSpec (submit's own `user` keyword names the submitter: a container user goes in the spec)."""
    return JobSpec(image=image, command=command, pull_policy="never", **fields)


def _listener(busybox: str, pool: str | None = None, **fields) -> swarmsync.Job:
    """A job serving SECRET on port 8080 until cancelled."""
    return swarmsync.submit(_spec(busybox, f"mkdir -p /tmp/www && echo {SECRET} > /tmp/www/index.html && "
                                  "exec httpd -f -p 8080 -h /tmp/www", timeout=300, **fields), pool=pool)


def _get(ip: str) -> str:
    """A shell command fetching job A's page, giving up after 10 s without an answer (this
    busybox's `wget -T` crashes: nc's -w instead)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 {ip} 8080"


def _ip(container) -> str:
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))


@pytest.fixture
def host_server(tmp_path):
    """An HTTP server on all of this host's addresses, serving hello.txt."""
    (tmp_path / "hello.txt").write_text("hello-from-host\n")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_job_cannot_connect_to_another_jobs_listener_but_still_reaches_the_host(
    stack, busybox, docker_client, no_leftover_containers, host_server,
):
    job_a = _listener(busybox)
    try:
        container = _running_container(docker_client, job_a)
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [ISOLATED_NETWORK]
        ip = _ip(container)
        network = docker_client.networks.get(ISOLATED_NETWORK)
        assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        wait_until(lambda: SECRET in container.exec_run(["wget", "-q", "-O-", "http://127.0.0.1:8080/"]).output.decode(),
                   "job A serving", timeout=60)
        job_b = swarmsync.submit(busybox, f"{_get(ip)}; echo a-rc=$?; "
                                 f"wget -q -O- http://{gateway}:{host_server}/hello.txt; echo host-rc=$?",
                                 timeout=120).wait(180)
        out = job_b.result().stdout
        assert SECRET not in out and "a-rc=0" not in out, out
        assert "hello-from-host" in out and "host-rc=0" in out, out
    finally:
        job_a.cancel()
        job_a.wait(120)


def test_jobs_on_a_pool_with_a_shared_network_reach_each_other_and_images_running_as_root_can_be_refused(
    stack, busybox, docker_client, workers, no_leftover_containers,
):
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool, shared_network=True, check_image_user=True)
    workers(pool)
    refused = swarmsync.submit(busybox, "id -u", pool=pool).wait(120)
    assert refused.status() == "Failed" and "runs as root" in refused.result().message, refused.result().message
    job_a = _listener(busybox, pool=pool, user="1000:1000")
    try:
        ip = _ip(_running_container(docker_client, job_a))
        job_b = swarmsync.submit(_spec(busybox, _get(ip), user="1000", timeout=120), pool=pool).wait(180)
        assert SECRET in job_b.result().stdout, job_b.result().message
    finally:
        job_a.cancel()
        job_a.wait(120)


def test_an_images_anonymous_volume_is_removed_with_its_job(stack, busybox, docker_client, no_leftover_containers):
    tag = f"swarmsync-test/with-volume:{uuid.uuid4().hex[:8]}"
    docker_client.images.build(fileobj=io.BytesIO(f"FROM {busybox}\nVOLUME /data\n".encode()), tag=tag, rm=True)
    try:
        job = swarmsync.submit(tag, "head -c 1000000 /dev/zero > /data/blob; until [ -e /data/go ]; do sleep 0.2; "
                               "done; echo done", pull_policy="never", timeout=120)
        container = _running_container(docker_client, job)
        volumes = [m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"]
        assert len(volumes) == 1 and docker_client.volumes.get(volumes[0])
        container.exec_run(["touch", "/data/go"])
        assert job.wait(120).status() == "Completed", job.result().message
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(volumes[0])
    finally:
        docker_client.images.remove(tag, force=True)


def test_a_read_only_pool_bounds_a_jobs_writes_keeps_inputs_and_outputs_and_runs_jobs_as_its_default_user(
    stack, busybox, workers, no_leftover_containers,
):
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool, read_only_rootfs=True, scratch_size=8 << 20, default_user="65534:65534",
                allow_root_user=True)
    workers(pool)
    nobody = swarmsync.submit(busybox, "id -u; id -g", pool=pool)
    inputs = [InputFile.from_bytes("/input/a.txt", b"A\n"), InputFile.from_bytes("/input/sub/b.txt", b"B\n")]
    files = swarmsync.submit(_spec(busybox, "cat /input/a.txt /input/sub/b.txt > /out/r.txt; touch /etc/x || echo ro; "
                                   "echo small > /tmp/s && echo tmp-ok", user="0", inputs=inputs, output_dir="/out"),
                             pool=pool)
    full = swarmsync.submit(_spec(busybox, "dd if=/dev/zero of=/tmp/big bs=1M count=64", user="0"), pool=pool)
    assert nobody.wait(120).result().stdout == "65534\n65534\n", nobody.result().message
    result = files.wait(120).result()
    assert files.status() == "Completed", result.message
    assert "ro\n" in result.stdout and "tmp-ok" in result.stdout
    assert "files.tar.gz" in result.manifest["files"]
    full_result = full.wait(120).result()
    assert full.status() == "Failed" and full_result.reason == "no-space", full_result.message
    assert "no space left" in full_result.message and "8 MiB" in full_result.message


def test_an_engine_that_cannot_cap_the_writable_layer_refuses_storage_size_by_name(docker_client, busybox):
    driver = docker_client.info()
    backing = dict(driver.get("DriverStatus") or []).get("Backing Filesystem")
    if driver["Driver"] == "overlay2" and backing == "xfs":
        pytest.skip("this engine may support storage-opt size (overlay2 on xfs)")
    spec = JobSpec(image=busybox, command="true", pull_policy="never")
    image = resolve_image(docker_client, spec, "never")
    run_id = f"storage-{uuid.uuid4().hex[:8]}"
    with pytest.raises(JobRefused, match="storage_size"):
        create_container(docker_client, spec, image, HostPolicy(storage_size=64 << 20), run_id, {})
    assert not docker_client.containers.list(all=True, filters={"name": f"swarmsync-{run_id}"})
