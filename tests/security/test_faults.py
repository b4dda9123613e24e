"""Faults between a worker and the Prefect API: a small fault-injecting proxy (pure Python,
on 127.0.0.1) stands between them and answers 503s and timeouts for a while during the
worker's heartbeats and recovery. A running job's container survives it, and the job
completes once the proxy heals: only a run the server says does not exist counts as deleted."""

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

import pytest

import swarmsync
from swarmsync.connection import api_url
from swarmsync.deployments.pools import create_pool
from swarmsync.docker_runner import LABEL_FLOW_RUN
from tests.conftest import free_port
from tests.waiting import wait_until
from tests.workers import WorkerProcesses

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
              "content-length"}
RUN_READ = re.compile(r"^/api/flow_runs/[0-9a-f-]{36}$")  # GET: read_flow_run, what recovery asks per container


class FaultProxy:
    """A reverse proxy to the Prefect API. Faults are rules (method, path regex, kind): while
    `rules` is not empty, a matching request gets a 503 ("503"), or no answer for longer than
    the client's timeout, then a dropped connection ("hang"); "both" alternates the two.
    Websocket upgrades (Prefect's events) are tunnelled untouched, except the worker channel
    (`/work_pools/NAME/workers/connect`), refused with a 404: the worker then heartbeats over
    REST, where the faults reach it."""

    def __init__(self, upstream: str, hang_seconds: float):
        target = urlsplit(upstream)
        self.host, self.port = target.hostname, target.port
        self.hang_seconds = hang_seconds
        self.rules: list[tuple[str, re.Pattern, str]] = []
        self.faulted: list[tuple[str, str, str]] = []  # (method, path, kind) of every fault answered
        self._count = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                kind = proxy._fault_for(self.command, self.path)
                if kind == "hang":
                    time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                    return
                if kind == "503":
                    body = b'{"detail": "injected fault"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
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
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(proxy.host, proxy.port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                finally:
                    upstream.close()
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

    def _fault_for(self, method: str, path: str) -> str | None:
        path = path.split("?", 1)[0]
        with self._lock:
            for rule_method, pattern, kind in self.rules:
                if rule_method in (method, "*") and pattern.search(path):
                    if kind == "both":
                        self._count += 1
                        kind = "hang" if self._count % 2 else "503"
                    self.faulted.append((method, path, kind))
                    return kind
        return None

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
