"""Faults between a worker and the Prefect API: a small fault-injecting proxy (pure Python,
on 127.0.0.1) stands between them and answers 503s and timeouts for a while during the
worker's heartbeats and recovery. A running job's container survives it, and the job
completes once the proxy heals: only a run the server says does not exist counts as deleted.
A claim whose answer is lost (passed on to Prefect, answered 502: a replica that died after the
work) is still the worker's, with or without a worker token (Core's gateway between them). Through the same
proxy, what a worker sends to start a run is counted."""

from __future__ import annotations

import http.client
import re
import select
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import anyio
import pytest

import swarmsync
from swarmsync.connection import api_url, prefect_api
from swarmsync.deployments.pools import create_pool
from swarmsync.docker_runner import LABEL_FLOW_RUN
from tests.conftest import ARTIFACTS, free_port, stop_process
from tests.waiting import wait_until
from tests.workers import WorkerProcesses, read_flow_run, start_api, start_token_host

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
              "content-length"}
RUN_READ = re.compile(r"^/api/flow_runs/[0-9a-f-]{36}$")  # GET: read_flow_run, what recovery asks per container


class FaultProxy:
    """A reverse proxy to the Prefect API. Faults are rules (method, path regex, kind[, body text]): while
    `rules` is not empty, a matching request gets a 503 ("503"), or no answer for longer than
    the client's timeout, then a dropped connection ("hang"); "both" alternates the two; "lost" is sent
    on to the server, whose answer is replaced by a 502 (what HAProxy answers when the replica dies
    after doing the work), and the rule is then removed. A rule with body text matches only requests
    whose body contains it.
    Websocket upgrades (Prefect's events) are tunnelled untouched, except the worker channel
    (`/work_pools/NAME/workers/connect`), refused with a 404: the worker then heartbeats over
    REST, where the faults reach it."""

    def __init__(self, upstream: str, hang_seconds: float):
        target = urlsplit(upstream)
        self.host, self.port = target.hostname, target.port
        self.hang_seconds = hang_seconds
        self.rules: list[tuple[str, re.Pattern, str]] = []
        self.faulted: list[tuple[str, str, str]] = []  # (method, path, kind) of every fault answered
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request, websockets included
        self._count = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.seen.append((self.command, self.path.split("?", 1)[0]))
                kind = proxy._fault_for(self.command, self.path, body or b"")
                if kind == "hang":
                    time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                    return
                if kind in ("503", "lost"):
                    if kind == "lost":
                        proxy._forward(self, body)  # the server does the work; its answer never arrives
                    fault = b'{"detail": "injected fault"}'
                    self.send_response(503 if kind == "503" else 502)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(fault)))
                    self.end_headers()
                    self.wfile.write(fault)
                    return
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    if self.path.split("?", 1)[0].endswith("/workers/connect"):
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        self.close_connection = True
                        return
                    proxy._tunnel(self)
                    return
                response, data = proxy._forward(self, body)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _fault_for(self, method: str, path: str, body: bytes) -> str | None:
        path = path.split("?", 1)[0]
        with self._lock:
            for rule in self.rules:
                rule_method, pattern, kind = rule[:3]
                if rule_method in (method, "*") and pattern.search(path) and (len(rule) < 4 or rule[3] in body):
                    if kind == "both":
                        self._count += 1
                        kind = "hang" if self._count % 2 else "503"
                    elif kind == "lost":
                        self.rules = [r for r in self.rules if r is not rule]
                    self.faulted.append((method, path, kind))
                    return kind
        return None

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> tuple[http.client.HTTPResponse, bytes]:
        upstream = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            return response, response.read()
        finally:
            upstream.close()

    def _tunnel(self, handler: BaseHTTPRequestHandler) -> None:
        """Pass a websocket upgrade and everything after it through as raw bytes."""
        upstream = socket.create_connection((self.host, self.port))
        head = f"{handler.requestline}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in handler.headers.items()) + "\r\n"
        upstream.sendall(head.encode("latin-1"))
        client = handler.connection
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            handler.close_connection = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(stack):
    fault_proxy = FaultProxy(api_url(), hang_seconds=4)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture
def worker_behind(stack, tmp_path):
    """A `swarmsync worker start` process whose Prefect API is the proxy; stopped after the test."""
    procs = WorkerProcesses(tmp_path)

    def start(pool: str, proxy_url: str) -> subprocess.Popen:
        return procs.start(pool, env={
            "PREFECT_API_URL": proxy_url,
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "2",  # heartbeats (and recovery) every 2 s
            "PREFECT_API_REQUEST_TIMEOUT": "3",  # a hang is a timeout after 3 s
            "PREFECT_CLIENT_MAX_RETRIES": "1",  # a fault reaches SwarmSync's code instead of Prefect's retries
        })

    yield start
    procs.stop_all()


def test_a_running_container_survives_503s_and_timeouts_during_heartbeats_and_recovery(
    stack, proxy, worker_behind, busybox, docker_client,
):
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool)
    worker = worker_behind(pool, proxy.url)
    job = swarmsync.submit(busybox, ["sh", "-c", "echo started; sleep 30; echo finished"], pool=pool, timeout=120)
    label = {"label": f"{LABEL_FLOW_RUN}={job.id}"}

    def running():
        found = docker_client.containers.list(filters=label)
        return found[0] if found and "started" in found[0].logs().decode(errors="replace") else None

    container = wait_until(running, "the job's container runs", timeout=90, poll=0.2)
    # 1: REST heartbeats get 503s and reading runs gets 503s and timeouts (faulting the worker's polls too
    # would make Prefect's own service loop give up and end the worker: a restart's business, not this test's)
    proxy.rules = [("POST", re.compile(r"/workers/heartbeat$"), "503"), ("GET", RUN_READ, "both")]
    time.sleep(6)
    # 2: heartbeats pass again, so recovery runs; reading each container's run fails (503, timeout)
    proxy.rules = [("GET", RUN_READ, "both")]
    def faulted_reads_while_the_container_runs() -> bool:
        container.reload()  # docker.errors.NotFound here: the container was removed over a transient fault
        assert container.status == "running", f"the running job's container is {container.status}"
        return sum(1 for _m, p, _k in proxy.faulted if p.endswith(str(job.id))) >= 3

    wait_until(faulted_reads_while_the_container_runs,
               "recovery asked for the running job's run through the faulty API at least 3 times", timeout=60)
    kinds = {k for _m, p, k in proxy.faulted if p.endswith(str(job.id))}
    assert kinds == {"503", "hang"}, kinds
    container.reload()
    assert container.status == "running", "the running job's container was stopped during the faults"
    proxy.rules = []  # healed
    job.wait(120)
    result = job.result()
    assert job.status() == "Completed", result.message
    assert result.stdout == "started\nfinished\n"
    assert worker.poll() is None, "the worker must outlive the faults"
    wait_until(lambda: not docker_client.containers.list(all=True, filters=label),
               "the finished job's container removed", timeout=60)


SET_STATE = re.compile(r"^/api/flow_runs/[0-9a-f-]{36}/set_state$")
CLAIM = b'"PENDING"'  # the body of a claim (the worker's proposal of Pending)


def _states(job_id: str) -> list[str]:
    from prefect import get_client

    async def read() -> list[str]:
        async with get_client() as client:
            states = await client.read_flow_run_states(uuid.UUID(job_id))
        return [s.type.value for s in sorted(states, key=lambda s: s.timestamp)]

    with prefect_api():
        return anyio.run(read)


def test_a_claim_whose_answer_is_lost_is_still_the_workers(stack, proxy, worker_behind, busybox):
    """Prefect's HA shape: a replica accepts a worker's Pending and dies before answering (HAProxy answers
    502). Prefect's client sends the claim again with the same transition id; Prefect rejects the duplicate
    with the run's Pending, and the worker runs the job then, not after Core's lost-host bound has put the
    run back in its queue (Scheduled "Resuming", a second Pending). (Prefect's own transition ids: this
    passed before the gateway's fix too; it guards the shape without a token.)"""
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool)
    proxy.rules = [("POST", SET_STATE, "lost", CLAIM)]
    worker_behind(pool, proxy.url)
    job = swarmsync.submit(busybox, "echo claimed once", pool=pool, timeout=120)
    job.wait(180)
    assert job.result().stdout == "claimed once\n"
    assert proxy.faulted == [("POST", f"/api/flow_runs/{job.id}/set_state", "lost")]
    assert _states(job.id) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]


def test_a_run_starts_with_one_patch_of_it_carrying_what_prefect_writes(stack, proxy, worker_behind, busybox):
    """Prefect's worker writes a run's infrastructure_pid and its flow engine then the run's flow_version and
    empirical_policy: one PATCH of the run carries the three (before: two PATCHes per job)."""
    from swarmsync.flows.container_job import container_job

    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool)
    worker_behind(pool, proxy.url)
    job = swarmsync.submit(busybox, "echo one patch", pool=pool, timeout=120)
    job.wait(180)
    assert job.result().stdout == "one patch\n"

    run = read_flow_run(job.id)
    assert proxy.seen.count(("PATCH", f"/api/flow_runs/{job.id}")) == 1
    assert run.infrastructure_pid and run.infrastructure_pid.endswith(f":{job.id}")
    assert run.flow_version == container_job.version and run.flow_version
    assert (run.empirical_policy.retries, run.empirical_policy.retry_delay) == (0, 0)


def test_a_claim_whose_answer_core_lost_is_still_the_hosts(stack, proxy, busybox, tmp_path):
    """The same through Core's gateway (a host with a worker token): Core's call to Prefect loses the
    answer, so Core never saw the claim accepted. The host's claim sent again is rejected by Prefect as the
    duplicate of that token's claim, with the run's Pending: Core records the claim, the host runs the job
    and its reports pass (before: refused 409, the run put back in its queue by the lost-host bound)."""
    from swarmsync.auth import worker_tokens

    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool)
    name = f"lost-{uuid.uuid4().hex[:6]}"
    token = worker_tokens.create("test", name, pool).token
    port = free_port()
    procs = []
    try:
        # (the stack's own API runs the lost-host check)
        procs.append(start_api(port, tmp_path / "api.log", env={
            "SWARMSYNC_API_URL": proxy.url, "PREFECT_API_URL": proxy.url, "SWARMSYNC_LOST_HOST_CHECK": "false"}))
        procs.append(start_token_host(f"http://127.0.0.1:{port}", token, name, tmp_path / name,
                                      env={"PREFECT_CLIENT_MAX_RETRIES": "1"}))
        worker_log = procs[1].log_path
        proxy.rules = [("POST", SET_STATE, "lost", CLAIM)]
        job = swarmsync.submit(busybox, "echo claimed once", pool=pool, timeout=120)
        job.wait(180)
        assert job.result().stdout == "claimed once\n", worker_log.read_text()
        assert proxy.faulted == [("POST", f"/api/flow_runs/{job.id}/set_state", "lost")]
        assert _states(job.id) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        ARTIFACTS.mkdir(exist_ok=True)
        for log_path in (tmp_path / "api.log", tmp_path / name / "worker.log"):
            if log_path.exists():
                (ARTIFACTS / f"faults-{name}-{log_path.name}").write_bytes(log_path.read_bytes())
