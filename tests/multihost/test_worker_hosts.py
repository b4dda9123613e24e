"""Worker hosts with a token (issue 24) on real hosts: each host's namespace reaches only Core's API port
(a firewall inside it), its worker holds nothing of the server's, a token cannot do what it must not, a
token revoked while its host runs a job stops that job there and Core hands it back, and a host cut off
from Core for 60 s in the middle of a job delivers its output whole, once, when the link is back."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pytest

from swarmsync.docker_runner import LABEL_FLOW_RUN
from swarmsync.routing import queue_for
from tests.multihost.conftest import (
    IMAGE,
    LIMIT,
    ROOT,
    core_url,
    engine,
    hosts,
    on_host,
    runs_started,
    state,
    worker_of,
)
from tests.waiting import wait_until

SERVER_IP, API_PORT = "10.77.0.2", 4280
PORTS = {"PostgreSQL": 5432, "Redis": 6379, "SFTP (sshd)": 22, "Prefect API": 4200, "Core's API": API_PORT}
PROBE = """
import socket, sys
SERVER = "10.77.0.2"
for port in map(int, sys.argv[1:]):
    try:
        socket.create_connection((SERVER, port), timeout=3).close()
        print(port, "open")
    except OSError as exc:
        print(port, "closed", type(exc).__name__)
"""


def worker_environ(host: str) -> dict[str, str]:
    pid = state()["workers"][host]["worker"]
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_worker_host_reaches_only_cores_api_port_and_holds_no_server_secret(multihost_hosts):
    for host in ("ss-w1", "ss-w2", "ss-w3"):
        probe = on_host(host, sys.executable, "-c", PROBE, *map(str, PORTS.values()))
        assert probe.returncode == 0, probe.stderr
        seen = {int(line.split()[0]): line.split()[1] for line in probe.stdout.splitlines()}
        for what, port in PORTS.items():
            want = "open" if port == API_PORT else "closed"
            assert seen[port] == want, f"{host}: {what} (:{port}) is {seen[port]}"
        environ = worker_environ(host)
        for secret in ("SWARMSYNC_DATABASE_URL", "SWARMSYNC_REDIS_URL", "SWARMSYNC_PREFECT_REDIS_URL",
                       "SWARMSYNC_ARCHIVE_BLOCK", "PREFECT_API_DATABASE_CONNECTION_URL"):
            assert secret not in environ, f"{host}'s worker has {secret}"
        assert environ["SWARMSYNC_WORKER_TOKEN"].startswith("ssw_")
        assert multihost_hosts["server"]["auth"] not in "\0".join(environ.values())
        assert not (ROOT / host / ".ssh").exists(), f"{host} holds an SSH key"


def test_a_worker_token_is_refused_what_it_must_not_do(api, multihost_hosts):
    """From the host itself, with its own token, through its firewall (the whole set: tests/security)."""
    token = state()["workers"]["ss-w1"]["token"]
    code = f"""
import httpx, os, sys
verify = os.environ.get("SWARMSYNC_CA_FILE") or True
h = {{"Authorization": "Bearer " + sys.argv[1]}}
c = httpx.Client(base_url="{core_url()}", verify=verify, headers=h, timeout=30)
gw = "/worker/prefect/api/"
for method, path in [("POST", gw + "flow_runs/"), ("POST", gw + "deployments/"),
                     ("POST", gw + "block_documents/filter"), ("PATCH", gw + "work_pools/swarmsync"),
                     ("GET", "/users"), ("GET", "/worker-tokens"),
                     ("POST", "/jobs"), ("GET", gw + "work_pools/swarmsync")]:
    print(method, path, c.request(method, path, json={{}}).status_code)
"""
    ca = {"SWARMSYNC_CA_FILE": str(ROOT / "ss-w1" / "core-ca.pem")} if (ROOT / "ss-w1" / "core-ca.pem").exists() else {}
    done = on_host("ss-w1", sys.executable, "-c", code, token, env=ca)
    assert done.returncode == 0, done.stderr
    got = {" ".join(line.split()[:2]): int(line.split()[2]) for line in done.stdout.splitlines()}
    gw = "/worker/prefect/api/"
    assert got[f"POST {gw}flow_runs/"] == 403 and got[f"POST {gw}deployments/"] == 403
    assert got[f"POST {gw}block_documents/filter"] == 403 and got[f"PATCH {gw}work_pools/swarmsync"] == 403
    assert got["GET /users"] == 401 and got["GET /worker-tokens"] == 401 and got["POST /jobs"] == 401
    assert got[f"GET {gw}work_pools/swarmsync"] == 200  # its own pool


@pytest.mark.multihost_full  # CI: tests/integration/test_worker_host.py revokes a token mid-job on one host
def test_a_token_revoked_while_its_host_runs_a_job_stops_it_there_and_core_hands_it_back(api, multihost_hosts):
    job = api.submit(IMAGE, "echo started; sleep 20; echo done", queue=queue_for(["gpu"]))  # ss-w2 only
    wait_until(lambda: any(n.endswith("stdout") and m == "started" for _, n, m in job.logs()),
               "the job started on ss-w2", timeout=120)
    assert worker_of(job) == "ss-w2"
    worker_pid = state()["workers"]["ss-w2"]["worker"]
    revoked_at = time.monotonic()
    answer = api.request("DELETE", "/worker-tokens/ss-w2").json()
    assert answer["revoked"] and job.id in answer["handed_back"]
    running = {"label": f"{LABEL_FLOW_RUN}={job.id}", "status": "running"}
    wait_until(lambda: not engine("ss-w2").containers.list(filters=running),
               "the job's container on ss-w2 stopped", timeout=30, poll=0.5)
    stopped_after = time.monotonic() - revoked_at
    wait_until(lambda: not Path(f"/proc/{worker_pid}").exists() or b"Z" in _proc_state(worker_pid),
               "ss-w2's worker exited", timeout=30)
    assert job.status() in ("AwaitingRetry", "Scheduled"), job.status()
    print(f"\ntoken revoked -> container on ss-w2 stopped within {stopped_after:.0f} s; run handed back")
    # the host joins again with a new token and runs the job from the start, once more, to its end
    done = hosts("rejoin", "ss-w2", "--labels", "gpu,region=eu", "--limit", str(LIMIT), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    job.wait(240, poll=1)
    assert job.status() == "Completed"
    assert runs_started(job) == 2
    assert api.read_archive_file(job.id, "stdout.txt").decode().split() == ["started", "done"]


def _proc_state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1][:3]
    except OSError:
        return b"Z"


def test_a_host_cut_off_for_60_s_mid_job_delivers_its_output_whole_and_once(api, multihost_hosts):
    lines = 20000  # ~0.6 MB of stdout and a 2 MiB file: several upload chunks
    command = (f"echo started; sleep 8; seq 1 {lines} | sed 's/^/line-/'; mkdir -p /out; "
               "head -c 2097152 /dev/urandom > /out/blob.bin; sha256sum /out/blob.bin | cut -c1-64 > /out/blob.sha")
    job = api.submit(IMAGE, command, queue=queue_for(["gpu"]), output_dir="/out")  # ss-w2 only
    wait_until(lambda: any(n.endswith("stdout") and m == "started" for _, n, m in job.logs()),
               "the job started on ss-w2", timeout=120)
    link = "ss-w2-n"
    assert on_host("ss-w2", "ip", "link", "set", link, "down").returncode == 0
    try:
        time.sleep(60)  # the container ends during the cut; its worker cannot reach Core
        assert job.status() == "Running"
    finally:
        assert on_host("ss-w2", "ip", "link", "set", link, "up").returncode == 0
        on_host("ss-w2", "ip", "route", "replace", "10.77.0.0/24", "dev", link)
    job.wait(300, poll=1)
    assert job.status() == "Completed", job.status()
    assert runs_started(job) == 1
    assert worker_of(job) == "ss-w2"
    stdout = api.read_archive_file(job.id, "stdout.txt").decode().splitlines()
    assert stdout[0] == "started" and stdout[1:] == [f"line-{i}" for i in range(1, lines + 1)]
    manifest = api.get_job(job.id).result().manifest
    for name, entry in (manifest.get("files") or {}).items():
        if isinstance(entry, dict) and "sha256" in entry:
            assert hashlib.sha256(api.read_archive_file(job.id, name)).hexdigest() == entry["sha256"], name
    starts = [e for e in engine("ss-w2").events(decode=True, since=int(time.time()) - 900, until=int(time.time()),
                                                 filters={"event": "start", "label": f"{LABEL_FLOW_RUN}={job.id}"})]
    assert len(starts) == 1, f"the job's container started {len(starts)} times on ss-w2"
